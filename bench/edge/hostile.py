"""Latencies under hostile clients, on ``python -m app`` with its default settings: the figures
that tests/robustness/test_hostile_sockets.py checks the behaviour of, measured here instead
of asserted there (a shared machine makes any bound in a test a coin toss).

1. 1-row ``POST /predict`` over one keep-alive connection, p50/p99: alone, then beside 500
   stalled connections (nothing sent, half a head, half a body).
2. Refusals past the connection cap (a server at ``max_connections=20``, holding 20): each a
   new connection, request, 503 and close, one at a time; p50 and max.
3. ``GET /health/ready`` p50/p99/max, probed back to back over one keep-alive connection:
   alone, then while four clients each send 8 MiB JSON bodies of ``[],`` to ``/predict``
   (within the default body limit, no key needed) one after another; with their answers'
   statuses and the server's peak RSS (bench/probes.py, which ``python -m bench.run`` also
   runs on ours). The Kubernetes readiness probe times out at 2 s.

    MODELS=models .venv/bin/python -m bench.edge.hostile    (env: SECONDS per phase, 10)
"""

import asyncio
import os
import re
import statistics
import time
from collections import Counter
from pathlib import Path

from bench import probes
from bench.edge.cap_costs import server_at_its_cap
from tests.robustness.servers import predict_body, serving
from tests.robustness.sockets import (
    LOOPBACK,
    close_all,
    connect,
    exchange,
    open_stalled,
    port_of,
    request_head,
)
from tests.support import REFERENCE_INPUTS, ServerProcess

REPOSITORY = Path(os.environ.get("MODELS", "models"))
SECONDS = float(os.environ.get("SECONDS", "10"))
JSON = [("Content-Type", "application/json")]
ROW = predict_body(REFERENCE_INPUTS[:1])
PREDICT = request_head("POST", "/predict", headers=JSON, body_length=len(ROW)) + ROW
READY = request_head("GET", "/health/ready")
LIVE = request_head("GET", "/health/live")
HALF_LIVE = LIVE[: len(LIVE) // 2]
HALF_A_BODY = request_head("POST", "/predict", headers=JSON, body_length=200) + b'{"instances": ['


async def latencies(
    server: ServerProcess, request: bytes, *, count: int | None = None, seconds: float = 0.0
) -> list[float]:
    """Milliseconds of each of ``count`` requests (or as many as ``seconds`` allow), answered
    200, one after another over one keep-alive connection."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port_of(server))
    measured: list[float] = []
    stop = time.monotonic() + seconds
    try:
        while len(measured) < (count or 0) or (count is None and time.monotonic() < stop):
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert length is not None, head
            await reader.readexactly(int(length[1]))
            measured.append((time.perf_counter() - started) * 1000)
    finally:
        writer.close()
    return measured


def summary(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms, max {max(values):.1f} ms ({len(values)})"


def beside_stalled_connections() -> None:
    stalls = [b"", HALF_LIVE, HALF_A_BODY] * 167
    with serving(REPOSITORY, Path("/tmp/bench-hostile-1.log"), log_level="warning") as server:

        async def measure() -> tuple[list[float], list[float]]:
            await latencies(server, PREDICT, count=50)  # warm-up
            alone = await latencies(server, PREDICT, count=300)
            stalled = await open_stalled(server, stalls[:500])
            try:
                await asyncio.sleep(0.5)  # every stalled connection accepted and parsed
                beside = await latencies(server, PREDICT, count=300)
            finally:
                await close_all(stalled)
            return alone, beside

        alone, beside = asyncio.run(measure())
    print(f"1-row POST /predict alone:                       {summary(alone)}")
    print(f"1-row POST /predict beside 500 stalled conns:    {summary(beside)}")


def refusals_past_the_cap() -> None:
    with server_at_its_cap(Path("/tmp/bench-hostile-2.log")) as server:
        refused, statuses = [], Counter[int]()
        for _ in range(200):
            started = time.perf_counter()
            result = exchange(connect(server), [PREDICT])
            refused.append((time.perf_counter() - started) * 1000)
            statuses.update(answer.status for answer in result.answers)
    print(f"past the cap of 20: {dict(statuses)}; connect, send, 503, close: {summary(refused)}")


def readiness_beside_hostile_bodies() -> None:
    with serving(REPOSITORY, Path("/tmp/bench-hostile-3.log"), log_level="warning") as server:
        figures = probes.readiness_beside_hostile_bodies(
            server.base_url, server.process.pid, SECONDS
        )
    series_by_name = (("alone", figures.idle), ("beside 4 x 8 MiB `[],` bodies", figures.loaded))
    for name, series in series_by_name:
        print(
            f"GET /health/ready {name}: p50 {series.p50_ms:.1f} ms, p99 {series.p99_ms:.1f} ms, "
            f"max {series.max_ms:.1f} ms ({series.probes}, {series.failed} failed)"
        )
    print(
        f"  the hostile bodies' answers: {figures.statuses}; server RSS {figures.rss_mib:.0f} MiB "
        f"-> peak {figures.peak_rss_mib:.0f} MiB"
    )


if __name__ == "__main__":
    print("load average at start:", Path("/proc/loadavg").read_text().strip())
    beside_stalled_connections()
    refusals_past_the_cap()
    readiness_beside_hostile_bodies()
    print("load average at end:", Path("/proc/loadavg").read_text().strip())
