"""The side-by-side benchmark: ``python -m bench.run`` (``--help`` for the options, and
bench/README.md for the method).

One run on 127.0.0.1, one server at a time (bench/servers.py): ours, the JSON and binary
ceilings, the tutorial approach and, with ``--peers``, KServe and MLServer. Every server answers
the workloads of the forms it speaks (bench/workloads.py), each checked first (bench/answers.py)
and then driven by wrk (bench/measure.py); the report (bench/report.py) goes to
``<output>/latest.json`` and ``<output>/latest.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import grpc_bench
from bench.answers import problem_with, problem_with_constant, send
from bench.bodies import BodyFile, write_bodies
from bench.ceiling import REPLY
from bench.measure import Plan, measure
from bench.prepare import (
    ROOT,
    WORK,
    ServedModel,
    ensure_model,
    ensure_wrk,
    fresh_rows,
    served_model,
)
from bench.probes import FLOOD, probes_under_flood, readiness_beside_hostile_bodies
from bench.processes import PeakRss, Running, library_loaded, rss_mb, running
from bench.records import NOT_APPLICABLE, Measurement, ServerResult
from bench.report import OURS_1, Report
from bench.servers import CEILING, PEER_KEYS, SERVER_KEYS, Server, catalogue
from bench.workloads import WORKLOAD_KEYS, WORKLOADS, Workload

RESULTS = ROOT / "bench" / "results"
POOL_ROWS = 2000  # bodies are windows of these rows, at different offsets
QUICK = Plan(duration_s=1, warmup_s=0, repeat=1, wrk_threads=1)
DEFAULT = Plan(duration_s=3, warmup_s=1, repeat=1, wrk_threads=1)
LONG = Plan(duration_s=8, warmup_s=3, repeat=3, wrk_threads=1)
# Per measurement beyond wrk's own time (the check, settling), and per server start and stop:
# what the time estimate adds; seen on the 2-core machine.
OVERHEAD_PER_MEASUREMENT_S = 1.5
OVERHEAD_PER_SERVER_S = 8.0
PROBE_SECONDS = 5  # the probe series idle, then under the flood: at least this long each
GRPC_WARMUP_S = 2  # each gRPC round warms its connections; the servers stay up between rounds
STEAL = 7  # steal's place among cpu_ticks()


class Bench:
    """One run: the bodies it sends, the servers it starts, what it measured."""

    def __init__(
        self,
        plan: Plan,
        wrk_binary: str,
        model: ServedModel,
        workloads: Sequence[Workload],
        *,
        probes: bool = True,
    ):
        self.plan = plan
        self.probes = probes
        self.wrk_binary = wrk_binary
        self.model = model
        self.workloads = workloads
        self.pool = fresh_rows(POOL_ROWS)
        self.bodies: dict[str, BodyFile] = {}

    def body_file(self, workload: Workload) -> BodyFile:
        if workload.key not in self.bodies:
            self.bodies[workload.key] = write_bodies(workload, self.pool, WORK / "bodies")
        return self.bodies[workload.key]

    def run_server(self, server: Server, failure: str | None = None) -> ServerResult:
        """Start ``server``, record its facts, measure every workload it answers, stop it."""
        result = ServerResult(server.key, server.label, server.workers, error=failure)
        print(f"\n== {server.label}", flush=True)
        if failure:
            print(f"   not measured: {failure}", flush=True)
            return result
        log_path = WORK / "logs" / f"{server.key}.log"
        try:
            result.versions = server.versions()
            with running(
                server.command, server.env, server.ready_path, log_path, server.cwd
            ) as live:
                self._record_facts(result, live)
                with PeakRss(live.process.pid) as peak:
                    for workload in self.workloads:
                        measurement = self._measure(server, workload, live)
                        result.measurements.append(measurement)
                        if measurement.status != NOT_APPLICABLE:
                            print(f"   {describe(measurement, workload)}", flush=True)
                    if self.probes and server.key == OURS_1:
                        result.probes = self._probes(live)
                        result.hostile = self._hostile(live)
                result.loaded_rss_mb = round(max(peak.peak, result.idle_rss_mb or 0.0), 1)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            result.error = str(error)
            print(f"   failed: {error}", flush=True)
        return result

    def _probes(self, live: Running) -> dict[str, Any]:
        """The health probe idle, then under a flood of 1000-row batches (bench/probes.py)."""
        seconds = max(self.plan.duration_s, PROBE_SECONDS)
        figures = probes_under_flood(
            self.wrk_binary, live.base_url, self.body_file(FLOOD).path, seconds
        )
        print(
            f"   {figures.path} idle p99 {figures.idle.p99_ms:.2f} ms, under "
            f"{figures.flood} p99 {figures.loaded.p99_ms:.2f} ms (max "
            f"{figures.loaded.max_ms:.2f} ms, {figures.loaded.probes} probes)",
            flush=True,
        )
        return asdict(figures)

    def _hostile(self, live: Running) -> dict[str, Any]:
        """/health/ready alone, then beside four clients sending 8 MiB hostile JSON bodies."""
        seconds = max(self.plan.duration_s, PROBE_SECONDS)
        figures = readiness_beside_hostile_bodies(live.base_url, live.process.pid, seconds)
        print(
            f"   {figures.path} idle p50 {figures.idle.p50_ms:.2f} ms, beside 4 x "
            f"{figures.body_mib:g} MiB `[],` bodies p50 {figures.loaded.p50_ms:.2f} ms, p99 "
            f"{figures.loaded.p99_ms:.2f} ms, max {figures.loaded.max_ms:.2f} ms; answers "
            f"{figures.statuses}; RSS {figures.rss_mib:.0f} -> peak {figures.peak_rss_mib:.0f} MiB",
            flush=True,
        )
        return asdict(figures)

    @staticmethod
    def _record_facts(result: ServerResult, live: Running) -> None:
        result.ready_s = round(live.ready_s, 3)
        time.sleep(0.5)  # let the workers finish starting before measuring memory
        result.idle_rss_mb = round(rss_mb(live.process.pid), 1)
        result.tensorflow_loaded = library_loaded(live.process.pid, "tensorflow")
        result.onnxruntime_loaded = library_loaded(live.process.pid, "onnxruntime")
        print(
            f"   ready in {result.ready_s:.2f} s, idle RSS {result.idle_rss_mb:.0f} MB, "
            f"TensorFlow loaded: {result.tensorflow_loaded}",
            flush=True,
        )

    def _measure(self, server: Server, workload: Workload, live: Running) -> Measurement:
        if not server.serves(workload.form.key, workload.key):
            return Measurement(workload.key, NOT_APPLICABLE)
        bodies = self.body_file(workload)
        try:
            answer = send("POST", live.base_url + workload.form.path, bodies.first)
        except OSError as error:
            return Measurement(workload.key, f"not measured: no answer ({error})")
        if server.kind == CEILING:
            problem = problem_with_constant(answer, REPLY)
        else:
            problem = problem_with(answer, workload, len(self.model.labels))
        if problem is not None:
            return Measurement(workload.key, f"not measured: {problem}")
        try:
            return measure(
                self.wrk_binary,
                live.base_url,
                live.base_url + server.ready_path,
                workload,
                bodies.path,
                self._plan_for(server),
                len(answer.body),
            )
        except (subprocess.CalledProcessError, RuntimeError) as error:
            detail = str(getattr(error, "stderr", None) or error).strip()
            return Measurement(workload.key, f"not measured: wrk failed: {detail[:200]}")

    def _plan_for(self, server: Server) -> Plan:
        duration = max(self.plan.duration_s, server.min_duration_s)
        return Plan(duration, self.plan.warmup_s, self.plan.repeat, self.plan.wrk_threads)


def describe(measurement: Measurement, workload: Workload) -> str:
    if not measurement.ok:
        return f"{workload.name:<32} {measurement.status}"
    return (
        f"{workload.name:<32} {measurement.requests_per_s:>9,.0f} req/s "
        f"{measurement.rows_per_s:>11,.0f} rows/s  p50 {measurement.p50_ms:7.2f} ms  "
        f"p99 {measurement.p99_ms:7.2f} ms  errors "
        f"{(measurement.non_2xx or 0) + (measurement.socket_errors or 0)}"
    )


def prepare_servers(servers: Sequence[Server]) -> dict[str, str]:
    """Run every server's preparation (a peer's virtualenv) before anything is measured;
    the failures, by server key."""
    failures = {}
    for server in servers:
        if server.prepare is None:
            continue
        print(f"preparing {server.label}", flush=True)
        try:
            server.prepare()
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            failures[server.key] = str(error)
            print(f"   {server.key} will not be measured: {error}", flush=True)
    return failures


def estimate_s(servers: Sequence[Server], workloads: Sequence[Workload], plan: Plan) -> float:
    """How long the measurements will take, from the plan and the overheads seen here."""
    total = 0.0
    for server in servers:
        duration = max(plan.duration_s, server.min_duration_s)
        per_measurement = plan.warmup_s + plan.repeat * duration + OVERHEAD_PER_MEASUREMENT_S
        count = sum(server.serves(w.form.key, w.key) for w in workloads)
        total += OVERHEAD_PER_SERVER_S + count * per_measurement
    return total


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--untracked-files=no"):
        commit += " + uncommitted changes"
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": _load_average(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit or None,
        "wrk": wrk_version.split("\n")[0],
    }


def _git(*arguments: str) -> str:
    completed = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)
    return completed.stdout.strip()


def _load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def cpu_ticks() -> list[int]:
    """The machine's CPU time so far, in ticks: /proc/stat's user, nice, system, idle, iowait,
    irq, softirq and steal (guest time is counted in user already)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return [int(value) for value in fields[1:9]]


