"""The data plane: everything that happens to an inference request once a protocol has decoded it.

A codec (``app.codecs``) decodes its wire format into an ``InferenceRequest``: plain data, as
it was sent, nothing checked yet. ``DataPlane.infer`` does all the rest and returns an
``InferenceResult`` for the codec to encode. Every rule that decides whether a request is
acceptable, and what it means, lives here, so all protocols give the same verdict on the same
input:

- the model is looked up by its name and its version as text;
- the model takes one input, ``features`` (FP32, ``[rows, features]``); rows come as a
  protocol's JSON rows, or as a tensor (JSON values, raw little-endian bytes, or values the
  wire already typed) whose shape and size must agree;
- the feature matrix is float32 and finite (the conversion section at the end);
- thresholds are one strict type (a number in [0, 1], or a mapping of label names to such
  numbers; never a boolean or a string) and are compared with the float32 probabilities in
  float32;
- the decision is ``labels`` (each label on at or above its threshold) or ``set`` (the most
  probable whole label sets, ``top_k`` of them, 1 unless asked; no threshold takes part);
- outputs are chosen by name from the decision's outputs (the set outputs come with ``set``
  only, and ``set`` needs an output that shows it);
- admission control bounds the rows in flight per worker (503 past it);
- large batches are converted and predicted in a bounded thread pool, off the event loop, and
  their answers rendered on a thread of their own (``DataPlane.render``), from ``offload_rows``
  on; but array work (the inference of values that arrive as an array, and any rendering) runs
  inline while this turn of the event loop holds less than ``offload_array_rows`` rows of it;
- outputs must be finite, or the request fails naming the rows;
- the prediction metrics are counted.

Errors are ``app.errors`` types; each codec renders them in its own envelope.
"""

from __future__ import annotations

import array
import asyncio
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from app.config import Settings
from app.errors import (
    SHOWN_LENGTH,
    BadRequest,
    InvalidInput,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    TooManyRows,
    shown,
    shown_name,
)
from app.inference import (
    MAX_PRODUCT_LABELS,
    SMALL_BATCH_ROWS,
    LabelSetRanking,
    Model,
    OutOfRange,
    Prediction,
)
from app.metrics import ServiceMetrics
from app.repository import ModelRepository

Output = Literal["probabilities", "labels", "label_sets", "label_set_probabilities"]
# The outputs of each decision, as a request that names none gets them. "labels" holds the
# decision either way: each label against its threshold, or the most probable set's labels.
LABEL_OUTPUTS: tuple[Output, ...] = ("probabilities", "labels")
SET_OUTPUTS: tuple[Output, ...] = ("label_sets", "label_set_probabilities")
OUTPUTS: tuple[Output, ...] = (*LABEL_OUTPUTS, *SET_OUTPUTS)
# How probabilities become an answer: "labels", each label on at or above its threshold; "set",
# the most probable whole label sets (the top k, most probable first).
Decision = Literal["labels", "set"]
DECISIONS: tuple[Decision, ...] = ("labels", "set")
DECISION_OUTPUTS: dict[Decision, tuple[Output, ...]] = {"labels": LABEL_OUTPUTS, "set": OUTPUTS}
# The outputs in which a "set" decision shows: "probabilities" alone would hide it.
SHOWING_SETS: tuple[Output, ...] = ("labels", *SET_OUTPUTS)
INPUT_NAME = "features"
INPUT_DATATYPE = "FP32"
FLOAT32_BYTES = 4
MAX_VERSION_DIGITS = 18
Done = TypeVar("Done")


# Per-request objects are plain slotted dataclasses, never changed once made (a frozen
# dataclass costs an object.__setattr__ per field on the hot path).
@dataclass(slots=True)
class Rows:
    """Rows as a JSON body holds them: each a list of numbers in feature order or, where the
    protocol allows it (``named``), an object keyed by feature name; or, read straight from
    the body, a ``NumberArray`` of rows."""

    values: Any
    field: str  # where the rows are in the protocol's message, for errors
    named: bool = False
    # False when the body's bytes cannot hold a boolean: numbers then skip a per-value check.
    booleans_possible: bool = True


