"""A/B of the HTTP protocol under the same application, side by side in one run.

1-row POST /predict with wrk on loopback through plain uvicorn httptools, app.edge.protocol's
EdgeProtocol, h11 with its header cap (``--h11-max-incomplete-event-size``), and plain
httptools behind nginx configured with the edge's limits (``NGINX_CONFIG``: the documented-
interfaces option); plus the bare ASGI ceiling app (bench/ceiling.py) under httptools and
EdgeProtocol, where the protocol's own cost is the largest share. Every server is the same
``uvicorn`` command line but ``--http``. Rounds interleave the servers (order reversed every
other round); reported per server: median req/s, and server CPU time per request (user + sys
of the server process, and of nginx where it is in front, over the requests), which a busy
shared machine disturbs less than throughput.

    MODELS=models .venv/bin/python -m bench.edge.edge_ab
    (env: MODELS model repository, ROUNDS 5, SECONDS 8, CONNS 32, SERVERS comma-separated keys)
"""

import json
import os
import random
import shutil
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
    "app/nginx+httptools": ["app.main:app", "--http", "httptools"],
    "ceiling/httptools": ["bench.ceiling:app", "--http", "httptools"],
    "ceiling/edge": ["bench.ceiling:app", "--http", "app.edge.protocol:EdgeProtocol"],
}
PROXIED = {"app/nginx+httptools"}  # nginx listens on the measured port, uvicorn behind it
# nginx (the Debian package) when it is installed: measured by default only then.
DEFAULT_SERVERS = [key for key in ALL if key not in PROXIED or shutil.which("nginx")]
SERVERS = {key: ALL[key] for key in os.environ.get("SERVERS", ",".join(DEFAULT_SERVERS)).split(",")}
# nginx in one process (no master: its CPU is one process's), with the limits of the
# service's defaults: header and body deadlines, idle keep-alive, 16 KiB heads, 8 MiB bodies,
# the send deadline, 1000 connections; keep-alive connections to uvicorn.
NGINX_CONFIG = """
master_process off; daemon off; worker_processes 1; pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1100; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body; proxy_temp_path {work}/nginx-proxy;
  upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  limit_conn_zone $server_port zone=per_port:1m;
  server {{
    listen 127.0.0.1:{port};
    client_header_timeout 10s; client_body_timeout 30s; keepalive_timeout 5s;
    send_timeout 30s; client_header_buffer_size 1k; large_client_header_buffers 4 16k;
    client_max_body_size 8m; limit_conn per_port 1000;
    location / {{
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
    }}
  }}
}}
"""
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
    processes: dict[str, list[subprocess.Popen]] = {}
    ports, ready_ports = {}, {}
    for name, args in SERVERS.items():
        ports[name] = ready_ports[name] = free_port()
        log = (work / f"{name.replace('/', '-')}.log").open("wb")
        processes[name] = [
            subprocess.Popen(
                [*UVICORN, "--port", str(ports[name]), *args], env=env, stdout=log, stderr=log
            )
        ]
        if name in PROXIED:
            ports[name] = free_port()
            config = work / "nginx.conf"
            config.write_text(
                NGINX_CONFIG.format(work=work, upstream=ready_ports[name], port=ports[name])
            )
            processes[name].append(
                subprocess.Popen(["nginx", "-c", str(config), "-p", str(work)], stderr=log)
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
        before = sum(cpu_seconds(process.pid) for process in processes[name])
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        cpu = sum(cpu_seconds(process.pid) for process in processes[name]) - before
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
        for group in processes.values():
            for process in group:
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
