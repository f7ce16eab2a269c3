"""Decision "set" on every protocol, on a model with a label-set head and on one with sigmoid
heads: each protocol's answer, read as its clients read it, names the most probable label sets
of the distribution computed by hand (``tests/app/label_set_reference.py``), with their
probabilities and where those come from.

Native rows and columns, V2 JSON and binary tensors (written and read by tritonclient's own
encoder and decoder), TF Serving rows and columns (the ``label_sets`` signature), gRPC typed and
raw contents. What each protocol refuses about the decision is in ``test_strictness.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton

from app.artifact import version_path
from app.codecs.native_schemas import SetColumnsResponse, SetPredictResponse
from app.codecs.oip_grpc import open_inference_grpc_pb2 as messages
from app.codecs.tfserving_schemas import TFServingPredictResponse
from app.codecs.v2_schemas import InferenceResponse
from tests.app.codecs.grpc_calls import GrpcApp, grpc_app, infer_request, outputs_of, threshold
from tests.app.label_set_reference import LabelSetReference, assert_ranked_as, reference_for
from tests.support import MODEL_NAME, REFERENCE_INPUTS

LABELS = ["label_0", "label_1", "label_2"]
ROWS = [*REFERENCE_INPUTS, *np.random.default_rng(22).integers(0, 15, size=(30, 10)).tolist()]
V2_INFER = f"/v2/models/{MODEL_NAME}/infer"
TF_PREDICT = f"/v1/models/{MODEL_NAME}:predict"


@dataclass
class SetAnswer:
    """A decision "set" answer as any protocol gives it: the labels decided (the most probable
    set), the ranked sets and their probabilities, and the source it names."""

    labels: np.ndarray  # [rows, labels] bool
    sets: np.ndarray  # [rows, k, labels] bool
    probabilities: np.ndarray  # [rows, k] float32
    source: str


def vectors(sets: list[list[list[str]]]) -> np.ndarray:
    """Sets given by their labels' names, as on/off in label order."""
    return np.asarray([[[label in chosen for label in LABELS] for chosen in row] for row in sets])


def native(served: GrpcApp, top_k: int | None, columns: bool = False) -> SetAnswer:
    body: dict[str, Any] = {"instances": ROWS, "decision": "set"}
    if top_k is not None:
        body["top_k"] = top_k
    if columns:
        body["format"] = "columns"
    response = served.http.post("/predict", json=body)
    assert response.status_code == 200, response.text
    document = response.json()
    if columns:
        SetColumnsResponse.model_validate(document)
        labels = np.asarray([document["decisions"][label] for label in LABELS], bool).T
        chosen = document["set_probability"]
        top = document.get("top_sets")
    else:
        SetPredictResponse.model_validate(document)
        predictions = document["predictions"]
        labels = np.asarray([row["vector"] for row in predictions], bool)
        assert [row["labels"] for row in predictions] == [
            [label for label, on in zip(LABELS, row, strict=True) if on] for row in labels
        ]
        chosen = [row["set_probability"] for row in predictions]
        top = [row["top_sets"] for row in predictions] if top_k is not None else None
        assert all(("top_sets" in row) is (top_k is not None) for row in predictions)
    assert ("top_sets" in document) is (columns and top_k is not None)
    if top is None:  # the most probable set alone: its labels and its probability
        sets, probabilities = labels[:, None, :], np.asarray(chosen, np.float32)[:, None]
    else:
        sets = vectors([[entry["labels"] for entry in row] for row in top])
        probabilities = np.asarray([[entry["probability"] for entry in row] for row in top])
        np.testing.assert_array_equal(probabilities[:, 0], np.asarray(chosen))
    return SetAnswer(labels, sets, probabilities, document["label_set_source"])


def native_columns(served: GrpcApp, top_k: int | None) -> SetAnswer:
    return native(served, top_k, columns=True)


def set_parameters(top_k: int | None) -> dict[str, Any]:
    return {"decision": "set"} if top_k is None else {"decision": "set", "top_k": top_k}


