"""deploy/kserve-grpc: the InferenceService serving our image over gRPC (an ``h2c`` port), and
both InferenceServices against KServe's own CustomResourceDefinition (its v1beta1 schema,
vendored in tests/deploy/schemas/ from the team's copy of the CRD: see the README there)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from fastapi.testclient import TestClient

from app.codecs.grpc import SERVICE
from tests.app.codecs.grpc_calls import grpc_app
from tests.deploy.manifests import KSERVE_DIR, manifests, settings_from_env
from tests.deploy.test_kserve import PREDICTOR as REST_PREDICTOR
from tests.deploy.test_kserve import validate_predictor
from tests.deploy.test_kubernetes import KUBERNETES_VERSIONS
from tests.support import REPO_ROOT

CRD = REPO_ROOT.parent / "shared" / "specs" / "kserve_inferenceservices_crd.yaml"
CRD_SHA256 = "57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff"
CRD_SCHEMA = (
    REPO_ROOT / "tests" / "deploy" / "schemas" / "kserve_inferenceservice_v1beta1.schema.json"
)
GRPC_DIR = REPO_ROOT / "deploy" / "kserve-grpc"
(INFERENCE_SERVICE,) = manifests(GRPC_DIR).values()
PREDICTOR: dict[str, Any] = INFERENCE_SERVICE["spec"]["predictor"]
(CONTAINER,) = PREDICTOR["containers"]


def schema_in_crd(crd_yaml: bytes) -> dict[str, Any]:
    """The v1beta1 openAPIV3Schema of KServe's InferenceService CRD."""
    crd = yaml.load(crd_yaml, Loader=yaml.CSafeLoader)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def as_vendored(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n"


@pytest.fixture(scope="module")
def crd_validator() -> jsonschema.protocols.Validator:
    """A validator for the vendored schema, made once: ``jsonschema.validate`` would check the
    schema itself again on every call (20 s for this one)."""
    schema = json.loads(CRD_SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def test_the_vendored_schema_is_the_crds_own() -> None:
    if not CRD.exists():  # a checkout without the team's specs beside it: nothing to compare
        assert CRD_SCHEMA.stat().st_size > 0
        return
    crd_yaml = CRD.read_bytes()
    assert hashlib.sha256(crd_yaml).hexdigest() == CRD_SHA256
    assert CRD_SCHEMA.read_text() == as_vendored(schema_in_crd(crd_yaml))


@pytest.mark.parametrize("directory", [KSERVE_DIR, GRPC_DIR], ids=["rest", "grpc"])
def test_each_inference_service_fits_kserves_crd(
    crd_validator: jsonschema.protocols.Validator, directory: Path
) -> None:
    (inference_service,) = manifests(directory).values()
    crd_validator.validate(inference_service)


def test_the_crd_check_rejects_a_misspelt_field(
    crd_validator: jsonschema.protocols.Validator,
) -> None:
    broken = {**INFERENCE_SERVICE, "spec": {"predictor": {**PREDICTOR, "minReplicas": "one"}}}
    with pytest.raises(jsonschema.ValidationError):
        crd_validator.validate(broken)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_grpc_predictor_is_valid(version: str) -> None:
    validate_predictor(PREDICTOR, version)


def test_its_one_port_is_the_grpc_port_named_h2c(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {item["name"]: item["value"] for item in CONTAINER["env"]}
    settings = settings_from_env(env, monkeypatch)
    assert CONTAINER["ports"] == [
        {"name": "h2c", "containerPort": settings.grpc_port, "protocol": "TCP"}
    ]
    assert CONTAINER["image"] == REST_PREDICTOR["containers"][0]["image"]
    assert settings.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("probe", "ready_without_model"), [("readinessProbe", False), ("livenessProbe", True)]
)
def test_its_probes_are_grpc_health_checks_the_service_answers(
    trained_repository: Path, tmp_path: Path, probe: str, ready_without_model: bool
) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    check = CONTAINER[probe]["grpc"]
    assert check["port"] == CONTAINER["ports"][0]["containerPort"]
    service = check.get("service", "")
    assert service in ("", SERVICE)
    serving = health_pb2.HealthCheckResponse.SERVING
    request = health_pb2.HealthCheckRequest(service=service)
    with grpc_app(trained_repository) as served:
        assert health_pb2_grpc.HealthStub(served.channel).Check(request).status == serving
    with grpc_app(tmp_path) as empty:
        status = health_pb2_grpc.HealthStub(empty.channel).Check(request).status
        assert (status == serving) is ready_without_model


def test_the_rest_inference_service_is_unchanged_by_grpc(client: TestClient) -> None:
    assert [port["containerPort"] for port in REST_PREDICTOR["containers"][0]["ports"]] == [8000]


if __name__ == "__main__":
    CRD_SCHEMA.write_text(as_vendored(schema_in_crd(CRD.read_bytes())))