@dataclass(slots=True)
class Tensor:
    """One input tensor as sent: name, datatype and shape unchecked, and its values as JSON
    numbers (a list, flat in row-major order or nested by row), raw little-endian bytes, or
    (``typed``) a flat sequence of the float32 numbers a wire already typed (protobuf's
    repeated float)."""

    name: Any
    datatype: Any
    shape: Any
    data: Any
    field: str  # where the tensor is in the protocol's message ("inputs.0")
    data_field: str  # where its values are ("inputs.0.data", "raw_input_contents.0")
    booleans_possible: bool = True
    typed: bool = False


@dataclass(frozen=True, slots=True)
class Fields:
    """Where a protocol's message holds each option of a request: what its errors name."""

    thresholds: str = "threshold"
    outputs: str = "outputs"
    decision: str = "decision"
    top_k: str = "top_k"
    inputs: str = "inputs"
    # Where the output at a position is named: "{outputs}.{position}.name", or where one field
    # chooses them all (TF Serving's signature_name) that field alone.
    output_names_listed: bool = True

    def output(self, position: int) -> str:
        return f"{self.outputs}.{position}.name" if self.output_names_listed else self.outputs


DEFAULT_FIELDS = Fields()


@dataclass(slots=True)
class InferenceRequest:
    """A request as its protocol decoded it: which model, which rows, which options."""

    inputs: Rows | Sequence[Tensor]
    model_name: str | None = None  # None: the served model
    model_version: str | None = None  # None: its newest version
    thresholds: Any = None  # as sent; None: the model's own
    outputs: Sequence[Any] | None = None  # names as sent, in order; None: every output
    decision: Any = None  # as sent; None: "labels"
    top_k: Any = None  # as sent; None: the most probable set alone (decision "set" only)
    id: str | None = None  # the protocol's request id, echoed in the answer
    fields: Fields = DEFAULT_FIELDS


@dataclass(slots=True)
class InferenceResult:
    """What the model said about a request's rows, and what the request asked for."""

    model: Model
    probabilities: NDArray[np.float32]
    positives: NDArray[np.bool_]
    thresholds: NDArray[np.float32]  # the ones used, float32
    out_of_range: OutOfRange
    outputs: tuple[Output, ...] = LABEL_OUTPUTS
    decision: Decision = "labels"
    id: str | None = None
    # Decision "set": each row's most probable sets, and the k the request asked for (None:
    # it asked for none, and the ranking holds the most probable set alone).
    label_sets: LabelSetRanking | None = None
    top_k: int | None = None

    @property
    def rows(self) -> int:
        return len(self.probabilities)


@dataclass(frozen=True, slots=True)
class Readiness:
    """The served model's newest version, or why there is none."""

    model: Model | None
    reason: str


