"""The report: each target computed from the run's own figures and naming them; a figure that
was not measured makes its target "not measured", never met or missed."""

from __future__ import annotations

from typing import Any

import pytest

from bench.records import NOT_APPLICABLE, OK, Measurement, ServerResult
from bench.report import Report, Target
from bench.workloads import BY_KEY

LABELS = {
    "ours-1": "ours, 1 worker",
    "ours-2": "ours, 2 workers",
    "ceiling-1": "JSON ceiling, 1 worker",
    "ceiling-binary-1": "binary ceiling, 1 worker",
    "tutorial-1": "tutorial approach",
    "kserve-1": "KServe",
    "mlserver-1": "MLServer",
}


def measured(workload: str, requests_per_s: float, p50_ms: float = 1.0) -> Measurement:
    rows = BY_KEY[workload].rows
    return Measurement(
        workload,
        OK,
        requests_per_s=requests_per_s,
        rows_per_s=requests_per_s * rows,
        p50_ms=p50_ms,
        p90_ms=p50_ms,
        p99_ms=p50_ms,
        non_2xx=0,
        socket_errors=0,
        requests=int(requests_per_s),
        answer_bytes=100 * rows,
    )


def server(key: str, *measurements: Measurement, **facts: Any) -> ServerResult:
    workers = 2 if key.endswith("-2") else 1
    return ServerResult(key, LABELS[key], workers, measurements=list(measurements), **facts)


def full_run() -> dict[str, ServerResult]:
    """A run where everything was measured, with round figures."""
    ours_facts = {"ready_s": 0.6, "idle_rss_mb": 100.0, "tensorflow_loaded": False}
    return {
        "ours-1": server(
            "ours-1",
            measured("native-1-c1", 4000, p50_ms=0.2),
            measured("native-1-c32", 12000),
            measured("native-1000", 1000),
            measured("native-columns-1000", 2000),
            measured("v2-1000", 1500),
            measured("v2-binary-1000", 4000),
            measured("v1-1000", 1200),
            **ours_facts,
        ),
        "ceiling-1": server(
            "ceiling-1",
            measured("native-1-c1", 9000, p50_ms=0.1),
            measured("native-1-c32", 36000),
            measured("native-columns-1000", 3000),
        ),
        "ceiling-binary-1": server("ceiling-binary-1", measured("v2-binary-1000", 5000)),
        "tutorial-1": server("tutorial-1", measured("native-1-c32", 50)),
        "kserve-1": server("kserve-1", measured("v1-1", 3000), measured("v2-1", 2500)),
        "mlserver-1": server("mlserver-1", measured("v2-1", 2000), measured("v2-1000", 700)),
        "ours-2": server("ours-2", measured("native-1-c32", 22000), tensorflow_loaded=False),
    }


def build(results: dict[str, ServerResult], load: float = 0.2, steal: float = 0.001) -> Report:
    run = {
        "finished": "2026-11-30T10:00:00+00:00",
        "command": "python -m bench.run --long --peers",
        "duration_s": 8,
        "warmup_s": 3,
        "repeat": 3,
        "wrk_threads": 1,
        "wall_s": 1200.0,
    }
    machine = {
        "cpu": "test CPU",
        "cores": 2,
        "commit": "abc1234",
        "load_average_start": [load, load, load],
        "load_average": [2.0, 1.5, 1.0],
        "cpu_steal_share": steal,
    }
    return Report.build(run, machine, results)


def target(report: Report, name: str) -> Target:
    return next(t for t in [*report.targets, *report.kept] if t.name.startswith(name))


