"""What ``EdgeProtocol`` relies on in uvicorn and httptools, beyond their public interfaces,
checked at start-up: ``select_protocol()`` serves with ``EdgeProtocol`` only when every clause
holds, and with uvicorn's stock httptools protocol (and a warning) otherwise.

The clauses are the exact versions the contract tests cover (``tests/app/edge``), the source
of every uvicorn method ``EdgeProtocol`` overrides, re-implements or builds on, the attributes
it reads and writes (a test checks this list against ``app/edge/protocol.py`` itself), and
two behaviours of httptools. When a new uvicorn or httptools comes: read ``EdgeProtocol``
against the new code, run the contract tests, then update the versions and digests here and
the pins in pyproject.toml together.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http import flow_control, httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

logger = logging.getLogger(__name__)

UVICORN_VERSION = "0.54.0"
HTTPTOOLS_VERSION = "0.9.0"

# uvicorn's modules EdgeProtocol builds on, by the first 16 hex digits of their source file's
# SHA-256: any change to them, in another version or a patched one, breaks the contract.
MODULES = {
    "uvicorn.protocols.http.httptools_impl": "1d4e1c579df41684",
    "uvicorn.protocols.http.flow_control": "d39d16560df512f3",
}
# The uvicorn code in them that EdgeProtocol depends on, digested the same way method by
# method (the contract tests check each, to say which one changed), and why.
SOURCES = {
    "HttpToolsProtocol.__init__": ("4f08999410347141", "called; sets the attributes used"),
    "HttpToolsProtocol.connection_made": ("6efb565ff3d36b91", "called; adds to connections"),
    "HttpToolsProtocol.connection_lost": ("c91a4c9bf2e29c55", "called; wakes a paused send"),
    "HttpToolsProtocol.data_received": (
        "010a7ae59a5d3b1a",
        "re-implemented: its parse errors, upgrade and keep-alive reset are the edge's own",
    ),
    "HttpToolsProtocol._unset_keepalive_if_required": (
        "00a6a4e47214e68e",
        "what data_received did on any byte, done by on_message_begin instead",
    ),
    "HttpToolsProtocol.on_message_begin": ("96d377fdc7c2baef", "called; resets the request"),
    "HttpToolsProtocol.on_header": ("65d62c044f61fdbd", "inlined in the edge's on_header"),
    "HttpToolsProtocol.on_headers_complete": (
        "1ea8589acfad92d8",
        "called; creates the cycle and starts self.app (a ChunkedBody for chunked requests)",
    ),
    "HttpToolsProtocol.on_body": ("dba9c32aeba35b6a", "never upgrades without ws_protocol"),
    "HttpToolsProtocol.on_message_complete": (
        "1fbad42dc31fc01f",
        "called; never upgrades without ws_protocol",
    ),
    "HttpToolsProtocol.on_response_complete": (
        "64e254f28e389e76",
        "arms the keep-alive timer that timeout_keep_alive_handler answers",
    ),
    "HttpToolsProtocol.timeout_keep_alive_handler": (
        "8b53bf5f2e202970",
        "re-implemented: closes only a connection still idle",
    ),
    "HttpToolsProtocol.pause_writing": ("17a8fd215d96a13c", "called; starts the write deadline"),
    "HttpToolsProtocol.resume_writing": ("7844bbaa8cceb1ef", "called; ends the write deadline"),
    "RequestResponseCycle.__init__": ("4d2f220910c33c12", "the cycle attributes used"),
    "RequestResponseCycle.receive": (
        "8124ae006be71184",
        "returns when message_event is set, which the edge sets for a malformed chunked body",
    ),
    "RequestResponseCycle.send": (
        "abdd8601b326a8da",
        "closes the connection after the answer when keep_alive is off",
    ),
    "FlowControl.resume_reading": ("a0429d30857e8488", "called after a refusal, to linger"),
}
_CLASSES = {
    "HttpToolsProtocol": HttpToolsProtocol,
    "RequestResponseCycle": RequestResponseCycle,
    "FlowControl": flow_control.FlowControl,
}

# Attributes of uvicorn's objects that EdgeProtocol reads or writes (``self.<name>`` on the
# protocol, ``self.cycle.<name>``, ``self.flow.<name>``, ``self.server_state.<name>``).
PROTOCOL_ATTRIBUTES = frozenset(
    {
        "app",
        "app_state",
        "connections",
        "cycle",
        "expect_100_continue",
        "flow",
        "headers",
        "logger",
        "loop",
        "parser",
        "server_state",
        "timeout_keep_alive",
        "timeout_keep_alive_task",
        "transport",
        "url",
        "ws_protocol_class",
    }
)
CYCLE_ATTRIBUTES = frozenset({"keep_alive", "message_event", "response_complete"})
FLOW_ATTRIBUTES = frozenset({"resume_reading"})
SERVER_STATE_ATTRIBUTES = frozenset({"default_headers"})
# The statuses EdgeProtocol answers itself, from uvicorn's STATUS_LINE.
STATUSES = (400, 408, 431, 503)
# What EdgeProtocol calls on httptools' parser.
PARSER_METHODS = frozenset({"feed_data", "get_method"})


def broken_clauses() -> list[str]:
    """Every clause of the contract that does not hold here, each as one sentence."""
    broken: list[str] = []
    for clause in CLAUSES:
        try:
            broken.extend(clause())
        except Exception as error:  # a clause that cannot even be checked is broken
            broken.append(f"{clause.__name__}: {type(error).__name__}: {error}")
    return broken


def select_protocol() -> type[asyncio.Protocol]:
    """``EdgeProtocol`` when the contract holds; else uvicorn's stock httptools protocol,
    with a warning that says why and what is lost."""
    broken = broken_clauses()
    if not broken:
        try:
            from app.edge.protocol import EdgeProtocol
        except Exception as error:  # e.g. a name it imports from uvicorn is gone
            broken = [f"app.edge.protocol cannot be imported: {type(error).__name__}: {error}"]
        else:
            return EdgeProtocol
    logger.warning(
        "the HTTP edge's contract with uvicorn %s and httptools %s does not hold (%s): serving "
        "with stock uvicorn, without the header deadline, header limits, connection cap, "
        "chunked-body 400s or write deadline (docs/security.md, The HTTP edge)",
        uvicorn.__version__,
        getattr(httptools, "__version__", "?"),
        "; ".join(broken),
    )
    return HttpToolsProtocol


def source_digest(qualified_name: str) -> str:
    """The first 16 hex digits of the SHA-256 of a uvicorn method's source."""
    class_name, method = qualified_name.split(".")
    source = inspect.getsource(getattr(_CLASSES[class_name], method))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def versions() -> Iterator[str]:
    if uvicorn.__version__ != UVICORN_VERSION:
        yield f"uvicorn is {uvicorn.__version__}, not {UVICORN_VERSION}"
    found = getattr(httptools, "__version__", None)
    if found != HTTPTOOLS_VERSION:
        yield f"httptools is {found}, not {HTTPTOOLS_VERSION}"


