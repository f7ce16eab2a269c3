"""What one whole request costs inside the service, without sockets: the ASGI app driven in
one process, every layer included (routing, admission, body, codec, data plane, observability
with the JSON log line written to /dev/null). Where the 1-row gap to the ceiling goes.

    .venv/bin/python -m bench.inprocess                      # /predict, 1 row
    .venv/bin/python -m bench.inprocess --profile            # and where the time goes (cProfile)
    .venv/bin/python -m bench.inprocess --path /v2/models/multilabel/infer --body '{"inputs": ...}'
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import logging.config
import os
import pstats
import time
from typing import Any

import uvloop

from app.config import Settings
from app.logs import logging_config
from app.main import create_app

ONE_ROW = '{"instances": [[3, 3, 6, 7, 8, 2, 11, 11, 1, 3]]}'


def http_scope(path: str, body: bytes, state: dict[str, Any]) -> dict[str, Any]:
    """The scope uvicorn gives a POST with a JSON body."""
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "state": state.copy(),
    }


async def measure(app: Any, path: str, body: bytes, requests: int, profile: bool) -> None:
    state: dict[str, Any] = {}
    startup: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started: list[dict[str, Any]] = []

    async def lifespan_send(message: dict[str, Any]) -> None:
        started.append(message)

    lifespan_scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    lifespan = asyncio.create_task(app(lifespan_scope, startup.get, lifespan_send))
    await startup.put({"type": "lifespan.startup"})
    while not started:
        await asyncio.sleep(0.01)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def serve(count: int) -> None:
        for _ in range(count):
            sent.clear()
            await app(http_scope(path, body, state), receive, send)

    await serve(2000)  # warm-up
    print(f"answer: {sent[0]['status']} {sent[-1]['body'][:120]!r}")
    started_at = time.perf_counter()
    await serve(requests)
    print(f"{(time.perf_counter() - started_at) / requests * 1e6:.1f} µs per request")
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await serve(requests)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    await startup.put({"type": "lifespan.shutdown"})
    await lifespan


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--models", default="models", help="model repository (default: models)")
    parser.add_argument("--path", default="/predict")
    parser.add_argument("--body", default=ONE_ROW)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    options = parser.parse_args()
    settings = Settings(model_dir=options.models, poll_interval=0, log_format="json", grpc_port=0)
    logging.config.dictConfig(logging_config(settings))
    with open(os.devnull, "w") as nowhere:  # the log line is made and written, not kept
        logging.getLogger().handlers[0].setStream(nowhere)  # type: ignore[attr-defined]
        app = create_app(settings)
        body = options.body.encode()
        uvloop.run(measure(app, options.path, body, options.requests, options.profile))


if __name__ == "__main__":
    main()
