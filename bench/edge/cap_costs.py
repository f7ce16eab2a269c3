"""Two costs behind MULTILABEL_MAX_CONNECTIONS, on ``python -m app``: server RSS per idle
keep-alive connection (1000 connections, each answered once, then held), and server CPU per
refusal past the cap (wrk -c32 at a server already holding its cap: every request is a new
connection, answered 503 and closed).

    MODELS=models .venv/bin/python -m bench.edge.cap_costs
"""

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.robustness.servers import process_status, serving
from tests.robustness.sockets import answered, connect, request_head
from tests.support import ServerProcess

HERE = Path(__file__).resolve().parent
MiB = 1 << 20
LIVE = request_head("GET", "/health/live")
REPOSITORY = Path(os.environ.get("MODELS", "models"))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_per_idle_connection() -> None:
    patient = {"keep_alive_timeout": "120", "header_timeout": "120", "log_level": "warning"}
    with serving(
        REPOSITORY, Path("/tmp/cap-costs-1.log"), max_connections="2000", **patient
    ) as server:
        pid = server.process.pid
        before = process_status(pid, "VmRSS")
        held = [connect(server) for _ in range(1000)]
        for connection in held:
            answered(connection, LIVE)
        time.sleep(0.5)
        after = process_status(pid, "VmRSS")
        for connection in held:
            connection.close()
    print(
        f"1000 idle keep-alive connections: RSS {before / MiB:.1f} -> {after / MiB:.1f} MiB, "
        f"{(after - before) / 1000 / 1024:.1f} KiB per connection"
    )


@contextmanager
def server_at_its_cap(log: Path, cap: int = 20) -> Iterator[ServerProcess]:
    """``python -m app`` with ``max_connections=cap`` and patient deadlines, holding ``cap``
    idle keep-alive connections (each answered once)."""
    patient = {"keep_alive_timeout": "120", "header_timeout": "120", "log_level": "warning"}
    with serving(REPOSITORY, log, max_connections=str(cap), **patient) as server:
        held = [connect(server) for _ in range(cap)]
        for connection in held:
            answered(connection, LIVE)
        try:
            yield server
        finally:
            for connection in held:
                connection.close()


def cost_of_a_refusal() -> None:
    bodies = Path("/tmp/cap-costs-bodies.jsonl")
    bodies.write_text('{"instances": [[3, 3, 6, 7, 8, 2, 11, 11, 1, 3]]}\n')
    with server_at_its_cap(Path("/tmp/cap-costs-2.log")) as server:
        start = cpu_seconds(server.process.pid)
        output = subprocess.run(
            [
                "wrk",
                "-t2",
                "-c32",
                "-d10s",
                "-s",
                str(HERE / "post_json.lua"),
                server.base_url,
                "--",
                "/predict",
                str(bodies),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cpu = cpu_seconds(server.process.pid) - start
    line = next(line for line in output.splitlines() if line.startswith("BENCH_RESULT"))
    result = json.loads(line.removeprefix("BENCH_RESULT "))
    requests = result["requests"]
    print(
        f"past the cap: {requests / (result['duration_us'] / 1e6):.0f} refusals/s "
        f"({result['errors']['status']} of {requests} answered 503), "
        f"{cpu / requests * 1e6:.0f} us server CPU per refused connection, "
        f"p50 {result['latency_us']['p50'] / 1000:.2f} ms, "
        f"p99 {result['latency_us']['p99'] / 1000:.2f} ms"
    )


if __name__ == "__main__":
    memory_per_idle_connection()
    cost_of_a_refusal()
