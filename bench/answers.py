"""The check made before every measurement: one request, and its answer must be a 200 of the
right form and shape. A server that answers errors fast must never look fast."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import tritonclient.http as triton  # type: ignore[import-untyped]
from numpy.typing import NDArray

from bench.bodies import Body
from bench.workloads import NATIVE, NATIVE_COLUMNS, V1, V1_COLUMNS, V2_BINARY, V2_JSON, Workload

HEADER_LENGTH = "inference-header-content-length"
PROBABILITIES = "probabilities"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


def send(method: str, url: str, body: Body | None = None, timeout: float = 60) -> Answer:
    request = urllib.request.Request(
        url,
        data=body.content if body else None,
        method=method,
        headers=body.headers() if body else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, _lower(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, _lower(error.headers.items()), error.read())


def _lower(items: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in items}


def problem_with(answer: Answer, workload: Workload, labels: int) -> str | None:
    """None when ``answer`` is a correct answer to ``workload`` (``labels`` per row), else
    what is wrong with it."""
    if answer.status != 200:
        return f"HTTP {answer.status} {answer.body[:300].decode(errors='replace')}"
    try:
        shape = probabilities_in(answer, workload).shape
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        return f"a 200 that is not a {workload.form.name} answer ({type(error).__name__}: {error})"
    if shape != (workload.rows, labels):
        return (
            f"a 200 with {shape[0]} rows of {shape[1]} labels for {workload.rows} rows of {labels}"
        )
    return None


def probabilities_in(answer: Answer, workload: Workload) -> NDArray[np.float32]:
    """The probabilities a 200 answer to ``workload`` holds, one row per request row (raises
    KeyError, ValueError... when the answer is not of the workload's form)."""
    return np.asarray(_PROBABILITIES[workload.form.key](answer), dtype=np.float32)


def problem_with_constant(answer: Answer, expected: bytes) -> str | None:
    """The check for a ceiling: a 200 with its constant reply."""
    if answer.status != 200:
        return f"HTTP {answer.status} {answer.body[:300].decode(errors='replace')}"
    if answer.body != expected:
        return f"a 200 with {answer.body[:100]!r} instead of the constant {expected!r}"
    return None


def _native_rows(answer: Answer) -> list[list[float]]:
    predictions = orjson.loads(answer.body)["predictions"]
    return [list(row[PROBABILITIES].values()) for row in predictions]


def _native_columns(answer: Answer) -> NDArray[np.float32]:
    document = orjson.loads(answer.body)
    columns = document[PROBABILITIES]
    decisions = document["decisions"]
    if set(columns) != set(decisions):
        raise ValueError("probabilities and decisions name different labels")
    lengths = {len(values) for values in (*columns.values(), *decisions.values())}
    if len(lengths) != 1:
        raise ValueError(f"columns of different lengths {sorted(lengths)}")
    return np.asarray(list(columns.values()), dtype=np.float32).T


def _v2_json(answer: Answer) -> NDArray[np.float32]:
    outputs = {output["name"]: output for output in orjson.loads(answer.body)["outputs"]}
    probabilities = outputs[PROBABILITIES]
    rows, labels = probabilities["shape"]
    if len(probabilities["data"]) != rows * labels:
        raise ValueError(f"{len(probabilities['data'])} values for shape {[rows, labels]}")
    return np.asarray(probabilities["data"], dtype=np.float32).reshape(rows, labels)


def _v2_binary(answer: Answer) -> NDArray[np.float32]:
    if HEADER_LENGTH not in answer.headers:
        raise KeyError(f"no {HEADER_LENGTH} header")
    result = triton.InferResult.from_response_body(
        answer.body, header_length=int(answer.headers[HEADER_LENGTH])
    )
    probabilities = result.as_numpy(PROBABILITIES)
    if probabilities is None:
        raise KeyError(f"no {PROBABILITIES} output")
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities of shape {list(probabilities.shape)}")
    return np.asarray(probabilities, dtype=np.float32)


def _v1(answer: Answer) -> list[list[float]]:
    predictions: list[list[float]] = orjson.loads(answer.body)["predictions"]
    return predictions


def _v1_columns(answer: Answer) -> list[list[float]]:
    outputs: list[list[float]] = orjson.loads(answer.body)["outputs"]
    return outputs


_PROBABILITIES: dict[str, Callable[[Answer], NDArray[np.float32] | list[list[float]]]] = {
    NATIVE.key: _native_rows,
    NATIVE_COLUMNS.key: _native_columns,
    V2_JSON.key: _v2_json,
    V2_BINARY.key: _v2_binary,
    V1.key: _v1,
    V1_COLUMNS.key: _v1_columns,
}
