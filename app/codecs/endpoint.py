"""Serving a protocol's operations over ASGI: the HTTP part every codec shares.

Each path of a codec becomes one Starlette ``Route`` whose endpoint is a ``PathEndpoint``: a
plain ASGI callable, so a request costs a route match and this module's work, not FastAPI's
per-request machinery. It checks the method and the API key, reads the body (size limit,
media type, deadline, disconnects), calls the operation's handler, renders any error in the
codec's own shape, sends the reply, and records the request (one log line, the metrics).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from time import perf_counter

from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from app.codecs.base import JSON_MEDIA_TYPE, Call, Codec, Operation, Reply
from app.config import Settings
from app.errors import (
    ClientDisconnected,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
    ServiceError,
    UnsupportedMediaType,
)
from app.observability import CLIENT_CLOSED_REQUEST, REQUEST_ID_HEADER
from app.services import SERVICES_STATE_KEY, Services

logger = logging.getLogger(__name__)


class PathEndpoint:
    """The operations of one codec at one path, by method, as an ASGI application."""

    def __init__(self, codec: Codec, operations: Sequence[Operation]):
        self.codec = codec
        self.path = operations[0].path
        self.operations = {operation.method: operation for operation in operations}
        if "GET" in self.operations:
            # HTTP's rule, which monitors probing with HEAD rely on: HEAD is a GET without
            # the body (its headers, Content-Length included, are the GET's).
            self.operations.setdefault("HEAD", self.operations["GET"])
        # The path's parameters that name a model and a version, if it has them.
        named = {
            parameter.names: name
            for name, parameter in codec.path_parameters.items()
            if f"{{{name}}}" in self.path
        }
        self._model_parameter = named.get("model")
        self._version_parameter = named.get("version")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        services: Services = scope["state"][SERVICES_STATE_KEY]
        headers = dict(scope["headers"])
        observer = services.observer
        request_id = observer.request_id(headers.get(REQUEST_ID_HEADER))
        method = scope["method"]
        try:
            reply = await self._reply(services, method, scope, headers, receive)
        except ClientDisconnected:
            # Nothing to answer and nothing wrong with the server: one info line, no traceback.
            observer.record(
                method,
                self.path,
                scope["path"],
                CLIENT_CLOSED_REQUEST,
                perf_counter() - started,
                request_id,
                protocol=self.codec.name,
            )
            return
        response_headers = [
            (b"content-type", reply.media_type),
            (b"content-length", b"%d" % len(reply.body)),
            (REQUEST_ID_HEADER, request_id.encode()),
            *reply.headers,
        ]
        await send(
            {"type": "http.response.start", "status": reply.status, "headers": response_headers}
        )
        body = b"" if method == "HEAD" else reply.body
        await send({"type": "http.response.body", "body": body})
        observer.record(
            method,
            self.path,
            scope["path"],
            reply.status,
            perf_counter() - started,
            request_id,
            reply.rows,
            reply.model,
            protocol=self.codec.name,
        )

    async def _reply(
        self,
        services: Services,
        method: str,
        scope: Scope,
        headers: dict[bytes, bytes],
        receive: Receive,
    ) -> Reply:
        """The operation's reply, or the codec's rendering of what went wrong."""
        try:
            operation = self.operations.get(method)
            if operation is None:
                raise MethodNotAllowed(method, sorted(self.operations))
            if not operation.public:
                services.api_keys.check(headers)
            body = b""
            if operation.reads_body:  # an inference request
                services.dataplane.refuse_when_full()
                self._check_media_type(headers)
                self._check_model(services, scope["path_params"])
                body = await _read_body(receive, headers, services.settings)
            call = Call(method, scope["path_params"], headers, body, services.dataplane)
            return await operation.handler(call)
        except ServiceError as error:
            return self.codec.render_error(error)
        except ClientDisconnected:
            raise
        except Exception:
            logger.exception("unhandled error on %s %s", method, scope["path"])
            return self.codec.render_error(ServiceError("internal server error"))

    def _check_model(self, services: Services, path_params: dict[str, str]) -> None:
        """A path that names a model no one serves is a 404 before its body is read."""
        if self._model_parameter is not None:
            version = self._version_parameter
            services.dataplane.model(
                path_params[self._model_parameter], path_params.get(version) if version else None
            )

    def _check_media_type(self, headers: dict[bytes, bytes]) -> None:
        """JSON, or one of the codec's binary types; no content-type at all is taken as JSON
        (tritonclient sends none)."""
        value = headers.get(b"content-type")
        if value is None:
            return
        media_type = value.split(b";", 1)[0].strip().lower()
        if media_type == JSON_MEDIA_TYPE or media_type.endswith(b"+json"):
            return
        if media_type in self.codec.binary_media_types:
            return
        accepted = [JSON_MEDIA_TYPE, *sorted(self.codec.binary_media_types)]
        raise UnsupportedMediaType(
            f"content-type must be {' or '.join(t.decode() for t in accepted)}, "
            f"got {media_type.decode(errors='replace')[:64] or 'an empty value'}"
        )


async def _read_body(receive: Receive, headers: dict[bytes, bytes], settings: Settings) -> bytes:
    """The whole body, refused past ``max_body_bytes`` before it is held in memory, and within
    ``body_timeout`` from the moment the route starts reading it (a declared body that never
    arrives included)."""
    limit = settings.max_body_bytes
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"body of {int(declared)} bytes exceeds the limit of {limit} bytes",
            headers={"Connection": "close"},
        )
    # The deadline runs from the first receive(): a declared body that never arrives gets its
    # 408 too. A timer of the loop's own, not asyncio.timeout: the same cancel-and-uncancel at
    # about a third of the cost per request (6 against 17 µs on uvloop, a loaded machine).
    task = asyncio.current_task()
    assert task is not None
    cancelling = task.cancelling()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    deadline = asyncio.get_running_loop().call_later(settings.body_timeout, expire)
    chunks: list[bytes] = []
    try:
        await _receive_all(receive, chunks, limit)
    except asyncio.CancelledError:
        # The deadline's own cancellation becomes a 408; any other (shutdown) goes on.
        if expired and task.uncancel() <= cancelling:
            raise RequestTimeout(
                f"the request body did not arrive within {settings.body_timeout:g} s"
            ) from None
        raise
    finally:
        deadline.cancel()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _receive_all(receive: Receive, chunks: list[bytes], limit: int) -> None:
    size = 0
    while True:
        message = await receive()
        chunk = _body_of(message)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"body of more than {limit} bytes exceeds the limit of {limit} bytes",
                headers={"Connection": "close"},
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return


def _body_of(message: Message) -> bytes:
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body = message.get("body", b"")
    assert isinstance(body, bytes)
    return body


def routes(codecs: Sequence[Codec]) -> list[Route]:
    """One Starlette route per path of every codec: first every codec's inference paths (those
    whose operations read a body), then the rest, each in the codecs' own order (a protocol
    lists its more specific paths first where two templates could match the same path).

    The router tries routes in order, and each miss costs a pattern match: so an inference
    request, the service's hot path, meets only other inference routes before its own.
    """
    inference: list[Route] = []
    others: list[Route] = []
    for codec in codecs:
        by_path: dict[str, list[Operation]] = {}
        for operation in codec.operations:
            by_path.setdefault(operation.path, []).append(operation)
        for path, operations in by_path.items():
            route = Route(path, PathEndpoint(codec, operations), name=f"{codec.name} {path}")
            reads_body = any(operation.reads_body for operation in operations)
            (inference if reads_body else others).append(route)
    return [*inference, *others]
