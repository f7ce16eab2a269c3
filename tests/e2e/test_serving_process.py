"""The real server process: ``python -m app`` on 127.0.0.1, and what it loads into memory."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import MODEL_NAME, REFERENCE_INPUTS, running_server


def mapped_libraries(pid: int) -> set[str]:
    """Shared objects in the process's address space: what it really imported."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {Path(line.split()[-1]).name for line in maps.splitlines() if ".so" in line}


@pytest.mark.parametrize(("backend", "imports_tensorflow"), [("onnx", False), ("keras", True)])
def test_only_the_keras_backend_brings_tensorflow_into_the_server(
    trained_repository: Path, tmp_path: Path, backend: str, imports_tensorflow: bool
) -> None:
    env = {
        "MULTILABEL_MODEL_DIR": str(trained_repository),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_BACKEND": backend,
        "MULTILABEL_POLL_INTERVAL": "0",
    }
    # Importing TensorFlow takes tens of seconds on a busy machine: the keras start gets longer.
    timeout = 120.0 if imports_tensorflow else 30.0
    log = tmp_path / "server.log"
    with running_server(env, log, ready_path="/health/ready", timeout=timeout) as server:
        response = httpx.post(server.base_url + "/predict", json={"instances": REFERENCE_INPUTS})
        assert response.status_code == 200
        assert response.json()["predictions"][0]["labels"] == ["label_0", "label_1"]
        libraries = mapped_libraries(server.process.pid)
        assert any("onnxruntime" in name for name in libraries) == (backend == "onnx")
        assert any("tensorflow" in name for name in libraries) == imports_tensorflow
