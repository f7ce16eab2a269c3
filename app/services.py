"""What every request handler works with, built once per application by its lifespan.

The one way state reaches code: the lifespan yields it, and each HTTP request finds it in its
lifespan state (``scope["state"]``, which FastAPI shows as ``request.state``) under
``SERVICES_STATE_KEY``; the gRPC server, started by the same lifespan, is handed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from app.auth import ApiKeys, bearer_scheme
from app.config import Settings
from app.dataplane import DataPlane
from app.metrics import ServiceMetrics
from app.observability import RequestObserver
from app.repository import ModelRepository

SERVICES_STATE_KEY = "services"


@dataclass(frozen=True)
class Services:
    """The data plane, the repository behind it, request observation, API keys, settings."""

    dataplane: DataPlane
    repository: ModelRepository
    observer: RequestObserver
    api_keys: ApiKeys
    settings: Settings

    @property
    def metrics(self) -> ServiceMetrics:
        return self.observer.metrics


def services(request: Request) -> Services:
    """The services of the application serving ``request`` (a FastAPI dependency)."""
    found: Services = getattr(request.state, SERVICES_STATE_KEY)
    return found


async def require_api_key(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """A control-plane dependency: the same check as the data plane's."""
    services(request).api_keys.check(dict(request.scope["headers"]))