@pytest.mark.parametrize(
    ("name", "figure", "met", "inputs"),
    [
        (
            "1 row c=32: `/predict` vs the JSON ceiling",
            0.333,
            True,
            "12,000 req/s (ours-1, native 1 row, c=32) / 36,000 req/s "
            "(ceiling-1, native 1 row, c=32)",
        ),
        (
            "1 row c=32: `/predict` vs the JSON ceiling (stretch)",
            0.333,
            False,
            "12,000 req/s (ours-1, native 1 row, c=32) / 36,000 req/s",
        ),
        (
            "1 row c=32: `/predict` vs the fastest peer",
            4.0,
            True,
            "/ 3,000 req/s (kserve-1, V1 1 row, c=32)",
        ),
        ("1000 rows: native columns vs the JSON ceiling", 0.667, True, "2,000,000 rows/s"),
        ("1000 rows: V2 binary vs the binary ceiling", 0.8, True, "5,000,000 rows/s"),
        ("1000 rows: native rows vs the best peer", 1.429, False, "/ 700,000 rows/s (mlserver-1"),
        ("1000 rows: V2 binary vs the best peer", 5.714, True, "4,000,000 rows/s"),
        ("1 row c=1: `/predict` p50 latency", 2.0, True, "0.20 ms p50 (ours-1, native 1 row, c=1)"),
        ("1 row c=32: `/predict` vs the tutorial", 240.0, True, "/ 50 req/s (tutorial-1"),
        ("ready ≤ 1 s", 0.6, True, "0.6 s"),
        ("idle RSS ≤ 110 MB", 100.0, True, "100 MB"),
        ("no TensorFlow", False, True, "TensorFlow mapped: [False, False]"),
        (
            "2 workers vs 1 worker",
            1.833,
            True,
            "22,000 req/s (ours-2, native 1 row, c=32) / 12,000",
        ),
    ],
)
def test_each_target_is_computed_from_the_figures_it_names(
    name: str, figure: float | bool, met: bool, inputs: str
) -> None:
    found = target(build(full_run()), name)
    assert found.figure == figure
    assert found.met is met
    assert inputs in found.inputs


def test_a_form_that_failed_its_check_is_not_measured_with_its_reason() -> None:
    results = full_run()
    results["ours-1"].measurements[3] = Measurement(
        "native-columns-1000", 'not measured: HTTP 422 {"error":{"code":"invalid_request"}}'
    )
    report = build(results)
    for name in ("1000 rows: native columns vs the JSON", "1000 rows: native columns vs the best"):
        found = target(report, name)
        assert (found.figure, found.met) == (None, None)
        assert "ours-1, native columns 1000 rows, c=4: not measured: HTTP 422" in found.inputs
    assert "| not measured: HTTP 422" in report.to_markdown()


def test_the_best_peer_says_which_peer_was_missing() -> None:
    results = full_run()
    results["kserve-1"] = server("kserve-1", error="pip install failed with exit code 1")
    found = target(build(results), "1 row c=32: `/predict` vs the fastest peer")
    assert found.figure == 6.0  # against MLServer's 2,000 req/s
    assert "(mlserver-1, V2 JSON 1 row, c=32)" in found.inputs
    assert "kserve-1: pip install failed with exit code 1" in found.inputs


def test_without_any_peer_the_peer_targets_are_not_measured() -> None:
    peers = {"kserve-1", "mlserver-1"}
    results = {key: value for key, value in full_run().items() if key not in peers}
    peer_targets = [t for t in build(results).targets if "peer" in t.name]
    with_peers = [t for t in build(full_run()).targets if "peer" in t.name]
    assert [t.name for t in peer_targets] == [t.name for t in with_peers]
    assert all(t.met is None and "no peer measured" in t.inputs for t in peer_targets)


@pytest.mark.parametrize(
    ("load", "steal", "verdict"),
    [
        (0.3, 0.001, "yes"),
        (2.5, 0.001, "**no"),
        # Quiet at the start, but the hypervisor ran other guests on our cores meanwhile.
        (0.3, 0.05, "**no"),
    ],
)
def test_the_report_says_whether_the_machine_was_quiet(
    load: float, steal: float, verdict: str
) -> None:
    text = build(full_run(), load=load, steal=steal).to_markdown()
    assert f"Quiet machine: {verdict}" in text
    assert f"CPU steal {steal:.1%} of the run's CPU time" in text


def test_the_markdown_lists_every_target_and_skips_what_does_not_apply() -> None:
    results = full_run()
    results["tutorial-1"].measurements.append(Measurement("v2-1", NOT_APPLICABLE))
    report = build(results)
    text = report.to_markdown()
    for found in [*report.targets, *report.kept]:
        assert f"| {found.name} |" in text
    assert NOT_APPLICABLE not in text
    assert "| native columns | 100,000 | 100.0 | - | - |" in text
