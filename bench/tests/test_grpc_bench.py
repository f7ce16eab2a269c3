"""The gRPC bench's summary of interleaved rounds: a server's rate is the median of its rounds,
its ratio to the work ceiling the median of the ratios of the rounds that measured both."""

from __future__ import annotations

import pytest

from bench.grpc_bench import (
    CONSTANT_CEILING,
    WORK_CEILING,
    WORKLOADS,
    GrpcResult,
    _summarize,
    markdown,
)

ONE_ROW = WORKLOADS[0].key


def result(key: str, rates: list[float | None]) -> GrpcResult:
    return GrpcResult(key, key, rounds={ONE_ROW: rates})


@pytest.mark.parametrize(
    ("ours", "ceiling", "rate", "ratio"),
    [
        # A drift that slows every server in a round cancels in the ratio, not in the rate.
        ([100.0, 50.0, 80.0], [200.0, 100.0, 100.0], 80.0, 0.5),
        # A failed round is left out of both, and of the ceiling's rounds compared with.
        ([100.0, None, 90.0, 30.0], [200.0, 150.0, 100.0, 100.0], 90.0, 0.5),
        ([100.0, 40.0], [None, 100.0], 70.0, 0.4),
    ],
)
def test_rates_are_medians_and_ratios_the_median_of_each_rounds_ratio(
    ours: list[float | None], ceiling: list[float | None], rate: float, ratio: float
) -> None:
    results = [result("ours-1", ours), result(WORK_CEILING, ceiling)]
    _summarize(results)
    assert results[0].rates[ONE_ROW] == pytest.approx(rate)
    assert results[0].work_ratios[ONE_ROW] == pytest.approx(ratio)
    assert results[1].work_ratios[ONE_ROW] == pytest.approx(1.0)


def test_a_server_never_measured_has_no_rate_and_the_table_says_why() -> None:
    results = [result("ours-1", [None, None]), result(WORK_CEILING, [100.0, 120.0])]
    results[0].notes[ONE_ROW] = "failed: h2load printed no result"
    _summarize(results)
    assert ONE_ROW not in results[0].rates
    table = markdown(results)
    assert "| ours-1 | failed: h2load printed no result |" in table
    assert "| grpc-work-1 | 110 req/s (1.00x work ceiling) |" in table
    assert "2 interleaved rounds" in table


def test_the_table_shows_how_far_the_rounds_ratios_spread_and_the_machines_drift() -> None:
    results = [
        result("ours-1", [70.0, 90.0, 60.0]),
        result(WORK_CEILING, [100.0, 100.0, 100.0]),
        result(CONSTANT_CEILING, [200.0, 300.0, 250.0]),
    ]
    _summarize(results)
    table = markdown(results)
    assert "| ours-1 | 70 req/s (0.70x work ceiling; rounds 0.60 to 0.90) |" in table
    assert "| grpc-work-1 | 100 req/s (1.00x work ceiling) |" in table
    assert f"ranged from 200 to 300 req/s (1.50x) at {WORKLOADS[0].name}." in table
