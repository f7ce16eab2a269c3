"""HTTP plumbing shared by every router: body size limit, JSON decoding, JSON responses."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    SHOWN_LENGTH,
    InvalidJSON,
    InvalidRequest,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
    error_response,
)
from app.validation import may_contain_booleans

JSON_MEDIA_TYPE = "application/json"
BodyModel = TypeVar("BodyModel", bound=BaseModel)


@dataclass(frozen=True)
class JsonBody:
    """A decoded request body, with what a cheap scan of its bytes tells the validators."""

    value: Any
    booleans_possible: bool


async def read_json(request: Request) -> JsonBody:
    """The body of a JSON request, decoded; 415 for other media types, 400 for bad JSON."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE and not media_type.endswith("+json"):
        shown = media_type or "none"
        raise UnsupportedMediaType(f"content-type must be {JSON_MEDIA_TYPE}, got {shown}")
    body = await request.body()
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidJSON(f"body is not valid JSON: {error}") from error
    return JsonBody(value=value, booleans_possible=may_contain_booleans(body))


def json_response(content: Any, status_code: int = 200) -> Response:
    """Serialize with orjson (numpy arrays included) into a ready response."""
    return serialized_json_response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status_code
    )


def serialized_json_response(body: bytes, status_code: int = 200) -> Response:
    """A response carrying JSON that a renderer already wrote as bytes."""
    return Response(content=body, status_code=status_code, media_type=JSON_MEDIA_TYPE)


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class DirectRoute(APIRoute):
    """A route whose endpoint takes the ``Request`` and returns a finished ``Response``.

    Declared and documented like any FastAPI route (response model, OpenAPI), but served
    without FastAPI's per-request dependency solving, which on a hot route costs more than
    predicting a row (bench/README.md). The endpoint must take nothing but the request.
    """

    def get_route_handler(self) -> Endpoint:
        if len(inspect.signature(self.endpoint).parameters) != 1:
            raise TypeError(f"the endpoint of {self.path} must take only the request")
        endpoint: Endpoint = self.endpoint
        return endpoint


class HotRoutes:
    """Serve every ``DirectRoute`` straight from the ASGI scope, ahead of FastAPI's router.

    FastAPI's routing and exception middleware cost about 50 µs a request, more than reading,
    predicting and answering one row (bench/README.md). The handlers are the very ones FastAPI
    would call (``get_route_handler``, so route classes still apply), matched by the routes'
    own compiled paths; errors are rendered as the exception handlers render them. Anything
    else (other routes, wrong methods, unknown paths) goes on to FastAPI unchanged.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]):
        self.app = app
        self._routes = [
            (route, route.get_route_handler()) for route in routes if isinstance(route, DirectRoute)
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route, handler in self._routes:
                match = route.path_regex.match(scope["path"])
                if match and scope["method"] in (route.methods or ()):
                    await self._serve(route, handler, match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _serve(
        route: DirectRoute,
        handler: Endpoint,
        parameters: dict[str, str],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        scope["route"] = route  # as the router records it: metrics label requests by route
        scope["path_params"] = {
            name: route.param_convertors[name].convert(value) for name, value in parameters.items()
        }
        try:
            response = await handler(Request(scope, receive))
        except ServiceError as error:
            response = error_response(scope["path"], error)
        await response(scope, receive, send)


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` before they are held in memory whole.

    A declared Content-Length over the limit fails at once; a chunked body fails as soon as
    the bytes received pass it. Either way the route sees a PayloadTooLarge when it reads.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        limit = self.max_bytes
        if declared is not None and declared > limit:
            await self.app(scope, _refuse(f"body of {declared} bytes", limit), send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(_too_large(f"body of more than {limit} bytes", limit))
            return message

        await self.app(scope, counting_receive, send)


def _refuse(what: str, limit: int) -> Receive:
    async def receive() -> Message:
        raise PayloadTooLarge(_too_large(what, limit))

    return receive


def _too_large(what: str, limit: int) -> str:
    return f"{what} exceeds the limit of {limit} bytes"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def validate_body(model: type[BodyModel], value: Any) -> BodyModel:
    """Validate a decoded body against a pydantic model; errors name the offending field."""
    if not isinstance(value, dict):
        raise InvalidRequest("body must be a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])[:SHOWN_LENGTH] or None
        message = f"{where}: {first['msg']}" if where else first["msg"]
        raise InvalidRequest(message, field=where) from error


def request_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body the route reads itself (to parse it with orjson, not FastAPI)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                JSON_MEDIA_TYPE: {
                    "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")
                }
            },
        }
    }
