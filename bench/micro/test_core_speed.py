"""In-process speed of what a request costs besides HTTP: parsing and validating the body,
the inference core, rendering the answer. Batches of 1 and 10,000 rows.

    .venv/bin/pytest bench/micro                         # timings
    .venv/bin/pytest bench/micro --benchmark-disable     # just check that they run
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from app.http import validate_body
from app.inference import Model
from app.routes.predict import dumps, predictions_json, render_predictions
from app.schemas import PredictRequest
from app.validation import features_from_rows, features_from_tensor, may_contain_booleans
from bench.micro.conftest import BATCHES

MAX_ROWS = max(BATCHES)


def parse_native(body: bytes, model: Model) -> np.ndarray[Any, Any]:
    """What POST /predict does with the bytes of a body before predicting."""
    payload = validate_body(PredictRequest, orjson.loads(body))
    return features_from_rows(
        payload.instances,
        model.metadata.features,
        max_rows=MAX_ROWS,
        booleans_possible=may_contain_booleans(body),
    )


def parse_v2(body: bytes, model: Model) -> np.ndarray[Any, Any]:
    """The tensor part of what the V2 infer route does with a body."""
    (tensor,) = orjson.loads(body)["inputs"]
    return features_from_tensor(
        tensor["data"],
        tensor["shape"],
        tensor["datatype"],
        model.metadata.features,
        max_rows=MAX_ROWS,
        booleans_possible=may_contain_booleans(body),
    )


@pytest.mark.parametrize("rows", BATCHES)
def test_native_body_parsing(benchmark: Any, model: Model, pool: list[list[int]], rows: int):
    body = orjson.dumps({"instances": pool[:rows]})
    features = benchmark(parse_native, body, model)
    assert features.shape == (rows, model.n_features)


@pytest.mark.parametrize("rows", BATCHES)
def test_v2_tensor_parsing(benchmark: Any, model: Model, pool: list[list[int]], rows: int):
    data = [value for row in pool[:rows] for value in row]
    tensor = {"name": "features", "shape": [rows, model.n_features], "datatype": "FP32"}
    body = orjson.dumps({"inputs": [{**tensor, "data": data}]})
    features = benchmark(parse_v2, body, model)
    assert features.shape == (rows, model.n_features)


@pytest.mark.parametrize("rows", BATCHES)
def test_inference_core(benchmark: Any, model: Model, pool: list[list[int]], rows: int):
    features = np.asarray(pool[:rows], dtype=np.float32)
    prediction = benchmark(model.predict, features)
    assert prediction.probabilities.shape == (rows, len(model.metadata.labels))


@pytest.mark.parametrize("rows", BATCHES)
@pytest.mark.parametrize("renderer", ["fragments", "dicts"])
def test_native_response_rendering(
    benchmark: Any, model: Model, pool: list[list[int]], rows: int, renderer: str
):
    features = np.asarray(pool[:rows], dtype=np.float32)
    prediction = model.predict(features)
    warnings = model.out_of_range(features)
    if renderer == "fragments":
        body = benchmark(predictions_json, model, prediction, warnings)
    else:
        body = benchmark(lambda: dumps(render_predictions(model, prediction, warnings)))
    assert len(orjson.loads(body)["predictions"]) == rows
