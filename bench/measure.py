"""Driving wrk: a warm-up, then the measured runs; the median run becomes the measurement."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.answers import send
from bench.records import OK, Measurement
from bench.workloads import Workload

LUA_SCRIPT = Path(__file__).resolve().parent / "lua" / "post.lua"
# A run with more failed sockets than this share of its requests is not a measurement.
MAX_SOCKET_ERROR_SHARE = 0.01


@dataclass(frozen=True)
class Plan:
    """How long each measurement lasts."""

    duration_s: int
    warmup_s: int
    repeat: int
    wrk_threads: int


def run_wrk(
    binary: str, url: str, workload: Workload, bodies: Path, seconds: int, threads: int
) -> dict[str, Any]:
    command = [
        binary,
        f"-t{min(threads, workload.connections)}",
        f"-c{workload.connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        workload.form.path,
        str(bodies),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    raise RuntimeError(f"wrk printed no result:\n{completed.stdout}{completed.stderr}")


def settle(url: str) -> None:
    """Wait until the server answers its ready path: requests that wrk abandoned when it
    stopped are still queued in a slow server, and must not weigh on the next measurement."""
    send("GET", url)


def measure(
    binary: str,
    base_url: str,
    ready_url: str,
    workload: Workload,
    bodies: Path,
    plan: Plan,
    answer_bytes: int,
) -> Measurement:
    """Warm up, then measure ``plan.repeat`` times and keep the median run (by req/s)."""
    if plan.warmup_s > 0:
        run_wrk(binary, base_url, workload, bodies, plan.warmup_s, plan.wrk_threads)
        settle(ready_url)
    runs = []
    for _ in range(plan.repeat):
        runs.append(run_wrk(binary, base_url, workload, bodies, plan.duration_s, plan.wrk_threads))
        settle(ready_url)
    raw = sorted(runs, key=lambda run: run["requests"] / run["duration_us"])[len(runs) // 2]
    return _measurement(workload, raw, answer_bytes)


def _measurement(workload: Workload, raw: dict[str, Any], answer_bytes: int) -> Measurement:
    errors, latency, requests = raw["errors"], raw["latency_us"], raw["requests"]
    requests_per_s = requests / (raw["duration_us"] / 1e6)
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    return Measurement(
        workload=workload.key,
        status=_verdict(requests, errors["status"], socket_errors),
        requests_per_s=round(requests_per_s, 1),
        rows_per_s=round(requests_per_s * workload.rows, 1),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        non_2xx=errors["status"],
        socket_errors=socket_errors,
        requests=requests,
        answer_bytes=answer_bytes,
    )


def _verdict(requests: int, non_2xx: int, socket_errors: int) -> str:
    """OK, or why these figures do not count: any error answer, or too many failed sockets."""
    if requests == 0:
        return "not measured: no request completed"
    if non_2xx:
        return f"not measured: {non_2xx} of {requests} answers were not 2xx"
    if socket_errors > MAX_SOCKET_ERROR_SHARE * requests:
        return f"not measured: {socket_errors} socket errors in {requests} requests"
    return OK
