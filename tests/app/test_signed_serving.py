"""The application with ``MULTILABEL_TRUSTED_KEYS``: serves signed versions only, says why not."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.artifact import version_path
from app.config import Settings
from app.main import create_app
from app.signing import PRIVATE_KEY_FILE, KeyFileError, SigningKey, sign_version
from tests.robustness.signed_versions import (
    certificate_authority,
    new_key_pair,
    rename_model,
    republish,
    sign_in_old_format,
    sign_with_certificate,
    sign_with_stock_cli,
)
from tests.support import MODEL_NAME, REFERENCE_INPUTS


def signed_by_us(version: Path, key: SigningKey, keys: Path) -> Path:
    sign_version(version, key)
    return keys / "signing-key.pub.pem"


def signed_with_the_stock_cli(version: Path, key: SigningKey, keys: Path) -> Path:
    sign_with_stock_cli(version, keys / PRIVATE_KEY_FILE)
    return keys / "signing-key.pub.pem"


def signed_with_a_certificate(version: Path, key: SigningKey, keys: Path) -> Path:
    """PKI: the service trusts the company's root, not the key that signed."""
    authority = certificate_authority(keys.parent / "pki")
    sign_with_certificate(version, authority)
    return authority.root


@pytest.mark.parametrize(
    "sign", [signed_by_us, signed_with_the_stock_cli, signed_with_a_certificate]
)
def test_a_signed_version_is_served_when_its_signer_is_trusted(
    repository: Path, tmp_path: Path, sign: Callable[[Path, SigningKey, Path], Path]
) -> None:
    key, _ = new_key_pair(tmp_path / "keys")
    trusted = sign(version_path(repository, MODEL_NAME, 1), key, tmp_path / "keys")
    settings = Settings(
        model_dir=repository, model_name=MODEL_NAME, poll_interval=0, trusted_keys=trusted
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["status"] == "ready"
        response = client.post("/predict", json={"instances": REFERENCE_INPUTS})
        assert response.status_code == 200
        assert response.json()["model"] == {"name": MODEL_NAME, "version": 1}
        assert client.get("/metadata").json()["signatures_verified"] is True


def unsigned(repository: Path, key: SigningKey) -> None:
    pass


def signed_in_the_old_format(repository: Path, key: SigningKey) -> None:
    sign_in_old_format(version_path(repository, MODEL_NAME, 1))


def signed_version_of_another_model(repository: Path, key: SigningKey) -> None:
    """Issue 20, hole 1: a trusted key signed it, but it is another model's version."""
    republish(repository, version_path(repository, MODEL_NAME, 1), key=key, change=rename_model)
    shutil.rmtree(version_path(repository, MODEL_NAME, 1))


@pytest.mark.parametrize(
    ("prepare", "reason"),
    [
        (unsigned, "version 1 was rejected: the version is not signed: model.sig is missing"),
        (
            signed_in_the_old_format,
            "version 1 was rejected: it is signed in the old format (metadata.json.sig, Ed25519), "
            "which is no longer accepted: re-sign it with an EC key "
            "(`python -m app.signing generate --out DIR`): "
            "python -m app.signing sign VERSION_DIR --key DIR/signing-key.pem",
        ),
        (
            signed_version_of_another_model,
            "version 2 was rejected: metadata.json names model 'othermodel', not 'multilabel': "
            "a version of another model",
        ),
    ],
)
def test_a_version_not_served_leaves_the_service_not_ready_and_health_says_why(
    repository: Path,
    tmp_path: Path,
    prepare: Callable[[Path, SigningKey], None],
    reason: str,
) -> None:
    key, public_key = new_key_pair(tmp_path / "keys")
    prepare(repository, key)
    settings = Settings(
        model_dir=repository, model_name=MODEL_NAME, poll_interval=0, trusted_keys=public_key
    )
    with TestClient(create_app(settings)) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["reason"] == reason
        assert client.post("/predict", json={"instances": REFERENCE_INPUTS}).status_code == 503
        assert client.post("/v2/models/othermodel/infer", json={}).status_code == 404


def test_an_unusable_trusted_keys_setting_stops_the_application_starting(
    trained_repository: Path, tmp_path: Path
) -> None:
    settings = Settings(
        model_dir=trained_repository,
        model_name=MODEL_NAME,
        poll_interval=0,
        trusted_keys=tmp_path / "absent.pem",
    )
    with (
        pytest.raises(KeyFileError, match=r"^MULTILABEL_TRUSTED_KEYS: .* cannot be read"),
        TestClient(create_app(settings)),
    ):
        pass
