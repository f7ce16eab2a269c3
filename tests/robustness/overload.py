"""The overload generator: many keep-alive connections sending 1000-row batches, in a process
of its own, so that its work never delays the test process's health probe.

Each connection speaks one protocol (native, V2 JSON, TF Serving, in turn) and sends, as fast
as it is answered, one of a few fixed batches. What comes back is summed up per (protocol,
batch): the distinct bodies of the 200s (the test checks each against the model), and every
other answer's status, Retry-After and body (the test checks each against its protocol).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import orjson

from tests.robustness.load import Connection, encode_request
from tests.support import MODEL_NAME

ROWS_PER_BATCH = 1000
BATCHES = 4  # distinct batches per protocol
PATHS = {
    "native": "/predict",
    "v2": f"/v2/models/{MODEL_NAME}/infer",
    "tfserving": f"/v1/models/{MODEL_NAME}:predict",
}


def batch(index: int) -> np.ndarray:
    """One of the fixed batches: values inside and outside the training ranges."""
    rng = np.random.default_rng(1000 + index)
    return rng.integers(-2, 25, size=(ROWS_PER_BATCH, 10)).astype(np.float32)


def body_of(protocol: str, rows: np.ndarray) -> bytes:
    values = rows.tolist()
    if protocol == "v2":
        tensor = {"name": "features", "shape": list(rows.shape), "datatype": "FP32"}
        return orjson.dumps({"inputs": [{**tensor, "data": values}]})
    return orjson.dumps({"instances": values})


@dataclass
class Summary:
    """What came back, per (protocol, batch index)."""

    answered: Counter[tuple[str, int]] = field(default_factory=Counter)
    bodies: dict[tuple[str, int], set[bytes]] = field(default_factory=dict)
    refusals: Counter[tuple[str, int, str | None, bytes]] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # no answer at all, by kind
    seconds: float = 0.0


async def _connection(number: int, host: str, port: int, deadline: float, summary: Summary) -> None:
    protocol = list(PATHS)[number % len(PATHS)]
    requests = [
        encode_request(host, port, PATHS[protocol], body_of(protocol, batch(index)))
        for index in range(BATCHES)
    ]
    connection: Connection | None = None
    sent = 0
    while time.monotonic() < deadline:
        index = (number + sent) % BATCHES
        sent += 1
        try:
            if connection is None:
                connection = await Connection.open(host, port)
            status, headers, body = await asyncio.wait_for(
                connection.exchange_with_headers(requests[index]), 30
            )
        except Exception as error:  # every failure is an outcome to report
            summary.failures[type(error).__name__] += 1
            if connection is not None:
                connection.close()
            connection = None
            continue
        if status == 200:
            summary.answered[(protocol, index)] += 1
            summary.bodies.setdefault((protocol, index), set()).add(body)
        else:
            summary.refusals[(protocol, status, headers.get("retry-after"), body)] += 1
        if headers.get("connection") == "close":
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


async def _run(host: str, port: int, connections: int, seconds: float) -> Summary:
    summary = Summary()
    started = time.monotonic()
    await asyncio.gather(
        *(
            _connection(number, host, port, started + seconds, summary)
            for number in range(connections)
        )
    )
    summary.seconds = time.monotonic() - started
    return summary


def _main(host: str, port: int, connections: int, seconds: float, results: object) -> None:
    summary = asyncio.run(_run(host, port, connections, seconds))
    results.send(summary)  # type: ignore[attr-defined]


class Overload:
    """``with Overload(host, port, 64, 12) as run: ...; run.summary()``: a separate process."""

    def __init__(self, host: str, port: int, connections: int, seconds: float):
        context = multiprocessing.get_context("spawn")
        self._receiver, sender = context.Pipe(duplex=False)
        self.seconds = seconds
        self._process = context.Process(
            target=_main, args=(host, port, connections, seconds, sender), daemon=True
        )

    def __enter__(self) -> Overload:
        self._process.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()

    def summary(self) -> Summary:
        """Wait for the run to end (its duration, plus the answers then in flight)."""
        assert self._receiver.poll(self.seconds + 60), "the overload run did not report"
        result: Summary = self._receiver.recv()
        return result
