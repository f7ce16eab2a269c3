"""The side-by-side benchmark: ``python -m bench.run`` (``--help`` for the options).

One run, on 127.0.0.1, one server at a time: the ceiling (bench/ceiling.py), the tutorial
approach (bench/tutorial.py) and our service (``python -m app``), each with 1 and 2 workers
where that is part of the comparison. Every server answers the same workloads, driven by wrk
(bench/lua/post.lua) after a warm-up; the results and the ratios between servers go to
bench/results/latest.json and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
LUA_SCRIPT = BENCH / "lua" / "post.lua"
RESULTS = BENCH / "results"
MODEL_NAME = "multilabel"
# The reference experiment's data; rows after the first 1000 (the training set) are fresh
# draws from the same distribution, as a client would send them.
DATA_PARAMETERS = {"n_features": 10, "n_classes": 3, "n_labels": 2, "random_state": 1}
TRAINING_ROWS = 1000
BODIES_PER_WORKLOAD = 64
POOL_ROWS = 2000  # bodies are windows of these rows, at different offsets
READY_TIMEOUT = 120.0
NATIVE_PATH = "/predict"
V2_PATH = f"/v2/models/{MODEL_NAME}/infer"
V2_METADATA_PATH = f"/v2/models/{MODEL_NAME}"


@dataclass(frozen=True)
class Workload:
    key: str
    name: str
    protocol: str  # "native" or "v2"
    rows: int
    connections: int

    @property
    def path(self) -> str:
        return NATIVE_PATH if self.protocol == "native" else V2_PATH


WORKLOADS = (
    Workload("native-1-c1", "1 row, c=1", "native", 1, 1),
    Workload("native-1-c32", "1 row, c=32", "native", 1, 32),
    Workload("native-100", "100 rows, c=4", "native", 100, 4),
    Workload("native-1000", "1000 rows, c=4", "native", 1000, 4),
    Workload("v2-1", "V2 1 row, c=32", "v2", 1, 32),
    Workload("v2-1000", "V2 1000 rows, c=4", "v2", 1000, 4),
)


@dataclass(frozen=True)
class Server:
    key: str
    label: str
    command: list[str]
    env: dict[str, str]
    ready_path: str
    workers: int
    protocols: frozenset[str]
    # A server this slow needs a longer window for enough requests to complete in it.
    min_duration: int = 0


@dataclass
class Measurement:
    workload: str
    status: str  # "ok", or why it was not measured
    requests_per_s: float | None = None
    rows_per_s: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    non_2xx: int | None = None
    socket_errors: int | None = None
    requests: int | None = None


@dataclass
class ServerResult:
    key: str
    label: str
    workers: int
    ready_s: float | None = None
    idle_rss_mb: float | None = None
    loaded_rss_mb: float | None = None
    tensorflow_loaded: bool | None = None
    onnxruntime_loaded: bool | None = None
    error: str | None = None
    measurements: list[Measurement] = field(default_factory=list)

    def get(self, workload: str) -> Measurement | None:
        for measurement in self.measurements:
            if measurement.workload == workload and measurement.status == "ok":
                return measurement
        return None


# ---------------------------------------------------------------------------------------------
# Preparation: wrk, the model artifact, the request bodies


def ensure_wrk() -> str:
    """The wrk binary; installed from the Debian packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing it with apt-get", flush=True)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("wrk is not installed; install it (apt-get install wrk) and rerun")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get did not install wrk")
    return found


