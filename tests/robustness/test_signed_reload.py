"""Hot reload on a real server with the trust checks: signatures, and schema-safe swaps."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.artifact import version_path
from app.signing import sign_version
from tests.robustness.servers import predict_body, served_version, serving, wait_for
from tests.robustness.signed_versions import (
    corrupt_signature,
    new_key_pair,
    poison_network,
    rename_model,
    republish,
    reverse_labels,
    sign_in_old_format,
    stranger_key,
)
from tests.support import MODEL_NAME, REFERENCE_INPUTS, REPO_ROOT, ServerProcess, free_port

POLL_INTERVAL = 0.2


def predict(server: ServerProcess) -> dict[str, Any]:
    response = httpx.post(
        server.base_url + "/predict",
        content=predict_body(REFERENCE_INPUTS),
        headers={"content-type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def model_events(server: ServerProcess, event: str) -> float:
    text = httpx.get(server.base_url + "/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "multilabel_model_events_total" and sample.labels["event"] == event
    )


def logged(server: ServerProcess, text: str) -> Callable[[], bool]:
    return lambda: text in server.log()


def first_version(repository: Path) -> Path:
    return version_path(repository, MODEL_NAME, 1)


def test_only_versions_signed_by_a_trusted_key_are_hot_loaded(
    repository: Path, tmp_path: Path
) -> None:
    """Each version that is not exactly as a trusted key signed it is refused with its reason
    while version 1 keeps answering; a properly signed version then takes over."""
    key, public_key = new_key_pair(tmp_path / "keys")
    sign_version(first_version(repository), key)
    stranger = stranger_key(tmp_path)
    bad_versions: list[tuple[Callable[[], object], str]] = [
        (lambda: republish(repository, first_version(repository)), "is not signed"),
        (
            lambda: republish(
                repository, first_version(repository), key=key, tamper=poison_network
            ),
            "the files differ from what was signed (metadata.json changed; model.onnx changed)",
        ),
        (
            lambda: republish(repository, first_version(repository), key=stranger),
            "which is not a trusted key",
        ),
        (
            lambda: republish(
                repository, first_version(repository), key=key, tamper=corrupt_signature
            ),
            "model.sig does not verify (key ",
        ),
        (
            lambda: republish(repository, first_version(repository), tamper=sign_in_old_format),
            "signed in the old format (metadata.json.sig, Ed25519)",
        ),
        (
            lambda: republish(repository, first_version(repository), key=key, change=rename_model),
            "metadata.json names model 'othermodel', not 'multilabel'",
        ),
    ]
    with serving(
        repository,
        tmp_path / "server.log",
        poll_interval=POLL_INTERVAL,
        trusted_keys=str(public_key),
    ) as server:
        before = predict(server)
        for number, (publish_bad, reason) in enumerate(bad_versions, start=2):
            publish_bad()
            refusal = f"rejected multilabel version {number}: "
            wait_for(logged(server, refusal), f"version {number} refused", server)
            [line] = [line for line in server.log().splitlines() if refusal in line]
            assert reason in line
            assert '"level":"error"' in line
            assert served_version(server) == 1
            assert predict(server) == before
        assert model_events(server, "rejected") == len(bad_versions)
        republish(repository, first_version(repository), key=key)
        good = len(bad_versions) + 2
        wait_for(lambda: served_version(server) == good, f"signed version {good} served", server)
        assert f"multilabel version {good} is signed by key {key.key_id}" in server.log()


@pytest.mark.parametrize("allowed", [False, True], ids=["by-default", "allowed"])
def test_a_version_with_its_labels_reordered_is_refused_on_reload_unless_allowed(
    repository: Path, tmp_path: Path, allowed: bool
) -> None:
    with serving(
        repository,
        tmp_path / "server.log",
        poll_interval=POLL_INTERVAL,
        allow_schema_change=str(allowed).lower(),
    ) as server:
        before = predict(server)
        republish(repository, first_version(repository), change=reverse_labels)
        if allowed:
            wait_for(lambda: served_version(server) == 2, "version 2 served", server)
            after = predict(server)
            # The same network: its first output is now called label_2, and so on.
            for old, new in zip(before["predictions"], after["predictions"], strict=True):
                assert list(new["probabilities"]) == ["label_2", "label_1", "label_0"]
                assert new["probabilities"]["label_2"] == old["probabilities"]["label_0"]
            assert "multilabel version 2 changes the schema of served version 1" in server.log()
            assert model_events(server, "incompatible") == 0
        else:
            refusal = "refused multilabel version 2: incompatible with served version 1: labels"
            wait_for(logged(server, refusal), "version 2 refused", server)
            assert served_version(server) == 1
            assert predict(server) == before
            assert model_events(server, "incompatible") == 1


def test_an_unusable_trusted_keys_setting_stops_the_server_before_it_listens(
    tmp_path: Path, repository: Path
) -> None:
    """Pointing the service at the generator's directory would trust a private key: refused."""
    new_key_pair(tmp_path / "keys")
    port = free_port()
    env = {
        **os.environ,
        "MULTILABEL_MODEL_DIR": str(repository),
        "MULTILABEL_PORT": str(port),
        "MULTILABEL_TRUSTED_KEYS": str(tmp_path / "keys"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "app"], env=env, cwd=REPO_ROOT, capture_output=True, timeout=60
    )
    log = (result.stdout + result.stderr).decode()
    assert result.returncode != 0
    [line] = [line for line in log.splitlines() if '"level":"critical"' in line]
    assert "cannot start: MULTILABEL_TRUSTED_KEYS: trusted keys file " in line
    assert "signing-key.pem holds a private key; trust the public key" in line
    assert "Application startup failed" in log
    assert "Uvicorn running on" not in log  # the port was never opened
