"""The HTTP edge against hostile clients, over raw sockets on loopback, against real server
processes (``python -m app``) with short deadlines: stalled connections, oversized heads, the
connection cap, disconnects, malformed framing, slow readers, and the cases that were already
handled well.

No test here claims a duration: a deadline is checked as "not before it" plus a generous hang
guard, and the latency figures these scenarios used to print are measured by
``python -m bench.edge.hostile``."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from app.edge.probes import PROBE_PATHS
from tests.robustness.conftest import ReportFigure
from tests.robustness.servers import (
    predict_body,
    process_status,
    reset_peak_memory,
    serving,
    wait_for,
)
from tests.robustness.sockets import (
    HANG_SECONDS,
    LOOPBACK,
    Answer,
    Exchange,
    answered,
    close_all,
    connect,
    counter,
    counter_in,
    edge_events,
    exchange,
    fetched,
    flood,
    keep_alive_answers,
    log_lines_after,
    log_size,
    open_stalled,
    parse_answers,
    port_of,
    request_head,
)
from tests.support import REFERENCE_INPUTS, ServerProcess

DEADLINE = 0.5  # header, body and keep-alive timeouts of edge_server, seconds
WRITE_DEADLINE = 1.0  # its write timeout, well above the pauses of a client that reads slowly
EARLY = 0.05  # a close this much before its deadline is still "at the deadline" (timer slack)
MAX_HEADER_BYTES = 16_384  # the defaults, which these tests exercise
MAX_HEADER_COUNT = 100
MiB = 1024 * 1024
# Rows whose native answer (about 8.7 MB) is far more than loopback's socket buffers hold, so
# that a client which stops reading leaves most of it in the server's own buffer.
LARGE_ROWS = 60_000

ROW = predict_body(REFERENCE_INPUTS[:1])
PREDICT_REQUEST = (
    request_head(
        "POST", "/predict", headers=[("Content-Type", "application/json")], body_length=len(ROW)
    )
    + ROW
)
LIVE = request_head("GET", "/health/live")
HALF_LIVE = LIVE[: len(LIVE) // 2]
LIVE_WITH_BODY = request_head("GET", "/health/live", body_length=1000)
# The data plane's endpoints, each with a half-sent body (what its codec decodes, cut short).
INFERENCE_ENDPOINTS = {
    "native": "/predict",
    "v2": "/v2/models/multilabel/infer",
    "tfserving": "/v1/models/multilabel:predict",
}


def half_a_body(path: str) -> bytes:
    """A JSON POST to ``path`` declaring 200 bytes of body and sending 20 of them."""
    head = request_head(
        "POST", path, headers=[("Content-Type", "application/json")], body_length=200
    )
    return head + b'{"instances": [[3, 3,'


def json_logging_server(
    repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
    command: list[str] | None = None,
    **settings: str,
) -> Iterator[ServerProcess]:
    """``python -m app`` (or ``command``) with JSON logs and ``settings``, logging to a
    directory of its own."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with serving(
        repository, log, poll_interval=0, command=command, log_format="json", **settings
    ) as server:
        yield server


