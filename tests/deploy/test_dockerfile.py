"""The Dockerfile, read as far as a build would use it (no Docker engine runs here): what each
stage copies exists and is in the build context, and the runtime stage is the slim, non-root,
TensorFlow-free image that serves the default model on 0.0.0.0:8000."""

from __future__ import annotations

import shlex

import pytest

from app.config import Settings
from tests.deploy.manifests import (
    LOCK_FILE,
    Stage,
    copy_sources,
    dockerfile_stages,
    dockerignore_excludes,
    healthcheck_command,
    read_dockerignore,
    settings_from_env,
)
from tests.support import REPO_ROOT

STAGES = dockerfile_stages()
RUNTIME = STAGES[-1]


def _stage(name: str) -> Stage:
    return next(stage for stage in STAGES if stage.name == name)


def _local_copies() -> list[str]:
    return [
        source
        for stage in STAGES
        for argument in stage.arguments("COPY")
        for source in copy_sources(argument)[1]
        if copy_sources(argument)[0] is None
    ]


@pytest.mark.parametrize("source", sorted(set(_local_copies())))
def test_every_path_the_dockerfile_copies_exists_in_the_build_context(source: str) -> None:
    assert (REPO_ROOT / source).exists(), f"COPY {source}: no such path"
    assert not dockerignore_excludes(source, read_dockerignore()), f".dockerignore drops {source}"


def test_copies_from_other_stages_name_earlier_stages() -> None:
    for index, stage in enumerate(STAGES):
        for argument in stage.arguments("COPY"):
            source_stage = copy_sources(argument)[0]
            if source_stage is not None:
                assert source_stage in [earlier.name for earlier in STAGES[:index]]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        "models/multilabel/1/model.onnx",
        "bench/results/run.json",
        ".git/HEAD",
        "app/__pycache__/main.cpython-311.pyc",
        "tests/conftest.py",
        "multilabel_service.egg-info",
    ],
)
def test_the_build_context_leaves_local_state_out(path: str) -> None:
    assert dockerignore_excludes(path, read_dockerignore())


def test_the_trainer_stage_trains_the_default_model() -> None:
    runs = [shlex.split(run) for run in _stage("trainer").arguments("RUN")]
    training = [words for words in runs if words[:3] == ["python", "-m", "training.train"]]
    assert len(training) == 1
    # Only where to write: any other flag would make it something else than the default model.
    assert training[0][3:] == ["--output", "/models"]
    assert "/models/" in {copy_sources(a)[1][0] for a in RUNTIME.arguments("COPY")}


def test_the_runtime_stage_is_slim_python_3_11() -> None:
    assert RUNTIME.name == "runtime"
    assert RUNTIME.base.startswith("python:3.11-slim")


def test_the_runtime_stage_installs_only_the_locked_serving_dependencies() -> None:
    installs = " ".join(RUNTIME.arguments("RUN"))
    assert "pip install -r /tmp/serve.txt" in installs
    assert "pip install --no-deps" in installs  # the service's own wheel adds nothing else
    assert ("requirements/serve.txt", "/tmp/serve.txt") in [
        (copy_sources(a)[1][0], shlex.split(a)[-1]) for a in RUNTIME.arguments("COPY")
    ]
    for word in ("tensorflow", "keras", "[train]", "gcc", "build-essential", "apt-get"):
        assert word not in installs
    assert LOCK_FILE.exists()


def test_the_runtime_stage_runs_as_a_non_root_user() -> None:
    (user,) = RUNTIME.arguments("USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) >= 1000


def test_the_runtime_stage_listens_on_all_interfaces_of_port_8000_only_in_the_container(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from_env(RUNTIME.env(), monkeypatch)
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)
    assert RUNTIME.arguments("EXPOSE") == ["8000"]
    assert Settings.model_fields["host"].default == "127.0.0.1"  # outside the container


def test_the_runtime_stage_serves_the_model_directory_it_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from_env(RUNTIME.env(), monkeypatch)
    copied = {shlex.split(a)[-1].rstrip("/") for a in RUNTIME.arguments("COPY")}
    assert str(settings.model_dir) in copied


def test_the_runtime_stage_starts_the_service_and_checks_its_health_without_curl() -> None:
    assert RUNTIME.arguments("CMD") == ['["multilabel-serve"]']
    (healthcheck,) = RUNTIME.arguments("HEALTHCHECK")
    assert healthcheck_command(healthcheck)[:2] == ["python", "-c"]  # run: test_runtime_image
