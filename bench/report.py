"""The report of one run: the targets of issue 12 and the kept ones, each with its figure and
the measurements it was computed from, the ratios between servers, the size of each form's
answer; written as JSON (everything) and Markdown (for people)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.records import NOT_APPLICABLE, Measurement, ServerResult
from bench.workloads import BATCH_OF_FORM, BY_KEY, FORMS, WORKLOADS

# A machine whose 1-minute load average is at or above this when the run starts was busy
# with other work: its figures are noise (2 cores: wrk and the server already use both).
QUIET_LOAD = 1.0
# A run in which the hypervisor gave this share of the machine's CPU time or more to other
# guests (steal) ran on cores it did not have to itself.
QUIET_STEAL = 0.02
OURS_1, OURS_2 = "ours-1", "ours-2"
JSON_CEILING, BINARY_CEILING, TUTORIAL = "ceiling-1", "ceiling-binary-1", "tutorial-1"
WORK_CEILING, STRONG_MLSERVER = "ceiling-work-1", "mlserver-list-1"
SINGLE_ROW_PEERS = (("kserve-1", "v1-1"), ("kserve-1", "v2-1"), ("mlserver-1", "v2-1"))
BATCH_PEERS = (
    ("kserve-1", "v1-1000"),
    ("kserve-1", "v2-1000"),
    ("mlserver-1", "v2-1000"),
    (STRONG_MLSERVER, "v2-1000"),
)
# Issue 24: each 1000-row form over its own work ceiling (the goal), and the flat forms over
# the stronger MLServer setup too.
WORK_GOALS = {
    "native": 0.85,
    "native-columns": 0.8,
    "v2": 0.8,
    "v2-binary": None,  # reported, no goal
    "v1": None,
    "v1-columns": 0.8,
}
OVER_STRONG_MLSERVER = ("native-columns", "v2", "v1-columns")
REPORTED = "reported"  # a target's goal when it is shown without one
# The servers ours is divided by in the ratio table, with the column's title.
RATIO_COLUMNS = (
    (JSON_CEILING, "JSON ceiling"),
    (BINARY_CEILING, "binary ceiling"),
    (WORK_CEILING, "work ceiling"),
    (TUTORIAL, "tutorial"),
    ("kserve-1", "KServe"),
    ("mlserver-1", "MLServer (NumpyCodec)"),
    (STRONG_MLSERVER, "MLServer (list)"),
)


@dataclass(frozen=True)
class Figure:
    """One measured value, and where it comes from."""

    value: float
    unit: str
    server: str
    workload: str

    def describe(self) -> str:
        digits = 2 if self.unit.startswith("ms") else 0
        return f"{self.value:,.{digits}f} {self.unit} ({self.server}, {self.workload})"


@dataclass
class Target:
    name: str
    goal: str
    figure: float | bool | None
    met: bool | None  # None: not measured in this run
    inputs: str  # the measurements behind the figure, or why there is none


@dataclass(frozen=True)
class Metric:
    unit: str
    read: Callable[[Measurement], float | None]


THROUGHPUT = Metric("req/s", lambda m: m.requests_per_s)
ROWS = Metric("rows/s", lambda m: m.rows_per_s)
P50 = Metric("ms p50", lambda m: m.p50_ms)


class Lookup:
    """Figures of one run by server and workload, or the reason there is none."""

    def __init__(self, results: dict[str, ServerResult]):
        self.results = results

    def figure(self, server: str, workload: str, metric: Metric) -> Figure | str:
        result = self.results.get(server)
        name = BY_KEY[workload].name
        if result is None:
            return f"{server} was not run"
        if result.error:
            return f"{server}: {result.error[:200]}"
        measurement = next((m for m in result.measurements if m.workload == workload), None)
        if measurement is None:
            return f"{server}, {name}: not run"
        value = metric.read(measurement)
        if not measurement.ok or value is None:
            return f"{server}, {name}: {measurement.status}"
        return Figure(value, metric.unit, server, name)

    def best(
        self, candidates: Sequence[tuple[str, str]], metric: Metric
    ) -> tuple[Figure | str, list[str]]:
        """The highest of the candidates' figures (or why none), and the candidates missing."""
        found = [self.figure(server, workload, metric) for server, workload in candidates]
        figures = [item for item in found if isinstance(item, Figure)]
        missing = list(dict.fromkeys(item for item in found if isinstance(item, str)))
        if not figures:
            return "no peer measured: " + "; ".join(missing), missing
        return max(figures, key=lambda figure: figure.value), missing