def module_digest(name: str) -> str:
    """The first 16 hex digits of the SHA-256 of a module's source file."""
    path = importlib.import_module(name).__file__
    assert path is not None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def sources() -> Iterator[str]:
    # Whole files, not SOURCES method by method: tokenizing each method for inspect takes
    # 40 ms, hashing the two files well under 1.
    for name, digest in MODULES.items():
        if module_digest(name) != digest:
            yield f"{name} is not the code the contract tests covered"


def attributes() -> Iterator[str]:
    """Build uvicorn's protocol and a request cycle as a connection does (without a running
    loop or a socket) and look for every attribute EdgeProtocol uses."""
    protocol, cycle = _protocol_and_cycle()
    for owner, found, names in [
        ("protocol", protocol, PROTOCOL_ATTRIBUTES),
        ("RequestResponseCycle", cycle, CYCLE_ATTRIBUTES),
        ("FlowControl", protocol.flow, FLOW_ATTRIBUTES),
        ("ServerState", protocol.server_state, SERVER_STATE_ATTRIBUTES),
        ("httptools parser", protocol.parser, PARSER_METHODS),
    ]:
        missing = sorted(name for name in names if not hasattr(found, name))
        if missing:
            yield f"uvicorn's {owner} has no {', '.join(missing)}"
    status_lines = getattr(httptools_impl, "STATUS_LINE", {})
    if not all(isinstance(status_lines.get(status), bytes) for status in STATUSES):
        yield "uvicorn's STATUS_LINE lacks a status the edge answers"


def _protocol_and_cycle() -> tuple[HttpToolsProtocol, RequestResponseCycle]:
    loop = asyncio.new_event_loop()
    try:
        config = uvicorn.Config(_no_app, log_config=None, ws="none", lifespan="off")
        protocol = HttpToolsProtocol(config, ServerState(), {}, _loop=loop)
        protocol.connection_made(_Unconnected())  # type: ignore[arg-type]
        protocol.on_message_begin()
        cycle = RequestResponseCycle(
            scope=protocol.scope,
            transport=protocol.transport,
            flow=protocol.flow,
            logger=logger,
            access_logger=logger,
            access_log=False,
            default_headers=[],
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=True,
            on_response=lambda: None,
        )
        return protocol, cycle
    finally:
        loop.close()


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI application for building a protocol that never serves."""


class _Unconnected:
    """What uvicorn's protocol asks of a transport when a connection is made."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 0), "peername": ("127.0.0.1", 0)}.get(name, default)


class _Refused(Exception):
    """Raised by a parser callback in the checks below."""


class _Callbacks:
    def __init__(self, on_header: Callable[[bytes, bytes], None] | None = None):
        self.upgraded = False
        if on_header is not None:
            self.on_header = on_header


def callback_error_context() -> Iterator[str]:
    """EdgeProtocol refuses a request by raising ``Refusal`` in a parser callback, and finds
    it as the ``__context__`` of the ``HttpParserCallbackError`` that httptools raises."""

    def refuse(name: bytes, value: bytes) -> None:
        raise _Refused

    parser = httptools.HttpRequestParser(_Callbacks(on_header=refuse))
    try:
        parser.feed_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    except httptools.HttpParserCallbackError as error:
        if not isinstance(error.__context__, _Refused):
            yield "httptools' HttpParserCallbackError no longer carries the callback's error"
        if not isinstance(error, httptools.HttpParserError):
            yield "httptools' HttpParserCallbackError is no longer an HttpParserError"
    else:
        yield "httptools no longer raises HttpParserCallbackError for a callback's error"


def upgrade_signal() -> Iterator[str]:
    """EdgeProtocol serves an upgrade request as plain HTTP by catching ``HttpParserUpgrade``
    (uvicorn's data_received would have tried to upgrade, or logged two warnings)."""
    parser = httptools.HttpRequestParser(_Callbacks())
    request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    try:
        parser.feed_data(request)
    except httptools.HttpParserUpgrade:
        return
    yield "httptools no longer raises HttpParserUpgrade for an upgrade request"


# Each yields a sentence per way in which it does not hold.
CLAUSES: tuple[Callable[[], Iterator[str]], ...] = (
    versions,
    sources,
    attributes,
    callback_error_context,
    upgrade_signal,
)
