"""The Open Inference Protocol's facts that its REST (``app.codecs.v2``) and gRPC
(``app.codecs.grpc``) codecs share: how the model's tensors, platform and versions are
described, the request parameters that choose the decision, what an answer's parameters say,
and how outputs are written as raw little-endian bytes.

Decision ``set`` adds two outputs: ``label_sets`` (BOOL ``[rows, k, labels]``: each row's k most
probable label sets, most probable first, each as its labels' on/off) and
``label_set_probabilities`` (FP32 ``[rows, k]``: their probabilities); ``labels`` is then the
most probable set. The answer's parameters say the decision and where the set probabilities
come from (``label_set_source``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from app.dataplane import DECISIONS, INPUT_DATATYPE, INPUT_NAME, InferenceResult, Output
from app.inference import Model

OUTPUT_DATATYPES: dict[Output, str] = {
    "probabilities": "FP32",
    "labels": "BOOL",
    "label_sets": "BOOL",
    "label_set_probabilities": "FP32",
}
# The request parameters that choose the decision, and that rank k label sets.
DECISION = "decision"
TOP_K = "top_k"
PLATFORMS = {"onnx": "onnxruntime_onnx", "keras": "keras"}
_FLOAT32 = np.dtype("<f4")
_BOOL = np.dtype(np.bool_)  # one byte per element, as both the protocol and Triton's binary
_RAW_DTYPES: dict[str, np.dtype[Any]] = {"FP32": _FLOAT32, "BOOL": _BOOL}  # extension define BOOL


def model_metadata(model: Model, versions: list[int]) -> dict[str, Any]:
    """The model's metadata: its name, loaded versions, platform, input and outputs (name,
    datatype, shape; -1 rows), and its features, labels and thresholds in column order."""
    meta = model.metadata
    width = len(meta.labels)
    return {
        "name": model.name,
        "versions": [str(version) for version in versions],
        "platform": PLATFORMS[model.backend_name],
        "inputs": [
            {"name": INPUT_NAME, "datatype": INPUT_DATATYPE, "shape": [-1, model.n_features]}
        ],
        "outputs": [
            {"name": name, "datatype": datatype, "shape": _OUTPUT_SHAPES[name](width)}
            for name, datatype in OUTPUT_DATATYPES.items()
        ],
        "properties": {
            "features": ",".join(meta.features),
            "labels": ",".join(meta.labels),
            "thresholds": ",".join(str(threshold) for threshold in meta.thresholds),
            "decisions": ",".join(DECISIONS),
            "label_set_source": model.label_set_source,
            "label_set_count": str(model.label_set_count),
        },
    }


# Each output's shape in the model's metadata: -1 for the rows and for k (decision "set").
_OUTPUT_SHAPES: dict[Output, Callable[[int], list[int]]] = {
    "probabilities": lambda labels: [-1, labels],
    "labels": lambda labels: [-1, labels],
    "label_sets": lambda labels: [-1, -1, labels],
    "label_set_probabilities": lambda labels: [-1, -1],
}


def output_tensors(result: InferenceResult) -> list[tuple[Output, np.ndarray[Any, Any]]]:
    """The outputs the request asked for, in its order, each with its values."""
    values = {"probabilities": result.probabilities, "labels": result.positives}
    ranking = result.label_sets
    if ranking is not None:
        values["label_sets"] = ranking.sets
        values["label_set_probabilities"] = ranking.probabilities
    return [(name, values[name]) for name in result.outputs]


def answer_parameters(result: InferenceResult) -> dict[str, str] | None:
    """What the answer says besides its outputs: for decision "set", the decision and where
    the set probabilities come from; nothing for "labels" (as before the decision existed)."""
    if result.label_sets is None:
        return None
    return {DECISION: result.decision, "label_set_source": result.label_sets.source}


def raw_bytes(name: Output, values: np.ndarray[Any, Any]) -> bytes:
    """An output's values as the protocol's raw contents: little-endian, row-major."""
    return values.astype(_RAW_DTYPES[OUTPUT_DATATYPES[name]], copy=False).tobytes()
