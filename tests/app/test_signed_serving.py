"""The application with ``MULTILABEL_TRUSTED_KEYS``: serves signed versions only, says why not."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.artifact import version_path
from app.config import Settings
from app.main import create_app
from app.signing import KeyFileError, sign_version
from tests.robustness.signed_versions import new_key_pair
from tests.support import MODEL_NAME, REFERENCE_INPUTS


def test_a_signed_version_is_served_when_keys_are_trusted(repository: Path, tmp_path: Path) -> None:
    key, public_key = new_key_pair(tmp_path / "keys")
    sign_version(version_path(repository, MODEL_NAME, 1), key)
    settings = Settings(
        model_dir=repository, model_name=MODEL_NAME, poll_interval=0, trusted_keys=public_key
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["status"] == "ready"
        response = client.post("/predict", json={"instances": REFERENCE_INPUTS})
        assert response.status_code == 200
        assert response.json()["model"] == {"name": MODEL_NAME, "version": 1}


def test_an_unsigned_version_is_not_served_and_health_says_why(
    repository: Path, tmp_path: Path
) -> None:
    _, public_key = new_key_pair(tmp_path / "keys")
    settings = Settings(
        model_dir=repository, model_name=MODEL_NAME, poll_interval=0, trusted_keys=public_key
    )
    with TestClient(create_app(settings)) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["reason"] == (
            "version 1 was rejected: the version is not signed: metadata.json.sig is missing"
        )
        assert client.post("/predict", json={"instances": REFERENCE_INPUTS}).status_code == 503


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