def ratio_target(
    name: str,
    goal: float,
    numerator: Figure | str,
    denominator: Figure | str,
    *,
    higher: bool = True,
    note: str = "",
) -> Target:
    goal_text = f"ratio {'≥' if higher else '≤'} {goal:g}"
    missing = [item for item in (numerator, denominator) if isinstance(item, str)]
    if missing or not isinstance(numerator, Figure) or not isinstance(denominator, Figure):
        return Target(name, goal_text, None, None, "not measured: " + "; ".join(missing))
    value = round(numerator.value / denominator.value, 3)
    met = value >= goal if higher else value <= goal
    inputs = f"{numerator.describe()} / {denominator.describe()}{note}"
    return Target(name, goal_text, value, met, inputs)


def issue_targets(lookup: Lookup) -> list[Target]:
    """The targets of issue 12, each a ratio of two figures of this run (1 worker)."""
    ours_c32 = lookup.figure(OURS_1, "native-1-c32", THROUGHPUT)
    best_single, single_missing = lookup.best(SINGLE_ROW_PEERS, THROUGHPUT)
    best_batch, batch_missing = lookup.best(BATCH_PEERS, ROWS)
    targets = [
        ratio_target(
            "1 row c=32: `/predict` vs the JSON ceiling",
            0.3,
            ours_c32,
            lookup.figure(JSON_CEILING, "native-1-c32", THROUGHPUT),
        ),
        ratio_target(
            "1 row c=32: `/predict` vs the JSON ceiling (stretch)",
            0.5,
            ours_c32,
            lookup.figure(JSON_CEILING, "native-1-c32", THROUGHPUT),
        ),
        ratio_target(
            "1 row c=32: `/predict` vs the fastest peer (KServe V1/V2, MLServer V2)",
            2.5,
            ours_c32,
            best_single,
            note=_missing_note(single_missing),
        ),
        ratio_target(
            "1000 rows: native columns vs the JSON ceiling (rows/s)",
            0.6,
            lookup.figure(OURS_1, "native-columns-1000", ROWS),
            lookup.figure(JSON_CEILING, "native-columns-1000", ROWS),
        ),
        ratio_target(
            "1000 rows: V2 binary vs the binary ceiling (rows/s)",
            0.6,
            lookup.figure(OURS_1, "v2-binary-1000", ROWS),
            lookup.figure(BINARY_CEILING, "v2-binary-1000", ROWS),
        ),
    ]
    for form in FORMS:
        targets.append(
            ratio_target(
                f"1000 rows: {form.name} vs the best peer (rows/s)",
                1.5,
                lookup.figure(OURS_1, BATCH_OF_FORM[form.key], ROWS),
                best_batch,
                note=_missing_note(batch_missing),
            )
        )
    targets += [
        ratio_target(
            "1 row c=1: `/predict` p50 latency vs the JSON ceiling's",
            2.0,
            lookup.figure(OURS_1, "native-1-c1", P50),
            lookup.figure(JSON_CEILING, "native-1-c1", P50),
            higher=False,
        ),
        ratio_target(
            "1 row c=32: `/predict` vs the tutorial approach",
            200,
            ours_c32,
            lookup.figure(TUTORIAL, "native-1-c32", THROUGHPUT),
        ),
    ]
    return targets


def work_targets(lookup: Lookup) -> list[Target]:
    """The targets of issue 24: each 1000-row form of ours over its own work ceiling (rows/s),
    and the flat forms over the stronger MLServer setup (one FP32 output from a list)."""
    targets = []
    by_key = {form.key: form for form in FORMS}
    for key, goal in WORK_GOALS.items():
        workload = BATCH_OF_FORM[key]
        target = ratio_target(
            f"1000 rows: {by_key[key].name} vs its work ceiling (rows/s)",
            goal or 0.0,
            lookup.figure(OURS_1, workload, ROWS),
            lookup.figure(WORK_CEILING, workload, ROWS),
        )
        if goal is None:  # measured and shown, not a goal of the issue
            target.goal, target.met = REPORTED, None
        targets.append(target)
    strong = lookup.figure(STRONG_MLSERVER, "v2-1000", ROWS)
    for key in OVER_STRONG_MLSERVER:
        targets.append(
            ratio_target(
                f"1000 rows: {by_key[key].name} vs MLServer, one FP32 output from a list (rows/s)",
                1.5,
                lookup.figure(OURS_1, BATCH_OF_FORM[key], ROWS),
                strong,
            )
        )
    return targets


