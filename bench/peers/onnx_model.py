"""The work every peer does per request, written as our service does it: one ONNX Runtime
session with one intra-op and one inter-op thread on the CPU, the output name looked up once,
and each label on at or above its threshold (compared in float32).

It runs inside the peers' own virtualenvs (onnxruntime and numpy only), so it does not import
our ``app`` package: a peer is measured on its own framework, with the same model work as ours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray


class OnnxMultilabel:
    """Probabilities and on/off decisions for a float32 matrix [rows, features]."""

    def __init__(self, onnx_path: Path, thresholds: list[float]):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self._input_name = self._session.get_inputs()[0].name
        self._outputs = [self._session.get_outputs()[0].name]
        self._thresholds = np.asarray(thresholds, dtype=np.float32)

    def predict(
        self, features: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        probabilities: NDArray[np.float32] = self._session.run(
            self._outputs, {self._input_name: features}
        )[0]
        return probabilities, probabilities >= self._thresholds


def parse_thresholds(text: str) -> list[float]:
    """``"0.5,0.5,0.5"`` → ``[0.5, 0.5, 0.5]``: how the bench hands thresholds to a peer."""
    return [float(part) for part in text.split(",")]
