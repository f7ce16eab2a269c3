"""The runtime image's Python environment, rebuilt the way its Dockerfile stage (serving-env)
builds it: a venv without pip, the serving lock installed by uv with every hash checked, then
the wheel of app/ without dependencies. It must serve a trained model, and TensorFlow (and the
training code) must not be there at all. (scripts/container-test.sh checks the image itself,
trimmed as the Dockerfile trims it.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.manifests import dockerfile_stages, healthcheck_command, lock_file
from tests.support import MODEL_NAME, REFERENCE_INPUTS, REPO_ROOT, ServerProcess, running_server

UV = REPO_ROOT / ".venv" / "bin" / "uv"  # the locked uv (dev set), as in the image's build


def _uv_pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UV), "pip", *args, "--python", str(python)],
        env={**os.environ, "UV_SYSTEM_CERTS": "1", "UV_PYTHON_DOWNLOADS": "never"},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="session")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding exactly what the serving-env stage installs (made once per session)."""
    root = tmp_path_factory.mktemp("runtime")
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    installed = _uv_pip(
        python, "install", "--require-hashes", "--no-deps", "--requirement", str(lock_file("serve"))
    )
    assert installed.returncode == 0, installed.stderr
    # The stage's build context for the wheel: pyproject.toml, README.md and app/, nothing else.
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    installed = _uv_pip(python, "install", "--no-deps", str(source))
    assert installed.returncode == 0, installed.stderr
    return venv


def _clean_env() -> dict[str, str]:
    """The test process's environment without what would let the venv see the repository."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _imports(venv: Path, module: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {module}"],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def runtime_server(
    runtime_venv: Path, trained_repository: Path, tmp_path: Path
) -> Iterator[ServerProcess]:
    """The runtime environment's console script serving the session's trained model."""
    env = {
        **_clean_env(),
        "MULTILABEL_MODEL_DIR": str(trained_repository),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_POLL_INTERVAL": "0",
    }
    command = [str(runtime_venv / "bin" / "multilabel-serve")]
    with running_server(env, tmp_path / "server.log", command=command) as server:
        yield server


def test_the_locked_set_is_complete_and_consistent(runtime_venv: Path) -> None:
    check = _uv_pip(runtime_venv / "bin" / "python", "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_command_the_service_installs_loads(runtime_venv: Path, tmp_path: Path) -> None:
    """Only the service's own console script, and it imports (no training entry point)."""
    script = (
        "import importlib.metadata as m\n"
        "points = m.distribution('multilabel-service').entry_points\n"
        "[point.load() for point in points]\n"
        "print(sorted(point.name for point in points))\n"
    )
    result = subprocess.run(
        [str(runtime_venv / "bin" / "python"), "-c", script],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['multilabel-serve']"


@pytest.mark.parametrize("module", ["tensorflow", "keras", "sklearn", "tf2onnx", "training"])
def test_the_runtime_environment_has_no_training_stack(
    runtime_venv: Path, module: str, tmp_path: Path
) -> None:
    result = _imports(runtime_venv, module, cwd=tmp_path)
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr


def test_the_runtime_environment_serves_the_trained_model(
    runtime_server: ServerProcess,
) -> None:
    assert httpx.get(runtime_server.base_url + "/health/ready").status_code == 200
    response = httpx.post(
        runtime_server.base_url + "/predict", json={"instances": REFERENCE_INPUTS}
    )
    assert response.status_code == 200
    rows = response.json()["predictions"]
    assert [row["vector"][:2] for row in rows] == [[1, 1], [1, 1]]
    metrics = httpx.get(runtime_server.base_url + "/metrics")
    assert metrics.status_code == 200
    assert 'multilabel_model_info{model="multilabel",version="1"} 1.0' in metrics.text


def test_the_image_healthcheck_passes_on_a_serving_container(
    runtime_venv: Path, runtime_server: ServerProcess
) -> None:
    assert _healthcheck(runtime_venv, runtime_server).returncode == 0


def test_the_image_healthcheck_fails_while_no_model_is_loaded(
    runtime_venv: Path, tmp_path: Path
) -> None:
    env = {**_clean_env(), "MULTILABEL_MODEL_DIR": str(tmp_path), "MULTILABEL_POLL_INTERVAL": "0"}
    command = [str(runtime_venv / "bin" / "multilabel-serve")]
    with running_server(env, tmp_path / "server.log", command=command) as server:
        assert httpx.get(server.base_url + "/health").status_code == 503
        assert _healthcheck(runtime_venv, server).returncode != 0


def _healthcheck(venv: Path, server: ServerProcess) -> subprocess.CompletedProcess[str]:
    """The Dockerfile's HEALTHCHECK command, run by the runtime environment's python."""
    (argument,) = dockerfile_stages()[-1].arguments("HEALTHCHECK")
    command = healthcheck_command(argument)
    port = server.base_url.rsplit(":", 1)[1]
    return subprocess.run(
        [str(venv / "bin" / command[0]), *command[1:]],
        env={**_clean_env(), "MULTILABEL_PORT": port},
        capture_output=True,
        text=True,
        timeout=30,
    )
