"""The Open Inference Protocol (V2) routes, on the real app and a really trained model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.routes.v2_schemas import InferenceResponse
from tests.app.routes.standard_protocols import (
    assert_error_object,
    serving,
    serving_two_versions,
)
from tests.support import MODEL_NAME, REFERENCE_INPUTS

LABELS = ["label_0", "label_1", "label_2"]
ROW = REFERENCE_INPUTS[0]
INFER = f"/v2/models/{MODEL_NAME}/infer"
ROWS = np.random.default_rng(3).integers(0, 15, size=(40, 10)).tolist()


def tensor(
    rows: list[list[Any]], datatype: str = "FP32", *, nested: bool = False
) -> dict[str, Any]:
    data = rows if nested else [value for row in rows for value in row]
    return {"name": "features", "shape": [len(rows), 10], "datatype": datatype, "data": data}


OK_BODY = {"inputs": [tensor([ROW])]}


def infer(client: TestClient, body: dict[str, Any], path: str = INFER) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def outputs_of(result: dict[str, Any]) -> dict[str, np.ndarray]:
    """Each output's data as an array of its declared shape."""
    return {
        output["name"]: np.asarray(output["data"]).reshape(output["shape"])
        for output in result["outputs"]
    }


def native(client: TestClient, rows: list[list[Any]], threshold: Any = None) -> dict[str, Any]:
    """Probabilities (float32) and decisions of the native API for the same rows."""
    body: dict[str, Any] = {"instances": rows}
    if threshold is not None:
        body["threshold"] = threshold
    predictions = client.post("/predict", json=body).json()["predictions"]
    return {
        "probabilities": np.asarray(
            [[row["probabilities"][label] for label in LABELS] for row in predictions],
            dtype=np.float32,
        ),
        "labels": np.asarray([row["vector"] for row in predictions], dtype=bool),
    }


def test_server_is_live_and_ready(client: TestClient) -> None:
    live = client.get("/v2/health/live")
    ready = client.get("/v2/health/ready")
    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


@pytest.mark.parametrize("path", ["/v2", "/v2/"])
def test_server_metadata_names_the_server_and_no_extensions(client: TestClient, path: str) -> None:
    body = client.get(path).json()
    assert body == {"name": "multilabel-service", "version": client.app.version, "extensions": []}


@pytest.mark.parametrize(
    "path", [f"/v2/models/{MODEL_NAME}", f"/v2/models/{MODEL_NAME}/versions/1"]
)
def test_model_metadata_describes_the_input_and_both_outputs(client: TestClient, path: str) -> None:
    thresholds = client.get("/metadata").json()["thresholds"]
    body = client.get(path).json()
    assert body == {
        "name": MODEL_NAME,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 10]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "labels", "datatype": "BOOL", "shape": [-1, 3]},
        ],
        "properties": {
            "features": ",".join(f"x{i}" for i in range(10)),
            "labels": ",".join(LABELS),
            "thresholds": ",".join(str(thresholds[label]) for label in LABELS),
        },
    }


@pytest.mark.parametrize(
    "path", [f"/v2/models/{MODEL_NAME}/ready", f"/v2/models/{MODEL_NAME}/versions/1/ready"]
)
def test_model_is_ready(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.json()) == (200, {"name": MODEL_NAME, "ready": True})


def test_inference_gives_the_native_apis_probabilities_and_labels(client: TestClient) -> None:
    result = infer(client, {"id": "batch-7", "inputs": [tensor(ROWS)]})
    assert result["model_name"] == MODEL_NAME
    assert result["model_version"] == "1"
    assert result["id"] == "batch-7"
    assert [(o["name"], o["datatype"], o["shape"]) for o in result["outputs"]] == [
        ("probabilities", "FP32", [40, 3]),
        ("labels", "BOOL", [40, 3]),
    ]
    outputs = outputs_of(result)
    expected = native(client, ROWS)
    np.testing.assert_array_equal(
        outputs["probabilities"].astype(np.float32), expected["probabilities"]
    )
    np.testing.assert_array_equal(outputs["labels"], expected["labels"])


def test_reference_input_turns_labels_0_and_1_on_and_2_off(client: TestClient) -> None:
    labels = outputs_of(infer(client, {"inputs": [tensor([ROW])]}))["labels"]
    assert labels.tolist() == [[True, True, False]]


def test_response_has_no_id_when_the_request_had_none(client: TestClient) -> None:
    assert "id" not in infer(client, {"inputs": [tensor([ROW])]})


