"""The TensorFlow Serving REST routes, checked against the shapes of TF Serving's REST doc."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.routes.tfserving_schemas import TFServingPredictResponse
from tests.app.routes.standard_protocols import (
    assert_error_object,
    serving,
    serving_two_versions,
)
from tests.support import MODEL_NAME, REFERENCE_INPUTS

LABELS = ["label_0", "label_1", "label_2"]
ROW = REFERENCE_INPUTS[0]
ROWS = np.random.default_rng(5).integers(0, 15, size=(30, 10)).tolist()
PREDICT = f"/v1/models/{MODEL_NAME}:predict"
AVAILABLE = {"state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}


def predict(client: TestClient, body: Any, path: str = PREDICT) -> Any:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def native_predictions(client: TestClient, rows: list[list[Any]]) -> list[dict[str, Any]]:
    predictions: list[dict[str, Any]] = client.post("/predict", json={"instances": rows}).json()[
        "predictions"
    ]
    return predictions


def native_probabilities(client: TestClient, rows: list[list[Any]]) -> np.ndarray:
    return np.asarray(
        [
            [row["probabilities"][label] for label in LABELS]
            for row in native_predictions(client, rows)
        ],
        dtype=np.float32,
    )


def test_model_status_lists_the_loaded_version_as_available(client: TestClient) -> None:
    expected = {"model_version_status": [{"version": "1", **AVAILABLE}]}
    assert client.get(f"/v1/models/{MODEL_NAME}").json() == expected
    assert client.get(f"/v1/models/{MODEL_NAME}/versions/1").json() == expected


def dims(*sizes: int) -> dict[str, Any]:
    return {"dim": [{"size": str(size), "name": ""} for size in sizes], "unknown_rank": False}


def tensor_info(name: str, dtype: str, width: int) -> dict[str, Any]:
    return {"dtype": dtype, "tensor_shape": dims(-1, width), "name": name}


@pytest.mark.parametrize(
    "path", [f"/v1/models/{MODEL_NAME}/metadata", f"/v1/models/{MODEL_NAME}/versions/1/metadata"]
)
def test_metadata_describes_both_signatures_as_tf_serving_does(
    client: TestClient, path: str
) -> None:
    features = {"features": tensor_info("features", "DT_FLOAT", 10)}
    probabilities = {"probabilities": tensor_info("probabilities", "DT_FLOAT", 3)}
    labels = {"labels": tensor_info("labels", "DT_BOOL", 3)}
    method = "tensorflow/serving/predict"
    assert client.get(path).json() == {
        "model_spec": {"name": MODEL_NAME, "signature_name": "", "version": "1"},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    "serving_default": {
                        "inputs": features,
                        "outputs": probabilities,
                        "method_name": method,
                    },
                    "labels": {
                        "inputs": features,
                        "outputs": {**probabilities, **labels},
                        "method_name": method,
                    },
                }
            }
        },
    }


DEFAULT_SIGNATURE_REQUESTS: dict[str, tuple[dict[str, Any], str]] = {
    # case: (request, the response's one key)
    "rows as lists": ({"instances": ROWS}, "predictions"),
    "rows naming the input": ({"instances": [{"features": row} for row in ROWS]}, "predictions"),
    "explicit default signature": (
        {"instances": ROWS, "signature_name": "serving_default"},
        "predictions",
    ),
    "empty signature name": ({"instances": ROWS, "signature_name": ""}, "predictions"),
    "columns as a bare tensor": ({"inputs": ROWS}, "outputs"),
    "columns naming the input": ({"inputs": {"features": ROWS}}, "outputs"),
}


@pytest.mark.parametrize(
    ("body", "key"),
    DEFAULT_SIGNATURE_REQUESTS.values(),
    ids=DEFAULT_SIGNATURE_REQUESTS.keys(),
)
def test_one_output_is_answered_unnamed_as_a_list_of_probabilities_per_row(
    client: TestClient, body: dict[str, Any], key: str
) -> None:
    """Rows answer ``predictions``, columns ``outputs``; with one output tensor both omit its
    name and hold the probability tensor, one list per row."""
    result = predict(client, body)
    assert list(result) == [key]
    probabilities = np.asarray(result[key], dtype=np.float32)
    np.testing.assert_array_equal(probabilities, native_probabilities(client, ROWS))


def test_labels_signature_in_row_format_gives_an_object_per_row(client: TestClient) -> None:
    """Several output tensors: each prediction is an object keyed by output name."""
    result = predict(client, {"instances": ROWS, "signature_name": "labels"})
    assert list(result) == ["predictions"]
    assert all(list(row) == ["probabilities", "labels"] for row in result["predictions"])
    probabilities = np.asarray([row["probabilities"] for row in result["predictions"]])
    labels = np.asarray([row["labels"] for row in result["predictions"]])
    np.testing.assert_array_equal(
        probabilities.astype(np.float32), native_probabilities(client, ROWS)
    )
    assert labels.tolist() == [row["vector"] for row in native_predictions(client, ROWS)]
    assert labels.dtype == bool


def test_labels_signature_in_columnar_format_gives_an_object_of_tensors(
    client: TestClient,
) -> None:
    result = predict(client, {"inputs": {"features": ROWS}, "signature_name": "labels"})
    assert list(result) == ["outputs"]
    outputs = result["outputs"]
    assert list(outputs) == ["probabilities", "labels"]
    assert (
        np.asarray(outputs["probabilities"]).shape == np.asarray(outputs["labels"]).shape == (30, 3)
    )
    rows = predict(client, {"instances": ROWS, "signature_name": "labels"})["predictions"]
    assert outputs["labels"] == [row["labels"] for row in rows]
    assert outputs["probabilities"] == [row["probabilities"] for row in rows]


def test_reference_input_turns_labels_0_and_1_on_and_2_off(client: TestClient) -> None:
    body = {"instances": [ROW], "signature_name": "labels"}
    assert predict(client, body)["predictions"][0]["labels"] == [True, True, False]


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "application/x-www-form-urlencoded"}],
    ids=["none (requests.post(data=...))", "form-encoded (curl -d)"],
)
def test_body_is_read_as_json_whatever_its_content_type(
    client: TestClient, headers: dict[str, str]
) -> None:
    content = json.dumps({"instances": [ROW]}).encode()
    response = client.post(PREDICT, content=content, headers=headers)
    assert response.status_code == 200, response.text


@pytest.fixture
def two_versions_client(repository: Path) -> Iterator[TestClient]:
    with serving_two_versions(repository) as client:
        yield client


def test_status_lists_every_loaded_version_and_a_path_version_selects_one(
    two_versions_client: TestClient,
) -> None:
    client = two_versions_client
    status = client.get(f"/v1/models/{MODEL_NAME}").json()["model_version_status"]
    assert [entry["version"] for entry in status] == ["2", "1"]
    metadata = client.get(f"/v1/models/{MODEL_NAME}/metadata").json()
    assert metadata["model_spec"]["version"] == "2"
    versioned = client.get(f"/v1/models/{MODEL_NAME}/versions/1/metadata").json()
    assert versioned["model_spec"]["version"] == "1"
    body = {"instances": [ROW]}
    path = f"/v1/models/{MODEL_NAME}/versions/1:predict"
    assert predict(client, body, path) == predict(client, body)


def with_value(index: int, value: Any) -> list[Any]:
    row = list(ROW)
    row[index] = value
    return row


VERSIONED = f"/v1/models/{MODEL_NAME}/versions/{{}}"
OK_BODY = {"instances": [ROW]}

ERRORS: list[tuple[str, str, str, Any, int, str]] = [
    # (case, method, path, JSON body, status, fragment of the error message)
    ("unknown model status", "GET", "/v1/models/half", None, 404, "'half' is not served"),
    ("unknown model metadata", "GET", "/v1/models/half/metadata", None, 404, "'half'"),
    ("unknown model predict", "POST", "/v1/models/half:predict", OK_BODY, 404, "'half'"),
    ("unknown version status", "GET", VERSIONED.format(7), None, 404, "version 7"),
    ("unknown version metadata", "GET", VERSIONED.format(7) + "/metadata", None, 404, "version 7"),
    (
        "unknown version predict",
        "POST",
        VERSIONED.format(7) + ":predict",
        OK_BODY,
        404,
        "version 7",
    ),
    ("non-numeric version", "POST", VERSIONED.format("one") + ":predict", OK_BODY, 404, "'one'"),
    ("labels path", "GET", f"/v1/models/{MODEL_NAME}/labels/stable", None, 404, "Not Found"),
    ("unknown verb", "POST", f"/v1/models/{MODEL_NAME}:classify", OK_BODY, 405, "Not Allowed"),
    ("predict with GET", "GET", PREDICT, None, 404, "'multilabel:predict'"),
    ("body is a list", "POST", PREDICT, [ROW], 400, "body must be a JSON object"),
    ("neither format", "POST", PREDICT, {"signature_name": "serving_default"}, 400, "neither"),
    ("both formats", "POST", PREDICT, {"instances": [ROW], "inputs": [ROW]}, 400, "not both"),
    (
        "unknown signature",
        "POST",
        PREDICT,
        {**OK_BODY, "signature_name": "x"},
        400,
        "'x' not found",
    ),
    ("instances null", "POST", PREDICT, {"instances": None}, 400, "got null"),
    (
        "instances an object",
        "POST",
        PREDICT,
        {"instances": {"features": ROW}},
        400,
        "got an object",
    ),
    ("no instances", "POST", PREDICT, {"instances": []}, 400, "no rows"),
    ("flat instance", "POST", PREDICT, {"instances": ROW}, 400, "row 0"),
    (
        "row too short",
        "POST",
        PREDICT,
        {"instances": [ROW, ROW[:9]]},
        400,
        "row 1: expected 10 values",
    ),
    (
        "string value",
        "POST",
        PREDICT,
        {"instances": [with_value(3, "7")]},
        400,
        "row 0, feature x3",
    ),
    (
        "boolean value",
        "POST",
        PREDICT,
        {"instances": [ROW, with_value(5, False)]},
        400,
        "row 1, feature x5",
    ),
    ("null value", "POST", PREDICT, {"instances": [with_value(9, None)]}, 400, "row 0, feature x9"),
    (
        "beyond float32",
        "POST",
        PREDICT,
        {"instances": [with_value(0, -1e39)]},
        400,
        "row 0, feature x0",
    ),
    (
        "unknown named input",
        "POST",
        PREDICT,
        {"instances": [{"x": ROW}]},
        400,
        "row 0: expected an object",
    ),
    (
        "extra named input",
        "POST",
        PREDICT,
        {"instances": [{"features": ROW, "tag": "a"}]},
        400,
        "row 0",
    ),
    ("objects then a list", "POST", PREDICT, {"instances": [{"features": ROW}, ROW]}, 400, "row 1"),
    ("named input not a list", "POST", PREDICT, {"instances": [{"features": 3}]}, 400, "row 0"),
    ("columnar unknown input", "POST", PREDICT, {"inputs": {"x": [ROW]}}, 400, "'x'"),
    ("columnar no input", "POST", PREDICT, {"inputs": {}}, 400, "no input"),
    ("columnar scalar", "POST", PREDICT, {"inputs": 3}, 400, "[rows, features]"),
    (
        "columnar string value",
        "POST",
        PREDICT,
        {"inputs": [with_value(1, "a")]},
        400,
        "row 0, feature x1",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_errors_get_the_status_and_error_object_tf_serving_returns(
    client: TestClient, method: str, path: str, body: Any, status: int, fragment: str
) -> None:
    assert_error_object(client.request(method, path, json=body), status, fragment)


@pytest.mark.parametrize(
    "content",
    [b'{"instances": [[1, 2', b"", b'{"instances": [[NaN,1,2,3,4,5,6,7,8,9]]}'],
    ids=["truncated JSON", "empty body", "NaN literal"],
)
def test_unreadable_bodies_get_a_400_error_object(client: TestClient, content: bytes) -> None:
    response = client.post(PREDICT, content=content)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[TestClient]:
    with serving(tmp_path) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/models/{MODEL_NAME}"),
        ("GET", f"/v1/models/{MODEL_NAME}/metadata"),
        ("POST", PREDICT),
    ],
)
def test_without_a_model_every_route_answers_503_not_ready(
    empty_client: TestClient, method: str, path: str
) -> None:
    response = empty_client.request(method, path, json=OK_BODY)
    assert response.status_code == 503
    assert "not ready" in response.json()["error"]


@pytest.fixture
def limited_client(trained_repository: Path) -> Iterator[TestClient]:
    with serving(trained_repository, max_rows=5) as client:
        yield client


@pytest.mark.parametrize(
    "body", [{"instances": [ROW] * 6}, {"inputs": [ROW] * 6}], ids=["instances", "inputs"]
)
def test_too_many_rows_is_413(limited_client: TestClient, body: dict[str, Any]) -> None:
    response = limited_client.post(PREDICT, json=body)
    assert response.status_code == 413
    assert "6 rows" in response.json()["error"]


def test_documented_request_examples_are_served_as_documented(client: TestClient) -> None:
    operation = client.app.openapi()["paths"]["/v1/models/{name}:predict"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["schema"]["examples"]
    documented = TFServingPredictResponse.model_json_schema()["examples"]
    assert len(examples) == 3
    for example, response in zip(examples, documented, strict=True):
        result = predict(client, example)
        assert list(result) == list(response)
        assert type(result[next(iter(result))][0]) is type(response[next(iter(response))][0])