class DataPlane:
    """Serves decoded requests: model lookup, the request's rules, admission, where the work
    runs, prediction and its metrics."""

    def __init__(self, repository: ModelRepository, settings: Settings, metrics: ServiceMetrics):
        self.metrics = metrics
        self._repository = repository
        self._max_rows = settings.max_rows
        self._max_inflight_rows = settings.max_inflight_rows
        self._offload_rows = settings.offload_rows
        self._offload_array_rows = settings.offload_array_rows
        self._retry_after = settings.retry_after
        self.rows_in_flight = 0
        self._inline_rows = 0  # rows of array work run inline this loop turn
        self._pool = ThreadPoolExecutor(
            max_workers=settings.offload_threads, thread_name_prefix="inference"
        )
        self._renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")

    # What the protocols' other operations ask (health, metadata, status).

    def model(self, name: str | None = None, version: str | None = None) -> Model:
        """The model a request names (None: the served one): its newest version, or the one
        ``version`` names."""
        repository = self._repository
        if name is None:
            name = repository.name
        if version is None:
            return repository.get(name)
        if not (version.isascii() and version.isdigit() and len(version) <= MAX_VERSION_DIGITS):
            repository.get(name)  # an unknown or unready model is reported as that first
            raise ModelNotFound(f"version {shown_name(version)} of model {name!r} is not loaded")
        return repository.get(name, int(version))

    @property
    def max_rows(self) -> int:
        """The most rows one request may hold (a codec may refuse more before decoding them)."""
        return self._max_rows

    @property
    def ready(self) -> bool:
        """Whether a version of the served model is loaded."""
        return self._repository.ready

    def readiness(self) -> Readiness:
        snapshot = self._repository.snapshot
        return Readiness(snapshot.default, snapshot.reason)

    def versions(self) -> list[int]:
        """The loaded versions of the served model, oldest first."""
        return sorted(self._repository.snapshot.models)

    # Inference.

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        """Check the request, admit its rows, convert and predict them (inline for small
        batches, in the pool for large ones: converting and checking thousands of values
        would otherwise hold up the event loop and its probes), and count the prediction.

        Everything cheap is checked before the request is admitted, so that a refusal costs
        next to nothing and work past the limit is refused before any of it is done.
        """
        model = self.model(request.model_name, request.model_version)
        inputs, fields = request.inputs, request.fields
        rows = _row_count(inputs, model, fields.inputs)
        decision = decision_named(request.decision, field=fields.decision)
        top_k: int | None = None
        if decision == "labels":
            thresholds = thresholds_for(model, request.thresholds, field=fields.thresholds)
            if request.top_k is not None:
                raise _top_k_without_sets(fields)
        else:
            thresholds = model.default_thresholds
            top_k = top_k_for(model, request, fields)
        outputs = (
            DECISION_OUTPUTS[decision]
            if request.outputs is None
            else outputs_named(request.outputs, decision, fields)
        )
        check_row_count(rows, self._max_rows)
        self._admit(rows)
        self.rows_in_flight += rows
        try:
            if self._runs_inline(rows, arrays=_in_arrays(inputs)):
                # Inline: for a few rows, or values already in an array, the whole request
                # costs less than a thread hop.
                predicted = _predict(model, inputs, rows, thresholds, top_k)
            else:
                predicted = await asyncio.get_running_loop().run_in_executor(
                    self._pool, _predict, model, inputs, rows, thresholds, top_k
                )
        finally:
            self.rows_in_flight -= rows
        prediction, ranking, out_of_range = predicted
        self.metrics.observe_prediction(model, prediction.positives, len(out_of_range))
        return InferenceResult(
            model,
            prediction.probabilities,
            prediction.positives,
            thresholds,
            out_of_range,
            outputs,
            decision,
            request.id,
            ranking,
            top_k if request.top_k is not None else None,
        )

    def _runs_inline(self, rows: int, *, arrays: bool = True) -> bool:
        """Whether work on ``rows`` rows runs on the event loop: a few rows always; from
        ``offload_rows`` on, array work while this turn's budget allows (``_claim_inline``)."""
        return rows < self._offload_rows or (arrays and self._claim_inline(rows))

    def _claim_inline(self, rows: int) -> bool:
        """Whether ``rows`` rows of array work (an array batch's inference, or an answer's
        rendering) may run inline: while the inline rows of this turn of the event loop stay
        under ``offload_array_rows``. Under many connections, a turn that ran every ready
        batch inline would keep health probes waiting for all of them (docs/performance.md);
        so a turn grows by a bounded amount of work, and the rest takes the thread hop."""
        claimed = self._inline_rows + rows
        if claimed >= self._offload_array_rows:
            return False
        if not self._inline_rows:
            # Callbacks scheduled during a turn run in the next one: the count lasts a turn.
            asyncio.get_running_loop().call_soon(self._next_turn)
        self._inline_rows = claimed
        return True

    def _next_turn(self) -> None:
        self._inline_rows = 0

    async def render(self, rows: int, render: Callable[..., Done], *args: Any) -> Done:
        """A codec's rendering of the answer to a request of ``rows`` rows: inline for a few
        rows, or while this turn's array work allows (``_claim_inline``: the hop to another
        thread costs a 1000-row batch more than its rendering, about a third of its
        throughput); else in a thread of its own, so that thousands of rows written as JSON
        do not hold up the event loop and its health probes. Not in the inference pool:
        queued behind other batches' predictions, every batch would stay in flight about
        twice as long (tests/robustness/test_overload.py, 64 connections of 1000-row batches:
        health probe p99 71 ms that way, 11 ms this way)."""
        if self._runs_inline(rows):  # answers are always rendered from arrays
            return render(*args)
        return await asyncio.get_running_loop().run_in_executor(self._renderer, render, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._renderer.shutdown(wait=True, cancel_futures=True)

    def refuse_when_full(self) -> None:
        """Refuse a request before its body is even read when the limit is already reached:
        a refusal must cost next to nothing, or refusing is what overloads the worker."""
        if self.rows_in_flight >= self._max_inflight_rows:
            # The body is left unread, so the connection closes after the answer (reading a
            # body only to refuse it is what a refusal must not cost).
            self._refuse(close=True)

    def _admit(self, rows: int) -> None:
        """Refuse work past the limit; a lone request is always admitted (max_rows bounds it)."""
        if self.rows_in_flight and self.rows_in_flight + rows > self._max_inflight_rows:
            self._refuse()

    def _refuse(self, *, close: bool = False) -> None:
        self.metrics.observe_overload()
        refusal = Overloaded(
            f"the server is at its limit of {self._max_inflight_rows} rows in flight; "
            "retry shortly",
            retry_after=self._retry_after,
        )
        if close:
            refusal.headers["Connection"] = "close"
        raise refusal


def thresholds_for(model: Model, value: object, *, field: str) -> NDArray[np.float32]:
    """The model's thresholds with a request's override: one number for every label, or some
    labels by name. Anything else (booleans, strings, out of [0, 1]) is refused."""
    if value is None:
        return model.default_thresholds
    if _is_probability(value):
        return np.full(len(model.metadata.labels), value, dtype=np.float32)
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"{field}: must be a number in [0, 1], or an object mapping label names to such "
            f"numbers; got {shown(value)}",
            field=field,
        )
    thresholds = model.default_thresholds.copy()
    positions = {label: index for index, label in enumerate(model.metadata.labels)}
    for label, number in value.items():
        where = f"{field}.{str(label)[:SHOWN_LENGTH]}"
        if label not in positions:
            raise InvalidRequest(
                f"{field}: unknown label {shown(label)}; labels are "
                f"{', '.join(model.metadata.labels)}",
                field=where,
            )
        if not _is_probability(number):
            raise InvalidRequest(
                f"{field}: label {shown(label)} needs a number in [0, 1], got {shown(number)}",
                field=where,
            )
        thresholds[positions[label]] = number
    return thresholds