def steal_share(start: Sequence[int], end: Sequence[int]) -> float:
    """The share of the machine's CPU time between two readings that the hypervisor gave to
    other guests (steal): their work, not ours, on our cores."""
    spent = [after - before for before, after in zip(start, end, strict=True)]
    total = sum(spent)
    return spent[STEAL] / total if total else 0.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark our service side by side with the ceilings, the tutorial "
        "approach and (--peers) KServe and MLServer; write <output>/latest.{json,md}.",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--quick", action="store_true", help="smoke run: 1 s per measurement, no warm-up"
    )
    length.add_argument(
        "--long",
        action="store_true",
        help="the committed measurement: median of 3 runs of 8 s, after a 3 s warm-up",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also measure KServe and MLServer, and gRPC (bench/grpc_bench.py) with them",
    )
    parser.add_argument(
        "--no-probes",
        dest="probes",
        action="store_false",
        help="skip timing /health/live idle and under a flood of 1000-row batches (ours-1)",
    )
    parser.add_argument(
        "--duration", type=int, help=f"seconds per measurement (default {DEFAULT.duration_s})"
    )
    parser.add_argument(
        "--warmup", type=int, help=f"warm-up seconds before each (default {DEFAULT.warmup_s})"
    )
    parser.add_argument(
        "--repeat", type=int, help="measured runs per workload; the median is kept (default 1)"
    )
    parser.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk threads (the load side; default 1)"
    )
    parser.add_argument(
        "--models",
        type=Path,
        default=WORK / "models",
        help="model repository; the default model is trained into it if it has none "
        "(default bench/.work/models)",
    )
    parser.add_argument(
        "--servers",
        help=f"comma-separated subset of {', '.join(SERVER_KEYS)} (default: all but the "
        "peers, which --peers adds)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOAD_KEYS),
        help=f"comma-separated subset of {', '.join(WORKLOAD_KEYS)} (default: all)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help="where latest.json and latest.md go (default bench/results)",
    )
    return parser


