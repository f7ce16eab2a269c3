"""The native protocol: ``POST /predict`` with rows as lists or objects keyed by feature name,
and the health probes ``/health/live``, ``/health/ready`` and ``/health``.

Answers by row (the default: probabilities by label name, the labels that are on, a 0/1
vector, out-of-range warnings) or, with ``"format": "columns"``, one array per label. With
``"decision": "set"`` the labels are each row's most probable label set, with its probability
(``set_probability``) and, with ``"top_k": k``, the k most probable sets (``top_sets``); the
answer says where those probabilities come from (``label_set_source``). Errors
are ``{"error": {"code", "message", "row", "field"}}``: the native API's one error shape, also
used by the control plane (``/metadata``, ``/metrics``...).
"""

from __future__ import annotations

from functools import lru_cache
from itertools import compress
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from app.codecs.base import (
    Call,
    Codec,
    Operation,
    Reply,
    error_headers,
    json_reply,
    may_contain_booleans,
    validate_envelope,
)
from app.codecs.json_numbers import Bulk, decode_json_numbers
from app.codecs.native_schemas import (
    ColumnsResponse,
    ErrorResponse,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    SetColumnsResponse,
    SetPredictResponse,
)
from app.dataplane import InferenceRequest, InferenceResult, NumberArray, Rows
from app.errors import ServiceError
from app.inference import SMALL_BATCH_ROWS, LabelSetRanking, Model

PREDICT_PATH = "/predict"
MAX_TABLED_LABELS = 10  # one precomputed row ending per label combination: 2**10 at most
INSTANCES = (Bulk(("instances",)),)


async def predict(call: Call) -> Reply:
    """Per-label probabilities and thresholded label sets for one or many rows."""
    dataplane = call.dataplane
    document = decode_json_numbers(call.body, INSTANCES, dataplane.max_rows)
    payload = validate_envelope(PredictRequest, document)
    instances = payload.instances
    rows = Rows(
        instances,
        "instances",
        named=True,
        booleans_possible=not isinstance(instances, NumberArray)
        and may_contain_booleans(call.body),
    )
    request = InferenceRequest(
        rows, thresholds=payload.threshold, decision=payload.decision, top_k=payload.top_k
    )
    result = await dataplane.infer(request)
    render = RENDERERS[payload.format, result.decision]
    body = await dataplane.render(result.rows, render, result)
    return Reply(body, rows=result.rows, model=(result.model.name, result.model.version))


async def live(call: Call) -> Reply:
    """200 while the process runs, model or not (a liveness probe)."""
    return _LIVE


_LIVE = json_reply({"status": "live"})


async def ready(call: Call) -> Reply:
    """200 once a model version is loaded and passed its checks, else 503 with why."""
    return _readiness(call)


async def health(call: Call) -> Reply:
    """Readiness with the served model's name and version."""
    return _readiness(call)


def _readiness(call: Call) -> Reply:
    readiness = call.dataplane.readiness()
    model = readiness.model
    if model is None:
        return json_reply({"status": "not_ready", "reason": readiness.reason}, 503)
    return json_reply({"status": "ready", "model": {"name": model.name, "version": model.version}})


def render_error(error: ServiceError) -> Reply:
    document = {
        "error": {
            "code": error.code,
            "message": error.message,
            "row": error.row,
            "field": error.field,
        }
    }
    return Reply(orjson.dumps(document), error.status_code, headers=error_headers(error))


def render_columns(result: InferenceResult) -> bytes:
    """The ``"format": "columns"`` answer: one array per label."""
    head = _dumps({**_head(result), **_label_columns(result)})
    warnings = _warning_fragments(result, with_row=True)
    return b"".join([head[:-1], b',"warnings":[', b",".join(warnings), b"]}"])


