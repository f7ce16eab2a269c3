"""The application: ``create_app(settings)``, and ``app`` for ``uvicorn app.main:app``.

Requests meet the data plane first: a Starlette router holding every codec's operations
(``app.codecs``), whose endpoints are plain ASGI callables. Whatever none of them matches goes
to the control plane, a FastAPI application: metadata, metrics, the OpenAPI document, the docs
and pages. The model loads in the lifespan, never at import; the lifespan also starts the gRPC
server (``app.grpc_server``) on the same data plane, in the same event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from app.auth import ApiKeys
from app.codecs import CODECS, native
from app.codecs.endpoint import routes
from app.config import Settings, get_settings
from app.control import metadata, metrics
from app.dataplane import DataPlane
from app.errors import InvalidRequest, RoutingError, ServiceError
from app.grpc_server import GrpcServer
from app.inference import load_model
from app.logs import configure_logging
from app.metrics import ServiceMetrics, flush_periodically
from app.observability import ControlPlaneObservability, RequestObserver
from app.openapi import install_openapi
from app.pages import error_page, install_pages
from app.repository import ModelRepository, watch
from app.services import SERVICES_STATE_KEY, Services, require_api_key
from app.version import SERVICE_VERSION

logger = logging.getLogger(__name__)


class Service:
    """The ASGI application: the data plane's routes, then the control plane."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.metrics = ServiceMetrics()
        self.observer = RequestObserver(self.metrics)
        self.control = _control_plane(settings, self.observer)
        self.router = Router(
            routes=routes(CODECS),
            default=self.control,
            lifespan=self._lifespan,
            redirect_slashes=False,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.settings.root_path and scope["type"] == "http":
            _place_under(self.settings.root_path, scope)
        await self.router(scope, receive, send)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: object) -> AsyncIterator[dict[str, Any]]:
        settings = self.settings
        configure_logging(settings)
        api_keys = ApiKeys.from_settings(settings)
        repository = ModelRepository.from_settings(
            settings,
            loader=partial(
                load_model, backend=settings.backend, onnx_threads=settings.onnx_threads
            ),
            on_event=self.metrics.model_listener(settings.model_name),
        )
        await asyncio.to_thread(repository.refresh)
        if not repository.ready:
            logger.error("not ready: %s", repository.snapshot.reason)
        dataplane = DataPlane(repository, settings, self.metrics)
        services = Services(dataplane, repository, self.observer, api_keys, settings)
        _tune_garbage_collector()
        grpc_server = GrpcServer(services) if settings.grpc_port else None
        if grpc_server is not None:
            await grpc_server.start()
        background = []
        if settings.poll_interval > 0:
            background.append(asyncio.create_task(watch(repository, settings.poll_interval)))
        if self.metrics.shared_between_workers:
            background.append(asyncio.create_task(flush_periodically(self.metrics)))
        try:
            # Lifespan state (app.services): each request finds it in scope["state"]; uvicorn
            # also hands it to its connection protocols (app/edge counts what the HTTP edge
            # refuses in "metrics").
            yield {"metrics": self.metrics, SERVICES_STATE_KEY: services}
        finally:
            if grpc_server is not None:
                await grpc_server.stop(settings.graceful_timeout)
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.metrics.flush()
            dataplane.close()


# Young collections every 20,000 allocations (instead of 700) and full ones a tenth as often:
# a request's objects are freed by reference counting, and with 64 large batches in flight
# the default thresholds made full collections pause the event loop for 70-90 ms each
# (tests/robustness/test_overload.py: health probe p99 68 ms with the defaults, 10 ms with
# these and the freeze below).
GC_THRESHOLDS = (20_000, 50, 100)


def _tune_garbage_collector() -> None:
    """Freeze what start-up made (modules, the app, the loaded model: never garbage) so that
    collections stop scanning it, and collect less often. A process-wide setting: the service
    is the process."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _place_under(root_path: str, scope: Scope) -> None:
    """Serve under ``root_path`` whether the proxy in front strips it or forwards it: the
    scope then always says both (``root_path``, and ``path`` starting with it), which is how
    Starlette's routing and every URL the service writes expect it."""
    path: str = scope["path"]
    if path != root_path and not path.startswith(root_path + "/"):
        scope["path"] = root_path + path  # the proxy stripped the prefix
    scope["root_path"] = root_path


def create_app(settings: Settings | None = None) -> Service:
    """Build the application; the model loads when it starts (lifespan), not here."""
    return Service(settings or get_settings())


def _control_plane(settings: Settings, observer: RequestObserver) -> FastAPI:
    """FastAPI for everything but inference: health, metadata, metrics, docs, pages."""
    control = FastAPI(
        title="Multi-label prediction service",
        version=SERVICE_VERSION,
        description="Per-label probabilities and label sets from a small neural network, "
        "served with ONNX Runtime. Native API, Open Inference Protocol (V2) and "
        "TensorFlow Serving REST.",
        # The service instruments itself (app.observability); FastAPI's OpenTelemetry hooks
        # would otherwise look up tracer and meter providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # FastAPI's own /docs and /redoc load their assets from a public CDN; app.pages serves
        # them from assets shipped with the service instead.
        docs_url=None,
        redoc_url=None,
    )
    secured = ApiKeys.configured(settings)
    protected = [Depends(require_api_key)] if secured else []
    control.include_router(metadata.router, dependencies=protected)
    control.include_router(
        metrics.router, dependencies=protected if settings.metrics_require_key else []
    )
    install_pages(control, card_dependencies=protected)
    _install_error_handlers(control)
    control.add_middleware(
        ControlPlaneObservability, observer=observer, render_error=_native_error_parts
    )
    install_openapi(control, CODECS, secured=secured)
    return control


def _native_error_parts(error: ServiceError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    reply = native.render_error(error)
    return reply.status, reply.body, [(b"content-type", reply.media_type), *reply.headers]


def _install_error_handlers(control: FastAPI) -> None:
    """The control plane's errors, in the native API's one error shape (a page for a
    browser's 401 or 404)."""

    async def service_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ServiceError)
        page = await error_page(request, error.status_code, error.message, error.headers)
        if page is not None:  # a browser opening a page: a page that says what to do
            return page
        status, body, headers = _native_error_parts(error)
        response = Response(body, status_code=status)
        response.raw_headers = [*response.raw_headers, *headers]
        return response

    async def http_exception(request: Request, error: Exception) -> Response:
        """Starlette's own errors (unknown path, wrong method)."""
        assert isinstance(error, HTTPException)
        return await service_error(
            request, RoutingError(error.status_code, str(error.detail), dict(error.headers or {}))
        )

    async def request_validation(request: Request, error: Exception) -> Response:
        """FastAPI's parameter validation (path and query values) as an invalid request."""
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid')}"
        return await service_error(request, InvalidRequest(message, field=where))

    control.add_exception_handler(ServiceError, service_error)
    control.add_exception_handler(HTTPException, http_exception)
    control.add_exception_handler(RequestValidationError, request_validation)


def __getattr__(name: str) -> Any:
    """Build ``app`` on first access, so ``uvicorn app.main:app`` works while importing this
    module reads no settings and loads nothing."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
