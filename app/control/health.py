"""Liveness and readiness, as orchestrators probe them (never behind an API key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.repository import ModelRepository
from app.schemas import HealthResponse, ModelRef

router = APIRouter(tags=["health"])

_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthResponse, "description": "No model loaded; see reason"}
}


@router.get("/health/live", response_model=HealthResponse, response_model_exclude_none=True)
async def live() -> HealthResponse:
    """200 while the process runs, model or not (a liveness probe)."""
    return HealthResponse(status="live")


@router.get("/health/ready", response_model=HealthResponse, responses=_NOT_READY)
async def ready(request: Request) -> JSONResponse:
    """200 once a model version is loaded and passed its checks, else 503 with why."""
    return _readiness(request.app.state.repository)


@router.get("/health", response_model=HealthResponse, responses=_NOT_READY)
async def health(request: Request) -> JSONResponse:
    """Readiness with the served model's name and version."""
    return _readiness(request.app.state.repository)


def _readiness(repository: ModelRepository) -> JSONResponse:
    snapshot = repository.snapshot
    model = snapshot.default
    if model is None:
        body = HealthResponse(status="not_ready", reason=snapshot.reason)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    body = HealthResponse(status="ready", model=ModelRef(name=model.name, version=model.version))
    return JSONResponse(body.model_dump(exclude_none=True))
