"""docker-compose.yml: valid under the Compose Specification's JSON schema (kept as test data in
tests/deploy/schemas, origin in its README), and consistent with the Dockerfile and settings."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.manifests import (
    COMPOSE_FILE,
    DOCKERFILE,
    dockerfile_stages,
    load_documents,
    settings_from_env,
)

SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
(COMPOSE,) = load_documents(COMPOSE_FILE)
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_the_compose_file_is_valid_under_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = [error.message for error in validator_class(schema).iter_errors(COMPOSE)]
    assert errors == []


@pytest.mark.parametrize(
    "service",
    [
        {"image": "x", "restart_policy": "always"},
        {"image": "x", "depends_on": {"trainer": {"condition": "finished"}}},
        {"image": "x", "healthcheck": {"test": ["CMD", "true"], "intervall": "5s"}},
        {"image": "x", "deploy": {"resources": {"limits": {"cpu": "2"}}}},
    ],
    ids=["misspelt-key", "unknown-condition", "misspelt-healthcheck-key", "misspelt-limit"],
)
def test_the_schema_check_rejects_a_broken_service(service: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = {"services": {"trainer": {"image": "y"}, "api": service}}
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


@pytest.mark.parametrize(("service", "target"), [("trainer", "trainer"), ("api", "runtime")])
def test_each_service_builds_a_stage_of_the_dockerfile(service: str, target: str) -> None:
    assert SERVICES[service]["build"] == {
        "context": ".",
        "target": target,
        # Without a value: taken from the environment when set, else the Dockerfile's default.
        "args": ["PYTHON_IMAGE"],
    }
    assert target in [stage.name for stage in dockerfile_stages()]
    assert "ARG PYTHON_IMAGE=" in DOCKERFILE.read_text()


def test_the_api_starts_only_after_the_trainer_completed_successfully() -> None:
    assert SERVICES["api"]["depends_on"] == {
        "trainer": {"condition": "service_completed_successfully"}
    }
    assert SERVICES["trainer"]["restart"] == "no"  # one-shot


def test_the_trainer_writes_where_the_api_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(SERVICES["api"]["environment"], monkeypatch)
    command = SERVICES["trainer"]["command"]
    assert command[:3] == ["python", "-m", "training.train"]
    output = command[command.index("--output") + 1]
    assert f"models:{output}" in SERVICES["trainer"]["volumes"]
    assert f"models:{settings.model_dir}:ro" in SERVICES["api"]["volumes"]
    assert "models" in COMPOSE["volumes"]


def test_the_api_publishes_its_port_on_the_loopback_interface_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the host ports ``API_HOST_PORT`` and ``GRPC_HOST_PORT`` name (compose's
    ``${VAR:-default}``), 8000 and 8001 unset."""
    settings = settings_from_env(SERVICES["api"]["environment"], monkeypatch)
    published = SERVICES["api"]["ports"]
    assert published == [
        f"127.0.0.1:${{{variable}:-{port}}}:{port}"
        for variable, port in (
            ("API_HOST_PORT", settings.port),
            ("GRPC_HOST_PORT", settings.grpc_port),
        )
    ]
    deployment = (COMPOSE_FILE.parent / "docs" / "deployment.md").read_text()
    assert "API_HOST_PORT" in deployment
    assert "GRPC_HOST_PORT" in deployment


def test_the_api_uses_the_images_own_healthcheck() -> None:
    """No command of its own (it would have to repeat the port): the image's HEALTHCHECK reads
    MULTILABEL_PORT (tests/deploy/test_runtime_image.py runs it; container-test.sh in Docker)."""
    healthcheck = SERVICES["api"]["healthcheck"]
    assert "test" not in healthcheck
    assert healthcheck.get("disable") is not True
    assert dockerfile_stages()[-1].arguments("HEALTHCHECK")


def test_the_api_restarts_and_has_resource_limits() -> None:
    api = SERVICES["api"]
    assert api["restart"] == "unless-stopped"
    limits = api["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0
    assert re.fullmatch(r"\d+[kmg]", limits["memory"])


def test_in_flight_requests_get_their_grace_period_before_the_kill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from_env(SERVICES["api"]["environment"], monkeypatch)
    grace = int(SERVICES["api"]["stop_grace_period"].removesuffix("s"))
    assert grace > settings.graceful_timeout


def test_the_api_runs_several_workers_in_one_container(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(SERVICES["api"]["environment"], monkeypatch)
    assert settings.workers == int(float(SERVICES["api"]["deploy"]["resources"]["limits"]["cpus"]))


def test_the_trainer_command_is_a_valid_training_command_line() -> None:
    from training.train import build_parser

    arguments = build_parser().parse_args(shlex.split(" ".join(SERVICES["trainer"]["command"][3:])))
    assert arguments.if_missing
    assert str(arguments.output) == "/models"
