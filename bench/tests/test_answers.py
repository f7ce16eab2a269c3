"""The check made before every measurement: real answers of our service pass it, error
answers and answers of the wrong form or shape are refused, with what is wrong."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from app.inference import load_model
from bench.answers import Answer, probabilities_in, problem_with, problem_with_constant
from bench.bodies import build_body
from bench.ceiling import REPLY
from bench.prepare import ServedModel
from bench.workloads import BY_KEY, NATIVE, Workload

# Every form and size the bench sends: our service must answer each correctly, or the bench
# has nothing to measure.
ANSWERED = [
    "native-1-c32",
    "native-100",
    "native-1000",
    "native-columns-1000",
    "v2-1",
    "v2-1000",
    "v2-binary-1000",
    "v1-1",
    "v1-1000",
]


@cache
def _loaded(version: Path) -> Any:
    return load_model(version)


def model_outputs(version: Path, rows: list[list[int]]) -> np.ndarray:
    """What the model itself gives for ``rows``, computed in this process."""
    return _loaded(version).predict(np.asarray(rows, dtype=np.float32)).probabilities


def post(client: TestClient, workload: Workload, rows: list[list[int]]) -> Answer:
    body = build_body(workload.form, rows)
    response = client.post(workload.form.path, content=body.content, headers=body.headers())
    return answer_of(response)


def answer_of(response: httpx2.Response) -> Answer:
    headers = {name.lower(): value for name, value in response.headers.items()}
    return Answer(response.status_code, headers, response.content)


@pytest.mark.parametrize("key", ANSWERED)
def test_a_correct_answer_of_our_service_passes(
    client: TestClient,
    model: ServedModel,
    trained_version: Path,
    pool: list[list[int]],
    key: str,
) -> None:
    workload = BY_KEY[key]
    rows = pool[: workload.rows]
    answer = post(client, workload, rows)
    assert problem_with(answer, workload, len(model.labels)) is None
    expected = model_outputs(trained_version, rows)
    np.testing.assert_array_equal(probabilities_in(answer, workload), expected)


def test_an_answer_for_other_rows_is_refused(
    client: TestClient, model: ServedModel, pool: list[list[int]]
) -> None:
    workload = BY_KEY["native-100"]
    answer = post(client, workload, pool[:99])
    labels = len(model.labels)
    expected = f"a 200 with 99 rows of {labels} labels for 100 rows of {labels}"
    assert problem_with(answer, workload, labels) == expected


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"instances": []}', 422),
        (b'{"instances": [[1, 2]]}', 422),
        (b'{"instances": [[1, 2, 3', 400),
    ],
)
def test_an_error_answer_is_refused_with_its_status_and_body(
    client: TestClient, model: ServedModel, body: bytes, status: int
) -> None:
    response = client.post(NATIVE.path, content=body, headers={"content-type": "application/json"})
    problem = problem_with(answer_of(response), BY_KEY["native-1-c32"], len(model.labels))
    assert problem is not None
    assert problem.startswith(f"HTTP {status} ")
    assert '"error"' in problem


def test_a_200_of_another_form_is_refused(
    client: TestClient, model: ServedModel, pool: list[list[int]]
) -> None:
    rows_answer = post(client, BY_KEY["native-1000"], pool[:1000])
    problem = problem_with(rows_answer, BY_KEY["native-columns-1000"], len(model.labels))
    assert problem is not None
    assert problem.startswith("a 200 that is not a native columns answer")


def assert_verdict(found: str | None, expected: str | None) -> None:
    """None expected: the answer passes; else the problem found starts with ``expected``."""
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(expected)


def columnar(rows: int, labels: int, *, short_label: bool = False) -> bytes:
    """A columnar native answer as issue 12 specifies it."""
    names = [f"label_{index}" for index in range(labels)]
    lengths = {name: rows for name in names}
    if short_label:
        lengths[names[-1]] = rows - 1
    return orjson.dumps(
        {
            "model": {"name": "multilabel", "version": 1},
            "thresholds": dict.fromkeys(names, 0.5),
            "probabilities": {name: [0.25] * lengths[name] for name in names},
            "decisions": {name: [0] * lengths[name] for name in names},
            "warnings": [],
        }
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (columnar(1000, 3), None),
        (columnar(999, 3), "a 200 with 999 rows of 3 labels for 1000 rows of 3"),
        (columnar(1000, 3, short_label=True), "a 200 that is not a native columns answer"),
    ],
)
def test_columnar_answers(body: bytes, problem: str | None) -> None:
    assert_verdict(problem_with(Answer(200, {}, body), BY_KEY["native-columns-1000"], 3), problem)


def binary_answer(rows: int, labels: int, *, with_header: bool = True) -> Answer:
    """A V2 answer in Triton's binary form: a JSON header, then the raw float32 tensor."""
    tensor = np.zeros((rows, labels), dtype=np.float32).tobytes()
    output = {
        "name": "probabilities",
        "datatype": "FP32",
        "shape": [rows, labels],
        "parameters": {"binary_data_size": len(tensor)},
    }
    header = orjson.dumps({"model_name": "multilabel", "outputs": [output]})
    headers = {"inference-header-content-length": str(len(header))} if with_header else {}
    return Answer(200, headers, header + tensor)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (binary_answer(1000, 3), None),
        (binary_answer(10, 3), "a 200 with 10 rows of 3 labels for 1000 rows of 3"),
        (binary_answer(1000, 3, with_header=False), "a 200 that is not a V2 binary answer"),
    ],
)
def test_binary_answers(answer: Answer, problem: str | None) -> None:
    assert_verdict(problem_with(answer, BY_KEY["v2-binary-1000"], 3), problem)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (Answer(200, {}, REPLY), None),
        (Answer(200, {}, b"{}"), "a 200 with b'{}' instead of the constant"),
        (Answer(500, {}, b"Internal Server Error"), "HTTP 500 Internal Server Error"),
    ],
)
def test_a_ceiling_must_send_its_constant(answer: Answer, problem: str | None) -> None:
    assert_verdict(problem_with_constant(answer, REPLY), problem)