def _label_columns(result: InferenceResult) -> dict[str, Any]:
    """``probabilities`` and ``decisions``, one array per label."""
    labels = result.model.metadata.labels
    # orjson writes C-contiguous arrays only: each label's column, made contiguous.
    probabilities = np.ascontiguousarray(result.probabilities.T)
    decisions = np.ascontiguousarray(result.positives.T, dtype=np.uint8)
    return {
        "probabilities": dict(zip(labels, probabilities, strict=True)),
        "decisions": dict(zip(labels, decisions, strict=True)),
    }


def render_rows(result: InferenceResult) -> bytes:
    """The default answer, one object per row, assembled from fragments: byte for byte what
    orjson writes from the equivalent dicts (tests/app/codecs/test_native.py checks it),
    without building them.

    A row is its probabilities, written by orjson from one array (float32 values in their
    shortest form) between fixed key fragments; then the ending for its label set (``labels``,
    ``vector``, the start of ``warnings``); then its warnings.
    """
    rows, width = result.probabilities.shape
    labels = tuple(result.model.metadata.labels)
    keys = _probability_keys(labels)
    values = _dumps(result.probabilities.ravel())[1:-1].split(b",")
    endings = _row_endings(result.positives, labels)
    warnings = [b"[]}"] * rows
    for row, found in _warnings_by_row(result):
        warnings[row] = b"[" + b",".join(found) + b"]}"
    head = _head_bytes(result) + b',"predictions":['
    if rows <= SMALL_BATCH_ROWS:  # plain Python: numpy's per-call cost outweighs its speed
        body = b",".join(
            b"".join([*_interleave(keys, values[row * width : (row + 1) * width]), end, tail])
            for row, (end, tail) in enumerate(zip(endings, warnings, strict=True))
        )
        return b"".join([head, body, b"]}"])
    stride = 2 * width + 2  # a row: key, value, ..., key, value, ending, warnings
    parts = [b""] * (rows * stride)
    parts[0::stride] = [b"," + keys[0]] * rows
    parts[0] = keys[0]
    for column in range(width):
        if column:
            parts[2 * column :: stride] = [keys[column]] * rows
        parts[2 * column + 1 :: stride] = values[column::width]
    parts[stride - 2 :: stride] = endings
    parts[stride - 1 :: stride] = warnings
    return b"".join([head, *parts, b"]}"])


def render_set_rows(result: InferenceResult) -> bytes:
    """The answer of decision "set", one object per row: its probabilities, its most probable
    label set (``labels``, ``vector``, ``set_probability``), the top k sets when asked, and
    its warnings."""
    labels = result.model.metadata.labels
    ranking = _ranking(result)
    warnings = [b"[]"] * result.rows
    for row, found in _warnings_by_row(result):
        warnings[row] = b"[" + b",".join(found) + b"]"
    top_sets = _top_sets(result)
    rows = []
    for row, (probabilities, vector) in enumerate(
        zip(result.probabilities, result.positives.view(np.uint8), strict=True)
    ):
        document: dict[str, Any] = {
            "probabilities": dict(zip(labels, probabilities, strict=True)),
            "labels": list(compress(labels, vector.tolist())),
            "vector": vector,
            "set_probability": ranking.probabilities[row, 0],
        }
        if top_sets is not None:
            document["top_sets"] = top_sets[row]
        rows.append(_dumps(document)[:-1] + b',"warnings":' + warnings[row] + b"}")
    return b"".join([_set_head(result)[:-1], b',"predictions":[', b",".join(rows), b"]}"])


def render_set_columns(result: InferenceResult) -> bytes:
    """The ``"format": "columns"`` answer of decision "set": one array per label for the
    probabilities and for the most probable set's labels, then the set's probability by row,
    the top k sets of each row when asked, and the warnings."""
    document: dict[str, Any] = {
        **_label_columns(result),
        "set_probability": np.ascontiguousarray(_ranking(result).probabilities[:, 0]),
    }
    top_sets = _top_sets(result)
    if top_sets is not None:
        document["top_sets"] = top_sets
    warnings = _warning_fragments(result, with_row=True)
    body = _dumps(document)
    return b"".join(
        [_set_head(result)[:-1], b",", body[1:-1], b',"warnings":[', b",".join(warnings), b"]}"]
    )