def v2_json(served: GrpcApp, top_k: int | None) -> SetAnswer:
    tensor = {"name": "features", "shape": [len(ROWS), 10], "datatype": "FP32", "data": ROWS}
    body = {"inputs": [tensor], "parameters": set_parameters(top_k)}
    response = served.http.post(V2_INFER, json=body)
    assert response.status_code == 200, response.text
    document = response.json()
    InferenceResponse.model_validate(document)
    assert document["parameters"]["decision"] == "set"
    outputs = {
        output["name"]: np.asarray(output["data"]).reshape(output["shape"])
        for output in document["outputs"]
    }
    assert [output["datatype"] for output in document["outputs"]] == [
        "FP32",
        "BOOL",
        "BOOL",
        "FP32",
    ]
    return SetAnswer(
        outputs["labels"].astype(bool),
        outputs["label_sets"].astype(bool),
        outputs["label_set_probabilities"].astype(np.float32),
        document["parameters"]["label_set_source"],
    )


def v2_binary(served: GrpcApp, top_k: int | None) -> SetAnswer:
    """tritonclient's own request body (binary input, every output asked for in binary) and
    its own reading of the answer."""
    rows = np.asarray(ROWS, dtype=np.float32)
    tensor = triton.InferInput("features", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    outputs = [
        triton.InferRequestedOutput(name, binary_data=True)
        for name in ("labels", "label_sets", "label_set_probabilities")
    ]
    body, header_length = triton.InferenceServerClient.generate_request_body(
        [tensor], outputs, parameters=set_parameters(top_k)
    )
    headers = {"Inference-Header-Content-Length": str(header_length)}
    response = served.http.post(V2_INFER, content=body, headers=headers)
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    result = triton.InferResult.from_response_body(response.content, header_length=length)
    probabilities = result.as_numpy("label_set_probabilities")
    assert (result.as_numpy("label_sets").dtype, probabilities.dtype) == (np.bool_, np.float32)
    return SetAnswer(
        result.as_numpy("labels"),
        result.as_numpy("label_sets"),
        probabilities,
        result.get_response()["parameters"]["label_set_source"],
    )


def tfserving(served: GrpcApp, top_k: int | None, columns: bool = False) -> SetAnswer:
    body: dict[str, Any] = {"signature_name": "label_sets"}
    body["inputs" if columns else "instances"] = ROWS
    if top_k is not None:
        body["top_k"] = top_k
    response = served.http.post(TF_PREDICT, json=body)
    assert response.status_code == 200, response.text
    document = response.json()
    TFServingPredictResponse.model_validate(document)
    if columns:
        outputs = document["outputs"]
    else:
        rows = document["predictions"]
        outputs = {name: [row[name] for row in rows] for name in rows[0]}
    return SetAnswer(
        np.asarray(outputs["labels"], bool),
        np.asarray(outputs["label_sets"], bool),
        np.asarray(outputs["label_set_probabilities"], np.float32),
        document["label_set_source"],
    )


def tfserving_columns(served: GrpcApp, top_k: int | None) -> SetAnswer:
    return tfserving(served, top_k, columns=True)


def grpc(served: GrpcApp, top_k: int | None, raw: bool = False) -> SetAnswer:
    parameters = {name: threshold(value) for name, value in set_parameters(top_k).items()}
    response = served.infer(infer_request(ROWS, raw=raw, parameters=parameters))
    assert bool(response.raw_output_contents) is raw
    outputs = outputs_of(response)
    assert response.parameters["decision"] == messages.InferParameter(string_param="set")
    return SetAnswer(
        outputs["labels"],
        outputs["label_sets"],
        outputs["label_set_probabilities"],
        response.parameters["label_set_source"].string_param,
    )


def grpc_raw(served: GrpcApp, top_k: int | None) -> SetAnswer:
    return grpc(served, top_k, raw=True)


PROTOCOLS: dict[str, Callable[[GrpcApp, int | None], SetAnswer]] = {
    "native rows": native,
    "native columns": native_columns,
    "V2 JSON": v2_json,
    "V2 binary (tritonclient)": v2_binary,
    "TF Serving rows": tfserving,
    "TF Serving columns": tfserving_columns,
    "gRPC typed": grpc,
    "gRPC raw": grpc_raw,
}


@dataclass
class Served:
    app: GrpcApp
    reference: LabelSetReference


@pytest.fixture(scope="module", params=["label_set_head", "product_of_marginals"])
def served(
    request: pytest.FixtureRequest, trained_repository: Path, sigmoid_repository: Path
) -> Iterator[Served]:
    """The app on the model with a label-set head, then on the one with sigmoid heads, with
    the distribution of ``ROWS`` computed by hand for that model."""
    repository = {
        "label_set_head": trained_repository,
        "product_of_marginals": sigmoid_repository,
    }[request.param]
    reference = reference_for(version_path(repository, MODEL_NAME, 1), np.asarray(ROWS, np.float32))
    assert reference.source == request.param
    with grpc_app(repository) as app:
        yield Served(app, reference)


def assert_the_references_sets(answer: SetAnswer, reference: LabelSetReference, k: int) -> None:
    """The k most probable sets of the reference, in order, with its probabilities; the
    labels decided are the most probable set; the source is the reference's."""
    assert answer.source == reference.source
    assert_ranked_as(answer.sets, answer.probabilities, reference, k)
    np.testing.assert_array_equal(answer.labels, answer.sets[:, 0, :])


@pytest.mark.parametrize("protocol", PROTOCOLS.values(), ids=PROTOCOLS.keys())
@pytest.mark.parametrize("top_k", [None, 3], ids=["most probable set", "top 3"])
def test_each_protocol_answers_the_most_probable_sets_of_the_hand_computed_distribution(
    served: Served, protocol: Callable[[GrpcApp, int | None], SetAnswer], top_k: int | None
) -> None:
    answer = protocol(served.app, top_k)
    assert_the_references_sets(answer, served.reference, top_k or 1)


def test_every_set_the_model_ranks_can_be_asked_for(served: Served) -> None:
    count = len(served.reference.sets)
    answer = native(served.app, count)
    assert_the_references_sets(answer, served.reference, count)
    np.testing.assert_allclose(answer.probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_the_metadata_of_each_protocol_says_how_many_sets_and_from_where(served: Served) -> None:
    source, count = served.reference.source, len(served.reference.sets)
    native_metadata = served.app.http.get("/metadata").json()
    assert (native_metadata["decisions"], native_metadata["label_set_source"]) == (
        ["labels", "set"],
        source,
    )
    assert native_metadata["label_set_count"] == count
    head = source == "label_set_head"
    assert (native_metadata["label_sets"] is not None) is head
    properties = served.app.http.get(f"/v2/models/{MODEL_NAME}").json()["properties"]
    assert (properties["label_set_source"], properties["label_set_count"]) == (source, str(count))


def test_labels_answers_hold_none_of_the_set_fields(served: Served) -> None:
    """Decision "labels" (the default, or asked for) answers as before "set" existed: no
    decision, source or set fields anywhere."""
    tensor = {"name": "features", "shape": [1, 10], "datatype": "FP32", "data": ROWS[0]}
    asked = [
        ("/predict", {"instances": ROWS[:2]}),
        ("/predict", {"instances": ROWS[:2], "format": "columns", "decision": "labels"}),
        (TF_PREDICT, {"instances": ROWS[:2], "signature_name": "labels"}),
        (V2_INFER, {"inputs": [tensor], "parameters": {"decision": "labels"}}),
    ]
    for path, body in asked:
        document = served.app.http.post(path, json=body).json()
        keys = set(document) | {key for row in document.get("predictions", []) for key in row}
        assert not keys & SET_KEYS, (path, keys)


SET_KEYS = {"decision", "label_set_source", "set_probability", "top_sets", "parameters"}
