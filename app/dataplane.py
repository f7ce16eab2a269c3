"""The data plane: what happens to an inference request once a protocol has decoded it.

Every protocol (``app.codecs``) decodes its wire format into one ``InferenceRequest`` and gets
back one ``InferenceResult``; every rule that decides whether a request is acceptable, and
what it means, lives here or in ``app.features``, so all protocols give the same verdict on
the same input:

- the feature matrix is float32 and finite (``app.features``);
- thresholds are one strict type (a number in [0, 1], or a mapping of label names to such
  numbers; never a boolean or a string) and are compared with the float32 probabilities in
  float32;
- outputs are chosen by name from the model's outputs;
- admission control bounds the rows in flight per worker (503 past it);
- large batches run in a bounded thread pool, off the event loop;
- outputs must be finite, or the request fails naming the rows.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from app.config import Settings
from app.errors import (
    SHOWN_LENGTH,
    InvalidInput,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    shown,
    shown_name,
)
from app.features import check_row_count
from app.inference import SMALL_BATCH_ROWS, Model, OutOfRange
from app.metrics import ServiceMetrics
from app.repository import ModelRepository

Output = Literal["probabilities", "labels"]
OUTPUTS: tuple[Output, ...] = ("probabilities", "labels")
INPUT_NAME = "features"
MAX_VERSION_DIGITS = 18
Encoded = TypeVar("Encoded")


# Per-request objects are plain slotted dataclasses, never changed once made (a frozen
# dataclass costs an object.__setattr__ per field on the hot path).
@dataclass(slots=True)
class InferenceRequest:
    """A decoded request: which model, which rows, which thresholds, which outputs."""

    model: Model
    features: NDArray[np.float32]
    thresholds: NDArray[np.float32]
    outputs: tuple[Output, ...] = OUTPUTS

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])


@dataclass(slots=True)
class InferenceResult:
    """What the model said about a request's rows."""

    request: InferenceRequest
    probabilities: NDArray[np.float32]
    positives: NDArray[np.bool_]
    out_of_range: OutOfRange

    @property
    def model(self) -> Model:
        return self.request.model


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


def outputs_named(names: list[object], *, field: str) -> tuple[Output, ...]:
    """The outputs a request asks for, in its order; unknown or repeated names are refused."""
    chosen: list[Output] = []
    for position, name in enumerate(names):
        where = f"{field}.{position}.name"
        if name not in OUTPUTS:
            raise InvalidRequest(
                f"unknown output {shown(name)}; the outputs are {', '.join(OUTPUTS)}", field=where
            )
        if name in chosen:
            raise InvalidRequest(f"output {name!r} is asked for twice", field=where)
        chosen.append(name)
    return tuple(chosen)


def _is_probability(value: object) -> bool:
    return isinstance(value, int | float) and type(value) is not bool and 0.0 <= value <= 1.0


class DataPlane:
    """Serves decoded requests: model lookup, admission, where the work runs, the result."""

    def __init__(self, repository: ModelRepository, settings: Settings, metrics: ServiceMetrics):
        self.repository = repository
        self.settings = settings
        self.metrics = metrics
        self.rows_in_flight = 0
        self._pool = ThreadPoolExecutor(
            max_workers=settings.offload_threads, thread_name_prefix="inference"
        )

    def model(self, name: str, version: str | None = None) -> Model:
        """The model a path names: its newest version, or the one ``version`` names."""
        if version is None:
            return self.repository.get(name)
        if not (version.isascii() and version.isdigit() and len(version) <= MAX_VERSION_DIGITS):
            self.repository.get(name)  # an unknown or unready model is reported as that first
            raise ModelNotFound(f"version {shown_name(version)} of model {name!r} is not loaded")
        return self.repository.get(name, int(version))

    async def infer(
        self,
        rows: int,
        decode: Callable[[], InferenceRequest],
        encode: Callable[[InferenceResult], Encoded],
    ) -> Encoded:
        """Admit ``rows`` rows, then build the request, predict and encode: inline for small
        batches, in the pool for large ones (converting and checking thousands of values,
        and rendering the answer, would otherwise hold up the event loop and its probes).

        ``rows`` is what the codec read from the request's envelope (its row count or shape),
        so that work is refused before any of it is done.
        """
        check_row_count(rows, self.settings.max_rows)
        self._admit(rows)
        self.rows_in_flight += rows
        try:
            if rows < self.settings.offload_rows:
                # Inline: for a few rows the whole request costs less than a thread hop.
                result, encoded = _decode_predict_encode(decode, encode)
            else:
                loop = asyncio.get_running_loop()
                result, encoded = await loop.run_in_executor(
                    self._pool, _decode_predict_encode, decode, encode
                )
        finally:
            self.rows_in_flight -= rows
        self.metrics.observe_prediction(result.model, result.positives, len(result.out_of_range))
        return encoded

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def refuse_when_full(self) -> None:
        """Refuse a request before its body is even read when the limit is already reached:
        a refusal must cost next to nothing, or refusing is what overloads the worker."""
        if self.rows_in_flight >= self.settings.max_inflight_rows:
            # The body is left unread, so the connection closes after the answer (reading a
            # body only to refuse it is what a refusal must not cost).
            self._refuse(close=True)

    def _admit(self, rows: int) -> None:
        """Refuse work past the limit; a lone request is always admitted (max_rows bounds it)."""
        if self.rows_in_flight and self.rows_in_flight + rows > self.settings.max_inflight_rows:
            self._refuse()

    def _refuse(self, *, close: bool = False) -> None:
        self.metrics.observe_overload()
        refusal = Overloaded(
            f"the server is at its limit of {self.settings.max_inflight_rows} rows in flight; "
            "retry shortly",
            retry_after=self.settings.retry_after,
        )
        if close:
            refusal.headers["Connection"] = "close"
        raise refusal


def _decode_predict_encode(
    decode: Callable[[], InferenceRequest], encode: Callable[[InferenceResult], Encoded]
) -> tuple[InferenceResult, Encoded]:
    request = decode()
    model = request.model
    prediction = model.predict(request.features, request.thresholds)
    _check_finite(prediction.probabilities)
    result = InferenceResult(
        request=request,
        probabilities=prediction.probabilities,
        positives=prediction.positives,
        out_of_range=model.out_of_range(request.features),
    )
    return result, encode(result)


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
