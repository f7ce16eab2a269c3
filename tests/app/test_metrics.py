"""GET /metrics: the Prometheus metrics move as requests arrive, in one process and summed over
several worker processes (prometheus-client's multiprocess mode, with ``python -m app``)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.artifact import ONNX_FILE, version_path
from app.config import Settings
from app.main import create_app
from app.metrics import FLUSH_SECONDS
from tests.support import MODEL_NAME, REFERENCE_INPUTS, running_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
METRIC_FAMILIES = [
    "multilabel_http_requests",
    "multilabel_http_request_duration_seconds",
    "multilabel_predicted_rows",
    "multilabel_label_positives",
    "multilabel_out_of_range_warnings",
    "multilabel_model_events",
    "multilabel_model_info",
    "multilabel_overload_refusals",
]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(get: Callable[[str], httpx.Response]) -> Samples:
    response = get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_count(
    samples: Samples, route: str, status: str, method: str = "POST", protocol: str = "native"
) -> float:
    labels = {"protocol": protocol, "method": method, "route": route, "status": status}
    return value(samples, "multilabel_http_requests_total", **labels)


def test_metrics_expose_every_family_with_help(client: TestClient) -> None:
    text = client.get("/metrics").text
    for family in METRIC_FAMILIES:
        assert f"# HELP {family}" in text


@pytest.mark.parametrize(
    "instances",
    # Past SMALL_BATCH_ROWS the labels on are counted with numpy rather than in Python.
    [REFERENCE_INPUTS, [[value + shift for value in REFERENCE_INPUTS[0]] for shift in range(20)]],
    ids=["small-batch", "large-batch"],
)
def test_a_prediction_moves_the_request_row_and_label_metrics(
    client: TestClient, instances: list[list[float]]
) -> None:
    before = scrape(client.get)
    response = client.post("/predict", json={"instances": instances})
    assert response.status_code == 200
    after = scrape(client.get)

    assert requests_count(after, "/predict", "200") - requests_count(before, "/predict", "200") == 1
    histogram = "multilabel_http_request_duration_seconds_count"
    labels = {"protocol": "native", "method": "POST", "route": "/predict", "status": "200"}
    assert value(after, histogram, **labels) - value(before, histogram, **labels) == 1
    rows = ("multilabel_predicted_rows_total", {"model": MODEL_NAME, "version": "1"})
    assert value(after, rows[0], **rows[1]) - value(before, rows[0], **rows[1]) == len(instances)
    predictions = response.json()["predictions"]
    for index, label in enumerate(response.json()["thresholds"]):
        on = sum(row["vector"][index] for row in predictions)
        name, labels = "multilabel_label_positives_total", {"model": MODEL_NAME, "label": label}
        assert value(after, name, **labels) - value(before, name, **labels) == on


def test_values_outside_the_training_range_are_counted(client: TestClient) -> None:
    name, labels = "multilabel_out_of_range_warnings_total", {"model": MODEL_NAME}
    before = value(scrape(client.get), name, **labels)
    response = client.post("/predict", json={"instances": [[1000.0] * 10, REFERENCE_INPUTS[0]]})
    warnings = sum(len(row["warnings"]) for row in response.json()["predictions"])
    assert warnings == 10
    assert value(scrape(client.get), name, **labels) - before == warnings


@pytest.mark.parametrize(
    ("method", "path", "protocol", "route", "status"),
    [
        ("GET", "/health", "native", "/health", "200"),
        ("GET", "/v2/models/multilabel/ready", "v2", "/v2/models/{name}/ready", "200"),
        ("GET", "/v2/models/unknown/ready", "v2", "/v2/models/{name}/ready", "404"),
        ("GET", "/v1/models/multilabel", "tfserving", "/v1/models/{name}", "200"),
        ("POST", "/health", "native", "/health", "405"),
        ("GET", "/no/such/path/1234", "control", "unmatched", "404"),
        ("GET", "/metadata", "control", "/metadata", "200"),
        ("POST", "/predict", "native", "/predict", "400"),
        ("GET", "/predict", "native", "/predict", "405"),
        ("POST", "/v1/models/multilabel:predict", "tfserving", "/v1/models/{name}:predict", "400"),
        (
            "POST",
            "/v2/models/multilabel/versions/1/infer",
            "v2",
            "/v2/models/{name}/versions/{version}/infer",
            "400",
        ),
    ],
)
def test_requests_are_counted_by_protocol_and_route_template_not_by_raw_path(
    client: TestClient, method: str, path: str, protocol: str, route: str, status: str
) -> None:
    before = scrape(client.get)
    response = client.request(
        method, path, content=b"{", headers={"content-type": "application/json"}
    )
    assert str(response.status_code) == status
    after = scrape(client.get)
    count = requests_count(after, route, status, method, protocol) - requests_count(
        before, route, status, method, protocol
    )
    assert count == 1
    assert not any(path in dict(labels).values() for _, labels in after if path != route)


def test_the_model_load_is_counted_and_the_info_gauge_names_the_version(
    client: TestClient,
) -> None:
    samples = scrape(client.get)
    assert value(samples, "multilabel_model_events_total", model=MODEL_NAME, event="loaded") == 1
    assert value(samples, "multilabel_model_info", model=MODEL_NAME, version="1") == 1


def test_a_rejected_version_is_counted(repository: Path) -> None:
    corrupt = version_path(repository, MODEL_NAME, 1) / ONNX_FILE
    corrupt.write_bytes(corrupt.read_bytes() + b"tampered")
    settings = Settings(model_dir=repository, model_name=MODEL_NAME, poll_interval=0)
    with TestClient(create_app(settings)) as client:
        samples = scrape(client.get)
    assert value(samples, "multilabel_model_events_total", model=MODEL_NAME, event="rejected") == 1
    assert ("multilabel_model_info", frozenset({("model", MODEL_NAME), ("version", "1")})) not in (
        samples
    )


@pytest.fixture
def metrics_tmpdir(tmp_path: Path) -> Iterator[Path]:
    """The TMPDIR of a server process: where ``python -m app`` puts its metrics directory."""
    path = tmp_path / "tmp"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_count_every_request_of_every_worker_process(
    workers: int, trained_repository: Path, metrics_tmpdir: Path, tmp_path: Path
) -> None:
    env = {
        "MULTILABEL_MODEL_DIR": str(trained_repository),
        "MULTILABEL_WORKERS": str(workers),
        "MULTILABEL_POLL_INTERVAL": "0",
        "TMPDIR": str(metrics_tmpdir),
    }
    with running_server(env, tmp_path / "server.log") as server:
        url = server.base_url
        # Every worker loads the model once; their counts add up in any worker's answer.
        loaded = _wait_for(url, lambda samples: _loads(samples) == workers)
        assert _loads(loaded) == workers
        assert requests_count(loaded, "/predict", "200") == 0  # a fresh start counts from zero
        assert len(list(metrics_tmpdir.glob("multilabel-metrics-*"))) == (workers > 1)
        requests = 12
        for _ in range(requests):  # one connection each: the kernel spreads them over workers
            response = httpx.post(url + "/predict", json={"instances": REFERENCE_INPUTS})
            assert response.status_code == 200
        # Each worker adds its tallies to the shared counts at least every FLUSH_SECONDS (and
        # at once when it answers a scrape itself): once they are all in, whichever worker
        # answers reports all of them.
        _wait_for(
            url,
            lambda samples: requests_count(samples, "/predict", "200") == requests,
            timeout=FLUSH_SECONDS + 30,
        )
        for _ in range(4):
            samples = scrape(lambda path: httpx.get(url + path))
            assert requests_count(samples, "/predict", "200") == requests
            rows = value(samples, "multilabel_predicted_rows_total", model=MODEL_NAME, version="1")
            assert rows == requests * len(REFERENCE_INPUTS)
            assert value(samples, "multilabel_model_info", model=MODEL_NAME, version="1") == 1
    assert not list(metrics_tmpdir.glob("multilabel-metrics-*"))  # removed at exit


def _loads(samples: Samples) -> float:
    return value(samples, "multilabel_model_events_total", model=MODEL_NAME, event="loaded")


def _wait_for(url: str, condition: Callable[[Samples], bool], timeout: float = 30.0) -> Samples:
    """Scrape until ``condition(samples)`` holds (workers start one after the other)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = parse(httpx.get(url + "/metrics").text)
        if condition(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)