def kept_targets(lookup: Lookup) -> list[Target]:
    """The targets that must stay met: start-up, memory, no TensorFlow, worker scaling."""
    ours, ours_2 = lookup.results.get(OURS_1), lookup.results.get(OURS_2)
    tensorflow = [result.tensorflow_loaded for result in (ours, ours_2) if result]
    measured = bool(tensorflow) and None not in tensorflow
    return [
        _limit_target(
            "ready ≤ 1 s after start (`/health/ready`)", ours.ready_s if ours else None, 1.0, "s"
        ),
        _limit_target("idle RSS ≤ 110 MB", ours.idle_rss_mb if ours else None, 110.0, "MB"),
        Target(
            "no TensorFlow in the serving process (`/proc/<pid>/maps`, 1 and 2 workers)",
            "not mapped",
            any(tensorflow) if measured else None,
            not any(tensorflow) if measured else None,
            f"TensorFlow mapped: {tensorflow}" if measured else "not measured",
        ),
        ratio_target(
            "2 workers vs 1 worker, 1 row c=32",
            1.8,
            lookup.figure(OURS_2, "native-1-c32", THROUGHPUT),
            lookup.figure(OURS_1, "native-1-c32", THROUGHPUT),
        ),
    ]


def _limit_target(name: str, value: float | None, limit: float, unit: str) -> Target:
    if value is None:
        return Target(name, f"≤ {limit:g} {unit}", None, None, "not measured")
    return Target(name, f"≤ {limit:g} {unit}", value, value <= limit, f"{value:g} {unit}")


def _missing_note(missing: list[str]) -> str:
    return f" (also tried, not measured: {'; '.join(missing)})" if missing else ""


def ratio_table(lookup: Lookup) -> dict[str, dict[str, float | None]]:
    """Per workload (req/s): ours (1 worker) over each other server that answered it, and
    2 workers over 1 for ours and the JSON ceiling."""
    pairs = [(OURS_1, server) for server, _ in RATIO_COLUMNS]
    pairs += [(OURS_2, OURS_1), ("ceiling-2", JSON_CEILING)]
    table: dict[str, dict[str, float | None]] = {}
    for workload in WORKLOADS:
        table[workload.key] = {
            f"{numerator} ÷ {denominator}": _ratio(
                lookup.figure(numerator, workload.key, THROUGHPUT),
                lookup.figure(denominator, workload.key, THROUGHPUT),
            )
            for numerator, denominator in pairs
        }
    return table


def _ratio(numerator: Figure | str, denominator: Figure | str) -> float | None:
    if isinstance(numerator, Figure) and isinstance(denominator, Figure):
        return round(numerator.value / denominator.value, 3)
    return None


