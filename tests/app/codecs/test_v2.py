"""The Open Inference Protocol (V2) codec, with Triton's binary tensor data extension, on the
real app and a really trained model.

Requests in binary are written by tritonclient's own encoder and answers read by its own
decoder (``InferResult``), so the bytes are the ones Triton's clients exchange. What every
protocol refuses alike is in ``test_strictness.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient

from app.codecs.v2_schemas import InferenceResponse
from tests.app.codecs.protocols import (
    LABELS,
    assert_message_error,
    native_outputs,
    serving,
    serving_two_versions,
)
from tests.support import MODEL_NAME, REFERENCE_INPUTS

ROW = REFERENCE_INPUTS[0]
INFER = f"/v2/models/{MODEL_NAME}/infer"
ROWS = np.random.default_rng(3).integers(0, 15, size=(40, 10)).tolist()
OUTPUTS = ("probabilities", "labels")
HEADER_LENGTH = "inference-header-content-length"


def tensor(rows: list[list[Any]], *, nested: bool = False) -> dict[str, Any]:
    data = rows if nested else [value for row in rows for value in row]
    return {"name": "features", "shape": [len(rows), 10], "datatype": "FP32", "data": data}


def infer(client: TestClient, body: dict[str, Any], path: str = INFER) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def outputs_of(result: dict[str, Any]) -> dict[str, np.ndarray]:
    """Each JSON output's data as an array of its declared shape."""
    return {
        output["name"]: np.asarray(output["data"]).reshape(output["shape"])
        for output in result["outputs"]
    }


def test_server_is_live_and_ready(client: TestClient) -> None:
    live = client.get("/v2/health/live")
    ready = client.get("/v2/health/ready")
    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


@pytest.mark.parametrize("path", ["/v2", "/v2/"])
def test_server_metadata_lists_the_binary_tensor_data_extension(
    client: TestClient, path: str
) -> None:
    body = client.get(path).json()
    version = client.get("/openapi.json").json()["info"]["version"]
    assert body == {
        "name": "multilabel-service",
        "version": version,
        "extensions": ["binary_tensor_data"],
    }


@pytest.mark.parametrize(
    "path", [f"/v2/models/{MODEL_NAME}", f"/v2/models/{MODEL_NAME}/versions/1"]
)
def test_model_metadata_describes_the_input_every_output_and_the_decisions(
    client: TestClient, path: str
) -> None:
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
            {"name": "label_sets", "datatype": "BOOL", "shape": [-1, -1, 3]},
            {"name": "label_set_probabilities", "datatype": "FP32", "shape": [-1, -1]},
        ],
        "properties": {
            "features": ",".join(f"x{i}" for i in range(10)),
            "labels": ",".join(LABELS),
            "thresholds": ",".join(str(thresholds[label]) for label in LABELS),
            "decisions": "labels,set",
            "label_set_source": "label_set_head",
            "label_set_count": "5",  # the sets of the training data: {}, {1}, {0}, {0, 1}, all
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
    expected = native_outputs(client, ROWS)
    np.testing.assert_array_equal(
        outputs["probabilities"].astype(np.float32), expected["probabilities"]
    )
    np.testing.assert_array_equal(outputs["labels"], expected["labels"])


def test_reference_input_turns_labels_0_and_1_on_and_2_off(client: TestClient) -> None:
    labels = outputs_of(infer(client, {"inputs": [tensor([ROW])]}))["labels"]
    assert labels.tolist() == [[True, True, False]]


def test_response_has_no_id_when_the_request_had_none(client: TestClient) -> None:
    assert "id" not in infer(client, {"inputs": [tensor([ROW])]})


def test_nested_data_gives_the_answer_of_flat_data(client: TestClient) -> None:
    nested = infer(client, {"inputs": [tensor(ROWS, nested=True)]})
    assert nested == infer(client, {"inputs": [tensor(ROWS)]})


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
    np.testing.assert_array_equal(labels, native_outputs(client, ROWS, threshold)["labels"])


def test_unknown_parameters_are_ignored(client: TestClient) -> None:
    body = {"inputs": [tensor([ROW])], "parameters": {"priority": 1, "tag": "x"}}
    assert infer(client, body)["outputs"] == infer(client, {"inputs": [tensor([ROW])]})["outputs"]


# Binary tensor data: (input in binary?, per output: None = default, True/False = asked for)
BinaryChoice = tuple[bool, dict[str, bool | None] | None]
BINARY_MODES: dict[str, BinaryChoice] = {
    "tritonclient defaults: binary in, no outputs named (all binary)": (True, None),
    "JSON in, both outputs binary": (False, {"probabilities": True, "labels": True}),
    "binary in, both outputs JSON": (True, {"probabilities": False, "labels": False}),
    "binary in, probabilities JSON, labels binary": (
        True,
        {"probabilities": False, "labels": True},
    ),
    "JSON in, probabilities binary, labels JSON": (False, {"probabilities": True, "labels": False}),
    "binary in, labels only, binary": (True, {"labels": True}),
}


def triton_request(rows: np.ndarray, binary_input: bool, outputs: Any) -> tuple[bytes, dict]:
    """The body and headers tritonclient sends for this choice of binary and JSON tensors."""
    features = triton.InferInput("features", list(rows.shape), "FP32")
    features.set_data_from_numpy(rows, binary_data=binary_input)
    requested = None
    if outputs is not None:
        requested = [
            triton.InferRequestedOutput(name, binary_data=binary)
            for name, binary in outputs.items()
        ]
    body, header_length = triton.InferenceServerClient.generate_request_body(
        [features], requested, request_id="mixed"
    )
    headers = (
        {} if header_length is None else {"Inference-Header-Content-Length": str(header_length)}
    )
    return body, headers


@pytest.mark.parametrize(("binary_input", "outputs"), BINARY_MODES.values(), ids=BINARY_MODES)
def test_binary_and_json_tensors_in_any_mix_give_the_native_answer(
    client: TestClient, binary_input: bool, outputs: dict[str, bool] | None
) -> None:
    rows = np.asarray(ROWS, dtype=np.float32)
    body, headers = triton_request(rows, binary_input, outputs)
    response = client.post(INFER, content=body, headers=headers)
    assert response.status_code == 200, response.text[:300]
    binary_outputs = [
        name for name, binary in (outputs or dict.fromkeys(OUTPUTS, True)).items() if binary
    ]
    length = response.headers.get(HEADER_LENGTH)
    assert (length is not None) == bool(binary_outputs)
    result = triton.InferResult.from_response_body(
        response.content, header_length=None if length is None else int(length)
    )
    assert result.get_response()["id"] == "mixed"
    expected = native_outputs(client, ROWS)
    for name in outputs or OUTPUTS:
        answered = result.as_numpy(name)
        assert answered.dtype == (np.float32 if name == "probabilities" else np.bool_)
        np.testing.assert_array_equal(answered, expected[name])
    returned = {output["name"]: output for output in result.get_response()["outputs"]}
    for name in binary_outputs:
        assert "data" not in returned[name]
        assert returned[name]["parameters"]["binary_data_size"] == (
            rows.shape[0] * 3 * (4 if name == "probabilities" else 1)
        )


def test_binary_outputs_are_little_endian_fp32_and_one_byte_bools(client: TestClient) -> None:
    """The raw bytes after the JSON header, as the extension defines them."""
    rows = np.asarray(ROWS, dtype=np.float32)
    body, headers = triton_request(rows, True, None)
    response = client.post(INFER, content=body, headers=headers)
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers[HEADER_LENGTH])
    data = response.content[length:]
    expected = native_outputs(client, ROWS)
    probabilities = expected["probabilities"].astype("<f4").tobytes()
    labels = expected["labels"].astype(np.uint8).tobytes()
    assert data == probabilities + labels


