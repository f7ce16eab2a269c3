"""Overload on a real server: 64 connections sending 1000-row batches as fast as they are
answered, over the three protocols, while a liveness probe asks every 20 ms.

Pass: every probe is answered 200; no 5xx but 503, and every 503 carries Retry-After and its
protocol's envelope; the server's memory stays bounded; every accepted request gets the answer
the model gives for its rows, computed here in-process. Two settings: the default admission
limit (64 x 1000 rows fit under it: nothing is refused), and a limit of 4000 rows, under which
most requests are refused (503) and the rest still answered right.

How fast the probe is answered under such a flood is a figure of the machine as much as of
the service: ``python -m bench.run`` measures it (bench/probes.py), beside the idle probe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from app.artifact import version_path
from app.inference import Model, load_model
from bench.probes import Prober
from tests.robustness.conftest import ReportFigure
from tests.robustness.overload import BATCHES, PATHS, ROWS_PER_BATCH, Overload, Summary, batch
from tests.robustness.servers import process_status, serving
from tests.support import MODEL_NAME

CONNECTIONS = 64
LOAD_SECONDS = 5.0
MiB = 1024 * 1024
# Memory a request in flight may hold at the most: its body (25 kB of JSON), the decoded rows
# (about 0.4 MB of Python objects), the float32 matrix and outputs, the rendered answer
# (about 0.1 MB): well under 2 MiB. With at most one request in flight per connection, the
# server may grow by CONNECTIONS x 2 MiB over its resident size before the run, plus 32 MiB
# for allocator slack and the thread pool's stacks.
PER_REQUEST_BYTES = 2 * MiB
SLACK_BYTES = 32 * MiB
RETRY_AFTER = "1"  # the default MULTILABEL_RETRY_AFTER
VARIANTS: dict[str, dict[str, str]] = {
    "default admission limit": {},
    "admission limit of 4000 rows": {"max_inflight_rows": "4000"},
}


@contextmanager
def resident_memory(pid: int) -> Iterator[list[int]]:
    """The process's RSS, sampled every 100 ms while the block runs."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            samples.append(process_status(pid, "VmRSS"))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def expected_outputs(model: Model) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The model's probabilities and decisions for each batch, computed in this process."""
    answers = {}
    for index in range(BATCHES):
        prediction = model.predict(batch(index))
        answers[index] = (prediction.probabilities, prediction.positives)
    return answers


def answered_outputs(protocol: str, body: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities (float32) and decisions (if the protocol's answer has them)."""
    document = orjson.loads(body)
    if protocol == "native":
        rows = document["predictions"]
        probabilities = [list(row["probabilities"].values()) for row in rows]
        decisions = np.asarray([row["vector"] for row in rows], dtype=bool)
        return np.asarray(probabilities, dtype=np.float32), decisions
    if protocol == "v2":
        outputs = {output["name"]: output for output in document["outputs"]}
        shape = outputs["probabilities"]["shape"]
        probabilities = np.asarray(outputs["probabilities"]["data"], dtype=np.float32)
        decisions = np.asarray(outputs["labels"]["data"], dtype=bool).reshape(shape)
        return probabilities.reshape(shape), decisions
    return np.asarray(document["predictions"], dtype=np.float32), None


def assert_every_answer_is_the_models(summary: Summary, model: Model) -> None:
    expected = expected_outputs(model)
    for (protocol, index), bodies in summary.bodies.items():
        assert len(bodies) == 1, f"{protocol} batch {index}: {len(bodies)} different answers"
        probabilities, decisions = answered_outputs(protocol, next(iter(bodies)))
        assert probabilities.shape == (ROWS_PER_BATCH, 3)
        np.testing.assert_array_equal(probabilities, expected[index][0])
        if decisions is not None:
            np.testing.assert_array_equal(decisions, expected[index][1])


def assert_every_refusal_is_a_503_in_its_envelope(summary: Summary) -> None:
    for (protocol, status, retry_after, body), count in summary.refusals.items():
        assert status == 503, (protocol, status, body[:300], count)
        assert retry_after == RETRY_AFTER, (protocol, retry_after)
        document = orjson.loads(body)
        if protocol == "native":
            assert document["error"]["code"] == "overloaded"
        else:
            assert list(document) == ["error"]
            assert "rows in flight" in document["error"]


@pytest.mark.parametrize("settings", VARIANTS.values(), ids=VARIANTS)
def test_overload_keeps_probes_answered_memory_bounded_and_answers_right(
    trained_repository: Path,
    tmp_path: Path,
    report_figure: ReportFigure,
    settings: dict[str, str],
) -> None:
    model = load_model(version_path(trained_repository, MODEL_NAME, 1))
    with serving(trained_repository, tmp_path / "server.log", **settings) as server:
        pid = server.process.pid
        address = httpx.URL(server.base_url)
        before = process_status(pid, "VmRSS")
        with (
            resident_memory(pid) as memory,
            Prober(server.base_url) as probe,
            Overload(address.host, address.port or 80, CONNECTIONS, LOAD_SECONDS) as run,
        ):
            summary = run.summary()
        peak = process_status(pid, "VmHWM")
        after = process_status(pid, "VmRSS")
        assert server.process.poll() is None, server.log()
    answered = sum(summary.answered.values())
    refused = sum(summary.refusals.values())
    bound = before + CONNECTIONS * PER_REQUEST_BYTES + SLACK_BYTES
    halves = len(memory) // 2
    report_figure(
        "overload",
        f"{settings or 'defaults'}: {CONNECTIONS} connections x {ROWS_PER_BATCH} rows for "
        f"{summary.seconds:.1f} s: {answered} answered ({answered / summary.seconds:.1f}/s, "
        f"{answered * ROWS_PER_BATCH / summary.seconds:.0f} rows/s), {refused} refused 503; "
        f"{len(probe.statuses)} probes answered; RSS {before / MiB:.0f} MiB before, peak "
        f"{max(memory) / MiB:.0f} MiB (first half {max(memory[:halves]) / MiB:.0f}, second "
        f"{max(memory[halves:]) / MiB:.0f}), {after / MiB:.0f} MiB after; bound "
        f"{bound / MiB:.0f} MiB; VmHWM {peak / MiB:.0f} MiB",
    )
    assert summary.failures == {}, summary.failures
    assert probe.statuses  # probed while loaded: the liveness probe was answered...
    assert set(probe.statuses) == {200}  # ...every time...
    assert probe.failed == 0  # ...and no probe went unanswered
    assert max(memory) <= bound
    assert answered > 0
    assert {protocol for protocol, _ in summary.answered} == set(PATHS)
    assert_every_refusal_is_a_503_in_its_envelope(summary)
    assert_every_answer_is_the_models(summary, model)
    if settings:
        assert refused > 0  # the limit did refuse work: the point of this variant
    else:
        assert refused == 0  # 64 x 1000 rows fit under the default limit of 65,536
