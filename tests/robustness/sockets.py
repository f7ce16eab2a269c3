"""Raw-socket clients for the hostile-connection tests: what a misbehaving client sends, byte
for byte, and exactly when the server answered and closed."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import select
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.client import HTTPResponse

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ServerProcess

LOOPBACK = "127.0.0.1"
READ_SIZE = 65536
# How long these helpers wait for what the server must do before calling it a hang: a guard
# against a test that never ends, not a claim about how fast the server is.
HANG_SECONDS = 10.0


@dataclass(frozen=True)
class Answer:
    """One HTTP response as a client read it."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


@dataclass
class Exchange:
    """What came back on one connection, and when the server closed it."""

    received: bytes = b""
    closed_after: float | None = None  # seconds from the clock's start; None: still open
    reset: bool = False  # closed with a TCP reset rather than a FIN
    send_failed: bool = False  # the server closed while the client was still sending
    answers: list[Answer] = field(default_factory=list)


def port_of(server: ServerProcess) -> int:
    return httpx.URL(server.base_url).port or 80


def connect(server: ServerProcess) -> socket.socket:
    connection = socket.create_connection((LOOPBACK, port_of(server)), timeout=10)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def request_head(
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body_length: int | None = None,
) -> bytes:
    """A request line and headers, ended by the empty line."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body_length is not None:
        lines.append(f"Content-Length: {body_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_answers(data: bytes, method: str = "GET") -> list[Answer]:
    """Every complete response in ``data``, in order (the standard library's parser), as
    answers to ``method`` (answers to HEAD have no body, whatever their Content-Length)."""
    answers: list[Answer] = []
    stream = _Received(data)
    while stream.tell() < len(data):
        response = HTTPResponse(stream, method=method)  # type: ignore[arg-type]
        try:
            response.begin()
            body = response.read()
        except Exception:  # an incomplete trailing response: not an answer
            break
        answers.append(Answer(response.status, httpx.Headers(response.getheaders()), body))
    return answers


class _Received(io.BytesIO):
    """Bytes already received, as ``HTTPResponse`` reads a socket: through ``makefile``, which
    it closes after each response (the next one is read from where that one ended)."""

    def makefile(self, mode: str) -> _Received:
        return self

    def close(self) -> None:
        pass


def exchange(
    connection: socket.socket,
    sends: Sequence[bytes] = (),
    *,
    gap: float = 0.0,
    wait: float = 10.0,
) -> Exchange:
    """Send ``sends`` ``gap`` seconds apart while reading, until the server closes or ``wait``
    seconds pass; the clock starts now. The connection is closed on return."""
    result = Exchange()
    started = time.monotonic()
    pending = list(sends)
    next_send = started
    try:
        while time.monotonic() - started < wait:
            now = time.monotonic()
            if pending and now >= next_send:
                try:
                    connection.sendall(pending.pop(0))
                except (BrokenPipeError, ConnectionResetError):
                    result.send_failed = True
                    pending.clear()
                next_send = now + gap
            timeout = max(0.0, (next_send if pending else started + wait) - time.monotonic())
            readable, _, _ = select.select([connection], [], [], timeout)
            if not readable:
                continue
            try:
                chunk = connection.recv(READ_SIZE)
            except ConnectionResetError:
                result.reset = True
                chunk = b""
            if not chunk:
                result.closed_after = time.monotonic() - started
                break
            result.received += chunk
    finally:
        connection.close()
    result.answers = parse_answers(result.received)
    return result


def fetched(server: ServerProcess, path: str, headers: Sequence[tuple[str, str]] = ()) -> Answer:
    """``GET path`` on a connection of its own (no HTTP client: creating one loads TLS
    certificates, a tenth of a second on a busy machine, on every call)."""
    connection = connect(server)
    try:
        return answered(connection, request_head("GET", path, headers=headers))
    finally:
        connection.close()


def answered(connection: socket.socket, request: bytes) -> Answer:
    """Send one complete request and read its answer, leaving the connection open."""
    connection.sendall(request)
    received = b""
    while True:
        chunk = connection.recv(READ_SIZE)
        assert chunk, f"closed before a complete answer: {received!r}"
        received += chunk
        answers = parse_answers(received)
        if answers:
            return answers[0]


# The server's side: its JSON log and its metrics

_markers = itertools.count()


def log_lines(server: ServerProcess, since: int) -> list[dict[str, object]]:
    """The server's log lines after byte ``since`` of its log, parsed; a line that is not JSON
    (a raw traceback) is kept as an error-level line."""
    with server.log_path.open("rb") as log:
        log.seek(since)
        return log_lines_of(log.read())


def log_size(server: ServerProcess) -> int:
    """Where the log ends once every line of what came before is in it (a request's line is
    written just after its answer, so a line of the previous exchange may still be on its way
    when the client has its answer): past a marker request's own line."""
    return _past_marker(server)


def log_lines_after(
    server: ServerProcess, since: int, *, expected: int = 0
) -> list[dict[str, object]]:
    """The log lines after byte ``since`` once there are ``expected`` of them, and every line
    of what came before is in (up to a marker request's line); marker lines left out."""
    give_up = time.monotonic() + HANG_SECONDS
    while len(_unmarked(log_lines(server, since))) < expected and time.monotonic() < give_up:
        time.sleep(0.01)
    end = _past_marker(server, since)
    with server.log_path.open("rb") as log:
        log.seek(since)
        text = log.read(end - since)
    return _unmarked(log_lines_of(text))


def log_lines_of(data: bytes) -> list[dict[str, object]]:
    """Log lines, parsed (see ``log_lines``)."""
    lines: list[dict[str, object]] = []
    for line in data.decode(errors="replace").splitlines():
        try:
            lines.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            lines.append({"level": "error", "message": line})
    return lines


def _past_marker(server: ServerProcess, since: int = 0) -> int:
    """Send a marker request (a probe: answered even past a connection cap) and wait for its
    log line; the offset just past that line."""
    marker = f"marker-{next(_markers)}"
    fetched(server, "/health/live", [("X-Request-ID", marker)])
    needle = f'"request_id":"{marker}"'.encode()
    give_up = time.monotonic() + HANG_SECONDS
    with server.log_path.open("rb") as log:
        while True:
            log.seek(since)
            data = log.read()
            found = data.find(needle)
            if found >= 0:
                return since + data.index(b"\n", found) + 1
            assert time.monotonic() < give_up, f"the marker {marker} never reached the log"
            time.sleep(0.01)


def _unmarked(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    return [line for line in lines if not str(line.get("request_id", "")).startswith("marker-")]


def counter(server: ServerProcess, name: str, **labels: str) -> float:
    """The sum of a counter's samples with ``labels`` in ``GET /metrics`` (0: none yet)."""
    return counter_in(fetched(server, "/metrics").body.decode(), name, **labels)


def counter_in(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` with ``labels``, in Prometheus' text format."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def edge_events(server: ServerProcess, event: str) -> float:
    return counter(server, "multilabel_http_connection_events_total", event=event)


# Many connections at once (asyncio streams: one thread, hundreds of sockets)


async def open_stalled(
    server: ServerProcess, first_bytes: Sequence[bytes]
) -> list[asyncio.StreamWriter]:
    """One connection per item of ``first_bytes``, each sent those bytes and then nothing."""

    async def stall(data: bytes) -> asyncio.StreamWriter:
        _, writer = await asyncio.open_connection(LOOPBACK, port_of(server))
        if data:
            writer.write(data)
            await writer.drain()
        return writer

    return list(await asyncio.gather(*(stall(data) for data in first_bytes)))


async def close_all(writers: Sequence[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
    await asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)


async def flood(server: ServerProcess, head: bytes, *, connections: int) -> Counter[str]:
    """``connections`` clients at once, each sending ``head`` as fast as the server takes it;
    the outcome of each: the status it was answered, or ``reset``."""
    loop = asyncio.get_running_loop()

    async def one() -> str:
        transport, client = await loop.create_connection(Sender, LOOPBACK, port_of(server))
        try:
            await asyncio.wait_for(client.send(head), timeout=30)
        finally:
            transport.close()
        answers = parse_answers(bytes(client.received))
        return str(answers[0].status) if answers else "reset"

    return Counter(await asyncio.gather(*(one() for _ in range(connections))))


class Sender(asyncio.Protocol):
    """A client connection that sends with flow control and keeps what it receives."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.writable = asyncio.Event()
        self.writable.set()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()
        if not self.closed.done():
            self.closed.set_result(None)

    async def send(self, data: bytes, piece: int = 65536) -> None:
        """Send ``data`` while the connection lasts, then wait until the server closes it."""
        assert self.transport is not None
        for start in range(0, len(data), piece):
            await self.writable.wait()
            if self.transport.is_closing():
                break
            self.transport.write(data[start : start + piece])
        await self.closed


async def keep_alive_answers(server: ServerProcess, request: bytes, *, count: int) -> list[Answer]:
    """The answers to ``count`` copies of ``request``, sent one after another over one
    keep-alive connection."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port_of(server))
    answers: list[Answer] = []
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
            assert length is not None, head
            answers += parse_answers(head + await reader.readexactly(int(length[1])))
    finally:
        writer.close()
    return answers
