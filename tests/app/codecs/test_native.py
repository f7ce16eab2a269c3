"""The native protocol, ``POST /predict``, on the real app and a really trained model.

What every protocol refuses alike is in ``test_strictness.py``; HTTP behaviour common to all
codecs in ``test_endpoint.py``. Here: the native answers, rows and columns, and its rendering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from app.codecs.native import render_rows
from app.dataplane import InferenceResult
from app.inference import SMALL_BATCH_ROWS, Model, OutOfRange, load_model
from tests.app.codecs.protocols import LABELS
from tests.support import REFERENCE_INPUTS

FEATURES = [f"x{i}" for i in range(10)]
ROW = REFERENCE_INPUTS[0]
# Probabilities whose text orjson writes in every form it has: 0, 1, exponents, subnormals.
AWKWARD_PROBABILITIES = np.array(
    [0.0, 1.0, 0.5, 1e-7, 1e-30, 1.4e-45, 2.5e-5, 0.1, 0.49999997, 0.999999], dtype=np.float32
)


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
    mixed = predict(client, {"instances": [REFERENCE_INPUTS[0], named(REFERENCE_INPUTS[1])]})
    assert as_objects == as_lists == mixed


def test_object_keys_may_come_in_any_order(client: TestClient) -> None:
    shuffled = dict(reversed(named(ROW).items()))
    assert predict(client, {"instances": [shuffled]}) == predict(client, {"instances": [ROW]})


def test_ints_and_floats_are_the_same_numbers(client: TestClient) -> None:
    as_floats = [[float(v) for v in ROW]]
    assert predict(client, {"instances": as_floats}) == predict(client, {"instances": [ROW]})


def test_many_rows_come_back_in_request_order(client: TestClient) -> None:
    rows = np.random.default_rng(7).integers(0, 15, size=(300, 10)).tolist()
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


def test_a_threshold_written_as_the_answered_probability_turns_its_label_on(
    client: TestClient,
) -> None:
    """Probabilities and thresholds compare in float32: a label whose probability prints as
    p is on at threshold p, and off just above it."""
    (row,) = predict(client, {"instances": [ROW]})["predictions"]
    for label, probability in row["probabilities"].items():
        at = predict(client, {"instances": [ROW], "threshold": {label: probability}})
        assert label in at["predictions"][0]["labels"]
        above = float(np.nextafter(np.float32(probability), np.float32(2)))
        if above <= 1.0:
            over = predict(client, {"instances": [ROW], "threshold": {label: above}})
            assert label not in over["predictions"][0]["labels"]


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


@pytest.mark.parametrize("count", [1, SMALL_BATCH_ROWS + 5])
def test_columns_format_holds_the_rows_answer_by_label(client: TestClient, count: int) -> None:
    rows = np.random.default_rng(count).integers(0, 15, size=(count, 10)).tolist()
    rows[0] = with_value(rows[0], 3, 99)  # one warning, located by its row
    by_rows = predict(client, {"instances": rows, "threshold": {"label_1": 0.3}})
    by_columns = predict(
        client, {"instances": rows, "threshold": {"label_1": 0.3}, "format": "columns"}
    )
    assert by_columns["model"] == by_rows["model"]
    assert by_columns["thresholds"] == by_rows["thresholds"]
    for label in LABELS:
        answers = by_rows["predictions"]
        assert by_columns["probabilities"][label] == [
            row["probabilities"][label] for row in answers
        ]
        assert by_columns["decisions"][label] == [
            row["vector"][LABELS.index(label)] for row in answers
        ]
    assert by_columns["warnings"] == [
        {"row": index, **warning}
        for index, row in enumerate(by_rows["predictions"])
        for warning in row["warnings"]
    ]


NATIVE_ONLY_ERRORS: list[tuple[str, Any, str, str | None]] = [
    # (case, JSON body, error code, field); every protocol's cases are in test_strictness.py
    ("instances is null", {"instances": None}, "invalid_request", "instances"),
    ("instances is a number", {"instances": 5}, "invalid_request", "instances"),
    ("instances is an object", {"instances": {"x0": 1}}, "invalid_request", "instances"),
    ("unknown format", {"instances": [ROW], "format": "table"}, "invalid_request", "format"),
]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [case[1:] for case in NATIVE_ONLY_ERRORS],
    ids=[case[0] for case in NATIVE_ONLY_ERRORS],
)
def test_a_malformed_request_names_its_field(
    client: TestClient, body: Any, code: str, field: str | None
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["row"], error["field"]) == (code, None, field)


@pytest.fixture(scope="module")
def model(trained_version: Path) -> Model:
    return load_model(trained_version)


def rows_within_training_ranges(model: Model, count: int, seed: int) -> np.ndarray:
    low = [bounds.min for bounds in model.metadata.feature_ranges]
    high = [bounds.max for bounds in model.metadata.feature_ranges]
    return np.random.default_rng(seed).uniform(low, high, size=(count, len(low))).astype(np.float32)


def result_of(
    model: Model,
    probabilities: np.ndarray,
    thresholds: np.ndarray,
    warnings: OutOfRange,
) -> InferenceResult:
    return InferenceResult(model, probabilities, probabilities >= thresholds, thresholds, warnings)


def one_row(result: InferenceResult, row: int) -> InferenceResult:
    """The result of the same request for one of its rows alone."""
    return result_of(
        result.model,
        result.probabilities[row : row + 1],
        result.thresholds,
        result.out_of_range.in_rows(np.array([row])),
    )


def as_dicts(result: InferenceResult) -> bytes:
    """The answer as orjson writes it from plain dicts: the reference the fragments must match.

    Probabilities, thresholds and warning values stay numpy float32 scalars, which orjson writes
    in their shortest float32 form, as the service promises.
    """
    model = result.model
    labels, features = model.metadata.labels, model.metadata.features
    ranges = model.metadata.feature_ranges
    found = result.out_of_range
    rows = []
    for index, (probabilities, positives) in enumerate(
        zip(result.probabilities, result.positives.tolist(), strict=True)
    ):
        warnings = [
            {
                "feature": features[column],
                "value": value,
                "train_range": [ranges[column].min, ranges[column].max],
            }
            for row, column, value in zip(found.rows, found.columns, found.values, strict=True)
            if row == index
        ]
        rows.append(
            {
                "probabilities": dict(zip(labels, probabilities, strict=True)),
                "labels": [label for label, on in zip(labels, positives, strict=True) if on],
                "vector": [int(on) for on in positives],
                "warnings": warnings,
            }
        )
    document = {
        "model": {"name": model.name, "version": model.version},
        "thresholds": dict(zip(labels, result.thresholds, strict=True)),
        "predictions": rows,
    }
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def assert_rendered_as_rows_one_by_one(result: InferenceResult) -> None:
    """The fragments give the dicts' bytes, and a batch's bytes are its head, then each row
    as a one-row answer writes it."""
    whole = render_rows(result)
    assert whole == as_dicts(result)
    singles = [render_rows(one_row(result, row)) for row in range(result.rows)]
    head = singles[0][: singles[0].index(b'"predictions":[') + len(b'"predictions":[')]
    rows = [single[len(head) : -2] for single in singles]
    assert whole == head + b",".join(rows) + b"]}"


@pytest.mark.parametrize(
    "count", [1, SMALL_BATCH_ROWS - 1, SMALL_BATCH_ROWS, SMALL_BATCH_ROWS + 1, 1000]
)
@pytest.mark.parametrize("outside", [0, 7], ids=["in-range", "with-warnings"])
def test_fragments_give_the_bytes_of_the_dict_renderer(
    model: Model, count: int, outside: int
) -> None:
    features = rows_within_training_ranges(model, count, seed=count)
    features[: min(outside, count), 3] = 1e6
    warnings = model.out_of_range(features)
    assert len(warnings) == min(outside, count)
    prediction = model.predict(features)
    result = result_of(model, prediction.probabilities, model.default_thresholds, warnings)
    assert_rendered_as_rows_one_by_one(result)


@pytest.mark.parametrize("thresholds", [[0.5, 0.5, 0.5], [0.0, 1.0, 0.3], [1e-30, 0.5, 1.0]])
def test_awkward_probabilities_and_thresholds_render_alike(
    model: Model, thresholds: list[float]
) -> None:
    rng = np.random.default_rng(3)
    probabilities = rng.choice(AWKWARD_PROBABILITIES, size=(2000, 3)).astype(np.float32)
    probabilities[::5] = rng.random((400, 3))
    warnings = OutOfRange(
        rows=np.array([0, 7, 7, 1999]),
        columns=np.array([3, 3, 5, 3]),
        values=np.array([99.5, 1e-7, -3.3, 1e30], dtype=np.float32),
    )
    used = np.asarray(thresholds, dtype=np.float32)
    for given in (OutOfRange.none(), warnings):
        assert_rendered_as_rows_one_by_one(result_of(model, probabilities, used, given))


def test_every_label_combination_gets_its_own_ending(model: Model) -> None:
    combinations = np.array([[(code >> bit) & 1 for bit in range(3)] for code in range(8)])
    probabilities = np.repeat(combinations * 0.9 + 0.05, 4, axis=0).astype(np.float32)
    thresholds = np.full(3, 0.5, dtype=np.float32)
    result = result_of(model, probabilities, thresholds, OutOfRange.none())
    document = orjson.loads(render_rows(result))
    vectors = [row["vector"] for row in document["predictions"]]
    assert vectors == np.repeat(combinations, 4, axis=0).tolist()
    assert_rendered_as_rows_one_by_one(result)


def test_a_batch_answers_what_its_rows_answer_one_by_one(client: TestClient) -> None:
    rows = np.random.default_rng(11).integers(0, 30, size=(SMALL_BATCH_ROWS * 3, 10)).tolist()
    batch = client.post("/predict", json={"instances": rows})
    assert batch.status_code == 200
    singles = [client.post("/predict", json={"instances": [row]}).json() for row in rows]
    assert batch.json()["predictions"] == [single["predictions"][0] for single in singles]