@dataclass
class Report:
    run: dict[str, Any]
    machine: dict[str, Any]
    results: dict[str, ServerResult]
    targets: list[Target] = field(default_factory=list)
    work: list[Target] = field(default_factory=list)
    kept: list[Target] = field(default_factory=list)
    ratios: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, run: dict[str, Any], machine: dict[str, Any], results: dict[str, ServerResult]
    ) -> Report:
        lookup = Lookup(results)
        return cls(
            run,
            machine,
            results,
            issue_targets(lookup),
            work_targets(lookup),
            kept_targets(lookup),
            ratio_table(lookup),
        )

    def answer_sizes(self) -> dict[str, dict[str, int | None]]:
        """Bytes of one 1000-row answer, per form and server."""
        return {
            form.key: {
                key: result.answer_bytes(BATCH_OF_FORM[form.key])
                for key, result in self.results.items()
            }
            for form in FORMS
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "machine": self.machine,
            "servers": [asdict(result) for result in self.results.values()],
            "targets": [asdict(target) for target in self.targets],
            "work_targets": [asdict(target) for target in self.work],
            "kept_targets": [asdict(target) for target in self.kept],
            "ratios": self.ratios,
            "answer_bytes_1000_rows": self.answer_sizes(),
        }

    def to_markdown(self) -> str:
        lines = ["# Benchmark results (latest run)", "", self._header(), "", self._quiet(), ""]
        lines += ["## Issue 12 targets (1 worker each, one run)", "", *_targets(self.targets)]
        lines += ["", "## Issue 24 targets: the work ceiling and the stronger MLServer", ""]
        lines += [*_targets(self.work)]
        lines += ["", "## Kept targets", "", *_targets(self.kept)]
        lines += ["", "## Bytes per 1000-row answer", "", *self._sizes()]
        lines += ["", "## Throughput and latency", "", *self._measurements()]
        lines += ["", "## Servers", "", *self._servers()]
        lines += ["", "## Health probes idle and under a flood", "", *self._probes()]
        lines += ["", "## Readiness beside hostile JSON bodies", "", *self._hostile()]
        lines += ["", "## Ratios (req/s: ours, 1 worker, over each server, same workload)", ""]
        lines += self._ratios()
        return "\n".join(lines) + "\n"

    def _header(self) -> str:
        run, machine = self.run, self.machine
        return (
            f"{run['finished']} · {machine['cpu']}, {machine['cores']} cores · commit "
            f"{machine['commit']} · median of {run['repeat']} run(s) of {run['duration_s']} s "
            f"(the tutorial approach: at least 10 s) after a {run['warmup_s']} s warm-up, "
            f"wrk with {run['wrk_threads']} thread(s) · {run['wall_s'] / 60:.1f} min in all · "
            f"`{run['command']}`"
        )

    def _quiet(self) -> str:
        start, end = self.machine["load_average_start"], self.machine["load_average"]
        steal = self.machine["cpu_steal_share"]
        quiet = start[0] < QUIET_LOAD and steal < QUIET_STEAL
        verdict = "yes" if quiet else "**no: the figures are noisy; rerun on a quiet machine**"
        return (
            f"Quiet machine: {verdict}. Load average (1, 5, 15 min) {start} at start, {end} at "
            f"end; CPU steal {steal:.1%} of the run's CPU time. Quiet means a 1-minute load "
            f"average below {QUIET_LOAD:g} at start (the end figure includes this run's own "
            f"load) and under {QUIET_STEAL:.0%} of the CPU time stolen over the run (/proc/stat: "
            "the hypervisor running other guests on our cores)."
        )

    def _sizes(self) -> list[str]:
        lines = [
            "| form | ours | ours, bytes per row | KServe | MLServer |",
            "|---|--:|--:|--:|--:|",
        ]
        for form in FORMS:
            sizes = self.answer_sizes()[form.key]
            ours = sizes.get(OURS_1)
            per_row = _cell(ours / 1000 if ours else None, 1)
            lines.append(
                f"| {form.name} | {_cell(ours)} | {per_row} | "
                f"{_cell(sizes.get('kserve-1'))} | {_cell(sizes.get('mlserver-1'))} |"
            )
        return lines

    def _measurements(self) -> list[str]:
        lines = [
            "| server | workload | req/s | rows/s | p50 ms | p99 ms | errors |",
            "|---|---|--:|--:|--:|--:|--:|",
        ]
        for result in self.results.values():
            for m in result.measurements:
                name = BY_KEY[m.workload].name
                if m.status == NOT_APPLICABLE:
                    continue
                if not m.ok:
                    lines.append(f"| {result.key} | {name} | {_escape(m.status)} ||||| ")
                    continue
                lines.append(
                    f"| {result.key} | {name} | {_cell(m.requests_per_s)} | "
                    f"{_cell(m.rows_per_s)} | {_cell(m.p50_ms, 2)} | {_cell(m.p99_ms, 2)} | "
                    f"{(m.non_2xx or 0) + (m.socket_errors or 0)} |"
                )
        return lines

    def _servers(self) -> list[str]:
        lines = [
            "| server | what | ready (s) | idle RSS (MB) | loaded RSS (MB) | TensorFlow "
            "| ONNX Runtime | versions |",
            "|---|---|--:|--:|--:|---|---|---|",
        ]
        for result in self.results.values():
            error = f" (**not measured**: {_escape(result.error[:200])})" if result.error else ""
            versions = ", ".join(f"{name} {version}" for name, version in result.versions.items())
            lines.append(
                f"| {result.key} | {result.label}{error} | {_cell(result.ready_s, 2)} | "
                f"{_cell(result.idle_rss_mb)} | {_cell(result.loaded_rss_mb)} | "
                f"{_flag(result.tensorflow_loaded)} | {_flag(result.onnxruntime_loaded)} | "
                f"{versions} |"
            )
        return lines

    def _probes(self) -> list[str]:
        """The probe's latency on the idle server and under the flood, same run (ours-1)."""
        result = self.results.get(OURS_1)
        probes = result.probes if result else None
        if not probes:
            return ["Not measured in this run (`--no-probes`, or ours-1 was not run)."]
        lines = [
            f"`GET {probes['path']}` every 20 ms on one keep-alive connection, for "
            f"{probes['seconds']} s on the idle server, then for as long while wrk sends "
            f"{probes['flood']} (the overload of tests/robustness/test_overload.py). "
            f"The flood did {_cell(probes['flood_rows_per_s'])} rows/s with "
            f"{probes['flood_non_2xx']} non-2xx answers.",
            "",
            *_probe_table(probes),
        ]
        idle, loaded = probes["idle"]["p99_ms"], probes["loaded"]["p99_ms"]
        if idle:
            lines += ["", f"Loaded p99 ÷ idle p99: {loaded / idle:.1f}."]
        return lines

    def _hostile(self) -> list[str]:
        """``/health/ready`` idle, then while four clients send 8 MiB hostile bodies (ours-1)."""
        result = self.results.get(OURS_1)
        hostile = result.hostile if result else None
        if not hostile:
            return ["Not measured in this run (`--no-probes`, or ours-1 was not run)."]
        lines = [
            f"`GET {hostile['path']}` back to back on one keep-alive connection for "
            f"{hostile['seconds']:g} s alone, then as long while four clients each send "
            f"{hostile['body_mib']:g} MiB bodies of `[],` to `POST {hostile['target']}`, one "
            "after another (issue 20, hole 6). The hostile bodies' answers: "
            f"{hostile['statuses']}; server RSS {hostile['rss_mib']:.0f} MiB before, peak "
            f"{hostile['peak_rss_mib']:.0f} MiB.",
            "",
            *_probe_table(hostile),
        ]
        return lines

    def _ratios(self) -> list[str]:
        titles = [title for _, title in RATIO_COLUMNS] + ["ours 2w ÷ 1w", "ceiling 2w ÷ 1w"]
        lines = ["| workload | " + " | ".join(titles) + " |", "|---|" + "--:|" * len(titles)]
        for key, row in self.ratios.items():
            if any(value is not None for value in row.values()):
                cells = " | ".join(_cell(value, 3) for value in row.values())
                lines.append(f"| {BY_KEY[key].name} | {cells} |")
        return lines


