"""The FastAPI application: ``create_app(settings)``, and ``app`` for ``uvicorn app.main:app``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI

from app.config import Settings, get_settings
from app.errors import install_error_handlers
from app.http import BodySizeLimit, HotRoutes
from app.inference import load_model
from app.logs import configure_logging
from app.metrics import ServiceMetrics
from app.observability import RequestObservability
from app.openapi import install_openapi
from app.pages import install_pages
from app.repository import ModelRepository, watch
from app.routes import health, metrics, predict, tfserving, v2

logger = logging.getLogger(__name__)

try:
    SERVICE_VERSION = version("multilabel-service")
except PackageNotFoundError:  # running from a source tree that was never installed
    SERVICE_VERSION = "0+unknown"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; the model loads when it starts (lifespan), not here."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Multi-label prediction service",
        version=SERVICE_VERSION,
        description="Per-label probabilities and label sets from a small neural network, "
        "served with ONNX Runtime. Native API, Open Inference Protocol (V2) and "
        "TensorFlow Serving REST.",
        lifespan=_lifespan,
        # The service instruments itself (app.observability); FastAPI's OpenTelemetry hooks
        # would otherwise look up tracer and meter providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # FastAPI's own /docs and /redoc load their assets from a public CDN; app.pages serves
        # them from assets shipped with the service instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    # Middleware added first runs innermost: the hot routes still get the size limit, the
    # request id, metrics and the log line.
    app.add_middleware(
        HotRoutes, routes=[*predict.router.routes, *v2.router.routes, *tfserving.router.routes]
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.state.metrics = ServiceMetrics()
    # Added last, so outermost: it times, counts and logs every request, refused ones too.
    app.add_middleware(RequestObservability, metrics=app.state.metrics)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(predict.router)
    app.include_router(v2.router)
    app.include_router(tfserving.router)
    install_pages(app)
    install_openapi(app)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    configure_logging(settings)
    repository = ModelRepository.from_settings(
        settings,
        loader=partial(load_model, backend=settings.backend, onnx_threads=settings.onnx_threads),
        on_event=app.state.metrics.model_listener(settings.model_name),
    )
    app.state.repository = repository
    await asyncio.to_thread(repository.refresh)
    if not repository.ready:
        logger.error("not ready: %s", repository.snapshot.reason)
    watcher = None
    if settings.poll_interval > 0:
        watcher = asyncio.create_task(watch(repository, settings.poll_interval))
    try:
        yield
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def __getattr__(name: str) -> Any:
    """Build ``app`` on first access, so ``uvicorn app.main:app`` works while importing this
    module reads no settings and loads nothing."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