def outputs_named(
    names: Sequence[object], decision: Decision = "labels", fields: Fields = DEFAULT_FIELDS
) -> tuple[Output, ...]:
    """The outputs a request asks for, in its order. Unknown or repeated names are refused, and
    so are outputs that do not go with the decision: the set outputs without ``set``, and
    ``set`` with nothing that shows the sets it chose."""
    chosen: list[Output] = []
    for position, name in enumerate(names):
        where = fields.output(position)
        if name not in OUTPUTS:
            raise InvalidRequest(
                f"unknown output {shown(name)}; the outputs are {', '.join(OUTPUTS)}", field=where
            )
        if name in chosen:
            raise InvalidRequest(f"output {name!r} is asked for twice", field=where)
        if decision == "labels" and name in SET_OUTPUTS:
            raise InvalidRequest(
                f"{where}: output {name!r} comes with decision 'set' only "
                f"({fields.decision}: \"set\"); this request's decision is 'labels'",
                field=where,
            )
        chosen.append(name)
    if decision == "set" and not any(name in SHOWING_SETS for name in chosen):
        raise InvalidRequest(
            f"{fields.outputs}: asks for none of the outputs that show decision 'set' "
            f"({', '.join(SHOWING_SETS)})",
            field=fields.outputs,
        )
    return tuple(chosen)


def decision_named(value: object, *, field: str) -> Decision:
    """The decision a request asks for; ``labels`` when it names none."""
    if value is None or value == "labels":
        return "labels"
    if value == "set":
        return "set"
    raise InvalidRequest(
        f"{field}: unknown decision {shown(value)}; the decisions are {', '.join(DECISIONS)}",
        field=field,
    )


def top_k_for(model: Model, request: InferenceRequest, fields: Fields) -> int:
    """How many label sets a ``set`` decision ranks for each row: ``top_k`` (an integer from 1
    to the number of sets the model gives a probability), or 1. No threshold may come with it:
    the most probable set is no threshold's decision."""
    if request.thresholds is not None:
        raise InvalidRequest(
            f"{fields.thresholds}: decision 'set' takes the most probable label set, which no "
            "threshold decides; send no threshold with it",
            field=fields.thresholds,
        )
    count = model.label_set_count
    if not count:
        raise InvalidRequest(
            f"{fields.decision}: this model has {len(model.metadata.labels)} labels and no "
            f"label-set head: the product of its marginals is ranked over the 2^labels sets "
            f"of at most {MAX_PRODUCT_LABELS} labels",
            field=fields.decision,
        )
    value = request.top_k
    if value is None:
        return 1
    if type(value) is not int or not 1 <= value <= count:
        raise InvalidRequest(
            f"{fields.top_k}: must be an integer from 1 to {count} (the label sets this model "
            f"ranks), got {shown(value)}",
            field=fields.top_k,
        )
    return value


