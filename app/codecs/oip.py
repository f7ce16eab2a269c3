"""The Open Inference Protocol's facts that its REST (``app.codecs.v2``) and gRPC
(``app.codecs.grpc``) codecs share: how the model's tensors, platform and versions are
described, and how outputs are written as raw little-endian bytes."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.dataplane import INPUT_DATATYPE, INPUT_NAME, InferenceResult, Output
from app.inference import Model

OUTPUT_DATATYPES: dict[Output, str] = {"probabilities": "FP32", "labels": "BOOL"}
PLATFORMS = {"onnx": "onnxruntime_onnx", "keras": "keras"}
_RAW_DTYPES: dict[Output, np.dtype[Any]] = {
    "probabilities": np.dtype("<f4"),
    "labels": np.dtype(np.bool_),  # one byte per element, as both the protocol and Triton's
}  # binary extension define BOOL


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
            {"name": name, "datatype": datatype, "shape": [-1, width]}
            for name, datatype in OUTPUT_DATATYPES.items()
        ],
        "properties": {
            "features": ",".join(meta.features),
            "labels": ",".join(meta.labels),
            "thresholds": ",".join(str(threshold) for threshold in meta.thresholds),
        },
    }


def output_tensors(result: InferenceResult) -> list[tuple[Output, np.ndarray[Any, Any]]]:
    """The outputs the request asked for, in its order, each with its values."""
    values = {"probabilities": result.probabilities, "labels": result.positives}
    return [(name, values[name]) for name in result.outputs]


def raw_bytes(name: Output, values: np.ndarray[Any, Any]) -> bytes:
    """An output's values as the protocol's raw contents: little-endian, row-major."""
    return values.astype(_RAW_DTYPES[name], copy=False).tobytes()
