"""The TensorFlow Serving REST codec, checked against the shapes of TF Serving's REST doc.

What every protocol refuses alike is in ``test_strictness.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.codecs.tfserving_schemas import TFServingPredictResponse
from tests.app.codecs.protocols import (
    assert_message_error,
    native_outputs,
    serving,
    serving_two_versions,
)
from tests.support import MODEL_NAME, REFERENCE_INPUTS

ROW = REFERENCE_INPUTS[0]
ROWS = np.random.default_rng(5).integers(0, 15, size=(30, 10)).tolist()
PREDICT = f"/v1/models/{MODEL_NAME}:predict"
AVAILABLE = {"state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}


def predict(client: TestClient, body: Any, path: str = PREDICT) -> Any:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def native_probabilities(client: TestClient, rows: list[list[Any]]) -> np.ndarray:
    return native_outputs(client, rows)["probabilities"]


def test_model_status_lists_the_loaded_version_as_available(client: TestClient) -> None:
    expected = {"model_version_status": [{"version": "1", **AVAILABLE}]}
    assert client.get(f"/v1/models/{MODEL_NAME}").json() == expected
    assert client.get(f"/v1/models/{MODEL_NAME}/versions/1").json() == expected


def dims(*sizes: int) -> dict[str, Any]:
    return {"dim": [{"size": str(size), "name": ""} for size in sizes], "unknown_rank": False}


def tensor_info(name: str, dtype: str, *sizes: int) -> dict[str, Any]:
    return {"dtype": dtype, "tensor_shape": dims(-1, *sizes), "name": name}


@pytest.mark.parametrize(
    "path", [f"/v1/models/{MODEL_NAME}/metadata", f"/v1/models/{MODEL_NAME}/versions/1/metadata"]
)
def test_metadata_describes_every_signature_as_tf_serving_does(
    client: TestClient, path: str
) -> None:
    features = {"features": tensor_info("features", "DT_FLOAT", 10)}
    probabilities = {"probabilities": tensor_info("probabilities", "DT_FLOAT", 3)}
    labels = {"labels": tensor_info("labels", "DT_BOOL", 3)}
    label_sets = {
        "label_sets": tensor_info("label_sets", "DT_BOOL", -1, 3),
        "label_set_probabilities": tensor_info("label_set_probabilities", "DT_FLOAT", -1),
    }
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
                    "label_sets": {
                        "inputs": features,
                        "outputs": {**probabilities, **labels, **label_sets},
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
    np.testing.assert_array_equal(labels, native_outputs(client, ROWS)["labels"])
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
    ("unknown version status", "GET", VERSIONED.format(7), None, 404, "version 7"),
    ("unknown version metadata", "GET", VERSIONED.format(7) + "/metadata", None, 404, "version 7"),
    ("status with POST", "POST", f"/v1/models/{MODEL_NAME}", OK_BODY, 405, "use GET"),
    ("metadata with DELETE", "DELETE", f"/v1/models/{MODEL_NAME}/metadata", None, 405, "use GET"),
    ("instances null", "POST", PREDICT, {"instances": None}, 400, "instances: must not be null"),
    (
        "instances an object",
        "POST",
        PREDICT,
        {"instances": {"features": ROW}},
        400,
        "got an object",
    ),
    ("flat instance", "POST", PREDICT, {"instances": ROW}, 400, "row 0"),
    ("named input not a list", "POST", PREDICT, {"instances": [{"features": 3}]}, 400, "row 0"),
    ("columnar no input", "POST", PREDICT, {"inputs": {}}, 400, "no input"),
    ("columnar scalar", "POST", PREDICT, {"inputs": 3}, 400, "inputs"),
    (
        "columnar string value",
        "POST",
        PREDICT,
        {"inputs": [with_value(1, "a")]},
        400,
        "row 0, feature x1",
    ),
    ("signature name not a string", "POST", PREDICT, {**OK_BODY, "signature_name": 1}, 400, ""),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_errors_get_the_status_and_error_object_tf_serving_returns(
    client: TestClient, method: str, path: str, body: Any, status: int, fragment: str
) -> None:
    assert_message_error(client.request(method, path, json=body), status, fragment)


@pytest.mark.parametrize("verb", ["classify", "regress"])
@pytest.mark.parametrize("model", [MODEL_NAME, f"{MODEL_NAME}/versions/1"])
def test_classify_and_regress_are_refused_as_not_supported(
    client: TestClient, model: str, verb: str
) -> None:
    """Not the status operation's 405 (``{name}`` also matches ``multilabel:classify``)."""
    response = client.post(f"/v1/models/{model}:{verb}", json=OK_BODY)
    assert_message_error(response, 400, f"{verb} is not supported")
    assert "use :predict" in response.json()["error"]
    assert "allow" not in response.headers


@pytest.mark.parametrize("model", ["other", f"{MODEL_NAME}/versions/9"])
def test_classify_of_a_model_not_served_is_a_404_first(client: TestClient, model: str) -> None:
    assert_message_error(client.post(f"/v1/models/{model}:classify", json=OK_BODY), 404, "")


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
    assert_message_error(response, 503, "not ready")


@pytest.fixture
def limited_client(trained_repository: Path) -> Iterator[TestClient]:
    with serving(trained_repository, max_rows=5) as client:
        yield client


def test_too_many_rows_in_columnar_format_is_413(limited_client: TestClient) -> None:
    response = limited_client.post(PREDICT, json={"inputs": {"features": [ROW] * 6}})
    assert_message_error(response, 413, "6 rows")


def test_documented_request_examples_are_served_as_documented(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/models/{name}:predict"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["schema"]["examples"]
    documented = TFServingPredictResponse.model_json_schema()["examples"]
    assert len(examples) == 4  # the last, the label_sets signature, as the last answer shows
    for example, response in zip(examples, documented, strict=True):
        result = predict(client, example)
        assert sorted(result) == sorted(response)  # the schema writes keys sorted
        key = "predictions" if "predictions" in result else "outputs"
        assert type(result[key][0]) is type(response[key][0])