def _targets(targets: list[Target]) -> list[str]:
    lines = ["| target | goal | this run | met | from |", "|---|---|--:|---|---|"]
    for target in targets:
        met = {True: "met", False: "**missed**", None: "not measured"}[target.met]
        if target.goal == REPORTED and target.figure is not None:
            met = "-"
        figure: object = target.figure
        if isinstance(target.figure, float) and target.goal.startswith(("ratio", REPORTED)):
            figure = f"{target.figure:.3f}"
        elif target.figure is None:
            figure = "-"
        lines.append(
            f"| {target.name} | {target.goal} | {figure} | {met} | {_escape(target.inputs)} |"
        )
    return lines


def _cell(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _flag(value: bool | None) -> str:
    return {True: "loaded", False: "no", None: "-"}[value]


def _escape(text: str) -> str:
    """Table-safe: no pipes or line breaks from error messages."""
    return text.replace("|", "\\|").replace("\n", " ")


def _probe_table(figures: dict[str, Any]) -> list[str]:
    """A probe's latencies on the idle server and beside the load, as a markdown table."""
    lines = [
        "| probe | probes | p50 ms | p99 ms | max ms | failed |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name in ("idle", "loaded"):
        f = figures[name]
        lines.append(
            f"| {name} | {f['probes']} | {_cell(f['p50_ms'], 2)} | {_cell(f['p99_ms'], 2)} | "
            f"{_cell(f['max_ms'], 2)} | {f['failed']} |"
        )
    return lines
