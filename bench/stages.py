"""Where a 1000-row request's time goes, stage by stage, in one process: each stage of the
native rows path (and, for comparison, the other JSON forms) timed on its own over the same
body, best of several rounds, beside the whole request through the ASGI app
(``bench/inprocess.py``'s driver: routing, body, codec, data plane, observability).

    .venv/bin/python -m bench.stages [--models DIR] [--rows 1000]

The stages are the data plane's own functions, called as a request calls them: parse (the
codec's JSON decoding: simdjson, the rows read into float64), envelope (pydantic on the
top-level fields), conversion and validation (float64 to float32, finite and in float32's
range, on the array), inference (ONNX Runtime, then the thresholds), output check (finite
probabilities), range warnings (values outside the training range), metrics, and render (the
answer's bytes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from app.codecs import native, tfserving, v2
from app.codecs.base import validate_envelope
from app.codecs.json_numbers import decode_json_numbers
from app.codecs.native_schemas import PredictRequest
from app.config import Settings
from app.dataplane import InferenceResult, _check_finite, features_from_numbers
from app.inference import load_model
from app.metrics import ServiceMetrics
from bench.bodies import build_body
from bench.prepare import WORK, ensure_model, fresh_rows
from bench.workloads import NATIVE

ROUNDS = 7


def best_us(work: Callable[[], Any], calls: int) -> float:
    """The best of ROUNDS rounds of ``calls`` calls, in microseconds per call."""
    work()
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(calls):
            work()
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return min(rounds)


def native_stages(version: Path, rows: int, calls: int) -> list[tuple[str, float, str]]:
    """Each stage of a native rows request: its name, µs per call, and what bounds it."""
    model = load_model(version)
    names = model.metadata.features
    body = build_body(NATIVE, fresh_rows(max(rows, 2000))[:rows]).content
    max_rows = Settings().max_rows
    document = decode_json_numbers(body, native.INSTANCES, max_rows)
    envelope = validate_envelope(PredictRequest, document)
    features = features_from_numbers(envelope.instances, names)
    thresholds = model.default_thresholds
    prediction = model.predict(features, thresholds)
    warnings = model.out_of_range(features)
    result = InferenceResult(
        model, prediction.probabilities, prediction.positives, thresholds, warnings
    )
    metrics = ServiceMetrics()
    return [
        (
            "parse (simdjson; rows into float64)",
            best_us(lambda: decode_json_numbers(body, native.INSTANCES, max_rows), calls),
            "simdjson's number parsing, then the copy and the brackets' check",
        ),
        (
            "envelope (pydantic)",
            best_us(lambda: validate_envelope(PredictRequest, document), calls),
            "pydantic-core on the top-level fields",
        ),
        (
            "conversion and validation (float32, finite)",
            best_us(lambda: features_from_numbers(envelope.instances, names), calls),
            "numpy: three passes over the values",
        ),
        (
            "inference (ONNX Runtime, thresholds)",
            best_us(lambda: model.predict(features, thresholds), calls),
            "ONNX Runtime's run (one intra-op thread)",
        ),
        (
            "output check (finite probabilities)",
            best_us(lambda: _check_finite(prediction.probabilities), calls),
            "one numpy pass",
        ),
        (
            "range warnings (outside training range)",
            best_us(lambda: model.out_of_range(features), calls),
            "numpy: two comparisons and the positions of the values found",
        ),
        (
            "metrics (rows, labels on, warnings)",
            best_us(
                lambda: metrics.observe_prediction(model, prediction.positives, len(warnings)),
                calls,
            ),
            "labels on counted by one product with ones",
        ),
        (
            "render (rows, from arrays)",
            best_us(lambda: native.render_rows(result), calls),
            "orjson for the probabilities' text, then joining byte fragments per row",
        ),
    ]


def other_renders(version: Path, rows: int, calls: int) -> list[tuple[str, float]]:
    """The render of the other JSON forms, for comparison."""
    model = load_model(version)
    body = build_body(NATIVE, fresh_rows(max(rows, 2000))[:rows]).content
    features = features_from_numbers(
        decode_json_numbers(body, native.INSTANCES, Settings().max_rows)["instances"],
        model.metadata.features,
    )
    prediction = model.predict(features)
    result = InferenceResult(
        model,
        prediction.probabilities,
        prediction.positives,
        model.default_thresholds,
        model.out_of_range(features),
    )
    only_probabilities = InferenceResult(
        model,
        prediction.probabilities,
        prediction.positives,
        model.default_thresholds,
        result.out_of_range,
        ("probabilities",),
    )
    return [
        ("render native columns", best_us(lambda: native.render_columns(result), calls)),
        (
            "render V2 JSON (both outputs)",
            best_us(lambda: v2._encode(result, [False, False]), calls),
        ),
        (
            "render TF Serving columns",
            best_us(lambda: tfserving._encode(only_probabilities, False), calls),
        ),
        (
            "orjson.loads of the same native body (for scale)",
            best_us(lambda: orjson.loads(body), calls),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__)
    parser.add_argument("--models", type=Path, default=WORK / "models")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200)
    options = parser.parse_args()
    version = ensure_model(options.models.resolve())
    stages = native_stages(version, options.rows, options.calls)
    total = sum(us for _, us, _ in stages)
    print(f"native rows, {options.rows} rows: the stages of one request, µs (best of {ROUNDS})\n")
    print("| stage | µs | share | bounded by |\n|---|--:|--:|---|")
    for name, us, bound in stages:
        print(f"| {name} | {us:,.0f} | {us / total:.0%} | {bound} |")
    print(f"| sum of the stages | {total:,.0f} | 100% | |\n")
    for name, us in other_renders(version, options.rows, options.calls):
        print(f"{name}: {us:,.0f} µs")


if __name__ == "__main__":
    main()
