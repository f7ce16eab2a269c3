"""``GET /metadata``: what the served model takes and gives, how it was made and how it scored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.codecs.native_schemas import FeatureSchema, MetadataResponse
from app.dataplane import DECISIONS
from app.services import Services, services

router = APIRouter(tags=["native"])


@router.get("/metadata", response_model=MetadataResponse)
async def metadata(service: Annotated[Services, Depends(services)]) -> MetadataResponse:
    """The served model's input schema, labels, thresholds, evaluation and training."""
    repository = service.repository
    model = repository.get(repository.name)
    snapshot = repository.snapshot
    meta = model.metadata
    return MetadataResponse(
        name=meta.name,
        version=meta.version,
        versions=sorted(snapshot.models),
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
        schema_change_allowed=repository.allow_schema_change,
        schemas_differ=snapshot.schemas_differ,
        signatures_verified=repository.verifies_signatures,
        decisions=list(DECISIONS),
        label_set_source=model.label_set_source,
        label_set_count=model.label_set_count,
        label_sets=meta.label_sets if model.label_set_source == "label_set_head" else None,
    )