def plan_from(options: argparse.Namespace) -> Plan:
    base = QUICK if options.quick else LONG if options.long else DEFAULT
    return Plan(
        duration_s=options.duration or base.duration_s,
        warmup_s=base.warmup_s if options.warmup is None else options.warmup,
        repeat=options.repeat or base.repeat,
        wrk_threads=options.wrk_threads,
    )


def selected_servers(options: argparse.Namespace) -> list[str]:
    if options.servers:
        keys = [key.strip() for key in options.servers.split(",") if key.strip()]
    else:
        keys = [key for key in SERVER_KEYS if key not in PEER_KEYS]
    if options.peers:
        keys += [key for key in PEER_KEYS if key not in keys]
    unknown = set(keys) - set(SERVER_KEYS)
    if unknown:
        raise SystemExit(f"unknown servers: {', '.join(sorted(unknown))}")
    return keys


def selected_workloads(options: argparse.Namespace) -> list[Workload]:
    keys = {key.strip() for key in options.workloads.split(",") if key.strip()}
    unknown = keys - set(WORKLOAD_KEYS)
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))}")
    return [workload for workload in WORKLOADS if workload.key in keys]


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = build_parser().parse_args(arguments)
    plan = plan_from(options)
    keys = selected_servers(options)
    workloads = selected_workloads(options)
    started = time.monotonic()
    wrk_binary = ensure_wrk()
    model = served_model(ensure_model(options.models.resolve()))
    servers = [server for server in catalogue(model) if server.key in keys]
    failures = prepare_servers(servers)
    measured = [server for server in servers if server.key not in failures]
    minutes = estimate_s(measured, workloads, plan) / 60
    print(f"\nmeasuring: about {minutes:.1f} min on a quiet machine", flush=True)
    load_at_start, ticks_at_start = _load_average(), cpu_ticks()
    bench = Bench(plan, wrk_binary, model, workloads, probes=options.probes)
    results = {server.key: bench.run_server(server, failures.get(server.key)) for server in servers}
    grpc_results = []
    if options.peers:  # gRPC side by side: ours, its two ceilings, KServe's and MLServer's
        grpc_results = grpc_bench.run(
            model,
            peers=True,
            seconds=max(plan.duration_s // 2, 1),
            warmup=min(plan.warmup_s, GRPC_WARMUP_S),
            rounds=2 * plan.repeat,  # shorter runs, more of them: drift cancels better
        )
    run = {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run", *arguments]),
        "duration_s": plan.duration_s,
        "warmup_s": plan.warmup_s,
        "repeat": plan.repeat,
        "wrk_threads": plan.wrk_threads,
        "wall_s": round(time.monotonic() - started, 1),
        "model": str(
            model.path.relative_to(ROOT) if model.path.is_relative_to(ROOT) else model.path
        ),
    }
    steal = steal_share(ticks_at_start, cpu_ticks())
    conditions = {"load_average_start": load_at_start, "cpu_steal_share": round(steal, 4)}
    report = Report.build(run, {**machine(), **conditions}, results)
    options.output.mkdir(parents=True, exist_ok=True)
    document = {**report.to_json(), "grpc": grpc_bench.to_json(grpc_results)}
    (options.output / "latest.json").write_bytes(
        orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    )
    text = report.to_markdown()
    if grpc_results:
        text += "\n" + grpc_bench.markdown(grpc_results)
    (options.output / "latest.md").write_text(text)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
