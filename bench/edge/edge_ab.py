"""A/B of the HTTP protocol under the same application, side by side in one run.

1-row POST /predict with wrk on loopback through plain uvicorn httptools, app.edge.protocol's
EdgeProtocol, and h11 with its header cap (``--h11-max-incomplete-event-size``); plus the bare
ASGI ceiling app (bench/ceiling.py) under httptools and EdgeProtocol, where the protocol's own
cost is the largest share. Every server is the same ``uvicorn`` command line but ``--http``.
Rounds interleave the servers (order reversed every other round); reported per server: median
req/s, and server CPU time per request (user + sys of the server process over the requests),
which a busy shared machine disturbs less than throughput.

    MODELS=models .venv/bin/python -m bench.edge.edge_ab
    (env: MODELS model repository, ROUNDS 5, SECONDS 8, CONNS 32, SERVERS comma-separated keys)
"""

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
LUA = HERE / "post_json.lua"
MODELS = os.environ.get("MODELS", "models")
UVICORN = [
    sys.executable,
    "-m",
    "uvicorn",
    "--host",
    "127.0.0.1",
    "--loop",
    "uvloop",
    "--no-access-log",
]
ALL = {
    "app/httptools": ["app.main:app", "--http", "httptools"],
    "app/edge": ["app.main:app", "--http", "app.edge.protocol:EdgeProtocol"],
    "app/h11-capped": ["app.main:app", "--http", "h11", "--h11-max-incomplete-event-size", "16384"],
    "ceiling/httptools": ["bench.ceiling:app", "--http", "httptools"],
    "ceiling/edge": ["bench.ceiling:app", "--http", "app.edge.protocol:EdgeProtocol"],
}
SERVERS = {key: ALL[key] for key in os.environ.get("SERVERS", ",".join(ALL)).split(",")}
CONNECTIONS = int(os.environ.get("CONNS", "32"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
SECONDS = int(os.environ.get("SECONDS", "8"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    work = Path(os.environ.get("WORK", "/tmp/edge-ab"))
    work.mkdir(parents=True, exist_ok=True)
    random.seed(1)
    bodies = work / "bodies-1.jsonl"
    rows = ([random.randint(0, 12) for _ in range(10)] for _ in range(64))
    bodies.write_text("".join(json.dumps({"instances": [row]}) + "\n" for row in rows))
    env = {
        **os.environ,
        "MULTILABEL_MODEL_DIR": MODELS,
        "MULTILABEL_POLL_INTERVAL": "0",
        "MULTILABEL_LOG_FORMAT": "json",
    }
    processes, ports = {}, {}
    for name, args in SERVERS.items():
        ports[name] = free_port()
        log = (work / f"{name.replace('/', '-')}.log").open("wb")
        processes[name] = subprocess.Popen(
            [*UVICORN, "--port", str(ports[name]), *args], env=env, stdout=log, stderr=log
        )

    def wrk(name: str, seconds: int, threads: int) -> tuple[dict, float]:
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{ports[name]}",
            "--",
            "/predict",
            str(bodies),
        ]
        before = cpu_seconds(processes[name].pid)
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        cpu = cpu_seconds(processes[name].pid) - before
        line = next(line for line in output.splitlines() if line.startswith("BENCH_RESULT"))
        return json.loads(line.removeprefix("BENCH_RESULT ")), cpu

    try:
        for name, port in ports.items():
            path = "/health/ready" if name.startswith("app") else "/"
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1)
                    break
                except Exception:
                    time.sleep(0.1)
        print("load average at start:", Path("/proc/loadavg").read_text().strip())
        for name in SERVERS:
            wrk(name, 2, 1)  # warm-up
        results: dict[str, list[tuple[float, ...]]] = {name: [] for name in SERVERS}
        threads = min(2, CONNECTIONS)
        for round_ in range(ROUNDS):
            order = list(SERVERS) if round_ % 2 == 0 else list(reversed(SERVERS))
            for name in order:
                result, cpu = wrk(name, SECONDS, threads)
                requests = result["requests"]
                rps = requests / (result["duration_us"] / 1e6)
                us = cpu / requests * 1e6
                p50, p99 = result["latency_us"]["p50"] / 1000, result["latency_us"]["p99"] / 1000
                errors = sum(result["errors"].values())
                results[name].append((rps, us, p50, p99, errors))
                print(
                    f"round {round_ + 1} {name:18s} {rps:8.0f} req/s {us:7.1f} us CPU/req "
                    f"p50 {p50:.2f} ms p99 {p99:.2f} ms errors {errors}",
                    flush=True,
                )
        print("load average at end:", Path("/proc/loadavg").read_text().strip())
        print(
            f"\nmedians over {ROUNDS} rounds of wrk -t{threads} -c{CONNECTIONS} -d{SECONDS}s, "
            "1-row POST /predict:"
        )
        for name, runs in results.items():
            median = [statistics.median(run[index] for run in runs) for index in range(4)]
            print(
                f"{name:18s} {median[0]:8.0f} req/s {median[1]:7.1f} us CPU/req "
                f"p50 {median[2]:.2f} ms p99 {median[3]:.2f} ms "
                f"errors {sum(run[4] for run in runs)}"
            )
    finally:
        for process in processes.values():
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
