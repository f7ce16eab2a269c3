"""``GET /metrics``: the service's Prometheus metrics (app.metrics), for a scraper."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from app.metrics import CONTENT_TYPE
from app.services import Services, services

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(service: Annotated[Services, Depends(services)]) -> Response:
    """Request counts and latencies by route and status, rows predicted, label positives,
    out-of-range warnings, model events and versions; summed over all worker processes."""
    service_metrics = service.metrics
    service_metrics.flush()  # here, on the event loop's thread, which tallies the counts
    # In a thread: with several workers this reads one file per worker.
    text = await asyncio.to_thread(service_metrics.render)
    return Response(text, media_type=CONTENT_TYPE)
