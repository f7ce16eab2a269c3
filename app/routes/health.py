"""Liveness and readiness, as orchestrators probe them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from app.dependencies import Repository
from app.http import json_response
from app.schemas import HealthResponse, ModelRef

router = APIRouter(tags=["health"])

_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthResponse, "description": "No model loaded; see reason"}
}


@router.get("/health/live", response_model=HealthResponse)
async def live() -> Response:
    """200 while the process runs, model or not (a liveness probe)."""
    return json_response(HealthResponse(status="live").model_dump(exclude_none=True))


@router.get("/health/ready", response_model=HealthResponse, responses=_NOT_READY)
async def ready(repository: Repository) -> Response:
    """200 once a model version is loaded and passed its parity check, else 503 with why."""
    return _readiness(repository)


@router.get("/health", response_model=HealthResponse, responses=_NOT_READY)
async def health(repository: Repository) -> Response:
    """Readiness with the served model's name and version."""
    return _readiness(repository)


def _readiness(repository: Repository) -> Response:
    snapshot = repository.snapshot
    model = snapshot.default
    if model is None:
        body = HealthResponse(status="not_ready", reason=snapshot.reason)
        return json_response(body.model_dump(exclude_none=True), status_code=503)
    body = HealthResponse(status="ready", model=ModelRef(name=model.name, version=model.version))
    return json_response(body.model_dump(exclude_none=True))
