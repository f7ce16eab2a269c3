"""The inference core: a verified, loaded model version that turns features into decisions.

Knows nothing of HTTP. ONNX Runtime runs the network by default; the Keras backend exists for
reference and imports TensorFlow only when chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from app.artifact import KERAS_FILE, ONNX_FILE, ArtifactError, Metadata, decide, read_artifact

BackendName = Literal["onnx", "keras"]


class Backend(Protocol):
    def __call__(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        """Probabilities, shape [rows, labels], for a float32 matrix [rows, features]."""
        ...


class OnnxBackend:
    def __init__(self, path: Path, *, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input_name = self._session.get_inputs()[0].name
        # Named once here rather than by ONNX Runtime on every call.
        self._outputs = [self._session.get_outputs()[0].name]
        self._run = self._session.run

    def __call__(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        result: NDArray[np.float32] = self._run(self._outputs, {self._input_name: features})[0]
        return result


class KerasBackend:
    def __init__(self, path: Path):
        import keras  # imports TensorFlow: only when this backend is asked for

        # safe_mode refuses models that would run arbitrary code (lambda layers) on load.
        self._model = keras.saving.load_model(path, compile=False, safe_mode=True)

    def __call__(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        outputs = self._model(features, training=False)
        # A model with a label-set head has a second output (the sets'); the first is the labels'.
        if isinstance(outputs, list | tuple):
            outputs = outputs[0]
        return np.asarray(outputs, dtype=np.float32)


_NO_INDICES = np.zeros(0, dtype=np.intp)
# Up to this many rows, per-value checks in Python beat numpy, whose every call costs more than
# comparing a few dozen numbers.
SMALL_BATCH_ROWS = 8


@dataclass(slots=True, eq=False)
class OutOfRange:
    """The feature values outside the interval seen in training, in row then feature order:
    where each is (row, feature column) and what it is."""

    rows: NDArray[np.intp]
    columns: NDArray[np.intp]
    values: NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def none() -> OutOfRange:
        return NO_WARNINGS

    def in_rows(self, rows: NDArray[np.intp]) -> OutOfRange:
        """The warnings of these rows (sorted), renumbered as rows 0, 1, ... of the subset."""
        kept = np.isin(self.rows, rows)
        return OutOfRange(
            np.searchsorted(rows, self.rows[kept]), self.columns[kept], self.values[kept]
        )


NO_WARNINGS = OutOfRange(_NO_INDICES, _NO_INDICES, np.zeros(0, dtype=np.float32))


@dataclass(slots=True)
class Prediction:
    probabilities: NDArray[np.float32]
    positives: NDArray[np.bool_]
    thresholds: NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class Model:
    """One loaded version of a model; immutable, so requests can share it freely."""

    metadata: Metadata
    backend: Backend
    backend_name: BackendName

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> int:
        return self.metadata.version

    @property
    def n_features(self) -> int:
        return len(self.metadata.features)

    @cached_property
    def default_thresholds(self) -> NDArray[np.float32]:
        """float32, like the probabilities: a probability printed as 0.7 is on at 0.7."""
        return np.asarray(self.metadata.thresholds, dtype=np.float32)

    @cached_property
    def _train_low(self) -> NDArray[np.float32]:
        return np.asarray([r.min for r in self.metadata.feature_ranges], dtype=np.float32)

    @cached_property
    def _train_high(self) -> NDArray[np.float32]:
        return np.asarray([r.max for r in self.metadata.feature_ranges], dtype=np.float32)

    def _all_within_bounds(self, features: NDArray[np.float32]) -> bool:
        """For a few rows, faster in Python than numpy's four calls (each costs microseconds)."""
        bounds = self._train_bounds
        return all(_within(row, bounds) for row in features.tolist())

    def predict(
        self, features: NDArray[np.float32], thresholds: NDArray[np.float32] | None = None
    ) -> Prediction:
        """Probabilities and label decisions for a validated float32 matrix [rows, features]."""
        used = self.default_thresholds if thresholds is None else thresholds
        probabilities = self.backend(features)
        return Prediction(probabilities, decide(probabilities, used), used)

    @cached_property
    def _train_bounds(self) -> list[tuple[float, float]]:
        """The float32 bounds as Python floats: the same comparisons as numpy's, value by value."""
        return list(zip(self._train_low.tolist(), self._train_high.tolist(), strict=True))

    def out_of_range(self, features: NDArray[np.float32]) -> OutOfRange:
        """Every value outside its training range, in row then feature order."""
        if len(features) <= SMALL_BATCH_ROWS and self._all_within_bounds(features):
            return OutOfRange.none()
        outside = (features < self._train_low) | (features > self._train_high)
        if not outside.any():
            return OutOfRange.none()
        found = np.flatnonzero(outside)  # row-major, as np.nonzero, at a fraction of its cost
        rows, columns = np.divmod(found, features.shape[1])
        return OutOfRange(rows, columns, features.ravel()[found])


def _within(values: list[float], bounds: list[tuple[float, float]]) -> bool:
    return all(low <= value <= high for value, (low, high) in zip(values, bounds, strict=True))


def load_model(path: Path, *, backend: BackendName = "onnx", onnx_threads: int = 1) -> Model:
    """Read and verify a version, start its backend, and prove it reproduces the reference.

    Raises ArtifactError with the reason when any step fails.
    """
    metadata = read_artifact(path)
    runtime: Backend
    try:
        if backend == "keras":
            runtime = KerasBackend(path / KERAS_FILE)
        else:
            runtime = OnnxBackend(path / ONNX_FILE, threads=onnx_threads)
    except Exception as error:  # a corrupt model file fails inside the runtime, in its own way
        # The runtime's own message names absolute paths; keep those for the log only.
        raise ArtifactError(
            f"the {backend} backend cannot load the model file ({type(error).__name__})"
        ) from error
    _check_parity(runtime, metadata, backend)
    return Model(metadata=metadata, backend=runtime, backend_name=backend)


def _check_parity(runtime: Backend, metadata: Metadata, backend: str) -> None:
    inputs = np.asarray(metadata.parity.inputs, dtype=np.float32)
    expected = np.asarray(metadata.parity.outputs, dtype=np.float32)
    try:
        actual = runtime(inputs)
    except Exception as error:
        raise ArtifactError(
            f"the {backend} backend fails on the parity inputs ({type(error).__name__})"
        ) from error
    if actual.shape != expected.shape:
        raise ArtifactError(
            f"{backend} backend gives outputs of shape {actual.shape}, expected {expected.shape}"
        )
    difference = float(np.max(np.abs(actual - expected)))
    if not difference <= metadata.parity.tolerance:
        raise ArtifactError(
            f"{backend} backend differs from the reference outputs by {difference:.2e} "
            f"(tolerance {metadata.parity.tolerance:.0e})"
        )