def _ranking(result: InferenceResult) -> LabelSetRanking:
    ranking = result.label_sets
    assert ranking is not None, "a set answer without its label sets"
    return ranking


def _set_head(result: InferenceResult) -> bytes:
    """``{"model":...,"decision":"set","label_set_source":...}``."""
    model = result.model
    head = {
        "model": {"name": model.name, "version": model.version},
        "decision": result.decision,
        "label_set_source": _ranking(result).source,
    }
    return _dumps(head)


def _top_sets(result: InferenceResult) -> list[list[dict[str, Any]]] | None:
    """Each row's k most probable sets as ``{"labels", "probability"}``, when the request
    asked for ``top_k``."""
    if result.top_k is None:
        return None
    labels = result.model.metadata.labels
    ranking = _ranking(result)
    return [
        [
            {"labels": list(compress(labels, chosen)), "probability": probability}
            for chosen, probability in zip(sets.tolist(), probabilities, strict=True)
        ]
        for sets, probabilities in zip(ranking.sets, ranking.probabilities, strict=True)
    ]


RENDERERS = {
    ("rows", "labels"): render_rows,
    ("columns", "labels"): render_columns,
    ("rows", "set"): render_set_rows,
    ("columns", "set"): render_set_columns,
}


def _interleave(keys: list[bytes], values: list[bytes]) -> list[bytes]:
    return [part for pair in zip(keys, values, strict=True) for part in pair]


@lru_cache(maxsize=8)
def _probability_keys(labels: tuple[str, ...]) -> list[bytes]:
    """What precedes each probability in a row: ``{"probabilities":{"label_0":``, then
    ``,"label_1":`` and so on."""
    keys = [b"," + orjson.dumps(label) + b":" for label in labels]
    keys[0] = b'{"probabilities":{' + keys[0][1:]
    return keys


def _row_endings(positives: NDArray[np.bool_], labels: tuple[str, ...]) -> list[bytes]:
    """Each row's ending, looked up by the number its decisions' bits make (made once per
    label combination), or made on the spot where there are too many combinations."""
    if len(labels) > MAX_TABLED_LABELS:
        return [_ending(labels, [int(on) for on in row]) for row in positives.tolist()]
    table = _label_set_endings(labels)
    if len(positives) <= SMALL_BATCH_ROWS:
        return [table[sum(1 << i for i, on in enumerate(row) if on)] for row in positives.tolist()]
    codes = positives.astype(np.intp) @ (1 << np.arange(len(labels), dtype=np.intp))
    return [table[code] for code in codes.tolist()]


@lru_cache(maxsize=8)
def _label_set_endings(labels: tuple[str, ...]) -> list[bytes]:
    """For each label combination (its bits numbering it), the end of a row up to its
    warnings."""
    return [
        _ending(labels, [(code >> column) & 1 for column in range(len(labels))])
        for code in range(1 << len(labels))
    ]


def _ending(labels: tuple[str, ...], vector: list[int]) -> bytes:
    """``},"labels":[...],"vector":[...],"warnings":`` for one row's decisions."""
    return b"".join(
        [
            b'},"labels":',
            orjson.dumps(list(compress(labels, vector))),
            b',"vector":',
            orjson.dumps(vector),
            b',"warnings":',
        ]
    )


def _dumps(document: Any) -> bytes:
    """orjson with numpy arrays: float32 values keep their shortest float32 text."""
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def _head(result: InferenceResult) -> dict[str, Any]:
    model = result.model
    # float32 scalars, which orjson writes in their shortest form (0.7, not 0.699999988079071).
    thresholds = dict(zip(model.metadata.labels, result.thresholds, strict=True))
    return {"model": {"name": model.name, "version": model.version}, "thresholds": thresholds}