def test_binary_data_output_is_overridden_by_an_outputs_own_choice(client: TestClient) -> None:
    body = {
        "inputs": [tensor(ROWS)],
        "outputs": [
            {"name": "probabilities"},
            {"name": "labels", "parameters": {"binary_data": False}},
        ],
        "parameters": {"binary_data_output": True},
    }
    response = client.post(INFER, json=body)
    length = int(response.headers[HEADER_LENGTH])
    result = triton.InferResult.from_response_body(response.content, header_length=length)
    returned = {output["name"]: output for output in result.get_response()["outputs"]}
    assert "data" not in returned["probabilities"]
    assert "data" in returned["labels"]
    np.testing.assert_array_equal(result.as_numpy("labels"), native_outputs(client, ROWS)["labels"])


def test_json_only_answers_are_plain_json(client: TestClient) -> None:
    response = client.post(INFER, json={"inputs": [tensor(ROWS)]})
    assert response.headers["content-type"] == "application/json"
    assert HEADER_LENGTH not in response.headers


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
        assert_message_error(response, 503, "not ready")


def test_not_ready_server_says_ready_false(empty_client: TestClient) -> None:
    assert empty_client.get("/v2/health/ready").json() == {"ready": False}


VERSIONED_INFER = f"/v2/models/{MODEL_NAME}/versions/{{}}/infer"
OK_BODY = {"inputs": [tensor([ROW])]}

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
    ("negative version", "POST", VERSIONED_INFER.format(-1), OK_BODY, 404, "'-1'"),
    ("decimal version", "POST", VERSIONED_INFER.format("1.0"), OK_BODY, 404, "'1.0'"),
    ("version of 19 digits", "POST", VERSIONED_INFER.format("9" * 19), OK_BODY, 404, "version"),
    ("metadata with POST", "POST", f"/v2/models/{MODEL_NAME}", OK_BODY, 405, "use GET"),
    ("live with DELETE", "DELETE", "/v2/health/live", None, 405, "use GET"),
    ("inputs not a list", "POST", INFER, {"inputs": tensor([ROW])}, 400, "inputs"),
    ("no input", "POST", INFER, {"inputs": []}, 400, "expected one input tensor"),
    ("shape missing", "POST", INFER, {"inputs": [{**tensor([ROW]), "shape": None}]}, 400, "shape"),
    (
        "BYTES datatype",
        "POST",
        INFER,
        {"inputs": [{**tensor([ROW]), "datatype": "BYTES"}]},
        400,
        "BYTES",
    ),
    ("data not a list", "POST", INFER, {"inputs": [{**tensor([ROW]), "data": "1,2"}]}, 400, "list"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_errors_are_the_protocols_error_object(
    client: TestClient, method: str, path: str, body: Any, status: int, fragment: str
) -> None:
    assert_message_error(client.request(method, path, json=body), status, fragment)


def test_a_path_no_protocol_serves_gets_the_control_planes_404(client: TestClient) -> None:
    """No codec decoded it, so no codec renders it: the service's own (native) error."""
    response = client.get("/v2/repository/index")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_documented_request_examples_are_served_as_documented(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v2/models/{name}/infer"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["schema"]["examples"]
    answers = InferenceResponse.model_json_schema()["examples"]
    assert len(examples) == 3  # the last asks for decision "set", as the last answer shows
    for example in examples:
        result = infer(client, example)
        documented = answers[-1] if "parameters" in result else answers[0]
        assert set(result) <= set(documented)
        assert [output.keys() for output in result["outputs"]] == [
            documented["outputs"][0].keys()
        ] * len(result["outputs"])