@pytest.mark.parametrize(
    "variant",
    [
        tensor(ROWS, nested=True),
        tensor(ROWS, "FP64"),
        tensor(ROWS, "FP16"),
        tensor(ROWS, "INT64"),
        tensor(ROWS, "INT32", nested=True),
        tensor(ROWS, "UINT8"),
        tensor([[float(v) for v in row] for row in ROWS], "INT16"),
    ],
    ids=["nested", "FP64", "FP16", "INT64", "INT32 nested", "UINT8", "INT16 whole floats"],
)
def test_every_numeric_datatype_and_layout_gives_the_same_answer(
    client: TestClient, variant: dict[str, Any]
) -> None:
    assert infer(client, {"inputs": [variant]}) == infer(client, {"inputs": [tensor(ROWS)]})


@pytest.mark.parametrize(
    "names", [["probabilities"], ["labels"], ["labels", "probabilities"]], ids=str
)
def test_requested_outputs_come_back_alone_and_in_request_order(
    client: TestClient, names: list[str]
) -> None:
    everything = outputs_of(infer(client, {"inputs": [tensor(ROWS)]}))
    result = infer(client, {"inputs": [tensor(ROWS)], "outputs": [{"name": n} for n in names]})
    assert [output["name"] for output in result["outputs"]] == names
    for name, data in outputs_of(result).items():
        np.testing.assert_array_equal(data, everything[name])


def test_outputs_requested_as_json_are_served(client: TestClient) -> None:
    """What tritonclient sends for InferRequestedOutput(name, binary_data=False)."""
    body = {
        "inputs": [{**tensor([ROW]), "parameters": {}}],
        "outputs": [{"name": "labels", "parameters": {"binary_data": False}}],
        "parameters": {"binary_data_output": False},
    }
    assert outputs_of(infer(client, body))["labels"].tolist() == [[True, True, False]]


@pytest.mark.parametrize(
    "threshold",
    [0.0, 1.0, 0.3, {"label_2": 0.001}, {"label_0": 1, "label_1": 0.99}],
    ids=str,
)
def test_threshold_parameter_decides_the_labels_as_the_native_api_does(
    client: TestClient, threshold: Any
) -> None:
    result = infer(client, {"inputs": [tensor(ROWS)], "parameters": {"threshold": threshold}})
    labels = outputs_of(result)["labels"]
    np.testing.assert_array_equal(labels, native(client, ROWS, threshold)["labels"])


def test_unknown_parameters_are_ignored(client: TestClient) -> None:
    body = {"inputs": [tensor([ROW])], "parameters": {"priority": 1, "tag": "x"}}
    assert infer(client, body)["outputs"] == infer(client, {"inputs": [tensor([ROW])]})["outputs"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "application/x-www-form-urlencoded"}, {"content-type": "text/plain"}],
    ids=["none (tritonclient)", "form-encoded (curl -d)", "text/plain"],
)
def test_body_is_read_as_json_whatever_its_content_type(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post(INFER, content=json.dumps(OK_BODY).encode(), headers=headers)
    assert response.status_code == 200, response.text


@pytest.fixture
def two_versions_client(repository: Path) -> Iterator[TestClient]:
    with serving_two_versions(repository) as client:
        yield client


def test_a_version_in_the_path_selects_it_and_the_newest_is_the_default(
    two_versions_client: TestClient,
) -> None:
    client = two_versions_client
    body = {"inputs": [tensor([ROW])]}
    assert infer(client, body)["model_version"] == "2"
    assert infer(client, body, f"/v2/models/{MODEL_NAME}/versions/1/infer")["model_version"] == "1"
    assert client.get(f"/v2/models/{MODEL_NAME}").json()["versions"] == ["1", "2"]
    assert client.get(f"/v2/models/{MODEL_NAME}/versions/1/ready").status_code == 200


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[TestClient]:
    with serving(tmp_path) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/health/live", 200),
        ("GET", "/v2", 200),
        ("GET", "/v2/health/ready", 503),
        ("GET", f"/v2/models/{MODEL_NAME}/ready", 503),
        ("GET", f"/v2/models/{MODEL_NAME}", 503),
        ("POST", INFER, 503),
        ("GET", "/v2/models/other/ready", 404),
    ],
)
def test_without_a_model_the_server_is_live_but_not_ready(
    empty_client: TestClient, method: str, path: str, status: int
) -> None:
    response = empty_client.request(method, path, json={"inputs": [tensor([ROW])]})
    assert response.status_code == status, response.text
    if status == 503 and path != "/v2/health/ready":
        assert "not ready" in response.json()["error"]


