"""The fast path of ``POST /predict`` answers byte for byte what the straightforward one would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.testclient import TestClient
from starlette.responses import Response

from app.http import DirectRoute
from app.inference import Model, OutOfRange, Prediction, load_model
from app.routes.predict import FRAGMENT_ROWS, predictions_json, render_predictions

# Probabilities whose text orjson writes in every form it has: 0, 1, exponents, subnormals.
AWKWARD_PROBABILITIES = np.array(
    [0.0, 1.0, 0.5, 1e-7, 1e-30, 1.4e-45, 2.5e-5, 0.1, 0.49999997, 0.999999], dtype=np.float32
)


@pytest.fixture(scope="module")
def model(trained_version: Path) -> Model:
    return load_model(trained_version)


def straightforward(model: Model, prediction: Prediction, warnings: list[OutOfRange]) -> bytes:
    return orjson.dumps(
        render_predictions(model, prediction, warnings), option=orjson.OPT_SERIALIZE_NUMPY
    )


def rows_within_training_ranges(model: Model, count: int, seed: int) -> np.ndarray:
    low = [bounds.min for bounds in model.metadata.feature_ranges]
    high = [bounds.max for bounds in model.metadata.feature_ranges]
    return np.random.default_rng(seed).uniform(low, high, size=(count, len(low))).astype(np.float32)


@pytest.mark.parametrize("rows", [1, FRAGMENT_ROWS - 1, FRAGMENT_ROWS, FRAGMENT_ROWS + 1, 1000])
@pytest.mark.parametrize("outside", [0, 7], ids=["in-range", "with-warnings"])
def test_fragments_give_the_bytes_of_the_dict_renderer(
    model: Model, rows: int, outside: int
) -> None:
    features = rows_within_training_ranges(model, rows, seed=rows)
    features[: min(outside, rows), 3] = 1e6
    prediction = model.predict(features)
    warnings = model.out_of_range(features)
    assert len(warnings) == min(outside, rows)
    assert predictions_json(model, prediction, warnings) == straightforward(
        model, prediction, warnings
    )


@pytest.mark.parametrize("thresholds", [[0.5, 0.5, 0.5], [0.0, 1.0, 0.3], [1e-30, 0.5, 1.0]])
def test_awkward_probabilities_and_thresholds_render_alike(
    model: Model, thresholds: list[float]
) -> None:
    rng = np.random.default_rng(3)
    probabilities = rng.choice(AWKWARD_PROBABILITIES, size=(2000, 3)).astype(np.float32)
    probabilities[::5] = rng.random((400, 3))
    used = np.asarray(thresholds)
    prediction = Prediction(probabilities, probabilities >= used, used)
    warnings = [
        OutOfRange(row=row, feature="x3", value=99.5, train_range=(0.0, 20.0))
        for row in (0, 7, 7, 1999)
    ]
    for given in ([], warnings):
        assert predictions_json(model, prediction, given) == straightforward(
            model, prediction, given
        )


def test_every_label_combination_gets_its_own_ending(model: Model) -> None:
    combinations = np.array([[(code >> bit) & 1 for bit in range(3)] for code in range(8)])
    probabilities = np.repeat(combinations * 0.9 + 0.05, 4, axis=0).astype(np.float32)
    thresholds = np.full(3, 0.5)
    prediction = Prediction(probabilities, probabilities >= thresholds, thresholds)
    document = orjson.loads(predictions_json(model, prediction, []))
    vectors = [row["vector"] for row in document["predictions"]]
    assert vectors == np.repeat(combinations, 4, axis=0).tolist()
    assert predictions_json(model, prediction, []) == straightforward(model, prediction, [])


def test_a_batch_answers_what_its_rows_answer_one_by_one(client: TestClient) -> None:
    rows = np.random.default_rng(11).integers(0, 30, size=(FRAGMENT_ROWS * 3, 10)).tolist()
    batch = client.post("/predict", json={"instances": rows})
    assert batch.status_code == 200
    singles = [client.post("/predict", json={"instances": [row]}).json() for row in rows]
    assert batch.json()["predictions"] == [single["predictions"][0] for single in singles]


def test_a_direct_route_refuses_an_endpoint_that_takes_more_than_the_request() -> None:
    async def with_dependency(request: Request, extra: int = Depends(lambda: 1)) -> Response:
        return Response()

    with pytest.raises(TypeError, match="must take only the request"):
        APIRouter().add_api_route("/x", with_dependency, route_class_override=DirectRoute)