def _top_k_without_sets(fields: Fields) -> InvalidRequest:
    return InvalidRequest(
        f"{fields.top_k}: ranks label sets, which decision 'labels' does not; ask for "
        f'{fields.decision} "set" with it',
        field=fields.top_k,
    )


def _is_probability(value: object) -> bool:
    return isinstance(value, int | float) and type(value) is not bool and 0.0 <= value <= 1.0


def _row_count(inputs: Rows | Sequence[Tensor], model: Model, field: str) -> int:
    """How many rows the request holds, from its envelope alone: its rows, or the shape of
    its one input tensor, checked against the model (name, datatype, shape, and the size of
    raw values: all cheap, so made before the request is admitted)."""
    if isinstance(inputs, Rows):
        if isinstance(inputs.values, NumberArray):
            return len(inputs.values)
        return len(row_list(inputs.values, inputs.field))
    tensor = _the_input(inputs, model, field)
    rows: int = tensor.shape[0]
    data = tensor.data
    if isinstance(data, bytes | memoryview):
        expected = rows * model.n_features * FLOAT32_BYTES
        if len(data) != expected:
            raise BadRequest(
                f"{tensor.data_field}: {len(data)} bytes, but shape {tensor.shape} of "
                f"{INPUT_DATATYPE} needs {expected}",
                field=tensor.data_field,
            )
    elif not (tensor.typed or isinstance(data, list | NumberArray)):
        kind = "missing" if data is None else f"a {type(data).__name__}"
        raise InvalidRequest(
            f"{tensor.data_field} must be a list, got {kind}", field=tensor.data_field
        )
    return rows


def _in_arrays(inputs: Rows | Sequence[Tensor]) -> bool:
    """Whether the request's values arrived as an array (raw bytes, a wire's typed numbers,
    JSON read into a NumberArray): converted and checked at numpy's speed."""
    if isinstance(inputs, Rows):
        return isinstance(inputs.values, NumberArray)
    tensor = inputs[0]  # one input, checked by _row_count
    return tensor.typed or isinstance(tensor.data, bytes | memoryview | NumberArray)


def _the_input(tensors: Sequence[Tensor], model: Model, field: str) -> Tensor:
    """The one input tensor, with its name, datatype and shape as the model declares them."""
    if len(tensors) != 1:
        raise InvalidRequest(
            f"expected one input tensor, {INPUT_NAME!r}, got {len(tensors)}", field=field
        )
    tensor = tensors[0]
    if tensor.name != INPUT_NAME:
        raise InvalidRequest(
            f"unknown input {shown_name(tensor.name)}; the model's input is {INPUT_NAME!r}",
            field=f"{tensor.field}.name",
        )
    if tensor.datatype != INPUT_DATATYPE:
        raise InvalidRequest(
            f"input {INPUT_NAME!r} has datatype {INPUT_DATATYPE}, got "
            f"{shown_name(tensor.datatype)}",
            field=f"{tensor.field}.datatype",
        )
    shape, width = tensor.shape, model.n_features
    if not (
        isinstance(shape, list)
        and len(shape) == 2
        and all(type(size) is int for size in shape)
        and shape[1] == width
        and shape[0] >= 0
    ):
        raise InvalidRequest(
            f"shape must be [rows, {width}], got {shown(shape)}", field=f"{tensor.field}.shape"
        )
    return tensor


def _features(inputs: Rows | Sequence[Tensor], model: Model, rows: int) -> NDArray[np.float32]:
    """The request's values as a validated float32 matrix [rows, features]."""
    names = model.metadata.features
    if isinstance(inputs, Rows):
        if isinstance(inputs.values, NumberArray):
            return features_from_numbers(inputs.values, names)
        return features_from_rows(
            inputs.values,
            names,
            named_rows=inputs.named,
            booleans_possible=inputs.booleans_possible,
            what=inputs.field,
        )
    tensor = inputs[0]
    data = tensor.data
    if isinstance(data, bytes | memoryview):
        return features_from_bytes(data, rows, names)
    if tensor.typed:
        return features_from_typed(np.fromiter(data, np.float32, len(data)), rows, names)
    if isinstance(data, NumberArray):
        if data.rows is not None:
            _check_nested_rows(data.rows, rows, tensor.data_field)
        return features_from_numbers(data, names, rows)
    if data and isinstance(data[0], list):
        _check_nested_rows(len(data), rows, tensor.data_field)
        return features_from_rows(
            data, names, booleans_possible=tensor.booleans_possible, what=tensor.data_field
        )
    return features_from_flat(data, rows, names, booleans_possible=tensor.booleans_possible)


