"""Per-request instrumentation: a request id on every response, the request metrics, and one
access-log line per request, for the data plane and the control plane alike.

The data plane's endpoints call ``RequestObserver.record`` themselves (they know the status,
route, rows and model without wrapping ``send``); the control plane gets the same through the
``ControlPlaneObservability`` ASGI middleware. Both go through the one ``record`` below.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ServiceError
from app.logs import JsonFormatter, direct_access_handler, set_request_id
from app.metrics import ServiceMetrics

REQUEST_ID_HEADER = b"x-request-id"
UNMATCHED_ROUTE = "unmatched"
CONTROL_PLANE = "control"  # the protocol label of the control plane's requests
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that went away before the answer
# What a caller may send as its request id; anything else is replaced by a generated one, so
# that neither the response headers nor the logs carry what a client chose to inject.
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_logger = logging.getLogger("app.access")
logger = logging.getLogger(__name__)


class RequestObserver:
    """Request ids, request metrics and the access-log line."""

    def __init__(self, metrics: ServiceMetrics):
        self.metrics = metrics
        # 32 hex digits like a random id, but a counter after a per-process random prefix:
        # unique without paying for randomness on every request.
        self._id_prefix = secrets.token_hex(8)
        self._id_counter = itertools.count()

    def request_id(self, given: bytes | None) -> str:
        """The caller's id when it is usable, else a new one; also set for this context."""
        if given is not None and _VALID_REQUEST_ID.fullmatch(given):
            request_id = given.decode()
        else:
            request_id = f"{self._id_prefix}{next(self._id_counter):016x}"
        set_request_id(request_id)
        return request_id

    def record(
        self,
        method: str,
        route: str,
        path: str,
        status: int | str,
        seconds: float,
        request_id: str,
        rows: int | None = None,
        model: tuple[str, int] | None = None,
        *,
        protocol: str,
    ) -> None:
        """Count the request and write its one log line. ``status`` is an HTTP status, or a
        gRPC status code's name; ``protocol`` the codec's name (``control`` for the control
        plane, ``grpc``)."""
        if method not in _METHODS:
            method = "OTHER"  # bounded label values, whatever a client sends
        self.metrics.observe_request(protocol, method, route, status, seconds)
        if access_logger.isEnabledFor(logging.INFO):
            _log_request(method, path, status, seconds, request_id, rows, model, protocol)


def _log_request(
    method: str,
    path: str,
    status: int | str,
    seconds: float,
    request_id: str,
    rows: int | None,
    model: tuple[str, int] | None,
    protocol: str,
) -> None:
    fields = {
        "protocol": protocol,
        "method": method,
        "path": path,
        "status": status,
        "latency_ms": int(seconds * 1_000_000) / 1000,  # microsecond resolution; round() is slow
        "rows": rows,
        "model": model[0] if model else None,
        "model_version": model[1] if model else None,
        "request_id": request_id,
    }
    message = f"{method} {path} {status}"
    handler = direct_access_handler(access_logger)
    if handler is not None:  # the usual case: the service's own JSON handler, nothing else
        formatter: JsonFormatter = handler.formatter  # type: ignore[assignment]
        line = formatter.format_line(time.time(), "INFO", access_logger.name, message, fields)
        handler.emit_line(line)
        return
    # Made and handled directly: Logger.info would first walk the stack for the caller's file
    # and line, which no log line shows.
    record = access_logger.makeRecord(
        access_logger.name,
        logging.INFO,
        "",  # no source file: a path would be split into name and extension for every line
        0,
        "%s %s %s",
        (method, path, status),
        None,
        extra={"fields": fields},
    )
    access_logger.handle(record)


ErrorRenderer = Callable[[ServiceError], tuple[int, bytes, list[tuple[bytes, bytes]]]]


class ControlPlaneObservability:
    """Request id, request metrics and the access-log line for the control plane's requests.

    It also answers for a bug in a control-plane route: the traceback is logged once, with the
    request id, and the client gets a plain 500 in the native error shape (``render_error``).
    """

    def __init__(self, app: ASGIApp, observer: RequestObserver, render_error: ErrorRenderer):
        self.app = app
        self.observer = observer
        self.render_error = render_error
        self._routes: dict[int, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = self.observer.request_id(_header(scope, REQUEST_ID_HEADER))
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        status = 500
        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started_response:
                code, body, headers = self.render_error(ServiceError("internal server error"))
                await send_with_id(
                    {"type": "http.response.start", "status": code, "headers": headers}
                )
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            self.observer.record(
                scope["method"],
                self._route(scope),
                scope["path"],
                status,
                perf_counter() - started,
                request_id,
                protocol=CONTROL_PLANE,
            )

    def _route(self, scope: Scope) -> str:
        """The route template (``/metadata``): bounded label values."""
        route = scope.get("route")
        if route is None:
            return UNMATCHED_ROUTE
        template = self._routes.get(id(route))
        if template is None:
            template = self._routes[id(route)] = _template(route)
        return template


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _template(route: Any) -> str:
    return str(getattr(route, "path_format", None) or getattr(route, "path", UNMATCHED_ROUTE))
