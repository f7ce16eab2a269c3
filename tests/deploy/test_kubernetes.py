"""deploy/k8s: every object valid under the Kubernetes schemas that kubernetes-validate bundles
(strict: unknown fields fail), and the objects consistent with each other, the image and the
service they run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.deploy.manifests import K8S_DIR, dockerfile_stages, load_documents, manifests
from tests.deploy.manifests import settings_from_env as settings_from

# The oldest Kubernetes release still commonly run, and the newest the package knows.
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.latest_version()]
OBJECTS = manifests(K8S_DIR)
DEPLOYMENT = OBJECTS["Deployment"]
POD = DEPLOYMENT["spec"]["template"]
(CONTAINER,) = POD["spec"]["containers"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", sorted(K8S_DIR.glob("*.yaml")), ids=lambda path: path.name)
def test_each_manifest_is_valid_under_the_kubernetes_schemas(path: Path, version: str) -> None:
    for document in load_documents(path):
        kubernetes_validate.validate(document, version, strict=True)


def test_the_schema_check_rejects_a_misspelt_field() -> None:
    broken = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_manifests_hold_the_objects_a_deployment_needs() -> None:
    expected = {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"}
    assert expected <= set(OBJECTS)


def test_the_configmap_holds_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(OBJECTS["ConfigMap"]["data"], monkeypatch)
    assert settings.host == "0.0.0.0"
    assert CONTAINER["envFrom"] == [
        {"configMapRef": {"name": OBJECTS["ConfigMap"]["metadata"]["name"]}}
    ]


def test_the_container_port_is_the_configured_port(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(OBJECTS["ConfigMap"]["data"], monkeypatch)
    assert CONTAINER["ports"] == [
        {"name": "http", "containerPort": settings.port, "protocol": "TCP"},
        {"name": "grpc", "containerPort": settings.grpc_port, "protocol": "TCP"},
    ]
    assert CONTAINER["startupProbe"]["grpc"]["port"] == settings.grpc_port
    service_ports = {
        port["name"]: port["targetPort"] for port in OBJECTS["Service"]["spec"]["ports"]
    }
    assert service_ports == {"http": "http", "grpc": "grpc"}


@pytest.mark.parametrize(
    ("probe", "path", "status_without_model"),
    [("readinessProbe", "/health/ready", 503), ("livenessProbe", "/health/live", 200)],
)
def test_probes_ask_the_service_whether_it_is_ready_and_alive(
    probe: str, path: str, status_without_model: int, client: TestClient, tmp_path: Path
) -> None:
    assert CONTAINER[probe]["httpGet"] == {"path": path, "port": "http"}
    assert client.get(path).status_code == 200
    with TestClient(create_app(Settings(model_dir=tmp_path, poll_interval=0))) as empty:
        assert empty.get(path).status_code == status_without_model


def test_in_flight_requests_finish_before_the_pod_is_killed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from(OBJECTS["ConfigMap"]["data"], monkeypatch)
    pause = int(CONTAINER["lifecycle"]["preStop"]["exec"]["command"][1])
    assert POD["spec"]["terminationGracePeriodSeconds"] > pause + settings.graceful_timeout


def test_the_pod_runs_as_the_images_non_root_user() -> None:
    (user,) = dockerfile_stages()[-1].arguments("USER")
    security = POD["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert str(security["runAsUser"]) == user.split(":")[0]
    container = CONTAINER["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"]["drop"] == ["ALL"]


def test_a_read_only_root_still_has_a_writable_tmp_for_worker_metrics() -> None:
    mounts = {mount["mountPath"]: mount["name"] for mount in CONTAINER["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in POD["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_container_requests_and_limits_cpu_and_memory() -> None:
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(CONTAINER["resources"][kind])


def test_the_service_and_budget_select_the_deployments_pods() -> None:
    labels = POD["metadata"]["labels"]
    assert DEPLOYMENT["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert OBJECTS["Service"]["spec"]["selector"].items() <= labels.items()
    assert OBJECTS["Service"]["spec"]["ports"][0]["targetPort"] == CONTAINER["ports"][0]["name"]
    if "PodDisruptionBudget" in OBJECTS:
        selector = OBJECTS["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()


def test_the_autoscaler_scales_the_deployment_on_cpu() -> None:
    spec: dict[str, Any] = OBJECTS["HorizontalPodAutoscaler"]["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": DEPLOYMENT["metadata"]["name"],
    }
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert spec["minReplicas"] <= DEPLOYMENT["spec"]["replicas"] <= spec["maxReplicas"]