@pytest.fixture(scope="module")
def edge_server(
    trained_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server with short deadlines, and room for very large answers."""
    yield from json_logging_server(
        trained_repository,
        tmp_path_factory,
        header_timeout=str(DEADLINE),
        body_timeout=str(DEADLINE),
        keep_alive_timeout=str(DEADLINE),
        write_timeout=str(WRITE_DEADLINE),
        max_rows=str(LARGE_ROWS),
    )


# Started with a soft limit of 128 open files (and a hard one of 4096), as some hosts do.
LOW_OPEN_FILE_LIMIT = ["prlimit", "--nofile=128:4096", sys.executable, "-m", "app"]


@pytest.fixture(scope="module")
def default_server(
    trained_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server with the default settings, started under a low open-file limit."""
    yield from json_logging_server(
        trained_repository, tmp_path_factory, command=LOW_OPEN_FILE_LIMIT
    )


def assert_closed_at(result: Exchange, deadline: float) -> None:
    """Closed, and not before ``deadline``. How late is not checked: the exchange's own wait
    (``HANG_SECONDS``) only stops a test whose server never closes, and is no claim about
    timing (a shared machine may run late)."""
    assert result.closed_after is not None, f"still open after {HANG_SECONDS} s"
    assert result.closed_after >= deadline - EARLY, result.closed_after


def assert_quiet(lines: list[dict[str, object]], *, at_most: int = 1) -> None:
    """No error line, and no more than ``at_most`` lines for one connection (the lines of the
    test's own ``GET /metrics`` aside)."""
    lines = [line for line in lines if line.get("path") != "/metrics"]
    errors = [line for line in lines if line.get("level") in ("error", "critical")]
    assert not errors, errors
    assert len(lines) <= at_most, lines


def access_lines(lines: list[dict[str, object]]) -> list[tuple[object, object]]:
    """(path, status) of each access-log line but the tests' own ``GET /metrics``."""
    return [
        (line["path"], line["status"])
        for line in lines
        if line.get("logger") == "app.access" and line.get("path") != "/metrics"
    ]


# Stalled connections


@dataclass(frozen=True)
class Stall:
    """A connection that stops short: after ``prelude`` (a complete request, answered before
    the clock starts), it sends ``sends`` ``gap`` seconds apart, then nothing."""

    sends: tuple[bytes, ...]
    event: str
    answer: int | None  # the status answered before the close; None: closed without one
    prelude: bytes = b""
    gap: float = 0.0


STALLS = {
    "nothing sent": Stall((), "header_timeout", 408),
    "half the headers": Stall((HALF_LIVE,), "header_timeout", 408),
    # A byte every 0.1 s: the deadline is for the whole head, not between bytes.
    "headers trickled a byte at a time": Stall(
        tuple(LIVE[i : i + 1] for i in range(len(LIVE) - 4)), "header_timeout", 408, gap=0.1
    ),
    "half the headers of a second request": Stall(
        (HALF_LIVE,), "header_timeout", 408, prelude=LIVE
    ),
    "idle after an answer": Stall((), "idle_timeout", None, prelude=LIVE),
    # Bytes that begin no request (uvicorn's own data_received would stop the idle timer).
    "line ends trickled after an answer": Stall(
        (b"\r\n",) * 20, "idle_timeout", None, prelude=LIVE, gap=0.1
    ),
    "half a body the route never reads": Stall((LIVE_WITH_BODY + b"x" * 500,), "body_timeout", 200),
    "a body trickled after its answer": Stall(
        (LIVE_WITH_BODY, *[b"x" * 10] * 40), "body_timeout", 200, gap=0.1
    ),
}


@pytest.mark.parametrize("stall", STALLS.values(), ids=STALLS.keys())
def test_a_stalled_connection_is_closed_at_its_deadline_and_counted(
    edge_server: ServerProcess, stall: Stall
) -> None:
    before = edge_events(edge_server, stall.event)
    log_start = log_size(edge_server)
    connection = connect(edge_server)
    if stall.prelude:
        assert answered(connection, stall.prelude).status == 200
    result = exchange(connection, stall.sends, gap=stall.gap, wait=HANG_SECONDS)
    logged = 1 if stall.prelude or stall.answer == 200 else 0  # the requests answered
    lines = log_lines_after(edge_server, log_start, expected=logged)

    assert_closed_at(result, DEADLINE)
    assert [answer.status for answer in result.answers] == (
        [] if stall.answer is None else [stall.answer]
    )
    if stall.answer == 408:
        timeout = result.answers[0]
        assert timeout.headers["connection"] == "close"
        assert timeout.json() == {
            "error": {
                "code": "request_timeout",
                "message": f"the request line and headers did not arrive within {DEADLINE:g} s",
                "row": None,
                "field": None,
            }
        }
    assert edge_events(edge_server, stall.event) == before + 1
    assert_quiet(lines)


# Oversized heads


def head_of(size: int, *, path: str = "/health/live", headers: int = 1) -> bytes:
    """A GET whose request line and headers take exactly ``size`` bytes, in ``headers``
    header fields (Host included)."""
    fields = [(f"X-Field-{index}", "v") for index in range(headers - 2)]
    bare = request_head("GET", path, headers=[*fields, ("X-Filler", "")])
    return request_head("GET", path, headers=[*fields, ("X-Filler", "a" * (size - len(bare)))])


OVERSIZED = {
    "1 MB header value": (head_of(MiB), "headers_too_large"),
    "1 MB request target": (
        request_head("GET", "/health/live?q=" + "a" * MiB),
        "headers_too_large",
    ),
    "one byte over the byte limit": (head_of(MAX_HEADER_BYTES + 1), "headers_too_large"),
    "10,000 header fields": (head_of(200_000, headers=10_000), "too_many_headers"),
    "one field over the count limit": (
        head_of(4096, headers=MAX_HEADER_COUNT + 1),
        "too_many_headers",
    ),
}


@pytest.mark.parametrize(("head", "event"), OVERSIZED.values(), ids=OVERSIZED.keys())
def test_an_oversized_head_gets_a_431_and_is_counted(
    edge_server: ServerProcess, head: bytes, event: str
) -> None:
    before = edge_events(edge_server, event)
    log_start = log_size(edge_server)
    result = exchange(connect(edge_server), [head], wait=HANG_SECONDS)
    lines = log_lines_after(edge_server, log_start)

    assert [answer.status for answer in result.answers] == [431]
    refusal = result.answers[0]
    assert refusal.headers["connection"] == "close"
    error = refusal.json()["error"]  # type: ignore[index]
    assert error["code"] == event
    assert result.closed_after is not None
    assert edge_events(edge_server, event) == before + 1
    assert_quiet(lines, at_most=0)


WITHIN_LIMITS = {
    "a head of exactly the byte limit": head_of(MAX_HEADER_BYTES),
    "exactly the most header fields": head_of(4096, headers=MAX_HEADER_COUNT),
}


@pytest.mark.parametrize("head", WITHIN_LIMITS.values(), ids=WITHIN_LIMITS.keys())
def test_a_head_within_the_limits_is_served(edge_server: ServerProcess, head: bytes) -> None:
    connection = connect(edge_server)
    try:
        assert answered(connection, head).status == 200
        assert answered(connection, PREDICT_REQUEST).status == 200  # and the connection lives
    finally:
        connection.close()


@pytest.mark.parametrize("size", [MAX_HEADER_BYTES, MAX_HEADER_BYTES + 1])
def test_the_byte_limit_is_on_the_whole_head_however_it_arrives(
    edge_server: ServerProcess, size: int
) -> None:
    head = head_of(size)
    pieces = [head[start : start + 1000] for start in range(0, len(head), 1000)]
    result = exchange(connect(edge_server), pieces, gap=0.01, wait=HANG_SECONDS)
    expected = 200 if size <= MAX_HEADER_BYTES else 431
    assert [answer.status for answer in result.answers][:1] == [expected]


def test_memory_stays_bounded_with_1000_connections_sending_1_mb_heads(
    default_server: ServerProcess, report_figure: ReportFigure
) -> None:
    pid = default_server.process.pid
    for _ in range(20):  # warm: the allocator's pools as serving leaves them
        connection = connect(default_server)
        answered(connection, PREDICT_REQUEST)
        connection.close()
    baseline = process_status(pid, "VmRSS")
    reset_peak_memory(pid)
    outcomes = asyncio.run(flood(default_server, head_of(MiB), connections=1000))
    peak = process_status(pid, "VmHWM")
    growth = peak - baseline

    assert set(outcomes) <= {"431", "reset"}, outcomes
    assert outcomes["431"] >= 900, outcomes  # a reset can beat the answer to a client
    report_figure(
        "hostile heads",
        f"1000 connections x 1 MiB head: {dict(outcomes)}; server RSS {baseline / MiB:.0f} MiB "
        f"-> peak {peak / MiB:.0f} MiB (+{growth / MiB:.1f} MiB)",
    )
    # Kept whole, the heads alone would take 1000 MiB.
    assert growth < 64 * MiB, f"RSS grew by {growth / MiB:.0f} MiB"


def test_beside_500_stalled_connections_requests_are_answered_right(
    default_server: ServerProcess,
) -> None:
    """Each stalled connection waits for its header or body deadline (10 and 30 s by default)
    while requests are served; how fast is measured by ``python -m bench.edge.hostile``."""
    stalls = [b"", HALF_LIVE, half_a_body("/predict")] * 167
    log_start = log_size(default_server)

    async def around_stalls() -> tuple[list[Answer], list[Answer]]:
        alone = await keep_alive_answers(default_server, PREDICT_REQUEST, count=20)
        stalled = await open_stalled(default_server, stalls[:500])
        try:
            beside = await keep_alive_answers(default_server, PREDICT_REQUEST, count=300)
        finally:
            await close_all(stalled)
        return alone, beside

    alone, beside = asyncio.run(around_stalls())
    lines = log_lines_after(default_server, log_start, expected=320)

    assert {answer.status for answer in alone + beside} == {200}
    assert {answer.body for answer in beside} == {alone[0].body}
    assert not [line for line in lines if line.get("level") in ("error", "critical")]


def test_a_server_started_under_a_low_open_file_limit_raises_it_for_its_connections(
    default_server: ServerProcess,
) -> None:
    """Under a soft limit of 128 open files (``LOW_OPEN_FILE_LIMIT``), the server raises its
    own to what its cap needs, and holds 300 connections."""
    held = [connect(default_server) for _ in range(300)]
    try:
        statuses = Counter(answered(connection, LIVE).status for connection in held)
    finally:
        for connection in held:
            connection.close()
    assert statuses == {200: 300}


# The connection cap


CAP = 20


@pytest.fixture(scope="module")
def capped_server(
    trained_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server that holds at most ``CAP`` connections, with patient deadlines."""
    yield from json_logging_server(
        trained_repository,
        tmp_path_factory,
        max_connections=str(CAP),
        keep_alive_timeout="60",
        header_timeout="60",
    )


def below_the_cap(server: ServerProcess) -> bool:
    """Whether a request that is no probe is served (not answered 503 for the cap)."""
    return fetched(server, "/metadata").status == 200


@dataclass
class FullServer:
    """``capped_server`` while it holds ``CAP`` idle keep-alive connections."""

    server: ServerProcess
    held: list[socket.socket]

    def refusals(self) -> float:
        """Connections refused for the cap so far, read over a held connection (a new one
        would be past the cap)."""
        answer = answered(self.held[0], request_head("GET", "/metrics"))
        return counter_in(
            answer.body.decode(),
            "multilabel_http_connection_events_total",
            event="over_connection_limit",
        )


@pytest.fixture
def full_server(capped_server: ServerProcess) -> Iterator[FullServer]:
    """``capped_server`` holding ``CAP`` connections, each answered once (so that the server
    has accepted every one of them)."""
    held = [connect(capped_server) for _ in range(CAP)]
    try:
        for connection in held:
            assert answered(connection, LIVE).status == 200
        yield FullServer(capped_server, held)
    finally:
        for connection in held:
            connection.close()
        # The server sees them closed before the next test.
        wait_for(lambda: below_the_cap(capped_server), "connections let go", capped_server)


OVER_THE_CAP = {
    "GET /metadata": request_head("GET", "/metadata"),
    "POST /predict": PREDICT_REQUEST,
    "GET /metrics": request_head("GET", "/metrics"),
    "a probe path with a trailing slash": request_head("GET", "/health/live/"),
    "a probe path under another prefix": request_head("GET", "/x/health/live"),
    "POST to a probe path": request_head("POST", "/health/live", body_length=0),
}


@pytest.mark.parametrize("request_bytes", OVER_THE_CAP.values(), ids=OVER_THE_CAP.keys())
def test_past_the_connection_cap_a_request_gets_a_503_and_is_counted(
    full_server: FullServer, request_bytes: bytes
) -> None:
    before = full_server.refusals()
    log_start = log_size(full_server.server)
    result = exchange(connect(full_server.server), [request_bytes], wait=HANG_SECONDS)
    lines = log_lines_after(full_server.server, log_start)

    assert [answer.status for answer in result.answers] == [503]
    refusal = result.answers[0]
    assert refusal.headers["connection"] == "close"
    assert refusal.headers["retry-after"] == "1"
    assert refusal.json()["error"]["code"] == "overloaded"  # type: ignore[index]
    assert result.closed_after is not None
    assert_quiet(lines, at_most=0)
    assert full_server.refusals() == before + 1


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", sorted(path.decode() for path in PROBE_PATHS))
def test_past_the_connection_cap_the_health_probes_still_answer(
    full_server: FullServer, path: str, method: str
) -> None:
    before = full_server.refusals()
    result = exchange(connect(full_server.server), [request_head(method, path)], wait=HANG_SECONDS)
    result.answers = parse_answers(result.received, method)

    assert [answer.status for answer in result.answers] == [200]
    assert result.answers[0].headers["connection"] == "close"  # answered, then let go
    assert result.closed_after is not None
    assert full_server.refusals() == before


def test_every_connection_past_the_cap_is_refused_and_counted(full_server: FullServer) -> None:
    """50 in a row, each connected, refused and closed (how fast: bench.edge.hostile)."""
    before = full_server.refusals()
    results = [
        exchange(connect(full_server.server), [PREDICT_REQUEST], wait=HANG_SECONDS)
        for _ in range(50)
    ]
    assert Counter(answer.status for result in results for answer in result.answers) == {503: 50}
    assert all(result.closed_after is not None for result in results)
    assert full_server.refusals() == before + 50


def test_once_connections_close_new_ones_are_served_again(capped_server: ServerProcess) -> None:
    held = [connect(capped_server) for _ in range(CAP)]
    for connection in held:
        assert answered(connection, LIVE).status == 200
    for connection in held:
        connection.close()
    wait_for(lambda: below_the_cap(capped_server), "connections let go", capped_server)
    connection = connect(capped_server)
    try:
        assert answered(connection, PREDICT_REQUEST).status == 200
        assert answered(connection, PREDICT_REQUEST).status == 200  # kept alive
    finally:
        connection.close()


# HEAD on the health probes (monitors that probe with HEAD)


@pytest.mark.parametrize("path", sorted(path.decode() for path in PROBE_PATHS))
def test_head_on_a_probe_is_answered_like_get_with_no_body_byte(
    edge_server: ServerProcess, path: str
) -> None:
    got = fetched(edge_server, path)
    log_start = log_size(edge_server)
    closing = [("Connection", "close")]
    result = exchange(connect(edge_server), [request_head("HEAD", path, headers=closing)])
    lines = log_lines_after(edge_server, log_start, expected=1)
    (head,) = parse_answers(result.received, "HEAD")

    assert head.status == got.status == 200
    assert result.received.endswith(b"\r\n\r\n")  # the head, and not one byte after it
    assert result.received.count(b"\r\n\r\n") == 1
    assert int(head.headers["content-length"]) == len(got.body)
    assert head.headers["content-type"] == got.headers["content-type"]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("HEAD", path, 200)
    ]


# Disconnects and slow bodies on the data plane (the application's part of the edge)


@pytest.mark.parametrize("path", INFERENCE_ENDPOINTS.values(), ids=INFERENCE_ENDPOINTS.keys())
def test_a_client_that_disconnects_mid_request_is_one_info_line_with_499(
    edge_server: ServerProcess, path: str
) -> None:
    before = counter(edge_server, "multilabel_http_requests_total", status="499")
    log_start = log_size(edge_server)
    connection = connect(edge_server)
    connection.sendall(half_a_body(path))  # the head is enough for the application to start
    connection.close()
    lines = log_lines_after(edge_server, log_start, expected=1)

    assert_quiet(lines)
    assert [(line["level"], line["status"]) for line in lines] == [("info", 499)]
    assert counter(edge_server, "multilabel_http_requests_total", status="499") == before + 1


def no_body(path: str) -> bytes:
    """A JSON POST to ``path`` declaring 100 bytes of body and sending none."""
    return request_head(
        "POST", path, headers=[("Content-Type", "application/json")], body_length=100
    )


BODIES_CUT_SHORT = {"half a body": half_a_body, "a declared body never sent": no_body}


@pytest.mark.parametrize("endpoint", INFERENCE_ENDPOINTS.keys())
@pytest.mark.parametrize("cut_short", BODIES_CUT_SHORT.values(), ids=BODIES_CUT_SHORT.keys())
def test_a_body_that_stops_arriving_gets_a_408_in_its_protocols_envelope(
    edge_server: ServerProcess, endpoint: str, cut_short: Callable[[str], bytes]
) -> None:
    path = INFERENCE_ENDPOINTS[endpoint]
    log_start = log_size(edge_server)
    result = exchange(connect(edge_server), [cut_short(path)], wait=HANG_SECONDS)
    lines = log_lines_after(edge_server, log_start, expected=1)

    assert [answer.status for answer in result.answers] == [408]
    error = result.answers[0].json()["error"]  # type: ignore[index]
    if endpoint == "native":
        assert error["code"] == "request_timeout"
    else:
        assert isinstance(error, str)
    assert result.answers[0].headers["connection"] == "close"
    assert_closed_at(result, DEADLINE)
    assert_quiet(lines)
    assert access_lines(lines) == [(path, 408)]


# Malformed requests: answered 400, and logged as what the client got


def with_transfer_encoding(method: str, path: str, coding: str) -> bytes:
    head = request_head(
        method,
        path,
        headers=[("Content-Type", "application/json"), ("Transfer-Encoding", coding)],
    )
    return head + (b"5\r\nhello\r\n0\r\n\r\n" if method == "POST" else b"")


ONLY_CHUNKED = "malformed HTTP request: the only Transfer-Encoding accepted is chunked"
MALFORMED = {
    "negative Content-Length": (
        request_head("POST", "/predict", headers=[("Content-Length", "-1")]),
        "malformed HTTP request: Invalid character in Content-Length",
    ),
    "Content-Length with Transfer-Encoding": (
        request_head(
            "POST", "/predict", headers=[("Content-Length", "5"), ("Transfer-Encoding", "chunked")]
        )
        + b"0\r\n\r\n",
        "malformed HTTP request: Transfer-Encoding can't be present with Content-Length",
    ),
    "a control character in the path": (
        b"GET /health\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        "malformed HTTP request: Invalid char in url path",
    ),
    # Found by llhttp only once the head is complete: refused before the application sees it.
    "Transfer-Encoding xchunked": (
        with_transfer_encoding("POST", "/predict", "xchunked"),
        ONLY_CHUNKED,
    ),
    "Transfer-Encoding gzip on a probe": (
        with_transfer_encoding("GET", "/health/live", "gzip"),
        ONLY_CHUNKED,
    ),
    "Transfer-Encoding gzip before chunked": (
        with_transfer_encoding("POST", "/predict", "gzip, chunked"),
        ONLY_CHUNKED,
    ),
}


@pytest.mark.parametrize(("request_bytes", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_gets_a_400_that_says_why_before_any_route_sees_it(
    edge_server: ServerProcess, request_bytes: bytes, message: str
) -> None:
    log_start = log_size(edge_server)
    result = exchange(connect(edge_server), [request_bytes], wait=HANG_SECONDS)
    lines = log_lines_after(edge_server, log_start, expected=1)

    assert [answer.status for answer in result.answers] == [400]
    assert result.answers[0].json() == {
        "error": {"code": "bad_request", "message": message, "row": None, "field": None}
    }
    assert result.answers[0].headers["connection"] == "close"
    assert result.closed_after is not None
    # uvicorn's one line for a malformed request, and no access line: no route saw it.
    assert [(line["level"], line["message"]) for line in lines] == [
        ("warning", "Invalid HTTP request received.")
    ]


def chunked(path: str, method: str = "POST") -> bytes:
    return request_head(
        method,
        path,
        headers=[("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
    )


# Chunked bodies that break after the head: what follows it, sent 0.1 s apart, and llhttp's
# reason. The last one breaks while the route is already waiting for more of the body.
BROKEN_CHUNKS = {
    "a chunk size past 64 bits": ((b"FFFFFFFFFFFFFFFFF1\r\n[[",), "Chunk size overflow"),
    "a chunk line ended by a bare LF": (
        (b'29;x=y\n{"instances": ',),
        "Missing expected CR after chunk extension value",
    ),
    "a good chunk, then a broken one": (
        (b'e\r\n{"instances": \r\n', b"zz\r\n"),
        "Invalid character in chunk size",
    ),
}


@pytest.mark.parametrize("endpoint", INFERENCE_ENDPOINTS.keys())
@pytest.mark.parametrize(("sends", "reason"), BROKEN_CHUNKS.values(), ids=BROKEN_CHUNKS.keys())
def test_a_malformed_chunked_body_gets_a_400_in_its_protocols_envelope_and_is_logged_so(
    edge_server: ServerProcess, endpoint: str, sends: tuple[bytes, ...], reason: str
) -> None:
    path = INFERENCE_ENDPOINTS[endpoint]
    log_start = log_size(edge_server)
    first, *rest = sends
    result = exchange(connect(edge_server), [chunked(path) + first, *rest], gap=0.1)
    lines = log_lines_after(edge_server, log_start, expected=1)

    assert [answer.status for answer in result.answers] == [400]
    error = result.answers[0].json()["error"]  # type: ignore[index]
    message = f"malformed HTTP request body: {reason}"
    if endpoint == "native":
        assert (error["code"], error["message"]) == ("bad_request", message)
    else:
        assert error == message
    assert result.answers[0].headers["connection"] == "close"
    assert result.closed_after is not None
    assert_quiet(lines)
    assert access_lines(lines) == [(path, 400)]


def test_a_malformed_chunked_body_no_route_reads_gets_the_routes_answer_then_a_close(
    edge_server: ServerProcess,
) -> None:
    log_start = log_size(edge_server)
    request_bytes = chunked("/health/live", "GET") + b"FFFFFFFFFFFFFFFFF1\r\n"
    result = exchange(connect(edge_server), [request_bytes])
    lines = log_lines_after(edge_server, log_start, expected=1)

    assert [answer.status for answer in result.answers] == [200]
    assert result.closed_after is not None
    assert access_lines(lines) == [("/health/live", 200)]


# Slow readers of large answers


def large_prediction_request() -> bytes:
    body = predict_body(REFERENCE_INPUTS[:1] * LARGE_ROWS)
    head = request_head(
        "POST", "/predict", headers=[("Content-Type", "application/json")], body_length=len(body)
    )
    return head + body


def slow_reader(server: ServerProcess) -> socket.socket:
    """A connection with a small receive window: what it leaves unread stays on the server."""
    connection = socket.socket()
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    connection.settimeout(HANG_SECONDS)
    connection.connect((LOOPBACK, port_of(server)))
    return connection


def read_until_closed(connection: socket.socket, *, pause: float = 0.0) -> bytes:
    """Everything the server sends until it closes, taken 2 MiB at a time, ``pause`` seconds
    apart."""
    received = bytearray()
    taken = 0
    try:
        while chunk := connection.recv(65536):
            received += chunk
            taken += len(chunk)
            if pause and taken >= 2 * MiB:
                taken = 0
                time.sleep(pause)
    except ConnectionResetError:
        pass
    finally:
        connection.close()
    return bytes(received)


def test_a_client_that_stops_reading_its_answer_is_dropped_at_the_write_deadline(
    edge_server: ServerProcess,
) -> None:
    before = edge_events(edge_server, "write_timeout")
    connection = slow_reader(edge_server)
    connection.sendall(large_prediction_request())
    sent = time.monotonic()
    # The deadline runs from when the server's buffer filled, after the answer was made.
    time.sleep(max(0.0, sent + WRITE_DEADLINE - EARLY - time.monotonic()))
    assert edge_events(edge_server, "write_timeout") == before, "dropped before its deadline"
    wait_for(
        lambda: edge_events(edge_server, "write_timeout") == before + 1,
        "the write deadline",
        edge_server,
        timeout=HANG_SECONDS,
    )
    received = read_until_closed(connection)

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    declared = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    assert declared is not None
    assert len(body) < int(declared[1])  # the rest was dropped with the connection


def test_a_client_that_reads_its_answer_slowly_gets_all_of_it(edge_server: ServerProcess) -> None:
    """It pauses for a third of the write deadline after each 2 MiB: more than the deadline in
    all, never that long without taking some of its answer."""
    before = edge_events(edge_server, "write_timeout")
    connection = slow_reader(edge_server)
    connection.sendall(large_prediction_request())
    connection.shutdown(socket.SHUT_WR)  # no more requests: the server closes after the answer
    received = read_until_closed(connection, pause=WRITE_DEADLINE / 3)

    [answer] = parse_answers(received)
    assert answer.status == 200
    assert len(orjson.loads(answer.body)["predictions"]) == LARGE_ROWS
    assert edge_events(edge_server, "write_timeout") == before


# What was already right, kept right


REQUEST_IDS = {
    "usable": ("abc-123.x:y_z", True),
    "with spaces and markup": ("bad id <script>", False),
    "too long": ("a" * 129, False),
}


@pytest.mark.parametrize(("given", "kept"), REQUEST_IDS.values(), ids=REQUEST_IDS.keys())
def test_an_unusable_request_id_is_replaced(
    edge_server: ServerProcess, given: str, kept: bool
) -> None:
    connection = connect(edge_server)
    try:
        answer = answered(
            connection, request_head("GET", "/health/live", headers=[("X-Request-ID", given)])
        )
    finally:
        connection.close()
    assert answer.status == 200
    assert (answer.headers["x-request-id"] == given) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", answer.headers["x-request-id"])


def test_an_upgrade_request_is_served_as_plain_http_without_warnings(
    edge_server: ServerProcess,
) -> None:
    """The service has no WebSocket routes; uvicorn would log two warnings per such request."""
    log_start = log_size(edge_server)
    upgrade = [("Connection", "Upgrade"), ("Upgrade", "websocket")]
    connection = connect(edge_server)
    try:
        answer = answered(connection, request_head("GET", "/health/live", headers=upgrade))
    finally:
        connection.close()
    lines = log_lines_after(edge_server, log_start, expected=1)

    assert answer.status == 200
    assert [line["logger"] for line in lines] == ["app.access"]
