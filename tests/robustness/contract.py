"""What every response must honour, whatever the request: the checks shared by robustness tests.

A request gets a 2xx, or a 4xx whose body is the error document of the protocol that served
it (native and control plane: ``{"error": {"code", "message", "row", "field"}}``; V2 and TF
Serving: ``{"error": "<message>"}``). Which protocol serves a path is the router's decision,
made here by the same routes the service serves. Never a 5xx (503 aside where a test allows
it), and no body ever carries a stack trace or a path of the server's file system.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson
from starlette.routing import Match

from app.codecs import CODECS
from app.codecs.endpoint import routes
from tests.support import REPO_ROOT

# Markers of leaked internals: Python tracebacks and paths on the server's disk.
_INTERNALS = ("Traceback (most recent call last)", 'File "', "site-packages", str(REPO_ROOT))
# The protocols whose errors are {"error": "<message>"}; the others use the native object.
MESSAGE_ENVELOPES = frozenset({"v2", "tfserving"})
_ROUTES = [(codec.name, route) for codec in CODECS for route in routes([codec])]


def protocol_of(path: str) -> str:
    """The codec whose route the service matches for ``path``, or ``control``."""
    scope = {"type": "http", "method": "GET", "path": unquote(urlsplit(path).path)}
    for name, route in _ROUTES:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return name
    return "control"


def assert_no_internals(response: httpx.Response, *private_paths: Path) -> None:
    text = response.content.decode("utf-8", errors="replace")
    for marker in (*_INTERNALS, sys.prefix, *map(str, private_paths)):
        assert marker not in text, f"response leaks {marker!r}: {text[:500]}"


def assert_error_envelope(path: str, response: httpx.Response) -> Any:
    """The error document of the protocol serving ``path``; returns the decoded body."""
    assert response.headers["content-type"].startswith("application/json"), _describe(response)
    body = orjson.loads(response.content)
    if protocol_of(path) in MESSAGE_ENVELOPES:
        assert set(body) == {"error"}, _describe(response)
        assert isinstance(body["error"], str), _describe(response)
        assert body["error"], _describe(response)
    else:
        error = body["error"]
        assert set(error) == {"code", "message", "row", "field"}, _describe(response)
        assert isinstance(error["code"], str), _describe(response)
        assert isinstance(error["message"], str), _describe(response)
        assert error["row"] is None or isinstance(error["row"], int), _describe(response)
        assert error["field"] is None or isinstance(error["field"], str), _describe(response)
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