def _check_nested_rows(given: int, rows: int, field: str) -> None:
    if given != rows:
        raise InvalidRequest(f"data has {given} rows but shape says {rows}", field=field)


def _predict(
    model: Model,
    inputs: Rows | Sequence[Tensor],
    rows: int,
    thresholds: NDArray[np.float32],
    top_k: int | None = None,
) -> tuple[Prediction, LabelSetRanking | None, OutOfRange]:
    """Convert, predict, check: the part of a request whose cost grows with its rows. With
    ``top_k`` (decision "set"), the label sets are ranked from the same run of the network."""
    features = _features(inputs, model, rows)
    if top_k is None:
        prediction = model.predict(features, thresholds)
        ranking = None
    else:
        prediction, ranking = model.rank_label_sets(features, top_k)
    out_of_range = model.out_of_range(features)
    _check_finite(prediction.probabilities)
    if ranking is not None:
        _check_finite(ranking.probabilities)
    return prediction, ranking, out_of_range


def _check_finite(probabilities: NDArray[np.float32]) -> None:
    """A network can overflow to NaN on inputs within float32 range: never answer those."""
    if len(probabilities) <= SMALL_BATCH_ROWS:  # Python beats numpy's per-call cost here
        if all(map(math.isfinite, probabilities.ravel().tolist())):
            return
    elif np.isfinite(probabilities).all():
        return
    finite = np.isfinite(probabilities).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)
        listed = ", ".join(str(row) for row in rows[:10].tolist())
        more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        raise InvalidInput(
            f"the model gives no finite probabilities for row {listed}{more}: "
            "the input is too far outside what it was trained on",
            row=int(rows[0]),
        )


# Conversion: decoded request data to a validated float32 feature matrix, for every protocol.
# Each rule has one home here: a row has exactly the model's features; every value is a number
# (not a boolean, string or null), finite and within float32 range. Errors say which row and
# which feature. The common case (well-formed numbers) is converted by numpy in one call; only
# when that fails does a row-by-row pass run, to find and name the first problem. Numbers a
# codec already read straight from its wire into an array (``NumberArray``) are checked on the
# array.

FLOAT32_MAX = float(np.finfo(np.float32).max)
LITTLE_ENDIAN_FLOAT32 = np.dtype("<f4")
# Typed arrays for flat data, tried in order: all ints, then ints and floats.
_TYPED_ARRAYS = (("q", np.int64), ("d", np.float64))
_JSON_TYPE_NAMES = {
    bool: "a boolean",
    str: "a string",
    type(None): "null",
    list: "a list",
    dict: "an object",
}


@dataclass(frozen=True, slots=True)
class NumberArray:
    """A JSON array of numbers that a codec read straight into float64, without a Python
    object per number (app/codecs/json_numbers.py): ``values`` flat in row-major order; the
    array was flat (``rows`` None), or ``rows`` arrays of ``width`` numbers each. Anything
    else (ragged rows, values that are not numbers) stays a Python list, checked value by
    value."""

    values: NDArray[np.float64]
    rows: int | None = None
    width: int = 0

    def __len__(self) -> int:
        return len(self.values) if self.rows is None else self.rows


def row_list(rows: Any, what: str) -> list[Any]:
    """The request's rows, which must come as a JSON list (their contents are checked later)."""
    if not isinstance(rows, list):
        raise InvalidRequest(f"{what} must be a list of rows, got {_json_type(rows)}", field=what)
    return rows


def check_row_count(count: int, max_rows: int) -> None:
    if count == 0:
        raise InvalidInput("no rows: send at least one instance")
    if count > max_rows:
        raise TooManyRows(count, max_rows)


