"""Sustained load and start-up: zero errors, and figures printed at the end of the run (how
fast is for bench/: ``python -m bench.run`` measures throughput and time to ready)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.robustness.conftest import ReportFigure
from tests.robustness.load import LoadRun
from tests.robustness.servers import process_status, served_version, serving

LOAD_SECONDS = 8.0
CONCURRENCY = 32
MiB = 1024 * 1024


def test_sustained_mixed_concurrent_load_without_an_error(
    trained_repository: Path, tmp_path: Path, report_figure: ReportFigure
) -> None:
    with serving(trained_repository, tmp_path / "server.log") as server:
        with LoadRun(server.base_url, concurrency=CONCURRENCY, duration=LOAD_SECONDS) as run:
            run.wait()
        report = run.report()
        memory = process_status(server.process.pid, "VmRSS")
    report_figure("load", f"{report.summary()}; server RSS after {memory / MiB:.0f} MiB")
    assert len(report.outcomes) > CONCURRENCY
    assert report.failures == []
    assert report.versions == {1: len(report.outcomes)}


def test_a_started_server_becomes_ready_serving_the_newest_version(
    trained_repository: Path, tmp_path: Path, report_figure: ReportFigure
) -> None:
    """From process spawn to ``/health/ready`` answering 200 (model loaded and verified)."""
    started = time.monotonic()
    with serving(trained_repository, tmp_path / "server.log") as server:
        seconds = time.monotonic() - started
        assert served_version(server) == 1
    report_figure("start-up to ready", f"{seconds:.2f} s (polled every 0.1 s)")
