"""The inference core: a verified, loaded model version that turns features into decisions.

Knows nothing of HTTP. ONNX Runtime runs the network by default; the Keras backend exists for
reference and imports TensorFlow only when chosen.

Two decisions: each label against its threshold (``Model.predict``), or the most probable
whole label sets (``Model.rank_label_sets``), whose probabilities come from the network's
label-set head where it has one (its second output, from the same run) and otherwise from the
product of the marginals over every one of the 2^labels sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from app.artifact import KERAS_FILE, ONNX_FILE, ArtifactError, Metadata, decide, read_artifact

BackendName = Literal["onnx", "keras"]
LabelSetSource = Literal["label_set_head", "product_of_marginals"]
# The product of the marginals is ranked over all 2^labels sets, computed for each row: up to
# 2^10 = 1024 sets (8 KiB a row); a model with more labels and no label-set head cannot rank.
MAX_PRODUCT_LABELS = 10
# Rows ranked at once by the product of the marginals: bounds the [rows, 2^labels] matrix.
_PRODUCT_CHUNK_ROWS = 1024


class Backend(Protocol):
    def __call__(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        """Probabilities, shape [rows, labels], for a float32 matrix [rows, features]."""
        ...

    def with_label_sets(
        self, features: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """The probabilities and, from the same run, the label-set head's output
        [rows, label sets] (a model with a label-set head only)."""
        ...


class OnnxBackend:
    def __init__(self, path: Path, *, threads: int = 1, set_output: str | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input_name = self._session.get_inputs()[0].name
        # Named once here rather than by ONNX Runtime on every call.
        self._outputs = [self._session.get_outputs()[0].name]
        # Both outputs of one run: the label-set head's is fetched only when a request ranks sets.
        self._both = None if set_output is None else [*self._outputs, set_output]
        self._run = self._session.run

    def __call__(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        result: NDArray[np.float32] = self._run(self._outputs, {self._input_name: features})[0]
        return result

    def with_label_sets(
        self, features: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        if self._both is None:
            raise ValueError("the model has no label-set head")
        probabilities, sets = self._run(self._both, {self._input_name: features})
        return probabilities, sets


class KerasBackend:
    def __init__(self, path: Path, *, set_output_index: int | None = None):
        import keras  # imports TensorFlow: only when this backend is asked for

        # safe_mode refuses models that would run arbitrary code (lambda layers) on load.
        self._model = keras.saving.load_model(path, compile=False, safe_mode=True)
        self._set_output_index = set_output_index

    def __call__(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.asarray(self._outputs(features)[0], dtype=np.float32)

    def with_label_sets(
        self, features: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        if self._set_output_index is None:
            raise ValueError("the model has no label-set head")
        outputs = self._outputs(features)
        sets = outputs[self._set_output_index]
        return np.asarray(outputs[0], dtype=np.float32), np.asarray(sets, dtype=np.float32)

    def _outputs(self, features: NDArray[np.float32]) -> list[Any]:
        """Every output of the network: a model with a label-set head has a second one (the
        sets'); the first is the labels'."""
        outputs = self._model(features, training=False)
        return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


_NO_INDICES = np.zeros(0, dtype=np.intp)
# Up to this many rows, per-value checks in Python beat numpy, whose every call costs more than
# comparing a few dozen numbers.
SMALL_BATCH_ROWS = 8
# Batches up to this many rows compare with repeated per-column values (PerColumn): 160 kB for
# ten features' two bounds, once per loaded model version.
COMPARED_BLOCK_ROWS = 2048


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


@dataclass(slots=True)
class LabelSetRanking:
    """The ``k`` most probable label sets of each row, most probable first (ties: the sets'
    own order), and where their probabilities come from."""

    sets: NDArray[np.bool_]  # [rows, k, labels]: each set as its labels' on/off
    probabilities: NDArray[np.float32]  # [rows, k]
    source: LabelSetSource

    @property
    def best(self) -> NDArray[np.bool_]:
        """The most probable set of each row, [rows, labels]."""
        return self.sets[:, 0, :]


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
    def _train_low(self) -> PerColumn:
        return PerColumn([r.min for r in self.metadata.feature_ranges])

    @cached_property
    def _train_high(self) -> PerColumn:
        return PerColumn([r.max for r in self.metadata.feature_ranges])

    @cached_property
    def _default_threshold_rows(self) -> PerColumn:
        return PerColumn(self.metadata.thresholds)

    def _all_within_bounds(self, features: NDArray[np.float32]) -> bool:
        """For a few rows, faster in Python than numpy's four calls (each costs microseconds)."""
        bounds = self._train_bounds
        return all(_within(row, bounds) for row in features.tolist())

    def predict(
        self, features: NDArray[np.float32], thresholds: NDArray[np.float32] | None = None
    ) -> Prediction:
        """Probabilities and label decisions for a validated float32 matrix [rows, features]."""
        probabilities = self.backend(features)
        if thresholds is None or thresholds is self.default_thresholds:
            thresholds = self.default_thresholds
            compared = self._default_threshold_rows.over(len(probabilities))
        else:
            compared = thresholds  # a request's own: broadcast
        return Prediction(probabilities, decide(probabilities, compared), thresholds)

    @property
    def label_set_source(self) -> LabelSetSource:
        """Where the probability of a whole label set comes from: the label-set head, or the
        product of the marginals (also for versions older than ``label_set_distribution``)."""
        distribution = self.metadata.label_set_distribution
        return "product_of_marginals" if distribution is None else distribution.source

    @cached_property
    def label_set_table(self) -> NDArray[np.bool_] | None:
        """Every label set this model gives a probability, [sets, labels], in the order of its
        probabilities: the head's sets (``label_sets``), or all 2^labels sets with label ``i``
        on in the sets whose number has bit ``i`` set. None past ``MAX_PRODUCT_LABELS`` labels
        without a head."""
        labels = self.metadata.labels
        if self.label_set_source == "label_set_head":
            sets = self.metadata.label_sets or []
            return np.asarray([[label in chosen for label in labels] for chosen in sets], bool)
        if len(labels) > MAX_PRODUCT_LABELS:
            return None
        codes = np.arange(1 << len(labels))
        return ((codes[:, None] >> np.arange(len(labels))) & 1).astype(bool)

    @property
    def label_set_count(self) -> int:
        """How many label sets this model ranks (0 when it cannot rank them)."""
        table = self.label_set_table
        return 0 if table is None else len(table)

    def rank_label_sets(
        self, features: NDArray[np.float32], k: int
    ) -> tuple[Prediction, LabelSetRanking]:
        """The marginal probabilities, and each row's ``k`` most probable label sets: from one
        run of the network either way. The prediction's label decisions are the most probable
        set's (no threshold takes part)."""
        table = self.label_set_table
        if table is None:
            raise ValueError(f"{len(self.metadata.labels)} labels and no label-set head")
        distribution: NDArray[np.floating[Any]]
        if self.label_set_source == "label_set_head":
            probabilities, distribution = self.backend.with_label_sets(features)
        else:
            probabilities = self.backend(features)
            distribution = product_of_marginals(probabilities)
        if k == 1:  # the first of equals, like the stable sort below
            order = np.argmax(distribution, axis=1)[:, None]
        else:
            order = np.argsort(-distribution, axis=1, kind="stable")[:, :k]
        ranking = LabelSetRanking(
            table[order],
            np.take_along_axis(distribution, order, axis=1).astype(np.float32, copy=False),
            self.label_set_source,
        )
        used = self.default_thresholds
        return Prediction(probabilities, np.ascontiguousarray(ranking.best), used), ranking

    @cached_property
    def _train_bounds(self) -> list[tuple[float, float]]:
        """The float32 bounds as Python floats: the same comparisons as numpy's, value by value."""
        low, high = self._train_low.values.tolist(), self._train_high.values.tolist()
        return list(zip(low, high, strict=True))

    def out_of_range(self, features: NDArray[np.float32]) -> OutOfRange:
        """Every value outside its training range, in row then feature order."""
        if len(features) <= SMALL_BATCH_ROWS and self._all_within_bounds(features):
            return OutOfRange.none()
        count = len(features)
        low, high = self._train_low.over(count), self._train_high.over(count)
        outside = (features < low) | (features > high)
        if not outside.any():
            return OutOfRange.none()
        found = np.flatnonzero(outside)  # row-major, as np.nonzero, at a fraction of its cost
        rows, columns = np.divmod(found, features.shape[1])
        return OutOfRange(rows, columns, features.ravel()[found])


class PerColumn:
    """One float32 value per column (a feature's bound, a label's threshold), to compare whole
    batches with. The values are kept repeated over a block of rows: numpy broadcasting a short
    row runs its inner loop once per row, and comparing two contiguous blocks is about three
    times faster (a [1000, 10] batch against both bounds: 3.6 µs instead of 11.8 µs)."""

    def __init__(self, values: Sequence[float]):
        self.values = np.asarray(values, dtype=np.float32)
        self._block = np.tile(self.values, (COMPARED_BLOCK_ROWS, 1))
        self._block.flags.writeable = False  # shared by every request's comparisons

    def over(self, rows: int) -> NDArray[np.float32]:
        """The values for a batch of ``rows`` rows: a block of them, or one row to broadcast
        past the block's size."""
        return self._block[:rows] if rows <= COMPARED_BLOCK_ROWS else self.values


def _within(values: list[float], bounds: list[tuple[float, float]]) -> bool:
    return all(low <= value <= high for value, (low, high) in zip(values, bounds, strict=True))


def product_of_marginals(probabilities: NDArray[np.float32]) -> NDArray[np.float64]:
    """P(set) for every one of the 2^labels sets, labels taken as independent: the product
    over labels of p where the set holds the label and 1 - p where it does not, [rows, sets],
    set ``c`` holding label ``i`` when bit ``i`` of ``c`` is set. Built a label at a time (each
    step doubles the sets), in float64, a chunk of rows at a time."""
    rows = len(probabilities)
    chunks = []
    for start in range(0, max(rows, 1), _PRODUCT_CHUNK_ROWS):
        marginals = probabilities[start : start + _PRODUCT_CHUNK_ROWS].astype(np.float64)
        joint = np.ones((len(marginals), 1))
        for on in marginals.T:
            joint = np.concatenate([joint * (1.0 - on)[:, None], joint * on[:, None]], axis=1)
        chunks.append(joint)
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def load_model(path: Path, *, backend: BackendName = "onnx", onnx_threads: int = 1) -> Model:
    """Read and verify a version, start its backend, and prove it reproduces the reference.

    Raises ArtifactError with the reason when any step fails.
    """
    metadata = read_artifact(path)
    runtime: Backend
    head = metadata.label_set_distribution
    if head is not None and head.source != "label_set_head":
        head = None
    try:
        if backend == "keras":
            index = None if head is None else head.output_index
            runtime = KerasBackend(path / KERAS_FILE, set_output_index=index)
        else:
            output = None if head is None else head.output
            runtime = OnnxBackend(path / ONNX_FILE, threads=onnx_threads, set_output=output)
    except Exception as error:  # a corrupt model file fails inside the runtime, in its own way
        # The runtime's own message names absolute paths; keep those for the log only.
        raise ArtifactError(
            f"the {backend} backend cannot load the model file ({type(error).__name__})"
        ) from error
    _check_parity(runtime, metadata, backend)
    return Model(metadata=metadata, backend=runtime, backend_name=backend)


def _check_parity(runtime: Backend, metadata: Metadata, backend: str) -> None:
    """The backend reproduces the reference outputs: the probabilities and, where the version
    records them, the label-set head's (which proves serving reads the right output)."""
    inputs = np.asarray(metadata.parity.inputs, dtype=np.float32)
    references = {"outputs": np.asarray(metadata.parity.outputs, dtype=np.float32)}
    head = metadata.label_set_distribution
    set_outputs = metadata.parity.set_outputs
    with_sets = head is not None and head.source == "label_set_head" and set_outputs is not None
    if with_sets:
        references["label-set outputs"] = np.asarray(set_outputs, dtype=np.float32)
    try:
        actuals = runtime.with_label_sets(inputs) if with_sets else (runtime(inputs),)
    except Exception as error:
        raise ArtifactError(
            f"the {backend} backend fails on the parity inputs ({type(error).__name__})"
        ) from error
    for (what, expected), actual in zip(references.items(), actuals, strict=True):
        if actual.shape != expected.shape:
            raise ArtifactError(
                f"{backend} backend gives {what} of shape {actual.shape}, expected {expected.shape}"
            )
        difference = float(np.max(np.abs(actual - expected)))
        if not difference <= metadata.parity.tolerance:
            raise ArtifactError(
                f"{backend} backend differs from the reference {what} by {difference:.2e} "
                f"(tolerance {metadata.parity.tolerance:.0e})"
            )
