"""RSS of one server process while 1000 connections each send a 1 MiB head, with each given
``--http`` (same app, same uvicorn command line otherwise).

    MODELS=models .venv/bin/python -m bench.edge.rss_flood \
        app.edge.protocol:EdgeProtocol httptools h11
"""

import asyncio
import os
import sys
import time
from pathlib import Path

from tests.robustness.servers import process_status, reset_peak_memory
from tests.robustness.sockets import answered, connect, flood
from tests.robustness.test_hostile_sockets import PREDICT_REQUEST, MiB, head_of
from tests.support import running_server


def measure(http: str) -> None:
    env = {
        "MULTILABEL_MODEL_DIR": os.environ.get("MODELS", "models"),
        "MULTILABEL_POLL_INTERVAL": "0",
        "MULTILABEL_LOG_FORMAT": "json",
    }
    # uvicorn as its command line runs it, on the port running_server chose, with ``http``.
    run = (
        "import os, uvicorn; uvicorn.run('app.main:app', host='127.0.0.1', "
        f"port=int(os.environ['MULTILABEL_PORT']), loop='uvloop', http={http!r}, "
        "access_log=False)"
    )
    log = Path(f"/tmp/rss-flood-{http.replace(':', '-')}.log")
    with running_server(
        env, log, command=[sys.executable, "-c", run], ready_path="/health/ready"
    ) as server:
        pid = server.process.pid
        for _ in range(20):
            connection = connect(server)
            answered(connection, PREDICT_REQUEST)
            connection.close()
        baseline = process_status(pid, "VmRSS")
        reset_peak_memory(pid)
        started = time.monotonic()
        outcomes = asyncio.run(flood(server, head_of(MiB), connections=1000))
        elapsed = time.monotonic() - started
        peak = process_status(pid, "VmHWM")
        after = process_status(pid, "VmRSS")
    print(
        f"{http}: {dict(outcomes)} in {elapsed:.1f} s; RSS {baseline / MiB:.0f} MiB -> "
        f"peak {peak / MiB:.0f} MiB (+{(peak - baseline) / MiB:.0f} MiB), "
        f"{after / MiB:.0f} MiB after",
        flush=True,
    )


if __name__ == "__main__":
    for http in sys.argv[1:]:
        measure(http)
