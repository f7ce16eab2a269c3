"""Fixtures for robustness tests: a shared server process, and the figures to report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.robustness.servers import serving
from tests.support import FIGURE_PROPERTY, ServerProcess

HANG_SECONDS = 10.0
ReportFigure = Callable[[str, str], None]


@pytest.fixture(scope="package")
def server(
    trained_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server for the tests that only send requests (the repository is never changed)."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with serving(trained_repository, log) as process:
        yield process


@pytest.fixture(scope="package")
def http_client(server: ServerProcess) -> Iterator[httpx.Client]:
    """A client of ``server``; a request that takes longer than its timeout is a hang."""
    with httpx.Client(base_url=server.base_url, timeout=HANG_SECONDS) as client:
        yield client


@pytest.fixture
def report_figure(record_property: Callable[[str, object], None]) -> ReportFigure:
    """``report_figure("load", "...")``: printed in the summary at the end of the run
    (tests/conftest.py), from whichever worker process ran the test."""

    def report(name: str, text: str) -> None:
        record_property(FIGURE_PROPERTY, f"{name}: {text}")

    return report
