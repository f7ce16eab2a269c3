"""The HTTP edge: uvicorn with a connection protocol that holds against hostile clients.

``EdgeProtocol`` is uvicorn's httptools protocol plus the limits of ``Settings``: deadlines for
the request head, for a declared body and for idle keep-alive connections; caps on header
bytes and count, enforced while the head is parsed; and a cap on open connections per worker,
past which requests get a fast 503 while the health probes (``PROBE_PATHS``) still answer.
Each of these is counted (``ServiceMetrics.observe_connection_event``) and none is logged:
hostile clients must not be able to write the service's logs (a malformed request keeps
uvicorn's one warning line, and gets a 400 that says what is wrong).

It relies on uvicorn's protocol methods; ``tests/app/test_server.py`` fails if their
signatures, or the uvicorn code this module re-implements or builds on, change.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys
from http import HTTPStatus
from typing import Any, Literal

import httptools
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.codecs import probe_paths
from app.config import Settings, get_settings
from app.errors import BadRequest, Overloaded, RequestTimeout
from app.logs import configure_logging, logging_config
from app.metrics import ServiceMetrics, multiprocess_directory

# The exact paths that orchestrators probe (deploy/k8s and deploy/kserve): answered even past
# the connection cap, so that a flood of connections does not get the pod restarted.
PROBE_PATHS = probe_paths()
_PROBE_METHODS = frozenset({b"GET", b"HEAD"})

logger = logging.getLogger(__name__)

# Files a worker keeps open beside its client connections: the listening socket, the model,
# logs, metrics files, ONNX Runtime's own.
OTHER_OPEN_FILES = 64

# After the body deadline, a request the application is still handling gets this long to be
# answered by the application itself (the data plane answers 408 in its protocol's envelope)
# before the connection is closed under it.
BODY_DEADLINE_GRACE = 1.0
# After a refusal, what the client is still sending is read and dropped for at most this long,
# so that closing with unread data (a TCP reset) does not destroy the answer before it is read.
LINGER_SECONDS = 1.0


# Where a connection is in its current request, as far as the parser has seen: "head" waits
# for (the rest of) a request line and headers, "body" for the rest of a declared body, "idle"
# is between requests, "closing" drops input until the connection is closed. (Strings rather
# than an Enum: on the hot path, an Enum member costs a slow class attribute lookup.)
Phase = Literal["head", "body", "idle", "closing"]


class Refusal(Exception):
    """Raised in a parser callback to stop parsing: the request is refused with ``status``,
    counted as ``event`` (if any), and answered with ``code`` and ``message`` in the native
    error shape."""

    def __init__(
        self, status: HTTPStatus, event: str | None, message: str, *, code: str | None = None
    ):
        super().__init__(message)
        self.status = status
        self.event = event
        self.message = message
        self.code = code or event or "http_error"


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines, header caps and a connection cap."""

    # Slots, not instance attributes: uvicorn's protocol already keeps 28 attributes in its
    # instance dict; past 30, CPython stops sharing the dict's keys between instances, and
    # every attribute read of uvicorn's own code on the hot path takes a slower route.
    __slots__ = (
        "_body_grace_given",
        "_deadline",
        "_deadline_phase",
        "_head_bytes",
        "_header_count",
        "_max_head_bytes",
        "_max_header_count",
        "_over_connection_limit",
        "_phase",
        "settings",
    )

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # The settings the application reads too (app.main), in this worker process.
        self.settings = get_settings()
        # Every deadline comes from the settings, whatever uvicorn was told; uvicorn annotates
        # this int, and only hands it to loop.call_later, which takes a float.
        self.timeout_keep_alive = self.settings.keep_alive_timeout  # type: ignore[assignment]
        self.ws_protocol_class = None  # the service has no WebSocket routes: never upgrade
        # Read on every request: plain attributes are faster to read than a pydantic model's.
        self._max_head_bytes = self.settings.max_header_bytes
        self._max_header_count = self.settings.max_header_count
        self._phase: Phase = "head"
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_phase: Phase | None = None  # the phase the running deadline guards
        self._body_grace_given = False
        self._head_bytes = 0  # bytes of the current request head fed to the parser so far
        self._header_count = 0
        self._over_connection_limit = False

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn's set of this worker's connections, this one included.
        self._over_connection_limit = len(self.connections) > self.settings.max_connections
        # The first request line is due within the header timeout of connecting.
        self._arm_deadline("head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, except that the keep-alive timer is cancelled when a request
        # begins (on_message_begin) rather than on any byte, so that stray bytes between
        # requests do not keep an idle connection open, and that the head is capped.
        phase = self._phase
        if phase == "closing":
            return  # a refused client still sending: dropped
        try:
            if phase == "body":
                self.parser.feed_data(data)
            elif len(data) <= self._max_head_bytes - self._head_bytes:
                self.parser.feed_data(data)
                if self._phase == "head":
                    self._head_bytes += len(data)
            else:
                self._feed_head_in_parts(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, Refusal):
                self._refuse(error.__context__)
            else:
                self._invalid_request(error)
            return
        except httptools.HttpParserError as error:
            self._invalid_request(error)
            return
        except httptools.HttpParserUpgrade:
            # Never upgraded (see __init__): the request is served as plain HTTP, as uvicorn
            # does, without uvicorn's two warning lines per request about missing WebSockets.
            return
        if self._phase != self._deadline_phase:
            self._follow_phase()

    def _feed_head_in_parts(self, data: bytes) -> None:
        """Feed bytes that go past ``max_header_bytes`` of head: the parser gets no more of
        the head than that; what follows a complete head (its body) is fed after it."""
        budget = self._max_head_bytes - self._head_bytes
        view = memoryview(data)
        self.parser.feed_data(view[:budget])
        if self._phase == "head":
            self._refuse(
                Refusal(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "headers_too_large",
                    f"the request line and headers exceed {self._max_head_bytes} bytes",
                )
            )
            return
        self.parser.feed_data(view[budget:])

    def timeout_keep_alive_handler(self) -> None:
        """uvicorn's keep-alive timer, armed when a response completes: close if still idle."""
        self.timeout_keep_alive_task = None
        if self._phase == "idle" and not self.transport.is_closing():
            self._close("idle_timeout")
        # Otherwise a request is under way and its own deadline (head or body) governs.

    # Parser callbacks

    def on_message_begin(self) -> None:
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        super().on_message_begin()
        self._phase = "head"
        self._head_bytes = 0
        self._header_count = 0
        self._body_grace_given = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._max_header_count:
            raise Refusal(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too_many_headers",
                f"more than {self._max_header_count} header fields",
            )
        # uvicorn's on_header, inlined: it runs for every header of every request.
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._over_connection_limit and not self._is_probe():
            raise Refusal(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "over_connection_limit",
                f"the server holds its limit of {self.settings.max_connections} connections; "
                "retry later",
                code=Overloaded.code,
            )
        super().on_headers_complete()
        self._phase = "body"
        self._head_bytes = 0
        if self._over_connection_limit and self.cycle is not None:
            self.cycle.keep_alive = False  # a probe past the cap: answered, then closed

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = "idle"

    # Deadlines

    def _follow_phase(self) -> None:
        """After parsing: start the deadline of the phase the connection has moved to."""
        self._cancel_deadline()
        phase = self._phase
        if phase == "idle":
            self._deadline_phase = phase
            response_done = self.cycle is None or self.cycle.response_complete
            if response_done and self.timeout_keep_alive_task is None:
                # A body finished arriving after its response: idle from now on.
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )
        else:
            self._arm_deadline(phase)

    def _arm_deadline(self, phase: Phase) -> None:
        if phase == "head":
            self._deadline = self.loop.call_later(
                self.settings.header_timeout, self._head_deadline_passed
            )
        else:
            self._deadline = self.loop.call_later(
                self.settings.body_timeout, self._body_deadline_passed
            )
        self._deadline_phase = phase

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._deadline_phase = None

    def _head_deadline_passed(self) -> None:
        self._deadline = None
        self._refuse(
            Refusal(
                HTTPStatus.REQUEST_TIMEOUT,
                "header_timeout",
                f"the request line and headers did not arrive within "
                f"{self.settings.header_timeout:g} s",
                code=RequestTimeout.code,
            )
        )

    def _body_deadline_passed(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not self._body_grace_given:
            # The application may be reading this body: it answers the 408 itself.
            self._body_grace_given = True
            self._deadline = self.loop.call_later(BODY_DEADLINE_GRACE, self._body_deadline_passed)
            return
        self._close("body_timeout")

    # Ending connections

    def _refuse(self, refusal: Refusal) -> None:
        """Answer ``refusal`` with ``Connection: close`` (unless another answer is under way),
        then close once the client has stopped sending or after ``LINGER_SECONDS``."""
        if self.cycle is not None and not self.cycle.response_complete:
            self._close(refusal.event)  # never interleave with the application's answer
            return
        self._count(refusal.event)
        self._cancel_deadline()
        self._phase = "closing"
        self.transport.write(self._error_response(refusal))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.flow.resume_reading()
        self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _close(self, event: str | None) -> None:
        self._count(event)
        self._cancel_deadline()
        self._phase = "closing"
        self.transport.close()

    def _count(self, event: str | None) -> None:
        metrics: ServiceMetrics | None = self.app_state.get("metrics")
        if metrics is not None and event is not None:
            metrics.observe_connection_event(event)

    def _error_response(self, refusal: Refusal) -> bytes:
        """A complete response in the native API's error shape, ending the connection."""
        body = orjson.dumps(
            {
                "error": {
                    "code": refusal.code,
                    "message": refusal.message,
                    "row": None,
                    "field": None,
                }
            }
        )
        head = [STATUS_LINE[refusal.status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\n" % len(body))
        if refusal.status is HTTPStatus.SERVICE_UNAVAILABLE:
            head.append(b"retry-after: %d\r\n" % self.settings.retry_after)
        head.append(b"connection: close\r\n\r\n")
        return b"".join([*head, body])

    def _invalid_request(self, error: httptools.HttpParserError) -> None:
        """A request the parser rejects: uvicorn's one warning line, and a 400 that says why
        (llhttp's reason, which quotes nothing the client sent)."""
        self.logger.warning("Invalid HTTP request received.")
        reason = str(error) if type(error) is not httptools.HttpParserCallbackError else ""
        message = f"malformed HTTP request: {reason}" if reason else "malformed HTTP request"
        self._refuse(Refusal(HTTPStatus.BAD_REQUEST, None, message, code=BadRequest.code))

    def _is_probe(self) -> bool:
        method = self.parser.get_method()
        return method in _PROBE_METHODS and httptools.parse_url(self.url).path in PROBE_PATHS


# uvicorn's ``http=`` import string for EdgeProtocol.
PROTOCOL = f"{__name__}:{EdgeProtocol.__qualname__}"


def allow_open_files(needed: int) -> int:
    """Raise this process's soft limit on open files towards ``needed`` (never past the hard
    limit; worker processes inherit it); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    return raised


def serve(settings: Settings) -> None:
    """Run the service with uvicorn until SIGTERM or SIGINT: one process, or ``workers``.

    ``settings`` are the process's own (``get_settings()``): each worker process reads them
    again, for the application and for ``EdgeProtocol``.
    """
    configure_logging(settings)
    # Past the open-file limit, accepting fails before the connection cap can answer (a 1024
    # soft limit is common): make room for the cap.
    needed = settings.max_connections + OTHER_OPEN_FILES
    if allow_open_files(needed) < needed:
        logger.warning(
            "the open-file limit allows fewer than max_connections=%d connections; "
            "raise the hard limit (ulimit -Hn) or lower MULTILABEL_MAX_CONNECTIONS",
            settings.max_connections,
        )
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again so the process
    # dies of it (status -15), which supervisors read as a crash. A clean shutdown exits 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    with multiprocess_directory(settings.workers):
        uvicorn.run(
            "app.main:app",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            # By import path, so that worker processes start without importing the service
            # before they answer uvicorn's health checks.
            http=PROTOCOL,
            ws="none",  # no WebSocket routes
            log_level=settings.log_level,
            log_config=logging_config(settings),
            access_log=False,  # the service logs each request itself (app.observability)
            # No X-Forwarded-* rewriting: the service never uses the client's address, and
            # parsing those headers is work on every request.
            proxy_headers=False,
            timeout_graceful_shutdown=settings.graceful_timeout,
        )
