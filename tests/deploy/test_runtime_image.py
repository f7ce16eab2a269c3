"""The runtime image's Python environment, rebuilt the way its Dockerfile stage builds it: a
fresh virtualenv, the lock file from PyPI, the wheel of app/ without dependencies. It must serve
a trained model, and TensorFlow (and the training code) must not be there at all."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from tests.deploy.manifests import LOCK_FILE, dockerfile_stages, healthcheck_command
from tests.support import MODEL_NAME, REFERENCE_INPUTS, REPO_ROOT, ServerProcess, running_server

PYPROJECT = REPO_ROOT / "pyproject.toml"


def _pip(python: Path, *args: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet", *args],
        check=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding exactly what the runtime stage installs (made once per session)."""
    root = tmp_path_factory.mktemp("runtime")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    _pip(python, "install", "--requirement", str(LOCK_FILE))
    # The wheel stage's build context: pyproject.toml, README.md and app/, nothing else.
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    _pip(python, "install", "--no-deps", str(source))
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


def test_the_lock_file_pins_every_base_dependency_of_the_project() -> None:
    base = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pinned = {}
    for line in LOCK_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[_normalize(name)] = version
    for dependency in map(Requirement, base):
        assert _normalize(dependency.name) in pinned, f"{dependency.name} is not locked"
        assert dependency.specifier.contains(pinned[_normalize(dependency.name)])
    assert not {"tensorflow", "tensorflow-cpu", "keras", "scikit-learn", "tf2onnx"} & set(pinned)


def test_the_locked_set_is_complete_and_consistent(runtime_venv: Path) -> None:
    check = subprocess.run(
        [str(runtime_venv / "bin" / "python"), "-m", "pip", "check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr


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


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
