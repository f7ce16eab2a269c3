"""wrk driving real server processes, as a run does: a server that answers is measured; one
that answers errors is not, however fast it answers them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.bodies import BodyFile, write_bodies
from bench.measure import Plan, measure
from bench.prepare import ensure_wrk
from bench.processes import Running, running
from bench.servers import Server, ceiling, ceiling_binary
from bench.workloads import BY_KEY, Workload

ONE_SECOND = Plan(duration_s=1, warmup_s=0, repeat=1, wrk_threads=1)


@pytest.fixture(scope="module")
def wrk() -> str:
    return ensure_wrk()


def started(server: Server, tmp_path: Path) -> Iterator[Running]:
    with running(
        server.command, server.env, server.ready_path, tmp_path / "server.log", server.cwd
    ) as live:
        yield live


@pytest.fixture
def binary_ceiling(tmp_path: Path) -> Iterator[Running]:
    yield from started(ceiling_binary(), tmp_path)


@pytest.fixture
def json_ceiling(tmp_path: Path) -> Iterator[Running]:
    yield from started(ceiling(1), tmp_path)


def bodies(key: str, pool: list[list[int]], tmp_path: Path) -> tuple[Workload, BodyFile]:
    workload = BY_KEY[key]
    return workload, write_bodies(workload, pool, tmp_path / "bodies")


def test_a_server_that_answers_is_measured(
    wrk: str, binary_ceiling: Running, pool: list[list[int]], tmp_path: Path
) -> None:
    workload, files = bodies("v2-binary-1000", pool, tmp_path)
    url = binary_ceiling.base_url
    measurement = measure(wrk, url, url + "/", workload, files.path, ONE_SECOND, 11)
    assert measurement.status == "ok"
    assert measurement.requests is not None
    assert measurement.requests > 0
    assert measurement.non_2xx == 0
    assert measurement.rows_per_s == pytest.approx(
        1000 * (measurement.requests_per_s or 0), rel=1e-3
    )


def test_a_server_that_answers_errors_is_not_measured(
    wrk: str, json_ceiling: Running, pool: list[list[int]], tmp_path: Path
) -> None:
    # Binary bodies sent to the JSON ceiling: every answer is a 500.
    workload, files = bodies("v2-binary-1000", pool, tmp_path)
    url = json_ceiling.base_url
    measurement = measure(wrk, url, url + "/", workload, files.path, ONE_SECOND, 0)
    assert measurement.requests is not None
    assert measurement.requests > 0
    assert measurement.non_2xx == measurement.requests
    expected = f"not measured: {measurement.requests} of {measurement.requests} answers"
    assert measurement.status.startswith(expected)
    assert not measurement.ok
