"""deploy/kserve: the InferenceService running our image as a custom V2 predictor.

KServe's CRD schema is not available offline, so the predictor is validated in its two parts:
its pod fields against the Kubernetes ``PodSpec`` schema that kubernetes-validate bundles
(strict), and its KServe fields against the types of KServe's SDK (v0.21,
``V1beta1ComponentExtensionSpec``), written out below. The rest is checked against the service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.deploy.manifests import K8S_DIR, KSERVE_DIR, manifests, settings_from_env
from tests.deploy.test_kubernetes import KUBERNETES_VERSIONS
from tests.support import REFERENCE_INPUTS

(INFERENCE_SERVICE,) = manifests(KSERVE_DIR).values()
PREDICTOR: dict[str, Any] = INFERENCE_SERVICE["spec"]["predictor"]
_INTEGER = {"type": "integer", "minimum": 0}
# KServe's ComponentExtensionSpec: the fields a predictor has besides those of a PodSpec.
COMPONENT_EXTENSION_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "minReplicas": _INTEGER,
        "maxReplicas": _INTEGER,
        "scaleTarget": _INTEGER,
        "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
        "scaleMetricType": {"enum": ["Utilization", "AverageValue", "Value"]},
        "containerConcurrency": _INTEGER,
        "timeout": _INTEGER,
        "canaryTrafficPercent": {"type": "integer", "minimum": 0, "maximum": 100},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "logger": {"type": "object"},
        "batcher": {"type": "object"},
        "autoScaling": {"type": "object"},
        "deploymentStrategy": {"type": "object"},
    },
}
EXTENSION_FIELDS = frozenset(COMPONENT_EXTENSION_SCHEMA["properties"])  # type: ignore[arg-type]


def validate_predictor(predictor: dict[str, Any], kubernetes_version: str) -> None:
    """Its KServe fields against KServe's types, the rest as a strict Kubernetes PodSpec."""
    extension = {k: v for k, v in predictor.items() if k in EXTENSION_FIELDS}
    pod = {k: v for k, v in predictor.items() if k not in EXTENSION_FIELDS}
    jsonschema.validate(extension, COMPONENT_EXTENSION_SCHEMA)
    as_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": pod}
    kubernetes_validate.validate(as_pod, kubernetes_version, strict=True)


def test_the_resource_is_a_kserve_v1beta1_inference_service() -> None:
    assert INFERENCE_SERVICE["apiVersion"] == "serving.kserve.io/v1beta1"
    assert INFERENCE_SERVICE["kind"] == "InferenceService"
    assert set(INFERENCE_SERVICE["spec"]) == {"predictor"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_predictor_is_valid(version: str) -> None:
    validate_predictor(PREDICTOR, version)


@pytest.mark.parametrize(
    "broken",
    [{"scaleMetric": "gpu"}, {"minReplica": 1}, {"containers": [{"name": "x", "imag": "y"}]}],
    ids=["unknown-metric", "misspelt-kserve-field", "misspelt-container-field"],
)
def test_the_predictor_check_rejects_broken_predictors(broken: dict[str, Any]) -> None:
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        validate_predictor({**PREDICTOR, **broken}, KUBERNETES_VERSIONS[0])


def test_the_predictor_scales_on_cpu_within_bounds() -> None:
    assert PREDICTOR["scaleMetric"] == "cpu"
    assert 1 <= PREDICTOR["minReplicas"] <= PREDICTOR["maxReplicas"]


def test_the_predictor_is_our_image_in_kserves_container(monkeypatch: pytest.MonkeyPatch) -> None:
    (container,) = PREDICTOR["containers"]
    assert container["name"] == "kserve-container"
    (deployment_container,) = manifests(K8S_DIR)["Deployment"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == deployment_container["image"]
    env = {item["name"]: item["value"] for item in container["env"]}
    settings = settings_from_env(env, monkeypatch)
    assert container["ports"] == [{"containerPort": settings.port, "protocol": "TCP"}]
    assert settings.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("probe", "status_without_model"), [("readinessProbe", 503), ("livenessProbe", 200)]
)
def test_probes_use_the_v2_health_endpoints(
    probe: str, status_without_model: int, client: TestClient, tmp_path: Path
) -> None:
    (container,) = PREDICTOR["containers"]
    path = container[probe]["httpGet"]["path"]
    assert path.startswith("/v2/health/")
    assert container[probe]["httpGet"]["port"] == container["ports"][0]["containerPort"]
    assert client.get(path).status_code == 200
    with TestClient(create_app(Settings(model_dir=tmp_path, poll_interval=0))) as empty:
        assert empty.get(path).status_code == status_without_model


def test_the_v2_inference_route_answers_for_the_served_model(client: TestClient) -> None:
    """What KServe's clients call: POST /v2/models/<name>/infer."""
    tensor = {"name": "features", "shape": [1, 10], "datatype": "FP32", "data": REFERENCE_INPUTS[0]}
    body = {"inputs": [tensor]}
    response = client.post("/v2/models/multilabel/infer", json=body)
    assert response.status_code == 200
    assert response.json()["model_name"] == "multilabel"
