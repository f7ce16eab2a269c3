"""In-process cost of the protocol per request: uvicorn's HttpToolsProtocol vs EdgeProtocol
(and any other protocol class given as ``FILE:CLASS``, e.g. an earlier EdgeProtocol), fed the
same keep-alive 1-row POST /predict requests, under the bare ceiling ASGI app
(bench/ceiling.py), on uvloop, with a transport that only counts what is written. Batches of
2000 requests rotate between the protocols (each batch round starts with the next one);
reported: the min, tenth percentile and median per-request time over the batches.

    .venv/bin/python -m bench.edge.protocol_micro [BATCHES, default 60] [FILE:CLASS ...]

    git show 3617353:app/server.py > /tmp/edge_at_main.py   # the edge before app/edge
    .venv/bin/python -m bench.edge.protocol_micro 90 /tmp/edge_at_main.py:EdgeProtocol
"""

import importlib.util
import statistics
import sys
import time
from pathlib import Path

import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.edge.protocol import EdgeProtocol

ROW = b'{"instances": [[3, 3, 6, 7, 8, 2, 11, 11, 1, 3]]}'
REQUEST = (
    b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: bench\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(ROW)
) + ROW
BATCH = 2000


class CountingTransport:
    def __init__(self) -> None:
        self.written = 0

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def load_class(spec: str) -> type:
    """``FILE:CLASS``, the file loaded as a module of its own (its imports resolve here)."""
    path, name = spec.rsplit(":", 1)
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)


async def batch(protocol, state) -> float:
    started = time.perf_counter()
    for _ in range(BATCH):
        protocol.data_received(REQUEST)
        while state.tasks:
            await next(iter(state.tasks))
    return (time.perf_counter() - started) / BATCH * 1e6


async def main(batches: int, extra: list[str]) -> None:
    config = uvicorn.Config("bench.ceiling:app", loop="uvloop", access_log=False)
    config.load()
    classes = {"HttpToolsProtocol": HttpToolsProtocol, "EdgeProtocol": EdgeProtocol}
    classes |= {spec: load_class(spec) for spec in extra}
    connections = {}
    for label, cls in classes.items():
        state = ServerState()
        protocol = cls(config=config, server_state=state, app_state={})
        protocol.connection_made(CountingTransport())
        connections[label] = (protocol, state)
    times: dict[str, list[float]] = {label: [] for label in connections}
    labels = list(connections)
    for index in range(batches):
        start = index % len(labels)
        for label in labels[start:] + labels[:start]:
            times[label].append(await batch(*connections[label]))
    base = times["HttpToolsProtocol"]
    for label, values in times.items():
        print(
            f"{label:32s} min {min(values):7.2f} us ({min(values) / min(base):.3f}x)  "
            f"p10 {statistics.quantiles(values, n=10)[0]:7.2f} us  "
            f"median {statistics.median(values):7.2f} us "
            f"({statistics.median(values) / statistics.median(base):.3f}x) per request"
        )


if __name__ == "__main__":
    arguments = sys.argv[1:]
    count = int(arguments.pop(0)) if arguments and arguments[0].isdigit() else 60
    uvloop.run(main(count, arguments))
