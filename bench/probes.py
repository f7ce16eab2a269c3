"""Health probes under a flood: how long an orchestrator's probe waits while the server is
loaded, next to the same probe on the idle server, in one run.

The flood is wrk on many keep-alive connections sending 1000-row native batches as fast as
they are answered (the overload of tests/robustness/test_overload.py, whose test asserts only
behaviour: probes answered, no 5xx but 503, memory bounded, right answers). The probe is one
keep-alive connection asking ``/health/live`` every 20 ms from a thread of this process, as a
kubelet does; its latencies are wall time on a shared machine, so the report gives them beside
the idle figures of the same run rather than against a fixed bound.

``readiness_beside_hostile_bodies`` times ``/health/ready`` the same way (alone, then beside
load) while four clients send 8 MiB JSON bodies of ``[],`` (issue 20, hole 6), with the
server's peak memory meanwhile.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from bench.measure import run_wrk
from bench.workloads import NATIVE, Workload

PROBE_PATH = "/health/live"
PROBE_INTERVAL_S = 0.02
FLOOD = Workload("native-1000-c64", "native 1000 rows, c=64", NATIVE, 1000, 64)


@dataclass
class ProbeFigures:
    """Latencies of one probe series, in milliseconds."""

    probes: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    failed: int  # probes answered other than 200, or not answered


@dataclass
class ProbesUnderFlood:
    """The probe alone, then the same probe while ``flood`` runs; what the flood achieved."""

    path: str
    flood: str
    seconds: float
    idle: ProbeFigures
    loaded: ProbeFigures
    flood_rows_per_s: float | None
    flood_non_2xx: int | None


class Prober:
    """GET ``path`` every PROBE_INTERVAL_S on one keep-alive connection, timing each."""

    def __init__(self, base_url: str, path: str = PROBE_PATH):
        address = urlsplit(base_url)
        self.connection = HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
        self.path = path
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.failed = 0  # no answer, or not a 200
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.connection.close()

    def _run(self) -> None:
        while not self._stop.wait(PROBE_INTERVAL_S):
            started = time.perf_counter()
            try:
                self.connection.request("GET", self.path)
                answer = self.connection.getresponse()
                answer.read()
            except OSError:
                self.failed += 1
                self.connection.close()  # reconnects on the next request
                continue
            self.latencies.append(time.perf_counter() - started)
            self.statuses.append(answer.status)
            if answer.status != 200:
                self.failed += 1

    def figures(self) -> ProbeFigures:
        milliseconds = np.asarray(self.latencies or [float("nan")]) * 1000
        return ProbeFigures(
            probes=len(self.latencies),
            p50_ms=round(float(np.percentile(milliseconds, 50)), 2),
            p99_ms=round(float(np.percentile(milliseconds, 99)), 2),
            max_ms=round(float(milliseconds.max()), 2),
            failed=self.failed,
        )


def probes_under_flood(
    wrk_binary: str, base_url: str, bodies: Path, seconds: int
) -> ProbesUnderFlood:
    """Probe the idle server for ``seconds``, then again while FLOOD runs for ``seconds``."""
    with Prober(base_url) as idle:
        time.sleep(seconds)
    with Prober(base_url) as loaded:
        try:
            flood = run_wrk(wrk_binary, base_url, FLOOD, bodies, seconds, threads=1)
        except (subprocess.CalledProcessError, RuntimeError):
            flood = {}
    requests, duration_us = flood.get("requests"), flood.get("duration_us")
    rows_per_s = (
        round(requests * FLOOD.rows / (duration_us / 1e6), 0) if requests and duration_us else None
    )
    errors = flood.get("errors")
    return ProbesUnderFlood(
        path=PROBE_PATH,
        flood=FLOOD.name,
        seconds=seconds,
        idle=idle.figures(),
        loaded=loaded.figures(),
        flood_rows_per_s=rows_per_s,
        flood_non_2xx=errors["status"] if errors else None,
    )


# Issue 20, hole 6: JSON bodies that are many small objects once parsed. 8 MiB less a byte of
# `[[],[],...,[]]`, within the default body limit, sent where no key is needed by default.
MiB = 1 << 20
HOSTILE_TARGET = "/predict"
HOSTILE_BODY = b"[" + b"[]," * ((8 * MiB - 4) // 3) + b"[]]"
HOSTILE_CLIENTS = 4
READY_PATH = "/health/ready"


@dataclass
class ReadinessBesideHostile:
    """``/health/ready`` back to back, alone and beside the hostile clients; their answers."""

    path: str
    target: str
    body_mib: float
    seconds: float
    idle: ProbeFigures
    loaded: ProbeFigures
    statuses: dict[str, int]
    rss_mib: float
    peak_rss_mib: float


def readiness_beside_hostile_bodies(
    base_url: str, pid: int, seconds: float
) -> ReadinessBesideHostile:
    """Probe ``/health/ready`` for ``seconds`` alone, then as long while HOSTILE_CLIENTS each
    send HOSTILE_BODY to HOSTILE_TARGET, one after another; the server's RSS before and its
    peak meanwhile (``/proc``: VmRSS, VmHWM restarted first)."""
    address = urlsplit(base_url)
    host, port = address.hostname or "127.0.0.1", int(address.port or 80)
    rss = _status_bytes(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM restarts from the current RSS

    async def measure() -> tuple[ProbeFigures, ProbeFigures, dict[str, int]]:
        await _ready_latencies(host, port, count=50)  # warm-up
        idle = await _ready_latencies(host, port, seconds=seconds)
        statuses: dict[str, int] = {}
        stop = time.monotonic() + seconds
        clients = [_hostile_client(host, port, stop, statuses) for _ in range(HOSTILE_CLIENTS)]
        _, loaded = await asyncio.gather(
            asyncio.gather(*clients), _ready_latencies(host, port, seconds=seconds)
        )
        return idle, loaded, statuses

    idle, loaded, statuses = asyncio.run(measure())
    return ReadinessBesideHostile(
        READY_PATH,
        HOSTILE_TARGET,
        round(len(HOSTILE_BODY) / MiB, 2),
        seconds,
        idle,
        loaded,
        statuses,
        round(rss / MiB, 1),
        round(_status_bytes(pid, "VmHWM") / MiB, 1),
    )


async def _ready_latencies(
    host: str, port: int, *, count: int = 0, seconds: float = 0.0
) -> ProbeFigures:
    """GET READY_PATH back to back over one keep-alive connection, ``count`` times or for
    ``seconds``; a probe answered other than 200 counts as failed."""
    request = f"GET {READY_PATH} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection(host, port)
    latencies: list[float] = []
    failed = 0
    stop = time.monotonic() + seconds
    try:
        while len(latencies) + failed < count or (not count and time.monotonic() < stop):
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
            await reader.readexactly(int(length[1]) if length else 0)
            if head.startswith(b"HTTP/1.1 200 "):
                latencies.append(time.perf_counter() - started)
            else:
                failed += 1
    finally:
        writer.close()
    milliseconds = np.asarray(latencies or [float("nan")]) * 1000
    return ProbeFigures(
        probes=len(latencies),
        p50_ms=round(float(np.percentile(milliseconds, 50)), 2),
        p99_ms=round(float(np.percentile(milliseconds, 99)), 2),
        max_ms=round(float(milliseconds.max()), 2),
        failed=failed,
    )


async def _hostile_client(host: str, port: int, stop: float, statuses: dict[str, int]) -> None:
    """Send HOSTILE_BODY on a new connection, read the status, close; until ``stop``."""
    head = (
        f"POST {HOSTILE_TARGET} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(HOSTILE_BODY)}\r\n\r\n"
    ).encode()
    while time.monotonic() < stop:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(head + HOSTILE_BODY)
            await writer.drain()
            status = (await reader.readuntil(b"\r\n"))[9:12].decode()
        except (ConnectionError, asyncio.IncompleteReadError):
            status = "reset"
        finally:
            writer.close()
        statuses[status] = statuses.get(status, 0) + 1


def _status_bytes(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for process {pid}")
