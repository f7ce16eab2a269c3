"""Errors the service reports on purpose: one base class carrying its status and code.

Rendering belongs to the protocol that decoded the request (``app.codecs``): the native API
answers ``{"error": {"code", "message", "row", "field"}}``, the Open Inference Protocol and
TensorFlow Serving their published ``{"error": "<message>"}``.
"""

from __future__ import annotations

from typing import ClassVar

import orjson

SHOWN_LENGTH = 64


def shown(value: object) -> str:
    """A value from a request body, for an error message: written as JSON, the caller's own
    notation (`true`, `"0.7"`, `null`), and cut short so that an error never echoes megabytes."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return _cut(text)


def shown_name(name: object) -> str:
    """A name from a request path or an artifact (model, version, file), for a message:
    quoted as Triton and TF Serving quote them (`'other'`), and cut short."""
    return _cut(repr(name))


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_LENGTH else text[:SHOWN_LENGTH] + "…"


class ServiceError(Exception):
    """Base of every error the service reports on purpose; subclasses fix status and code."""

    status_code = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.row = row
        self.field = field
        self.headers = headers or {}

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status_code < 500


class InvalidJSON(ServiceError):
    status_code = 400
    code = "invalid_json"


class BadRequest(ServiceError):
    """The request cannot be read at all (e.g. a malformed binary tensor body)."""

    status_code = 400
    code = "bad_request"


class InvalidRequest(ServiceError):
    """The request is well-formed but its fields are wrong (names, types, ranges)."""

    status_code = 422
    code = "invalid_request"


class InvalidInput(ServiceError):
    """A feature value or row is unusable; ``row`` and ``field`` say where."""

    status_code = 422
    code = "invalid_input"


class NotSupported(ServiceError):
    """An operation of a protocol that this service does not offer (TF Serving's classify)."""

    status_code = 400
    code = "not_supported"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(ServiceError):
    status_code = 405
    code = "method_not_allowed"

    def __init__(self, method: str, allowed: list[str]):
        super().__init__(
            f"method {method} is not allowed here; use {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )


class RequestTimeout(ServiceError):
    status_code = 408
    code = "request_timeout"

    def __init__(self, message: str):
        super().__init__(message, headers={"Connection": "close"})


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class TooManyRows(PayloadTooLarge):
    """More rows in one request than ``max_rows``: refused by the data plane, or by a decoder
    as it counts them, before any is built."""

    def __init__(self, count: int, max_rows: int):
        super().__init__(f"{count} rows exceed the limit of {max_rows} rows per request")


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class ModelNotReady(ServiceError):
    status_code = 503
    code = "model_not_ready"


class Overloaded(ServiceError):
    """Admission control refused the request: the worker already holds its limit of work."""

    status_code = 503
    code = "overloaded"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class RoutingError(ServiceError):
    """An error Starlette raises itself in the control plane: unknown path, wrong method."""

    _CODES: ClassVar[dict[int, str]] = {404: "not_found", 405: "method_not_allowed"}

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message, headers=headers)
        self.status_code = status_code
        self.code = self._CODES.get(status_code, "http_error")


class ClientDisconnected(Exception):
    """The client went away before its request was read or answered: not a server error."""
