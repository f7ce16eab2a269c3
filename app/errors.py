"""Service errors: one base class carrying its status, one handler per error shape.

The native API answers ``{"error": {"code", "message", "row", "field"}}``; the standard protocols
(``/v2`` Open Inference Protocol, ``/v1`` TensorFlow Serving) keep their published
``{"error": "<message>"}``. Which shape applies is decided by the request path alone.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

logger = logging.getLogger(__name__)

STANDARD_PROTOCOL_PREFIXES = ("/v2/", "/v1/")
_STANDARD_PROTOCOL_ROOTS = ("/v2", "/v1")


SHOWN_LENGTH = 64


def shown(value: object) -> str:
    """A client-supplied value for an error message: quoted, and cut short so that an error
    never echoes megabytes back."""
    text = repr(value)
    return text if len(text) <= SHOWN_LENGTH else text[:SHOWN_LENGTH] + "…"


class ServiceError(Exception):
    """Base of every error the service reports on purpose; subclasses fix status and code."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, row: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.row = row
        self.field = field


class InvalidJSON(ServiceError):
    status_code = 400
    code = "invalid_json"


class InvalidRequest(ServiceError):
    """The request is well-formed JSON but its fields are wrong (names, types, ranges)."""

    status_code = 422
    code = "invalid_request"


class InvalidInput(ServiceError):
    """A feature value or row is unusable; ``row`` and ``field`` say where."""

    status_code = 422
    code = "invalid_input"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class ModelNotReady(ServiceError):
    status_code = 503
    code = "model_not_ready"


class RoutingError(ServiceError):
    """An error Starlette raises itself: unknown path, wrong method."""

    _CODES: ClassVar[dict[int, str]] = {404: "not_found", 405: "method_not_allowed"}

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.code = self._CODES.get(status_code, "http_error")


def uses_standard_protocol(path: str) -> bool:
    return path.startswith(STANDARD_PROTOCOL_PREFIXES) or path in _STANDARD_PROTOCOL_ROOTS


def error_response(path: str, error: ServiceError) -> Response:
    """Render an error in the shape the protocol at ``path`` publishes."""
    if uses_standard_protocol(path):
        body: dict[str, object] = {"error": error.message}
    else:
        body = {
            "error": {
                "code": error.code,
                "message": error.message,
                "row": error.row,
                "field": error.field,
            }
        }
    return Response(
        content=orjson.dumps(body),
        status_code=error.status_code,
        media_type="application/json",
    )


async def _handle_service_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ServiceError)
    return error_response(request.url.path, error)


async def _handle_http_exception(request: Request, error: Exception) -> Response:
    """Starlette's own errors (unknown path, wrong method) in our shapes."""
    assert isinstance(error, HTTPException)
    response = error_response(request.url.path, RoutingError(error.status_code, str(error.detail)))
    if error.headers:
        response.headers.update(error.headers)
    return response


async def _handle_request_validation(request: Request, error: Exception) -> Response:
    """FastAPI's parameter validation (path and query values) as an invalid request."""
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return error_response(
        request.url.path, InvalidRequest(f"{where}: {first.get('msg', 'invalid')}", field=where)
    )


async def _handle_unexpected(request: Request, error: Exception) -> Response:
    """A genuine bug: log it whole, tell the client nothing internal."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request.url.path, ServiceError("internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _handle_service_error)
    app.add_exception_handler(HTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_request_validation)
    app.add_exception_handler(Exception, _handle_unexpected)
