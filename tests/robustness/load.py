"""A bounded load generator: concurrent clients sending a mix of single rows and batches.

It runs in a background thread (with its own event loop) so that a test can change the model
repository or signal the server while requests are in flight, and it records every outcome.
Each client keeps one HTTP/1.1 connection and speaks the protocol directly over asyncio
streams: a general-purpose client costs several times the server's own CPU per request, and
on a 2-core machine the figures would then measure the client.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import numpy as np
import orjson

# (rows per request, relative weight): mostly single rows, some batches of several sizes.
REQUEST_MIX = ((1, 60), (8, 25), (64, 10), (512, 5))
REQUEST_TIMEOUT = 15.0
REFUSED = "refused"  # no connection: the server is not accepting
CLOSED = "closed before answering"  # the connection ended before any byte of an answer
TRUNCATED = "answer cut short"  # an answer started and did not finish: never acceptable
TIMEOUT = "timeout"


@dataclass(frozen=True)
class Outcome:
    """One request: when it started (monotonic seconds), how long it took, what came back."""

    started: float
    latency: float
    rows: int
    status: int | None = None
    version: int | None = None
    error: str | None = None  # one of the kinds above, or why a 200 was wrong

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass
class LoadReport:
    outcomes: list[Outcome]
    duration: float
    concurrency: int

    @property
    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return (len(self.outcomes) - len(self.failures)) / self.duration

    @property
    def rows_per_second(self) -> float:
        return sum(outcome.rows for outcome in self.outcomes if outcome.ok) / self.duration

    def latency_ms(self, percentile: float) -> float:
        latencies = [outcome.latency for outcome in self.outcomes if outcome.ok]
        return float(np.percentile(latencies, percentile)) * 1000 if latencies else float("nan")

    @property
    def versions(self) -> Counter[int | None]:
        return Counter(outcome.version for outcome in self.outcomes if outcome.ok)

    def summary(self) -> str:
        return (
            f"{len(self.outcomes)} requests in {self.duration:.1f} s, {self.concurrency} "
            f"concurrent: {self.throughput:.0f} req/s ({self.rows_per_second:.0f} rows/s), "
            f"latency p50 {self.latency_ms(50):.1f} ms, p99 {self.latency_ms(99):.1f} ms, "
            f"{len(self.failures)} failed"
        )


@dataclass
class LoadRun:
    """``with LoadRun(url) as run:`` sends requests until ``duration`` passes or ``stop()``."""

    base_url: str
    concurrency: int = 32
    duration: float = 30.0
    path: str = "/predict"
    seed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _outcomes: list[Outcome] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _elapsed: float = 0.0

    def __enter__(self) -> LoadRun:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self.wait()

    def wait(self) -> None:
        """Until the run ends: its duration passed, or it was stopped."""
        if self._thread is not None:
            self._thread.join(timeout=self.duration + REQUEST_TIMEOUT + 10)

    def report(self) -> LoadReport:
        """Stop (if still running) and summarize."""
        self.stop()
        return LoadReport(list(self._outcomes), self._elapsed, self.concurrency)

    @property
    def completed(self) -> int:
        return len(self._outcomes)

    async def _run(self) -> None:
        url = httpx.URL(self.base_url)
        requests = [
            (rows, encode_request(url.host, url.port or 80, self.path, body))
            for rows, body in request_bodies(self.seed)
        ]
        started = time.monotonic()
        deadline = started + self.duration
        clients = [
            self._client(url, requests, deadline, random.Random(self.seed + n))
            for n in range(self.concurrency)
        ]
        await asyncio.gather(*clients)
        self._elapsed = time.monotonic() - started

    async def _client(
        self,
        url: httpx.URL,
        requests: list[tuple[int, bytes]],
        deadline: float,
        chooser: random.Random,
    ) -> None:
        weights = [weight for _, weight in REQUEST_MIX]
        connection: Connection | None = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            rows, request = chooser.choices(requests, weights=weights)[0]
            started = time.monotonic()
            try:
                if connection is None:
                    connection = await Connection.open(url.host, url.port or 80)
                status, body, keep_alive = await asyncio.wait_for(
                    connection.exchange(request), REQUEST_TIMEOUT
                )
            except Exception as error:  # every failure is an outcome to report, not a crash
                if connection is not None:
                    connection.close()
                connection = None
                kind = _failure_kind(error)
                self._outcomes.append(
                    Outcome(started, time.monotonic() - started, rows, error=kind)
                )
                if kind == REFUSED:
                    await asyncio.sleep(0.02)  # the server is down: do not spin
                continue
            self._outcomes.append(_outcome(started, rows, status, body))
            if not keep_alive:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()


def _outcome(started: float, rows: int, status: int, body: bytes) -> Outcome:
    latency = time.monotonic() - started
    if status != 200:
        return Outcome(started, latency, rows, status=status)
    try:
        document = orjson.loads(body)
        version, answered = document["model"]["version"], len(document["predictions"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as error:
        return Outcome(started, latency, rows, status, error=f"malformed answer: {error!r}")
    problem = None if answered == rows else f"{answered} predictions for {rows} rows"
    return Outcome(started, latency, rows, status, version, problem)


def _failure_kind(error: Exception) -> str:
    if isinstance(error, ConnectionRefusedError):
        return REFUSED
    if isinstance(error, TimeoutError):
        return TIMEOUT
    if isinstance(error, AnswerCutShort):
        return TRUNCATED
    if isinstance(error, ConnectionError | asyncio.IncompleteReadError):
        return CLOSED
    return f"{type(error).__name__}: {error}"


class AnswerCutShort(Exception):
    """The connection ended after an answer had started."""


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough of the protocol for our server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Send a whole request; return the status, body and whether the server keeps alive."""
        status, headers, body = await self.exchange_with_headers(request)
        return status, body, headers.get("connection") != "close"

    async def exchange_with_headers(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send a whole request; return the status, the headers (lower-case names) and body."""
        await self.send(request)
        return await self.answer_with_headers()

    async def answer(self) -> tuple[int, bytes, bool]:
        status, headers, body = await self.answer_with_headers()
        return status, body, headers.get("connection") != "close"

    async def answer_with_headers(self) -> tuple[int, dict[str, str], bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        try:
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
            body = await self.reader.readexactly(int(headers["content-length"]))
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise AnswerCutShort from error
        return int(lines[0].split(" ")[1]), headers, body

    def close(self) -> None:
        self.writer.close()


def encode_request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def request_bodies(seed: int) -> list[tuple[int, bytes]]:
    """One request body per size of REQUEST_MIX, with values in the training range."""
    generator = np.random.default_rng(seed)
    return [
        (rows, orjson.dumps({"instances": generator.integers(0, 15, size=(rows, 10)).tolist()}))
        for rows, _ in REQUEST_MIX
    ]
