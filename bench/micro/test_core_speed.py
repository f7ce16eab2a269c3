"""In-process speed of what a request costs besides HTTP: parsing and validating the body, the
inference core, rendering the answer. Batches of 1 and 10,000 rows.

    .venv/bin/pytest bench/micro                         # timings
    .venv/bin/pytest bench/micro --benchmark-disable     # just check that they run
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from app.codecs.base import decode_json, may_contain_booleans, validate_envelope
from app.codecs.native import render_columns, render_rows
from app.codecs.native_schemas import PredictRequest
from app.dataplane import InferenceResult, features_from_flat, features_from_rows
from app.inference import Model
from bench.micro.conftest import BATCHES


def parse_native(body: bytes, model: Model) -> np.ndarray[Any, Any]:
    """What POST /predict does with the bytes of a body before predicting."""
    payload = validate_envelope(PredictRequest, decode_json(body))
    return features_from_rows(
        payload.instances,
        model.metadata.features,
        named_rows=True,
        booleans_possible=may_contain_booleans(body),
    )


def parse_v2(body: bytes, model: Model) -> np.ndarray[Any, Any]:
    """The tensor part of what the V2 infer operation does with a JSON body."""
    (tensor,) = decode_json(body)["inputs"]
    return features_from_flat(
        tensor["data"],
        tensor["shape"][0],
        model.metadata.features,
        booleans_possible=may_contain_booleans(body),
    )


def result_for(model: Model, features: np.ndarray[Any, Any]) -> InferenceResult:
    prediction = model.predict(features)
    return InferenceResult(
        model,
        prediction.probabilities,
        prediction.positives,
        prediction.thresholds,
        model.out_of_range(features),
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
    result = benchmark(result_for, model, features)
    assert result.probabilities.shape == (rows, len(model.metadata.labels))


@pytest.mark.parametrize("rows", BATCHES)
@pytest.mark.parametrize("renderer", [render_rows, render_columns], ids=["rows", "columns"])
def test_native_answer_rendering(
    benchmark: Any, model: Model, pool: list[list[int]], rows: int, renderer: Any
):
    result = result_for(model, np.asarray(pool[:rows], dtype=np.float32))
    document = orjson.loads(benchmark(renderer, result))
    if renderer is render_columns:
        assert {len(values) for values in document["probabilities"].values()} == {rows}
    else:
        assert len(document["predictions"]) == rows
