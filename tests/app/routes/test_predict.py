"""The native ``POST /predict`` route, on the real app and a really trained model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.support import REFERENCE_INPUTS

LABELS = ["label_0", "label_1", "label_2"]
FEATURES = [f"x{i}" for i in range(10)]
ROW = REFERENCE_INPUTS[0]


def named(row: list[Any]) -> dict[str, Any]:
    return dict(zip(FEATURES, row, strict=True))


def with_value(row: list[Any], index: int, value: Any) -> list[Any]:
    changed = list(row)
    changed[index] = value
    return changed


def predict(client: TestClient, body: Any) -> Any:
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def default_thresholds(client: TestClient) -> dict[str, float]:
    thresholds: dict[str, float] = client.get("/metadata").json()["thresholds"]
    return thresholds


def test_predict_returns_probabilities_and_consistent_label_sets(client: TestClient) -> None:
    body = predict(client, {"instances": REFERENCE_INPUTS})
    assert body["model"] == {"name": "multilabel", "version": 1}
    assert body["thresholds"] == default_thresholds(client)
    assert len(body["predictions"]) == len(REFERENCE_INPUTS)
    for row in body["predictions"]:
        probabilities = row["probabilities"]
        assert list(probabilities) == LABELS
        assert all(0.0 <= p <= 1.0 for p in probabilities.values())
        on = [label for label in LABELS if probabilities[label] >= body["thresholds"][label]]
        assert row["labels"] == on
        assert row["vector"] == [int(label in on) for label in LABELS]
        assert row["warnings"] == []


def test_reference_input_turns_labels_0_and_1_on_and_2_off(client: TestClient) -> None:
    (row,) = predict(client, {"instances": [ROW]})["predictions"]
    assert row["labels"] == ["label_0", "label_1"]


def test_rows_as_objects_match_rows_as_lists(client: TestClient) -> None:
    as_lists = predict(client, {"instances": REFERENCE_INPUTS})
    as_objects = predict(client, {"instances": [named(row) for row in REFERENCE_INPUTS]})
    assert as_objects == as_lists


def test_object_keys_may_come_in_any_order(client: TestClient) -> None:
    shuffled = dict(reversed(named(ROW).items()))
    assert predict(client, {"instances": [shuffled]}) == predict(client, {"instances": [ROW]})


def test_ints_and_floats_are_the_same_numbers(client: TestClient) -> None:
    as_floats = [[float(v) for v in ROW]]
    assert predict(client, {"instances": as_floats}) == predict(client, {"instances": [ROW]})


def test_many_rows_come_back_in_request_order(client: TestClient) -> None:
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 15, size=(300, 10)).tolist()
    batch = predict(client, {"instances": rows})["predictions"]
    singles = [predict(client, {"instances": [row]})["predictions"][0] for row in rows[:20]]
    assert batch[:20] == singles
    assert len(batch) == 300


def test_same_request_gives_the_same_answer(client: TestClient) -> None:
    body = {"instances": REFERENCE_INPUTS * 50}
    assert predict(client, body) == predict(client, body)


@pytest.mark.parametrize(
    ("threshold", "changed"),
    [
        (0.0, dict.fromkeys(LABELS, 0.0)),
        (1.0, dict.fromkeys(LABELS, 1.0)),
        (0.25, dict.fromkeys(LABELS, 0.25)),
        ({"label_2": 0.9}, {"label_2": 0.9}),
        ({"label_0": 0, "label_1": 1}, {"label_0": 0.0, "label_1": 1.0}),
    ],
)
def test_request_thresholds_are_applied_and_reported(
    client: TestClient, threshold: Any, changed: dict[str, float]
) -> None:
    expected = {**default_thresholds(client), **changed}
    body = predict(client, {"instances": REFERENCE_INPUTS, "threshold": threshold})
    assert body["thresholds"] == expected
    for row in body["predictions"]:
        on = [label for label in LABELS if row["probabilities"][label] >= expected[label]]
        assert row["labels"] == on


def test_threshold_zero_turns_every_label_on(client: TestClient) -> None:
    body = predict(client, {"instances": REFERENCE_INPUTS, "threshold": 0})
    assert all(row["labels"] == LABELS for row in body["predictions"])


def test_out_of_range_values_are_flagged_but_still_predicted(client: TestClient) -> None:
    metadata = client.get("/metadata").json()
    low, high = metadata["features"][7]["train_range"]
    rows = [ROW, with_value(ROW, 7, high + 71), with_value(with_value(ROW, 0, -5), 9, 1e6)]
    predictions = predict(client, {"instances": rows})["predictions"]
    assert predictions[0]["warnings"] == []
    assert predictions[1]["warnings"] == [
        {"feature": "x7", "value": high + 71, "train_range": [low, high]}
    ]
    assert [w["feature"] for w in predictions[2]["warnings"]] == ["x0", "x9"]
    assert all(len(row["probabilities"]) == 3 for row in predictions)


BAD_REQUESTS: list[tuple[str, Any, int, str, int | None, str | None]] = [
    # (case, JSON body, status, error code, row, field)
    ("body is a list", [ROW], 422, "invalid_request", None, None),
    ("body is a number", 3, 422, "invalid_request", None, None),
    ("instances missing", {}, 422, "invalid_request", None, "instances"),
    ("instances is a number", {"instances": 5}, 422, "invalid_request", None, "instances"),
    ("instances is an object", {"instances": {"x0": 1}}, 422, "invalid_request", None, "instances"),
    ("instances is null", {"instances": None}, 422, "invalid_request", None, "instances"),
    ("no rows", {"instances": []}, 422, "invalid_input", None, None),
    (
        "unknown top-level field",
        {"instances": [ROW], "extra": 1},
        422,
        "invalid_request",
        None,
        "extra",
    ),
    ("row too short", {"instances": [ROW[:9]]}, 422, "invalid_input", 0, None),
    ("row too long", {"instances": [[*ROW, 1]]}, 422, "invalid_input", 0, None),
    ("empty row", {"instances": [ROW, []]}, 422, "invalid_input", 1, None),
    ("ragged batch", {"instances": [ROW, ROW, ROW[:3]]}, 422, "invalid_input", 2, None),
    ("string value", {"instances": [with_value(ROW, 3, "7")]}, 422, "invalid_input", 0, "x3"),
    (
        "boolean value",
        {"instances": [ROW, with_value(ROW, 7, True)]},
        422,
        "invalid_input",
        1,
        "x7",
    ),
    ("false value", {"instances": [with_value(ROW, 0, False)]}, 422, "invalid_input", 0, "x0"),
    ("null value", {"instances": [with_value(ROW, 5, None)]}, 422, "invalid_input", 0, "x5"),
    ("list value", {"instances": [with_value(ROW, 2, [1])]}, 422, "invalid_input", 0, "x2"),
    ("object value", {"instances": [with_value(ROW, 4, {"v": 1})]}, 422, "invalid_input", 0, "x4"),
    ("row is a string", {"instances": [ROW, "1,2,3"]}, 422, "invalid_input", 1, None),
    ("row is a number", {"instances": [7]}, 422, "invalid_input", 0, None),
    ("row is null", {"instances": [ROW, ROW, None]}, 422, "invalid_input", 2, None),
    ("beyond float32", {"instances": [with_value(ROW, 6, 1e39)]}, 422, "invalid_input", 0, "x6"),
    (
        "below -float32",
        {"instances": [ROW, with_value(ROW, 1, -3.5e38)]},
        422,
        "invalid_input",
        1,
        "x1",
    ),
    ("huge integer", {"instances": [with_value(ROW, 8, 10**40)]}, 422, "invalid_input", 0, "x8"),
    ("unknown feature", {"instances": [{**named(ROW), "x42": 1}]}, 422, "invalid_input", 0, "x42"),
    (
        "missing feature",
        {"instances": [{k: v for k, v in named(ROW).items() if k != "x9"}]},
        422,
        "invalid_input",
        0,
        "x9",
    ),
    (
        "string in object row",
        {"instances": [ROW, {**named(ROW), "x2": "a"}]},
        422,
        "invalid_input",
        1,
        "x2",
    ),
    (
        "threshold above 1",
        {"instances": [ROW], "threshold": 1.5},
        422,
        "invalid_request",
        None,
        "threshold",
    ),
    (
        "threshold negative",
        {"instances": [ROW], "threshold": -0.1},
        422,
        "invalid_request",
        None,
        "threshold",
    ),
    (
        "threshold string",
        {"instances": [ROW], "threshold": "0.5"},
        422,
        "invalid_request",
        None,
        "threshold",
    ),
    (
        "threshold boolean",
        {"instances": [ROW], "threshold": True},
        422,
        "invalid_request",
        None,
        "threshold",
    ),
    (
        "threshold list",
        {"instances": [ROW], "threshold": [0.5]},
        422,
        "invalid_request",
        None,
        "threshold",
    ),
    (
        "threshold label out of range",
        {"instances": [ROW], "threshold": {"label_1": 2}},
        422,
        "invalid_request",
        None,
        "threshold",
    ),
    (
        "threshold unknown label",
        {"instances": [ROW], "threshold": {"label_9": 0.5}},
        422,
        "invalid_request",
        None,
        "threshold.label_9",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "row", "field"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_request_gets_a_located_error(
    client: TestClient, body: Any, status: int, code: str, row: int | None, field: str | None
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["row"], error["field"]) == (code, row, field)
    assert error["message"]
    assert "np." not in error["message"]  # numbers read as numbers, not as numpy reprs
    if row is not None:
        assert f"row {row}" in error["message"]


BAD_BODIES: list[tuple[str, bytes, str | None, int, str]] = [
    # (case, raw body, content type, status, error code)
    ("truncated JSON", b'{"instances": [[1, 2', "application/json", 400, "invalid_json"),
    ("empty body", b"", "application/json", 400, "invalid_json"),
    (
        "NaN literal",
        b'{"instances": [[NaN,1,2,3,4,5,6,7,8,9]]}',
        "application/json",
        400,
        "invalid_json",
    ),
    (
        "Infinity literal",
        b'{"instances": [[Infinity,1,2,3,4,5,6,7,8,9]]}',
        "application/json",
        400,
        "invalid_json",
    ),
    (
        "number overflowing float64",
        b'{"instances": [[1e309,1,2,3,4,5,6,7,8,9]]}',
        "application/json",
        400,
        "invalid_json",
    ),
    (
        "invalid UTF-8",
        b'{"instances": [[1,2,3,4,5,6,7,8,9,10]], "\xff": 1}',
        "application/json",
        400,
        "invalid_json",
    ),
    (
        "trailing garbage",
        b'{"instances": [[1,2,3,4,5,6,7,8,9,10]]} x',
        "application/json",
        400,
        "invalid_json",
    ),
    (
        "text/plain",
        b'{"instances": [[1,2,3,4,5,6,7,8,9,10]]}',
        "text/plain",
        415,
        "unsupported_media_type",
    ),
    (
        "form encoded",
        b"instances=1",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
    ),
    (
        "no content type",
        b'{"instances": [[1,2,3,4,5,6,7,8,9,10]]}',
        None,
        415,
        "unsupported_media_type",
    ),
]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_unreadable_body_gets_a_clear_error(
    client: TestClient, content: bytes, content_type: str | None, status: int, code: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/predict", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_json_media_type_with_charset_is_accepted(client: TestClient) -> None:
    response = client.post(
        "/predict",
        content=b'{"instances": [[1,2,3,4,5,6,7,8,9,10]]}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


@pytest.fixture
def limited_client(settings: Settings) -> Iterator[TestClient]:
    limited = settings.model_copy(update={"max_rows": 5, "max_body_bytes": 2048})
    with TestClient(create_app(limited)) as test_client:
        yield test_client


def test_rows_up_to_the_limit_are_served(limited_client: TestClient) -> None:
    assert limited_client.post("/predict", json={"instances": [ROW] * 5}).status_code == 200


def test_too_many_rows_is_413(limited_client: TestClient) -> None:
    response = limited_client.post("/predict", json={"instances": [ROW] * 6})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "6 rows" in response.json()["error"]["message"]


def test_body_over_the_limit_is_413(limited_client: TestClient) -> None:
    padding = " " * 4096  # small row count, large body: the byte limit must catch it
    content = ('{"instances": [[1,2,3,4,5,6,7,8,9,10]]' + padding + "}").encode()
    response = limited_client.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_chunked_body_over_the_limit_is_413(limited_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"instances": ['
        for _ in range(200):
            yield b"[1,2,3,4,5,6,7,8,9,10],"
        yield b"[1,2,3,4,5,6,7,8,9,10]]}"

    response = limited_client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
