"""Liveness and readiness in the healthy, missing-artifact and corrupt-artifact states."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.artifact import ONNX_FILE, version_path
from app.config import Settings
from app.main import create_app
from tests.support import MODEL_NAME


def test_healthy_service_is_live_and_ready(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "live"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ready", "model": {"name": MODEL_NAME, "version": 1}}


def remove_model(root: Path) -> None:
    shutil.rmtree(root / MODEL_NAME)


def remove_version_file(root: Path) -> None:
    (version_path(root, MODEL_NAME, 1) / ONNX_FILE).unlink()


def corrupt_onnx(root: Path) -> None:
    path = version_path(root, MODEL_NAME, 1) / ONNX_FILE
    path.write_bytes(path.read_bytes()[:100])


def corrupt_metadata(root: Path) -> None:
    (version_path(root, MODEL_NAME, 1) / "metadata.json").write_text("{not json")


BROKEN_REPOSITORIES: list[tuple[Callable[[Path], None], str]] = [
    (remove_model, "no version"),
    (remove_version_file, "model.onnx is missing"),
    (corrupt_onnx, "does not match its SHA-256"),
    (corrupt_metadata, "metadata.json is invalid"),
]


@pytest.mark.parametrize(
    ("breakage", "reason"),
    BROKEN_REPOSITORIES,
    ids=[breakage.__name__ for breakage, _ in BROKEN_REPOSITORIES],
)
def test_broken_artifact_leaves_the_service_live_but_not_ready(
    repository: Path, breakage: Callable[[Path], None], reason: str
) -> None:
    breakage(repository)
    settings = Settings(model_dir=repository, model_name=MODEL_NAME, poll_interval=0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/live").status_code == 200
        for path in ("/health/ready", "/health"):
            response = client.get(path)
            assert response.status_code == 503
            assert response.json()["status"] == "not_ready"
            assert reason in response.json()["reason"]
            assert str(repository) not in response.json()["reason"]
        predict = client.post("/predict", json={"instances": [[1] * 10]})
        assert predict.status_code == 503
        assert predict.json()["error"]["code"] == "model_not_ready"


def test_missing_repository_directory_is_not_ready(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "nowhere", model_name=MODEL_NAME, poll_interval=0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/live").status_code == 200
        assert client.get("/health").status_code == 503


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/health", "/v2/health/live"])
def test_a_probe_with_another_method_gets_405_with_allow(client: TestClient, path: str) -> None:
    response = client.delete(path)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert "error" in response.json()


def test_an_unknown_path_gets_the_native_404(client: TestClient) -> None:
    response = client.get("/health/deep")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