def _head_bytes(result: InferenceResult) -> bytes:
    """``{"model":...,"thresholds":...`` without its closing brace: made once per model for
    its default thresholds."""
    if result.thresholds is result.model.default_thresholds:
        return _default_head(result.model)
    return _dumps(_head(result))[:-1]


@lru_cache(maxsize=8)
def _default_head(model: Model) -> bytes:
    head = {
        "model": {"name": model.name, "version": model.version},
        "thresholds": dict(zip(model.metadata.labels, model.default_thresholds, strict=True)),
    }
    return _dumps(head)[:-1]


def _warnings_by_row(result: InferenceResult) -> list[tuple[int, list[bytes]]]:
    """Each row that has warnings, with its warnings as JSON objects."""
    found = result.out_of_range
    if not len(found):
        return []
    fragments = _warning_fragments(result, with_row=False)
    rows, starts = np.unique(found.rows, return_index=True)
    ends = [*starts[1:].tolist(), len(fragments)]
    return [
        (row, fragments[start:end])
        for row, start, end in zip(rows.tolist(), starts.tolist(), ends, strict=True)
    ]


def _warning_fragments(result: InferenceResult, *, with_row: bool) -> list[bytes]:
    """``{"row"?, "feature", "value", "train_range"}`` for each value outside the training
    range, as orjson writes them (the value in its shortest float32 form)."""
    found = result.out_of_range
    if not len(found):
        return []
    names, ranges = _feature_fragments(result.model)
    values = _dumps(found.values)[1:-1].split(b",")
    rows = [b'{"row":%d,' % row for row in found.rows.tolist()] if with_row else None
    return [
        b"".join(
            [
                rows[index] if rows else b"{",
                b'"feature":',
                names[column],
                b',"value":',
                value,
                b',"train_range":',
                ranges[column],
                b"}",
            ]
        )
        for index, (column, value) in enumerate(zip(found.columns.tolist(), values, strict=True))
    ]


@lru_cache(maxsize=8)
def _feature_fragments(model: Model) -> tuple[list[bytes], list[bytes]]:
    """Each feature's name and training range as JSON, once per loaded model."""
    meta = model.metadata
    names = [orjson.dumps(name) for name in meta.features]
    ranges = [orjson.dumps([bounds.min, bounds.max]) for bounds in meta.feature_ranges]
    return names, ranges


ERROR_DESCRIPTIONS = {
    400: "Malformed JSON",
    401: "Missing or wrong API key (when keys are configured)",
    405: "Method not allowed",
    408: "The request body did not arrive in time",
    404: "Unknown model or version",
    413: "Body or row count over the limit",
    415: "Body is not JSON",
    422: "Invalid request or input values",
    503: "No model loaded, or the server is at its limit of work (see Retry-After)",
}

_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthResponse, "description": "No model loaded; see reason"}
}


def _probe(path: str, handler: Any, summary: str, **documentation: Any) -> Operation:
    return Operation(
        "GET",
        path,
        handler,
        summary,
        HealthResponse,
        public=True,
        probe=True,
        **documentation,
    )


CODEC = Codec(
    name="native",
    tag="native",
    operations=[
        Operation(
            "POST",
            PREDICT_PATH,
            predict,
            summary="Predict labels",
            request_model=PredictRequest,
            response_model=PredictResponse
            | ColumnsResponse
            | SetPredictResponse
            | SetColumnsResponse,
            errors=(400, 401, 408, 413, 415, 422, 503),
        ),
        _probe("/health/live", live, "Live"),
        _probe("/health/ready", ready, "Ready", responses=_NOT_READY),
        _probe("/health", health, "Health", responses=_NOT_READY),
    ],
    render_error=render_error,
    error_model=ErrorResponse,
    error_descriptions=ERROR_DESCRIPTIONS,
)
