"""What every response must honour, whatever the request: the checks shared by robustness tests.

A request gets a 2xx, or a 4xx whose body is the error envelope of the protocol that served
it (``Codec.error_model``; the control plane answers in the native one). Which protocol serves
a path is the router's decision, made here by the same routes the service serves. Never a 5xx
(503 aside where a test allows it), and no body ever carries a stack trace or a path of the
server's file system.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson
from starlette.routing import Match

from app.codecs import CODECS, native
from app.codecs.base import Codec
from app.codecs.endpoint import routes
from app.errors import InvalidInput
from tests.support import REPO_ROOT

# Markers of leaked internals: Python tracebacks and paths on the server's disk.
_INTERNALS = ("Traceback (most recent call last)", 'File "', "site-packages", str(REPO_ROOT))
_ROUTES = [(codec, route) for codec in CODECS for route in routes([codec])]
# The protocols that answer every mistake of the client's with 400, where the native API tells
# apart 422 (a well-formed request with wrong values): as their codecs render it.
MESSAGE_ENVELOPES = frozenset(
    codec.name for codec in CODECS if codec.render_error(InvalidInput("?")).status == 400
)


def codec_of(path: str) -> Codec | None:
    """The codec whose route the service matches for ``path``; None for the control plane."""
    scope = {"type": "http", "method": "GET", "path": unquote(urlsplit(path).path)}
    for codec, route in _ROUTES:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return codec
    return None


def protocol_of(path: str) -> str:
    """The name of the codec serving ``path``, or ``control``."""
    codec = codec_of(path)
    return "control" if codec is None else codec.name


def assert_no_internals(response: httpx.Response, *private_paths: Path) -> None:
    text = response.content.decode("utf-8", errors="replace")
    for marker in (*_INTERNALS, sys.prefix, *map(str, private_paths)):
        assert marker not in text, f"response leaks {marker!r}: {text[:500]}"


def assert_error_envelope(path: str, response: httpx.Response) -> Any:
    """The error envelope of the protocol serving ``path``, exactly; returns the decoded body."""
    assert response.headers["content-type"].startswith("application/json"), _describe(response)
    body = orjson.loads(response.content)
    codec = codec_of(path) or native.CODEC  # the control plane answers in the native envelope
    try:
        envelope = codec.error_model.model_validate(body)
    except ValueError as error:
        raise AssertionError(f"{error}: {_describe(response)}") from error
    assert envelope.model_dump(mode="json") == body, _describe(response)
    assert envelope.message, _describe(response)
    return body


def assert_client_error(path: str, response: httpx.Response, *private_paths: Path) -> Any:
    """A 4xx in the error format ``path``'s protocol documents; returns the decoded body."""
    assert 400 <= response.status_code < 500, _describe(response)
    body = assert_error_envelope(path, response)
    assert_no_internals(response, *private_paths)
    return body


def assert_documented_outcome(path: str, response: httpx.Response, *private_paths: Path) -> None:
    """A 2xx with a JSON (or text, for metrics; bytes, for binary tensors) body, or a 4xx in
    the documented format. Whether a 2xx's body fits its schema is schemathesis' check."""
    if 200 <= response.status_code < 300:
        if response.headers.get("content-type", "").startswith("application/json"):
            orjson.loads(response.content)
        assert_no_internals(response, *private_paths)
    else:
        assert_client_error(path, response, *private_paths)


def _describe(response: httpx.Response) -> str:
    request = response.request
    try:
        sent = request.content[:300]
    except httpx.RequestNotRead:  # a streamed body
        sent = b"(streamed)"
    return (
        f"{request.method} {request.url} (body {sent!r}) -> {response.status_code}: "
        f"{response.content[:500]!r}"
    )
