"""JSON bodies built to be expensive once parsed (issue 20, hole 6): 8 MiB of ``[],``, within
the default body limit, many million Python lists if parsed into objects. Four clients send
them to every JSON protocol at once while a fifth probes readiness: every hostile body gets a
clear 4xx, every probe is answered, and the server's memory stays within a generous bound.
How long the probes take beside them is measured by the bench (``python -m bench.run``,
bench/probes.py), not asserted here."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.robustness.servers import process_status, reset_peak_memory, serving

MiB = 1 << 20
MAX_BODY_BYTES = 8 * MiB  # the default limit: each body stays just within it


def empty_lists(before: bytes = b"", after: bytes = b"") -> bytes:
    """``before``, then ``[[],[],...,[]]``, then ``after``: a body just within the limit."""
    count = (MAX_BODY_BYTES - len(before) - len(after) - 3) // 3
    return before + b"[" + b"[]," * count + b"[]]" + after


HOSTILE = {
    "/predict": empty_lists(),
    "/v1/models/multilabel:predict": empty_lists(b'{"instances": ', b"}"),
    "/v2/models/multilabel/infer": empty_lists(
        b'{"inputs": [{"name": "features", "shape": [1, 10], "datatype": "FP32", "data": ',
        b"}]}",
    ),
    "/predict?columns": empty_lists(b'{"format": "columns", "instances": ', b"}"),
}
ROUNDS = 3  # bodies per client
TIMEOUT = 30.0  # an answer that takes longer is a hang
# The server's peak memory above its idle RSS while the bodies arrive: the bodies themselves
# (four 8 MiB bodies, each read into one buffer) and one parse at a time. Built into Python
# lists, one body alone took about 250 MiB.
MAX_PEAK_GROWTH = 200 * MiB


def test_hostile_json_bodies_are_refused_while_probes_are_answered(
    trained_repository: Path, tmp_path: Path
) -> None:
    with serving(trained_repository, tmp_path / "server.log") as server:
        pid = server.process.pid
        idle = process_status(pid, "VmRSS")
        reset_peak_memory(pid)
        statuses: dict[str, list[int]] = {path: [] for path in HOSTILE}
        probes: list[int] = []
        sending = threading.Event()
        sending.set()

        def send(path: str, body: bytes) -> None:
            with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client:
                for _ in range(ROUNDS):
                    response = client.post(
                        path.split("?")[0],
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    statuses[path].append(response.status_code)

        def probe() -> None:
            with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client:
                while sending.is_set():
                    probes.append(client.get("/health/ready").status_code)

        prober = threading.Thread(target=probe)
        prober.start()
        clients = [threading.Thread(target=send, args=item) for item in HOSTILE.items()]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        sending.clear()
        prober.join()
        growth = process_status(pid, "VmHWM") - idle

    for path, answered in statuses.items():
        assert len(answered) == ROUNDS, (path, answered)
        assert all(status in (400, 413, 422) for status in answered), (path, answered)
    assert probes, "no probe was answered while the hostile bodies arrived"
    assert set(probes) == {200}, probes
    assert growth <= MAX_PEAK_GROWTH, f"peak memory grew by {growth / MiB:.0f} MiB"


@pytest.mark.parametrize("path", ["/predict", "/v1/models/multilabel:predict"])
def test_a_hostile_body_is_answered_with_what_is_wrong(
    trained_repository: Path, tmp_path: Path, path: str
) -> None:
    with (
        serving(trained_repository, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client,
    ):
        top_level = client.post(path, content=HOSTILE["/predict"])
        rows = client.post(path, content=HOSTILE["/v1/models/multilabel:predict"])
    assert top_level.status_code in (400, 422)
    assert "body must be a JSON object" in top_level.text
    assert rows.status_code == 413
    assert "rows exceed the limit of 10000 rows" in rows.text
