"""``GET /``: where a person (or a client asking for JSON) finds everything else."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from app.pages.card import card_url
from app.pages.layout import accept_quality, page, url_prefix
from app.services import services

# Public paths of the control plane the index points to (each has its own tests).
LINKS = {
    "docs": "/docs",
    "redoc": "/redoc",
    "openapi": "/openapi.json",
    "metadata": "/metadata",
    "health": "/health",
    "health_live": "/health/live",
    "health_ready": "/health/ready",
    "metrics": "/metrics",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def landing(request: Request) -> Response:
    """An HTML page for people; the same index as JSON for ``Accept: application/json``."""
    index = service_index(request)
    if prefers_json(request.headers.get("accept", "")):
        response: Response = JSONResponse(index)
    else:
        context = {"title": request.app.title, "index": index, "keyed": keyed_links(request)}
        response = page(request, "landing.html", context)
    response.headers["Vary"] = "Accept"
    return response


def service_index(request: Request) -> dict[str, Any]:
    """The service, the model it serves (or why none), and the URLs of everything else."""
    repository = services(request).repository
    snapshot = repository.snapshot
    served = snapshot.default
    prefix = url_prefix(request)
    model = None
    if served is not None:
        model = {
            "name": served.name,
            "version": served.version,
            "created_at": served.metadata.created_at.isoformat(timespec="seconds"),
            "versions": [
                {"version": loaded.version, "card": card_url(request, loaded.name, loaded.version)}
                for loaded in snapshot.models.values()
            ],
        }
    return {
        "service": {"title": request.app.title, "version": request.app.version},
        "status": "ready" if served is not None else "not_ready",
        "reason": None if served is not None else snapshot.reason,
        "model": model,
        "links": {
            **{name: prefix + path for name, path in LINKS.items()},
            "model_card": card_url(request, repository.name),
        },
    }


def keyed_links(request: Request) -> set[str]:
    """The links of the index that need an API key (none when keys are off): the page marks
    them, since a browser opening one gets the page that says how to send a key."""
    found = services(request)
    if not found.api_keys.enabled:
        return set()
    settings = found.settings
    return {"model_card", "metadata", *(["metrics"] if settings.metrics_require_key else [])}


def prefers_json(accept: str) -> bool:
    """Whether an Accept header ranks JSON above HTML; browsers, ``*/*`` and none get HTML."""
    html, json = accept_quality(accept)
    return json > html
