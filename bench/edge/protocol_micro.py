"""In-process cost of the protocol per request: uvicorn's HttpToolsProtocol vs EdgeProtocol,
fed the same keep-alive 1-row POST /predict requests, under the bare ceiling ASGI app
(bench/ceiling.py), on uvloop, with a transport that only counts what is written. Batches of
2000 requests alternate between the two (order swapped every other batch); reported: the min
and median per-request time over the batches.

    .venv/bin/python -m bench.edge.protocol_micro [batches, default 60]
"""

import statistics
import sys
import time

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

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def batch(protocol, state) -> float:
    started = time.perf_counter()
    for _ in range(BATCH):
        protocol.data_received(REQUEST)
        while state.tasks:
            await next(iter(state.tasks))
    return (time.perf_counter() - started) / BATCH * 1e6


async def main(batches: int) -> None:
    config = uvicorn.Config("bench.ceiling:app", loop="uvloop", access_log=False)
    config.load()
    connections = {}
    for cls in (HttpToolsProtocol, EdgeProtocol):
        state = ServerState()
        protocol = cls(config=config, server_state=state, app_state={})
        protocol.connection_made(CountingTransport())
        connections[cls] = (protocol, state)
    times = {cls: [] for cls in connections}
    for index in range(batches):
        order = list(connections) if index % 2 == 0 else list(reversed(connections))
        for cls in order:
            times[cls].append(await batch(*connections[cls]))
    for cls, values in times.items():
        print(
            f"{cls.__name__:18s} min {min(values):6.2f} us  "
            f"median {statistics.median(values):6.2f} us per request"
        )
    base, edge = times[HttpToolsProtocol], times[EdgeProtocol]
    print(
        f"EdgeProtocol - HttpToolsProtocol: {min(edge) - min(base):+.2f} us at the minimum "
        f"({min(edge) / min(base):.3f}x), "
        f"{statistics.median(edge) - statistics.median(base):+.2f} us "
        f"at the median ({statistics.median(edge) / statistics.median(base):.3f}x)"
    )


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 60))
