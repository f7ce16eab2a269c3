"""``GET /metrics``: the service's Prometheus metrics (app.metrics), for a scraper."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.metrics import CONTENT_TYPE, ServiceMetrics

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    """Request counts and latencies by route and status, rows predicted, label positives,
    out-of-range warnings, model events and versions; summed over all worker processes."""
    # A plain (threaded) route: in multiprocess mode this reads one file per worker.
    service_metrics: ServiceMetrics = request.app.state.metrics
    return Response(service_metrics.render(), media_type=CONTENT_TYPE)