def test_not_ready_server_says_ready_false(empty_client: TestClient) -> None:
    assert empty_client.get("/v2/health/ready").json() == {"ready": False}


def with_value(index: int, value: Any, datatype: str = "FP32") -> dict[str, Any]:
    row = list(ROW)
    row[index] = value
    return {"inputs": [tensor([ROW, row], datatype)]}


def with_input(**changes: Any) -> dict[str, Any]:
    return {"inputs": [{**tensor([ROW]), **changes}]}


def without(field: str) -> dict[str, Any]:
    return {"inputs": [{k: v for k, v in tensor([ROW]).items() if k != field}]}


VERSIONED_INFER = f"/v2/models/{MODEL_NAME}/versions/{{}}/infer"
BINARY = "binary tensor data extension is not supported"

ERRORS: list[tuple[str, str, str, Any, int, str]] = [
    # (case, method, path, JSON body, status, fragment of the error message)
    ("unknown model metadata", "GET", "/v2/models/other", None, 404, "'other' is not served"),
    (
        "unknown version metadata",
        "GET",
        f"/v2/models/{MODEL_NAME}/versions/9",
        None,
        404,
        "version 9",
    ),
    (
        "non-numeric version metadata",
        "GET",
        f"/v2/models/{MODEL_NAME}/versions/latest",
        None,
        404,
        "'latest'",
    ),
    ("unknown model ready", "GET", "/v2/models/other/ready", None, 404, "'other'"),
    (
        "unknown version ready",
        "GET",
        f"/v2/models/{MODEL_NAME}/versions/2/ready",
        None,
        404,
        "version 2",
    ),
    ("unknown model infer", "POST", "/v2/models/other/infer", OK_BODY, 404, "'other'"),
    ("unknown version infer", "POST", VERSIONED_INFER.format(3), OK_BODY, 404, "version 3"),
    ("negative version", "POST", VERSIONED_INFER.format(-1), OK_BODY, 404, "'-1'"),
    ("decimal version", "POST", VERSIONED_INFER.format("1.0"), OK_BODY, 404, "'1.0'"),
    ("version with letters", "POST", VERSIONED_INFER.format("v1"), OK_BODY, 404, "'v1'"),
    ("path traversal as name", "GET", "/v2/models/..%2F..%2Fetc/ready", None, 404, ""),
    ("infer with GET", "GET", INFER, None, 405, "Method Not Allowed"),
    ("unknown path", "GET", "/v2/repository/index", None, 404, "Not Found"),
    ("body is a list", "POST", INFER, [tensor([ROW])], 400, "body must be a JSON object"),
    ("inputs missing", "POST", INFER, {"id": "1"}, 400, "inputs"),
    ("inputs not a list", "POST", INFER, {"inputs": tensor([ROW])}, 400, "inputs"),
    ("no input", "POST", INFER, {"inputs": []}, 400, "expected one input tensor"),
    ("two inputs", "POST", INFER, {"inputs": [tensor([ROW])] * 2}, 400, "got 2"),
    ("unknown input", "POST", INFER, with_input(name="input0"), 400, "unknown input 'input0'"),
    ("shape missing", "POST", INFER, without("shape"), 400, "inputs.0.shape"),
    ("datatype missing", "POST", INFER, without("datatype"), 400, "inputs.0.datatype"),
    ("data missing", "POST", INFER, without("data"), 400, "inputs.0.data"),
    ("id not a string", "POST", INFER, {**OK_BODY, "id": 42}, 400, "id"),
    ("BYTES datatype", "POST", INFER, with_input(datatype="BYTES"), 400, "BYTES is not supported"),
    ("BOOL datatype", "POST", INFER, with_input(datatype="BOOL"), 400, "BOOL is not supported"),
    ("shape too narrow", "POST", INFER, with_input(shape=[2, 5]), 400, "shape must be [rows, 10]"),
    ("shape one-dimensional", "POST", INFER, with_input(shape=[10]), 400, "shape must be"),
    ("shape of strings", "POST", INFER, with_input(shape=["1", "10"]), 400, "shape must be"),
    ("shape disagrees with data", "POST", INFER, with_input(shape=[2, 10]), 400, "needs 20"),
    (
        "nested rows disagree with shape",
        "POST",
        INFER,
        {"inputs": [{**tensor([ROW, ROW], nested=True), "shape": [3, 10]}]},
        400,
        "2 rows",
    ),
    ("zero rows", "POST", INFER, with_input(shape=[0, 10], data=[]), 400, "no rows"),
    ("data not a list", "POST", INFER, with_input(data="1,2,3"), 400, "data must be a list"),
    ("string value", "POST", INFER, with_value(3, "7"), 400, "row 1, feature x3"),
    ("boolean value", "POST", INFER, with_value(7, True), 400, "row 1, feature x7"),
    ("null value", "POST", INFER, with_value(0, None), 400, "row 1, feature x0"),
    ("beyond float32", "POST", INFER, with_value(6, 1e39), 400, "row 1, feature x6"),
    (
        "fraction in an integer tensor",
        "POST",
        INFER,
        with_value(2, 2.5, "INT32"),
        400,
        "row 1, feature x2",
    ),
    (
        "unknown output",
        "POST",
        INFER,
        {**OK_BODY, "outputs": [{"name": "scores"}]},
        400,
        "unknown output 'scores'",
    ),
    (
        "threshold above 1",
        "POST",
        INFER,
        {**OK_BODY, "parameters": {"threshold": 1.5}},
        400,
        "threshold",
    ),
    (
        "threshold unknown label",
        "POST",
        INFER,
        {**OK_BODY, "parameters": {"threshold": {"x": 0.5}}},
        400,
        "unknown label 'x'",
    ),
    (
        "binary outputs for all",
        "POST",
        INFER,
        {**OK_BODY, "parameters": {"binary_data_output": True}},
        400,
        BINARY,
    ),
    (
        "binary output",
        "POST",
        INFER,
        {**OK_BODY, "outputs": [{"name": "labels", "parameters": {"binary_data": True}}]},
        400,
        BINARY,
    ),
    ("binary input", "POST", INFER, with_input(parameters={"binary_data_size": 40}), 400, BINARY),
    (
        "shared memory input",
        "POST",
        INFER,
        with_input(parameters={"shared_memory_region": "r"}),
        400,
        "shared memory extension",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_errors_get_the_protocols_status_and_error_object(
    client: TestClient, method: str, path: str, body: Any, status: int, fragment: str
) -> None:
    assert_error_object(client.request(method, path, json=body), status, fragment)


RAW_BODIES: list[tuple[str, bytes, dict[str, str], int, str]] = [
    # (case, raw body, headers, status, fragment of the error message)
    ("truncated JSON", b'{"inputs": [', {}, 400, "not valid JSON"),
    ("empty body", b"", {}, 400, "not valid JSON"),
    (
        "NaN literal",
        b'{"inputs": [{"name": "features", "data": [NaN]}]}',
        {},
        400,
        "not valid JSON",
    ),
    (
        "tritonclient binary request",
        b'{"inputs":[{"name":"features","shape":[1,10],"datatype":"FP32","parameters":{"binary_data_size":40}}]}'
        + bytes(40),
        {"Inference-Header-Content-Length": "103"},
        400,
        BINARY,
    ),
]


@pytest.mark.parametrize(
    ("content", "headers", "status", "fragment"),
    [case[1:] for case in RAW_BODIES],
    ids=[case[0] for case in RAW_BODIES],
)
def test_unreadable_bodies_get_a_400_error_object(
    client: TestClient, content: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    response = client.post(INFER, content=content, headers=headers)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


@pytest.fixture
def limited_client(trained_repository: Path) -> Iterator[TestClient]:
    with serving(trained_repository, max_rows=5, max_body_bytes=2048) as client:
        yield client


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"inputs": [tensor([ROW] * 6)]}, "6 rows"),
        ({"inputs": [tensor([ROW] * 5)], "id": "x" * 3000}, "bytes"),
    ],
    ids=["too many rows", "body too large"],
)
def test_requests_over_the_limits_get_413(
    limited_client: TestClient, body: dict[str, Any], fragment: str
) -> None:
    response = limited_client.post(INFER, json=body)
    assert response.status_code == 413
    assert fragment in response.json()["error"]


def test_documented_request_examples_are_served_as_documented(client: TestClient) -> None:
    operation = client.app.openapi()["paths"]["/v2/models/{name}/infer"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["schema"]["examples"]
    documented = InferenceResponse.model_json_schema()["examples"][0]
    assert len(examples) == 2
    for example in examples:
        result = infer(client, example)
        assert set(result) <= set(documented)
        assert [output.keys() for output in result["outputs"]] == [
            documented["outputs"][0].keys()
        ] * len(result["outputs"])
