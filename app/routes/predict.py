"""The native API: ``POST /predict`` and ``GET /metadata``."""

from __future__ import annotations

from collections import defaultdict
from itertools import compress
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from app.dependencies import AppSettings, Repository, ServedModel
from app.http import json_response, read_json, request_body_schema, validate_body
from app.inference import Model, OutOfRange, Prediction
from app.schemas import (
    FeatureSchema,
    MetadataResponse,
    PredictRequest,
    PredictResponse,
    error_responses,
)
from app.validation import features_from_rows

router = APIRouter(tags=["native"])


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=error_responses(400, 413, 415, 422, 503),
    openapi_extra=request_body_schema(PredictRequest),
)
async def predict(request: Request, model: ServedModel, settings: AppSettings) -> Response:
    """Per-label probabilities and thresholded label sets for one or many rows."""
    body = await read_json(request)
    payload = validate_body(PredictRequest, body.value)
    features = features_from_rows(
        payload.instances,
        model.metadata.features,
        max_rows=settings.max_rows,
        booleans_possible=body.booleans_possible,
    )
    prediction = model.predict(features, model.thresholds_for(payload.threshold))
    return json_response(render_predictions(model, prediction, model.out_of_range(features)))


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


def render_predictions(
    model: Model, prediction: Prediction, out_of_range: list[OutOfRange]
) -> dict[str, Any]:
    """The PredictResponse document, built from whole arrays rather than value by value."""
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
            zip(prediction.probabilities.tolist(), vectors, strict=True)
        )
    ]
    return {
        "model": {"name": model.name, "version": model.version},
        "thresholds": dict(zip(labels, prediction.thresholds.tolist(), strict=True)),
        "predictions": rows,
    }
