"""The native API: ``POST /predict`` and ``GET /metadata``."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from functools import lru_cache
from itertools import compress
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from numpy.typing import NDArray
from starlette.responses import Response

from app.dependencies import (
    Repository,
    ServedModel,
    get_app_settings,
    get_default_model,
    get_repository,
)
from app.http import (
    DirectRoute,
    json_response,
    read_json,
    request_body_schema,
    serialized_json_response,
    validate_body,
)
from app.inference import Model, OutOfRange, Prediction
from app.observability import predict_observed
from app.schemas import (
    FeatureSchema,
    MetadataResponse,
    PredictRequest,
    PredictResponse,
    error_responses,
)
from app.validation import features_from_rows

router = APIRouter(tags=["native"])
# From this many rows on, responses are assembled from fragments (predictions_json) rather
# than serialized from dicts: fewer rows do not repay the numpy calls (bench/README.md).
FRAGMENT_ROWS = 16
MAX_FRAGMENT_LABELS = 10  # one precomputed ending per label combination: 2**10 at most


async def predict(request: Request) -> Response:
    """Per-label probabilities and thresholded label sets for one or many rows."""
    # Inline, not a thread: the whole request costs less than a thread hop (bench/README.md).
    model = get_default_model(get_repository(request))
    settings = get_app_settings(request)
    body = await read_json(request)
    payload = validate_body(PredictRequest, body.value)
    features = features_from_rows(
        payload.instances,
        model.metadata.features,
        max_rows=settings.max_rows,
        booleans_possible=body.booleans_possible,
    )
    prediction, out_of_range = predict_observed(
        model, features, model.thresholds_for(payload.threshold)
    )
    return serialized_json_response(predictions_json(model, prediction, out_of_range))


router.add_api_route(
    "/predict",
    predict,
    methods=["POST"],
    route_class_override=DirectRoute,
    response_model=PredictResponse,
    responses=error_responses(400, 413, 415, 422, 503),
    openapi_extra=request_body_schema(PredictRequest),
)


@router.get("/metadata", response_model=MetadataResponse, responses=error_responses(503))
async def metadata(model: ServedModel, repository: Repository) -> Response:
    """What the served model takes and gives, how it was trained and how well it scored."""
    meta = model.metadata
    body = MetadataResponse(
        name=meta.name,
        version=meta.version,
        versions=sorted(repository.snapshot.models),
        created_at=meta.created_at,
        backend=model.backend_name,
        features=[
            FeatureSchema(name=name, train_range=(bounds.min, bounds.max))
            for name, bounds in zip(meta.features, meta.feature_ranges, strict=True)
        ],
        labels=meta.labels,
        thresholds=dict(zip(meta.labels, meta.thresholds, strict=True)),
        evaluation=meta.evaluation.summary if meta.evaluation else None,
        data_fingerprint=meta.data.fingerprint,
        training=meta.training,
    )
    return json_response(body.model_dump(mode="json"))


def dumps(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def render_predictions(
    model: Model, prediction: Prediction, out_of_range: list[OutOfRange]
) -> dict[str, Any]:
    """The PredictResponse document; probabilities stay float32 scalars, which ``dumps`` writes
    in their shortest form (as the V2 and TF Serving routes do), not as 17-digit doubles."""
    labels = model.metadata.labels
    vectors = prediction.positives.astype(np.uint8).tolist()
    warnings: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in out_of_range:
        warnings[item.row].append(
            {"feature": item.feature, "value": item.value, "train_range": item.train_range}
        )
    rows = [
        {
            "probabilities": dict(zip(labels, probabilities, strict=True)),
            "labels": list(compress(labels, vector)),
            "vector": vector,
            "warnings": warnings.get(index, []),
        }
        for index, (probabilities, vector) in enumerate(
            zip(prediction.probabilities, vectors, strict=True)
        )
    ]
    return {
        "model": {"name": model.name, "version": model.version},
        "thresholds": dict(zip(labels, prediction.thresholds.tolist(), strict=True)),
        "predictions": rows,
    }


def predictions_json(model: Model, prediction: Prediction, out_of_range: list[OutOfRange]) -> bytes:
    """The PredictResponse document as JSON: the bytes orjson writes for ``render_predictions``,
    without building a dict per row when the batch is large.

    A row is its probabilities, written by orjson from one array, between fixed key fragments,
    then the ending for its label set (``labels``, ``vector``, no warnings), made once per
    label combination. Rows with warnings are rendered whole, as by the dict renderer.
    """
    rows, width = prediction.probabilities.shape
    if rows < FRAGMENT_ROWS or width > MAX_FRAGMENT_LABELS:
        return dumps(render_predictions(model, prediction, out_of_range))
    labels = tuple(model.metadata.labels)
    keys = [b"," + orjson.dumps(label) + b":" for label in labels]
    values = dumps(prediction.probabilities.ravel())[1:-1].split(b",")
    stride = 2 * width + 1  # a row: key, value, key, value, ..., ending
    parts = [b""] * (rows * stride)
    parts[0::stride] = [b',{"probabilities":{' + keys[0][1:]] * rows
    parts[0] = parts[0][1:]
    for column in range(width):
        if column:
            parts[2 * column :: stride] = [keys[column]] * rows
        parts[2 * column + 1 :: stride] = values[column::width]
    codes = prediction.positives.astype(np.intp) @ (1 << np.arange(width, dtype=np.intp))
    parts[stride - 1 :: stride] = _label_set_endings(labels)[codes].tolist()
    for row, document in _rows_with_warnings(model, prediction, out_of_range):
        parts[row * stride : (row + 1) * stride] = [b""] * stride
        parts[row * stride] = (b"," if row else b"") + dumps(document)
    head = {
        "model": {"name": model.name, "version": model.version},
        "thresholds": dict(zip(labels, prediction.thresholds.tolist(), strict=True)),
    }
    return b"".join([orjson.dumps(head)[:-1], b',"predictions":[', *parts, b"]}"])


@lru_cache(maxsize=8)
def _label_set_endings(labels: tuple[str, ...]) -> NDArray[np.object_]:
    """For each label combination (its bits numbering it), the end of a row without warnings."""
    endings = np.empty(1 << len(labels), dtype=object)
    for code in range(len(endings)):
        vector = [(code >> column) & 1 for column in range(len(labels))]
        endings[code] = b"".join(
            [
                b'},"labels":',
                orjson.dumps(list(compress(labels, vector))),
                b',"vector":',
                orjson.dumps(vector),
                b',"warnings":[]}',
            ]
        )
    return endings


def _rows_with_warnings(
    model: Model, prediction: Prediction, out_of_range: list[OutOfRange]
) -> list[tuple[int, dict[str, Any]]]:
    """Each row that has warnings, with its document as the dict renderer makes it."""
    if not out_of_range:
        return []
    flagged = sorted({item.row for item in out_of_range})
    position = {row: index for index, row in enumerate(flagged)}
    subset = Prediction(
        prediction.probabilities[flagged], prediction.positives[flagged], prediction.thresholds
    )
    moved = [replace(item, row=position[item.row]) for item in out_of_range]
    rendered = render_predictions(model, subset, moved)["predictions"]
    return list(zip(flagged, rendered, strict=True))
