"""Health probes under a flood: how long an orchestrator's probe waits while the server is
loaded, next to the same probe on the idle server, in one run.

The flood is wrk on many keep-alive connections sending 1000-row native batches as fast as
they are answered (the overload of tests/robustness/test_overload.py, whose test asserts only
behaviour: probes answered, no 5xx but 503, memory bounded, right answers). The probe is one
keep-alive connection asking ``/health/live`` every 20 ms from a thread of this process, as a
kubelet does; its latencies are wall time on a shared machine, so the report gives them beside
the idle figures of the same run rather than against a fixed bound.
"""

from __future__ import annotations

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
        self.failed = 0
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
