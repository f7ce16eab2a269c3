"""The Dockerfile, read as far as a build would use it (scripts/container-test.sh builds and runs
it for real): what each stage copies exists and is in the build context, every install comes
from the lock, and the runtime stage is the slim, non-root, TensorFlow-free image that serves
the committed default model on 0.0.0.0:8000."""

from __future__ import annotations

import shlex
import tomllib

import pytest

from app.config import Settings
from tests.deploy.manifests import (
    DOCKERFILE,
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
        "models/multilabel/.staging-1234/model.onnx",
        "models/multilabel/.lock",
        "bench/results/run.json",
        ".git/HEAD",
        "app/__pycache__/main.cpython-311.pyc",
        "tests/conftest.py",
        "multilabel_service.egg-info",
    ],
)
def test_the_build_context_leaves_local_state_out(path: str) -> None:
    assert dockerignore_excludes(path, read_dockerignore())


@pytest.mark.parametrize("path", ["models/multilabel/1/model.onnx", "app/main.py"])
def test_the_build_context_holds_the_committed_model_and_the_code(path: str) -> None:
    assert not dockerignore_excludes(path, read_dockerignore())


def test_no_stage_fetches_a_frontend_from_a_registry() -> None:
    """A ``# syntax=`` line makes BuildKit pull its frontend image: offline builds fail."""
    assert not DOCKERFILE.read_text().lower().startswith("# syntax")


def test_no_stage_trains_both_serve_the_committed_model() -> None:
    for stage in STAGES:
        for run in stage.arguments("RUN"):
            words = shlex.split(run)
            assert "training.train" not in words, f"{stage.name} trains: {run}"
    assert ("models/", "/models/") in [
        (copy_sources(a)[1][0], shlex.split(a)[-1]) for a in _stage("model").arguments("COPY")
    ]
    for name in ("trainer", "runtime"):
        copies = [copy_sources(a) for a in _stage(name).arguments("COPY")]
        assert ("model", ["/models/"]) in copies


@pytest.mark.parametrize(("stage", "lock"), [("serving-env", "serve"), ("trainer", "train")])
def test_each_installing_stage_installs_its_locked_set_with_hashes_checked(
    stage: str, lock: str
) -> None:
    copied = [source for a in _stage(stage).arguments("COPY") for source in copy_sources(a)[1]]
    assert {"requirements/uv.txt", f"requirements/{lock}.txt"} <= set(copied)
    installs = [
        shlex.split(command)
        for run in _stage(stage).arguments("RUN")
        for command in run.split("&&")
        if " install " in command
    ]
    from_files = [words for words in installs if "--requirement" in words]
    assert {words[words.index("--requirement") + 1] for words in from_files} == {
        "/tmp/lock/uv.txt",
        f"/tmp/lock/{lock}.txt",
    }
    assert all("--require-hashes" in words for words in from_files)
    # Nothing beyond what the lock names: the project itself goes in without dependencies too.
    assert all("--no-deps" in words for words in installs)
    # Compiled once at install: where PYTHONDONTWRITEBYTECODE is set, every start would
    # compile the imported modules again (TensorFlow's, in the trainer).
    assert _stage(stage).env()["UV_COMPILE_BYTECODE"] == "1"


def test_the_runtime_stage_is_slim_python_3_11() -> None:
    assert RUNTIME.name == "runtime"
    assert RUNTIME.base.startswith("python:3.11-slim")
    assert {stage.base for stage in STAGES} == {RUNTIME.base}  # one base, one ARG to change it


def test_the_runtime_stage_holds_only_the_serving_environment_and_the_model() -> None:
    assert [
        run for run in RUNTIME.arguments("RUN") if "install" in run and "useradd" not in run
    ] == []
    copies = {copy_sources(a)[0] for a in RUNTIME.arguments("COPY")}
    assert copies == {"serving-env", "model"}
    serving_runs = " ".join(_stage("serving-env").arguments("RUN"))
    for word in ("tensorflow", "keras", "[train]", "train.txt", "gcc", "apt-get"):
        assert word not in serving_runs
    assert ("app/", "/src/app/") in [
        (copy_sources(a)[1][0], shlex.split(a)[-1]) for a in _stage("serving-env").arguments("COPY")
    ]
    assert "training/" not in [
        s for a in _stage("serving-env").arguments("COPY") for s in copy_sources(a)[1]
    ]


def test_the_one_console_script_is_the_service() -> None:
    """The runtime image installs the project without training/: a console script that runs
    training code would be installed there and fail (so training runs as python -m)."""
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"multilabel-serve": "app.__main__:main"}


def test_the_runtime_stage_runs_as_a_non_root_user() -> None:
    (user,) = RUNTIME.arguments("USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) >= 1000


def test_the_runtime_stage_listens_on_all_interfaces_of_ports_8000_and_8001_only_in_the_container(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from_env(RUNTIME.env(), monkeypatch)
    assert (settings.host, settings.port, settings.grpc_port) == ("0.0.0.0", 8000, 8001)
    assert RUNTIME.arguments("EXPOSE") == ["8000 8001"]
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
