"""Sustained load and start-up: figures the lead can quote, and zero errors."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from tests.robustness.conftest import ReportFigure
from tests.robustness.load import LoadRun
from tests.robustness.servers import process_status, served_version, serving

LOAD_SECONDS = 30.0
CONCURRENCY = 32
START_UPS = 3
MiB = 1024 * 1024


def test_thirty_seconds_of_mixed_concurrent_load_without_an_error(
    trained_repository: Path, tmp_path: Path, report_figure: ReportFigure
) -> None:
    with serving(trained_repository, tmp_path / "server.log") as server:
        with LoadRun(server.base_url, concurrency=CONCURRENCY, duration=LOAD_SECONDS) as run:
            run.wait()
        report = run.report()
        memory = process_status(server.process.pid, "VmRSS")
    report_figure("load", f"{report.summary()}; server RSS after {memory / MiB:.0f} MiB")
    assert report.duration >= LOAD_SECONDS
    assert len(report.outcomes) > CONCURRENCY
    assert report.failures == []
    assert report.versions == {1: len(report.outcomes)}


def test_start_up_time_to_ready_is_measured(
    trained_repository: Path, tmp_path: Path, report_figure: ReportFigure
) -> None:
    """From process spawn to ``/health/ready`` answering 200 (model loaded and verified)."""
    seconds = []
    for attempt in range(START_UPS):
        started = time.monotonic()
        with serving(trained_repository, tmp_path / f"server-{attempt}.log") as server:
            seconds.append(time.monotonic() - started)
            assert served_version(server) == 1
    report_figure(
        "start-up to ready",
        f"median {statistics.median(seconds):.2f} s over {START_UPS} starts "
        f"(min {min(seconds):.2f}, max {max(seconds):.2f}; polled every 0.1 s)",
    )