def ensure_model(repository: Path) -> Path:
    """The newest version of the model in ``repository``; trains the default one if none."""
    from app.artifact import list_versions, version_path

    if not list_versions(repository, MODEL_NAME):
        print(f"training the default model (no cross-validation) into {repository}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "training.train", "--no-cv", "--output", str(repository)],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return version_path(repository, MODEL_NAME, list_versions(repository, MODEL_NAME)[-1])


def fresh_rows(count: int) -> list[list[int]]:
    """Rows drawn like the training data (make_multilabel_classification counts), unseen in
    training; kept in bench/.work, as the generator takes seconds on a busy machine."""
    cache = WORK / f"rows-{count}.json"
    if cache.exists():
        cached: list[list[int]] = orjson.loads(cache.read_bytes())
        return cached
    from sklearn.datasets import make_multilabel_classification

    features, _ = make_multilabel_classification(n_samples=TRAINING_ROWS + count, **DATA_PARAMETERS)
    rows: list[list[int]] = features[TRAINING_ROWS:].astype(int).tolist()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(orjson.dumps(rows))
    return rows


def request_body(workload: Workload, rows: list[list[int]], v2_input: str) -> bytes:
    if workload.protocol == "native":
        return orjson.dumps({"instances": rows})
    tensor = {
        "name": v2_input,
        "datatype": "FP32",
        "shape": [len(rows), len(rows[0])],
        "data": [value for row in rows for value in row],
    }
    return orjson.dumps({"inputs": [tensor]})


def write_bodies(workload: Workload, pool: list[list[int]], v2_input: str) -> Path:
    """BODIES_PER_WORKLOAD different bodies, one per line, for the Lua script to rotate."""
    path = WORK / "bodies" / f"{workload.protocol}-{workload.rows}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for index in range(BODIES_PER_WORKLOAD):
        start = (index * workload.rows) % (len(pool) - workload.rows)
        lines.append(request_body(workload, pool[start : start + workload.rows], v2_input))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


# ---------------------------------------------------------------------------------------------
# Processes: start, wait until ready, memory, loaded libraries


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    ready_s: float


@contextmanager
def running(server: Server, log_path: Path) -> Iterator[Running]:
    port = free_port()
    env = {**os.environ, **server.env}
    env = {key: value.replace("{port}", str(port)) for key, value in env.items()}
    command = [part.replace("{port}", str(port)) for part in server.command]
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        ready_s = _wait_ready(process, base_url + server.ready_path, started, log_path)
        yield Running(process, base_url, ready_s)
    finally:
        _stop(process)


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, started: float, log_path: Path
) -> float:
    while time.monotonic() - started < READY_TIMEOUT:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"exited with code {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"not ready within {READY_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def rss_mb(pid: int) -> float:
    """Resident memory of the process and its descendants, in MB."""
    total_kb = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def mapped_libraries(pid: int, needle: str) -> bool:
    """Whether any process of the tree has a file whose path contains ``needle`` mapped:
    the proof, from outside, that a library was (or was not) imported."""
    for member in process_tree(pid):
        try:
            maps = Path(f"/proc/{member}/maps").read_text()
        except OSError:
            continue
        if needle in maps:
            return True
    return False


class PeakRss:
    """Samples the resident memory of a process tree in the background; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(self.interval)


# ---------------------------------------------------------------------------------------------
# Measuring


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def check_answer(server: Server, workload: Workload, base_url: str, body: bytes) -> str | None:
    """None when the server answers the workload correctly, else why not."""
    status, answer = http("POST", base_url + workload.path, body)
    if workload.protocol == "v2" and status == 404:
        return "unavailable (no V2 endpoint)"
    if status != 200:
        return f"failed: HTTP {status} {answer[:200]!r}"
    if server.key.startswith("ceiling"):
        return None
    document = orjson.loads(answer)
    if workload.protocol == "native":
        answered = len(document.get("predictions", []))
    else:
        outputs = document.get("outputs") or [{}]
        answered = int((outputs[0].get("shape") or [0])[0])
    if answered != workload.rows:
        return f"failed: {answered} rows answered for {workload.rows}"
    return None


def wrk(
    binary: str, base_url: str, workload: Workload, bodies: Path, seconds: int, threads: int
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
        base_url,
        "--",
        workload.path,
        str(bodies),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    output = completed.stdout
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    raise RuntimeError(f"wrk printed no result:\n{output}")


def settle(url: str) -> None:
    """Wait until the server answers its ready path: requests that wrk abandoned when it
    stopped are still queued in a slow server, and must not weigh on the next measurement."""
    http("GET", url)


def measure(
    binary: str,
    server: Server,
    base_url: str,
    workload: Workload,
    bodies: Path,
    options: argparse.Namespace,
) -> Measurement:
    """Warm up, then measure ``options.repeat`` times and keep the median run (by req/s)."""
    duration = max(options.duration, server.min_duration)
    if options.warmup > 0:
        wrk(binary, base_url, workload, bodies, options.warmup, options.wrk_threads)
        settle(base_url + server.ready_path)
    runs = []
    for _ in range(options.repeat):
        runs.append(wrk(binary, base_url, workload, bodies, duration, options.wrk_threads))
        settle(base_url + server.ready_path)
    raw = sorted(runs, key=lambda run: run["requests"] / run["duration_us"])[len(runs) // 2]
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    latency = raw["latency_us"]
    requests_per_s = raw["requests"] / seconds
    return Measurement(
        workload=workload.name,
        status="ok",
        requests_per_s=round(requests_per_s, 1),
        rows_per_s=round(requests_per_s * workload.rows, 1),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        non_2xx=errors["status"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        requests=raw["requests"],
    )


def v2_input_name(base_url: str) -> str | None:
    """The input tensor's name, from the server's V2 model metadata; None without V2."""
    status, answer = http("GET", base_url + V2_METADATA_PATH)
    if status != 200:
        return None
    inputs = orjson.loads(answer).get("inputs") or []
    return str(inputs[0]["name"]) if inputs else None


class Bench:
    """One run: the bodies it sends, the servers it starts, what it measured."""

    def __init__(self, options: argparse.Namespace, model_path: Path, wrk_binary: str):
        self.options = options
        self.model_path = model_path
        self.wrk_binary = wrk_binary
        self.pool = fresh_rows(POOL_ROWS)
        self.v2_input: str | None = None
        self.bodies: dict[Workload, Path] = {}

    def bodies_for(self, workload: Workload) -> Path | None:
        if workload.protocol == "v2" and self.v2_input is None:
            return None
        if workload not in self.bodies:
            self.bodies[workload] = write_bodies(workload, self.pool, self.v2_input or "")
        return self.bodies[workload]

    def run_server(self, server: Server) -> ServerResult:
        result = ServerResult(server.key, server.label, server.workers)
        log_path = WORK / "logs" / f"{server.key}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"\n== {server.label}", flush=True)
        try:
            with running(server, log_path) as live:
                result.ready_s = round(live.ready_s, 3)
                time.sleep(0.5)  # let the workers finish starting before measuring memory
                result.idle_rss_mb = round(rss_mb(live.process.pid), 1)
                result.tensorflow_loaded = mapped_libraries(live.process.pid, "tensorflow")
                result.onnxruntime_loaded = mapped_libraries(live.process.pid, "onnxruntime")
                if "v2" in server.protocols and self.v2_input is None:
                    self.v2_input = v2_input_name(live.base_url)
                print(
                    f"   ready in {result.ready_s:.2f} s, idle RSS {result.idle_rss_mb:.0f} MB, "
                    f"TensorFlow loaded: {result.tensorflow_loaded}",
                    flush=True,
                )
                with PeakRss(live.process.pid) as peak:
                    for workload in WORKLOADS:
                        if workload.key not in self.options.workloads:
                            continue
                        measurement = self._measure(server, workload, live.base_url)
                        result.measurements.append(measurement)
                        print(f"   {_describe(measurement)}", flush=True)
                result.loaded_rss_mb = round(max(peak.peak, result.idle_rss_mb), 1)
        except (RuntimeError, subprocess.CalledProcessError) as error:
            result.error = str(error)
            print(f"   failed: {error}", flush=True)
        return result

    def _measure(self, server: Server, workload: Workload, base_url: str) -> Measurement:
        if workload.protocol not in server.protocols:
            return Measurement(workload.name, "not applicable")
        bodies = self.bodies_for(workload)
        if bodies is None:
            return Measurement(workload.name, "unavailable (our service showed no V2 model)")
        first = bodies.read_bytes().split(b"\n", 1)[0]
        problem = check_answer(server, workload, base_url, first)
        if problem is not None:
            return Measurement(workload.name, problem)
        try:
            return measure(self.wrk_binary, server, base_url, workload, bodies, self.options)
        except (subprocess.CalledProcessError, RuntimeError) as error:
            detail = getattr(error, "stderr", None) or str(error)
            return Measurement(workload.name, f"failed: {str(detail).strip()[:200]}")


def _describe(measurement: Measurement) -> str:
    if measurement.status != "ok":
        return f"{measurement.workload:<20} {measurement.status}"
    return (
        f"{measurement.workload:<20} {measurement.requests_per_s:>9,.0f} req/s "
        f"{measurement.rows_per_s:>11,.0f} rows/s  p50 {measurement.p50_ms:7.2f} ms  "
        f"p99 {measurement.p99_ms:7.2f} ms  non-2xx {measurement.non_2xx}"
    )


# ---------------------------------------------------------------------------------------------
# The servers


UVICORN = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"]
BOTH_PROTOCOLS = frozenset({"native", "v2"})


def ours(model_path: Path, workers: int) -> Server:
    """Our service exactly as deployed: ``python -m app``, default settings."""
    env = {
        "MULTILABEL_MODEL_DIR": str(model_path.parent.parent),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_HOST": "127.0.0.1",
        "MULTILABEL_PORT": "{port}",
        "MULTILABEL_WORKERS": str(workers),
    }
    label = f"ours, {workers} worker{'s' if workers > 1 else ''} (python -m app)"
    command = [sys.executable, "-m", "app"]
    return Server(f"ours-{workers}", label, command, env, "/health/ready", workers, BOTH_PROTOCOLS)


def ceiling(workers: int) -> Server:
    """The ceiling on the same server stack as ours (uvicorn, uvloop, httptools)."""
    command = [
        *UVICORN,
        *("--loop", "uvloop", "--http", "httptools", "--log-level", "warning"),
        *("--no-access-log", "--workers", str(workers), "bench.ceiling:app"),
    ]
    label = f"ceiling, {workers} worker{'s' if workers > 1 else ''} (bench/ceiling.py)"
    return Server(f"ceiling-{workers}", label, command, {}, "/", workers, BOTH_PROTOCOLS)


def tutorial(model_path: Path) -> Server:
    """The tutorial approach as tutorials run it: ``uvicorn main:app``, defaults."""
    env = {"BENCH_KERAS_MODEL": str(model_path / "model.keras"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    label = "tutorial approach, 1 worker (bench/tutorial.py)"
    command = [*UVICORN, "bench.tutorial:app"]
    return Server("tutorial-1", label, command, env, "/health", 1, frozenset({"native"}), 10)


def servers(model_path: Path, selected: Sequence[str]) -> list[Server]:
    catalogue = [
        ours(model_path, 1),
        ceiling(1),
        tutorial(model_path),
        ours(model_path, 2),
        ceiling(2),
    ]
    return [server for server in catalogue if server.key in selected]


# ---------------------------------------------------------------------------------------------
# Report


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def _throughput(result: ServerResult | None, workload: str) -> float | None:
    measurement = result.get(workload) if result else None
    return measurement.requests_per_s if measurement else None


def ratios(results: dict[str, ServerResult]) -> dict[str, dict[str, float | None]]:
    """Ours over each peer, per workload (throughput), plus c=1 latency and worker scaling."""
    table: dict[str, dict[str, float | None]] = {}
    ours, ceiling, tutorial = (results.get(k) for k in ("ours-1", "ceiling-1", "tutorial-1"))
    for workload in WORKLOADS:
        table[workload.name] = {
            "ours/ceiling": ratio(
                _throughput(ours, workload.name), _throughput(ceiling, workload.name)
            ),
            "ours/tutorial": ratio(
                _throughput(ours, workload.name), _throughput(tutorial, workload.name)
            ),
            "ours 2w/ceiling 2w": ratio(
                _throughput(results.get("ours-2"), workload.name),
                _throughput(results.get("ceiling-2"), workload.name),
            ),
        }
    single = WORKLOADS[0].name
    ours_c1 = ours.get(single) if ours else None
    ceiling_c1 = ceiling.get(single) if ceiling else None
    table["1 row, c=1 p50 latency"] = {
        "ours/ceiling": ratio(
            ours_c1.p50_ms if ours_c1 else None, ceiling_c1.p50_ms if ceiling_c1 else None
        )
    }
    busy = WORKLOADS[1].name
    table["2 workers / 1 worker, 1 row c=32"] = {
        "ours": ratio(_throughput(results.get("ours-2"), busy), _throughput(ours, busy)),
        "ceiling": ratio(_throughput(results.get("ceiling-2"), busy), _throughput(ceiling, busy)),
    }
    return table


def targets(
    results: dict[str, ServerResult], table: dict[str, dict[str, float | None]]
) -> list[dict[str, Any]]:
    """Each target of issue 6 with the figure of this run and whether it is met."""
    ours = results.get("ours-1")

    def check(name: str, value: float | None, goal: float, higher: bool = True) -> dict[str, Any]:
        met = None if value is None else (value >= goal if higher else value <= goal)
        return {"target": name, "value": value, "goal": goal, "met": met}

    return [
        check("1 row c=32: ours/ceiling >= 0.3", table["1 row, c=32"]["ours/ceiling"], 0.3),
        check(
            "1 row c=32: ours/ceiling >= 0.5 (stretch)", table["1 row, c=32"]["ours/ceiling"], 0.5
        ),
        check(
            "1000 rows native: rows/s ours/ceiling >= 0.6",
            table["1000 rows, c=4"]["ours/ceiling"],
            0.6,
        ),
        check(
            "1000 rows V2: rows/s ours/ceiling >= 0.6",
            table["V2 1000 rows, c=4"]["ours/ceiling"],
            0.6,
        ),
        check(
            "1 row c=1: p50 ours/ceiling <= 2",
            table["1 row, c=1 p50 latency"]["ours/ceiling"],
            2.0,
            higher=False,
        ),
        check("1 row c=32: ours/tutorial >= 200", table["1 row, c=32"]["ours/tutorial"], 200),
        check("ready within 2 s", ours.ready_s if ours else None, 2.0, higher=False),
        check("idle RSS <= 150 MB", ours.idle_rss_mb if ours else None, 150, higher=False),
        {
            "target": "serving process does not import TensorFlow",
            "value": ours.tensorflow_loaded if ours else None,
            "goal": False,
            "met": None if not ours else ours.tensorflow_loaded is False,
        },
        check(
            "2 workers >= 1.6 x 1 worker at c=32",
            table["2 workers / 1 worker, 1 row c=32"]["ours"],
            1.6,
        ),
    ]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    modified = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if commit and modified:
        commit += " + uncommitted changes"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit or None,
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
    }


def _cell(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def markdown(report: dict[str, Any]) -> str:
    run, env = report["run"], report["machine"]
    lines = [
        "# Benchmark results (latest run)",
        "",
        f"{run['finished']} · {env['cpu']}, {env['cores']} cores · load average "
        f"{env['load_average_start']} at start, {env['load_average']} at end · commit "
        f"{env['commit']} · median of {run['repeat']} run(s) of {run['duration_s']:g} s "
        f"(the tutorial approach: at least 10 s) after a {run['warmup_s']:g} s warm-up · "
        f"`{run['command']}`",
        "",
        "| server | workload | req/s | rows/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in report["servers"]:
        for m in result["measurements"]:
            if m["status"] != "ok":
                lines.append(f"| {result['label']} | {m['workload']} | {m['status']} ||||| ")
                continue
            lines.append(
                f"| {result['label']} | {m['workload']} | {_cell(m['requests_per_s'])} | "
                f"{_cell(m['rows_per_s'])} | {_cell(m['p50_ms'], 2)} | "
                f"{_cell(m['p99_ms'], 2)} | {m['non_2xx'] + m['socket_errors']} |"
            )
    lines += [
        "",
        "| server | ready (s) | idle RSS (MB) | loaded RSS (MB) | TensorFlow loaded |",
        "|---|---:|---:|---:|---|",
    ]
    for result in report["servers"]:
        error = f" (failed: {result['error'][:80]})" if result["error"] else ""
        lines.append(
            f"| {result['label']}{error} | {_cell(result['ready_s'], 2)} | "
            f"{_cell(result['idle_rss_mb'])} | {_cell(result['loaded_rss_mb'])} | "
            f"{result['tensorflow_loaded']} |"
        )
    lines += ["", "| ratio | value |", "|---|---:|"]
    for name, values in report["ratios"].items():
        for kind, value in values.items():
            if value is not None:
                lines.append(f"| {name}: {kind} | {value:g} |")
    lines += ["", "| target | this run | met |", "|---|---:|---|"]
    for target in report["targets"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[target["met"]]
        lines.append(f"| {target['target']} | {target['value']} | {met} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Command line


SERVER_KEYS = ("ours-1", "ceiling-1", "tutorial-1", "ours-2", "ceiling-2")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark our service side by side with the ceiling and the tutorial "
        "approach; write bench/results/latest.{json,md}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--duration", type=int, default=3, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds before each")
    parser.add_argument(
        "--long",
        action="store_true",
        help="the committed measurement: median of 3 runs of 8 s, after a 3 s warm-up",
    )
    parser.add_argument(
        "--models",
        type=Path,
        default=WORK / "models",
        help="model repository; the default model is trained into it if it has none",
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVER_KEYS),
        help=f"comma-separated subset of {', '.join(SERVER_KEYS)}",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(workload.key for workload in WORKLOADS),
        help="comma-separated subset of the workloads",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="measured runs per workload; the median is kept"
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (the load side)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where results are written")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    if options.long:
        options.duration, options.warmup, options.repeat = 8, 3, 3
    options.workloads = {key.strip() for key in options.workloads.split(",") if key.strip()}
    unknown_workloads = options.workloads - {workload.key for workload in WORKLOADS}
    if unknown_workloads:
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown_workloads))}")
    selected = [key.strip() for key in options.servers.split(",") if key.strip()]
    unknown = set(selected) - set(SERVER_KEYS)
    if unknown:
        raise SystemExit(f"unknown servers: {', '.join(sorted(unknown))}")
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    started = time.monotonic()
    wrk_binary = ensure_wrk()
    model_path = ensure_model(options.models.resolve())
    bench = Bench(options, model_path, wrk_binary)
    results = {server.key: bench.run_server(server) for server in servers(model_path, selected)}
    table = ratios(results)
    report = {
        "run": {
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python -m bench.run " + " ".join(argv or sys.argv[1:]),
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "repeat": options.repeat,
            "wall_s": round(time.monotonic() - started, 1),
            "model": str(
                model_path.relative_to(ROOT) if model_path.is_relative_to(ROOT) else model_path
            ),
            "v2_input": bench.v2_input,
        },
        "machine": {**machine(), "load_average_start": load_at_start},
        "servers": [asdict(result) for result in results.values()],
        "ratios": table,
        "targets": targets(results, table),
    }
    options.output.mkdir(parents=True, exist_ok=True)
    (options.output / "latest.json").write_bytes(
        orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n"
    )
    text = markdown(report)
    (options.output / "latest.md").write_text(text)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