def features_from_rows(
    rows: list[Any],
    feature_names: Sequence[str],
    *,
    named_rows: bool = False,
    booleans_possible: bool = True,
    what: str = "instances",
) -> NDArray[np.float32]:
    """Rows given as lists of numbers in feature order, or (``named_rows``) also as objects
    keyed by feature name. ``rows`` is a list (``row_list``) of an admitted count."""
    width = len(feature_names)
    if len(rows) <= SMALL_BATCH_ROWS:
        few = _few_rows_of_numbers(rows, width)
        if few is not None:
            return few
    if not booleans_possible:
        matrix = _rows_of_numbers(rows, width)
        if matrix is not None:
            return _to_float32(matrix, feature_names)
    values = [_row_values(row, index, feature_names, named_rows) for index, row in enumerate(rows)]
    return _to_float32(np.asarray(values, dtype=np.float64), feature_names)


def features_from_flat(
    data: list[Any], rows: int, feature_names: Sequence[str], *, booleans_possible: bool = True
) -> NDArray[np.float32]:
    """A tensor's values flat in row-major order, ``rows`` by the model's features."""
    width = len(feature_names)
    _check_flat_size(len(data), rows, width)
    if booleans_possible:
        # The types of flat values are collected at C speed: tritonclient's JSON always holds
        # a boolean ("binary_data": false), which would otherwise send every value through
        # the value-by-value check below.
        booleans_possible = bool in set(map(type, data))
    flat = None if booleans_possible else _flat_numbers(data)
    if flat is None or flat.ndim != 1:
        for position, value in enumerate(data):
            _check_number(value, position // width, feature_names[position % width])
        flat = np.asarray(data, dtype=np.float64)
    return _to_float32(flat.reshape(rows, width), feature_names)


def features_from_numbers(
    numbers: NumberArray, feature_names: Sequence[str], rows: int | None = None
) -> NDArray[np.float32]:
    """Numbers read straight from JSON text: flat ones, ``rows`` by the model's features, or
    rows that all have the same count of numbers, which must be the model's. Every value is a
    number already; finiteness and float32 range are checked on the array."""
    width = len(feature_names)
    if numbers.rows is None:
        assert rows is not None, "flat numbers need the row count of their shape"
        _check_flat_size(len(numbers.values), rows, width)
        return _to_float32(numbers.values.reshape(rows, width), feature_names)
    if numbers.width != width:  # every row has the same count: the first one is named
        raise InvalidInput(f"row 0: expected {width} values, got {numbers.width}", row=0)
    return _to_float32(numbers.values.reshape(numbers.rows, width), feature_names)


def features_from_bytes(
    raw: bytes | memoryview, rows: int, feature_names: Sequence[str]
) -> NDArray[np.float32]:
    """Little-endian float32 values in row-major order (a binary tensor), checked finite."""
    matrix = np.frombuffer(raw, dtype=LITTLE_ENDIAN_FLOAT32).reshape(rows, len(feature_names))
    if rows <= SMALL_BATCH_ROWS:
        if all(map(math.isfinite, matrix.ravel().tolist())):
            return matrix  # a few values: checked faster in Python than by numpy's calls
    elif np.isfinite(matrix).all():
        return matrix.astype(np.float32, copy=False)
    _refuse_first(~np.isfinite(matrix), matrix, feature_names, "is not a finite number")
    return matrix.astype(np.float32, copy=False)


def features_from_typed(
    values: NDArray[Any], rows: int, feature_names: Sequence[str]
) -> NDArray[np.float32]:
    """Numbers a wire already typed (a flat array), ``rows`` by the model's features, checked
    finite."""
    width = len(feature_names)
    _check_flat_size(len(values), rows, width)
    matrix = values.astype(np.float32, copy=False).reshape(rows, width)
    if not np.isfinite(matrix).all():
        _refuse_first(~np.isfinite(matrix), matrix, feature_names, "is not a finite number")
    return matrix


def _check_flat_size(size: int, rows: int, width: int) -> None:
    if size != rows * width:
        raise InvalidInput(
            f"data has {size} values but shape [{rows}, {width}] needs {rows * width}"
        )


def _few_rows_of_numbers(rows: list[Any], width: int) -> NDArray[np.float32] | None:
    """A few well-formed rows, checked value by value in Python (for so few values, faster
    than numpy's calls); None for anything else, which the general path then names."""
    values: list[float] = []
    for row in rows:
        if type(row) is not list or len(row) != width:
            return None
        for value in row:
            kind = type(value)  # exact types: a boolean is not a number here
            if kind is float:
                if not abs(value) <= FLOAT32_MAX:  # also NaN
                    return None
            elif kind is int:
                value = float(value)  # as the general path: through float64, then float32
                if not abs(value) <= FLOAT32_MAX:
                    return None
            else:
                return None
            values.append(value)
    return np.array(values, dtype=np.float32).reshape(len(rows), width)


def _rows_of_numbers(rows: list[Any], width: int) -> NDArray[Any] | None:
    """Rows that are all lists of ``width`` numbers, as a matrix; None for anything else."""
    try:
        flat = list(chain.from_iterable(rows))
    except TypeError:  # a row that is not a list at all
        return None
    if len(flat) != len(rows) * width or set(map(len, rows)) != {width}:
        return None
    numbers = _flat_numbers(flat)  # rows given as objects fail here: their keys are strings
    if numbers is None or numbers.ndim != 1:  # values that are lists themselves: not numbers
        return None
    return numbers.reshape(len(rows), width)


def _flat_numbers(values: list[Any]) -> NDArray[Any] | None:
    """A flat list of numbers as a 1-d array, or None. The standard library's typed arrays
    take a list of ints (or of ints and floats) in one C loop, faster than numpy infers a
    dtype, and refuse anything else; numpy's own conversion then decides."""
    for code, dtype in _TYPED_ARRAYS:
        try:
            return np.frombuffer(array.array(code, values), dtype=dtype)
        except (TypeError, OverflowError):
            continue
    return _numeric_array(values)


def _numeric_array(values: list[Any]) -> NDArray[Any] | None:
    """numpy's own conversion, kept only when it found nothing but numbers."""
    try:
        converted = np.array(values)
    except (ValueError, TypeError, OverflowError):
        return None  # ragged rows or values numpy cannot hold: the slow pass names them
    return converted if converted.dtype.kind in "iuf" else None


def _row_values(row: Any, index: int, feature_names: Sequence[str], named_rows: bool) -> list[Any]:
    width = len(feature_names)
    if isinstance(row, list):
        if len(row) != width:
            raise InvalidInput(f"row {index}: expected {width} values, got {len(row)}", row=index)
        values = row
    elif isinstance(row, dict) and named_rows:
        values = _values_by_name(row, index, feature_names)
    else:
        expected = f"a list of {width} numbers" + (
            " or an object keyed by feature name" if named_rows else ""
        )
        raise InvalidInput(f"row {index}: expected {expected}, got {_json_type(row)}", row=index)
    for name, value in zip(feature_names, values, strict=True):
        _check_number(value, index, name)
    return values


def _values_by_name(row: dict[str, Any], index: int, feature_names: Sequence[str]) -> list[Any]:
    known = set(feature_names)
    for key in row:
        if key not in known:
            raise InvalidInput(
                f"row {index}: unknown feature {shown(key)}",
                row=index,
                field=str(key)[:SHOWN_LENGTH],
            )
    for name in feature_names:
        if name not in row:
            raise InvalidInput(f"row {index}: missing feature {name!r}", row=index, field=name)
    return [row[name] for name in feature_names]


def _check_number(value: Any, row: int, feature: str) -> None:
    if type(value) is bool or not isinstance(value, int | float):
        raise InvalidInput(
            f"row {row}, feature {feature}: expected a number, got {_json_type(value)}",
            row=row,
            field=feature,
        )


def _to_float32(matrix: NDArray[Any], feature_names: Sequence[str]) -> NDArray[np.float32]:
    """Refuse values a float32 model cannot take (non-finite or beyond float32), then cast."""
    if matrix.dtype.kind in "iu":
        # Integers (JSON's fit in 64 bits) are finite and within float32 range: nothing to
        # check. Cast through float64 like every other value, so they round the same way.
        return matrix.astype(np.float64).astype(np.float32)
    matrix = matrix.astype(np.float64, copy=False)
    outside = ~(np.abs(matrix) <= FLOAT32_MAX)  # also catches NaN
    _refuse_first(outside, matrix, feature_names, "is not a finite number within float32 range")
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _refuse_first(
    bad: NDArray[np.bool_], matrix: NDArray[Any], feature_names: Sequence[str], problem: str
) -> None:
    """Raise for the first flagged value in row order, naming its row and feature."""
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise InvalidInput(
            f"row {row}, feature {feature_names[column]}: {float(matrix[row, column])} {problem}",
            row=row,
            field=feature_names[column],
        )


def _json_type(value: Any) -> str:
    if isinstance(value, int | float) and type(value) is not bool:
        return "a number"
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
