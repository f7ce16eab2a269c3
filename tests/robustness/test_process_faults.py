"""Processes that die or are told to stop: the server under SIGKILL and SIGTERM, and a
training run killed while it writes a version."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from app.artifact import METADATA_FILE, ONNX_FILE, list_versions, read_artifact
from tests.robustness.conftest import ReportFigure
from tests.robustness.load import CLOSED, REFUSED, LoadRun
from tests.robustness.servers import (
    HeldRequest,
    accepts_connections,
    predict_body,
    served_version,
    serving,
    wait_for,
)
from tests.support import MODEL_NAME, REFERENCE_INPUTS, REPO_ROOT, ServerProcess

WARM_UP_REQUESTS = 300
GRACEFUL_SECONDS = 10
HELD_REQUESTS = 3


def tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def reference_answer(server: ServerProcess) -> dict[str, object]:
    response = httpx.post(server.base_url + "/predict", json={"instances": REFERENCE_INPUTS})
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_a_server_killed_mid_load_comes_back_ready_with_the_same_model(
    repository: Path, tmp_path: Path, report_figure: ReportFigure
) -> None:
    files_before = tree(repository)
    with serving(repository, tmp_path / "first.log") as first:
        answer_before = reference_answer(first)
        with LoadRun(first.base_url, duration=60) as run:
            wait_for(lambda: run.completed >= WARM_UP_REQUESTS, "warm-up", first)
            killed_at = time.monotonic()
            first.process.kill()
            first.process.wait(timeout=10)
            time.sleep(0.5)  # clients see the dead server
        report = run.report()
    restarted_at = time.monotonic()
    with serving(repository, tmp_path / "second.log") as second:
        restart_seconds = time.monotonic() - restarted_at
        answer_after = reference_answer(second)
    report_figure(
        "SIGKILL mid-load",
        f"{len([o for o in report.outcomes if o.ok])} requests answered before the kill, "
        f"restarted and ready in {restart_seconds:.2f} s with the same version and answers",
    )
    assert answer_after == answer_before  # same version, bit-identical probabilities
    assert tree(repository) == files_before
    before_kill = [o for o in report.failures if o.started + o.latency < killed_at]
    assert before_kill == []
    assert {o.status for o in report.outcomes} <= {200, None}  # a dead server answers nothing


def test_sigterm_under_load_finishes_in_flight_requests_and_exits_zero(
    repository: Path, tmp_path: Path, report_figure: ReportFigure
) -> None:
    graceful = str(GRACEFUL_SECONDS)
    with serving(repository, tmp_path / "server.log", graceful_timeout=graceful) as server:
        with LoadRun(server.base_url, duration=60) as run:
            wait_for(lambda: run.completed >= WARM_UP_REQUESTS, "warm-up", server)
            held = [
                HeldRequest(server, "/predict", predict_body(REFERENCE_INPUTS))
                for _ in range(HELD_REQUESTS)
            ]
            assert served_version(server) == 1  # answered after the held ones arrived
            terminated_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            wait_for(lambda: not accepts_connections(server), "stop accepting", server)
            still_running = server.process.poll() is None  # waiting for the held requests
            answers = [request.finish() for request in held]
            exit_code = server.process.wait(timeout=GRACEFUL_SECONDS + 5)
            exited_after = time.monotonic() - terminated_at
        report = run.report()
    answered_after = [o for o in report.outcomes if o.ok and o.started + o.latency > terminated_at]
    not_taken = [o for o in report.failures if o.error == CLOSED]
    report_figure(
        "SIGTERM under load",
        f"exit code {exit_code} {exited_after:.2f} s after SIGTERM (graceful period "
        f"{GRACEFUL_SECONDS} s); {len(answered_after)} load requests answered 200 after it, "
        f"{sum(a.status_code == 200 for a in answers)}/{HELD_REQUESTS} half-sent requests "
        f"completed with 200; {sum(o.error == REFUSED for o in report.failures)} connections "
        f"refused, {len(not_taken)} requests closed unread (none started, none cut short)",
    )
    assert still_running  # the held requests keep it waiting
    assert [answer.status_code for answer in answers] == [200] * HELD_REQUESTS
    assert all(len(orjson.loads(a.content)["predictions"]) == 2 for a in answers)
    assert all(o.ok for o in report.outcomes if o.started + o.latency < terminated_at)
    assert {o.status for o in report.outcomes} <= {200, None}  # no error status, ever
    # Requests the server had not read when it stopped are closed, as with any HTTP server;
    # an answer that had started is never cut short and no request hangs.
    assert {o.error for o in report.failures} <= {REFUSED, CLOSED}
    # It stopped of itself once the held requests were answered, not when uvicorn's graceful
    # period ran out and cancelled what was left (which it would have logged).
    assert "timeout graceful shutdown exceeded" not in server.log()
    assert exit_code == 0, server.log()


@dataclass(frozen=True)
class KillPoint:
    """When to kill a training run, judged from its staging directory."""

    name: str
    reached: Callable[[Path], bool]


KILL_POINTS = [
    KillPoint("as soon as its staging directory appears", lambda staging: True),
    KillPoint("after its ONNX export", lambda staging: (staging / ONNX_FILE).exists()),
    KillPoint(
        "while it publishes (metadata written; the rename may win the race)",
        lambda staging: (staging / METADATA_FILE).exists(),
    ),
]


def test_a_training_run_killed_mid_write_leaves_no_partial_version(
    repository: Path, tmp_path: Path, report_figure: ReportFigure
) -> None:
    """Runs are killed at several points (in parallel, each in its own repository copy); a
    server watches the last one. No partial version is ever listed or served."""
    roots = [tmp_path / f"repository-{index}" for index in range(len(KILL_POINTS))]
    for root in roots:
        shutil.copytree(repository, root)
    watched = roots[-1]
    with serving(watched, tmp_path / "server.log", poll_interval=0.1) as server:
        runs = [_start_training(root, tmp_path / f"train-{n}.log") for n, root in enumerate(roots)]
        outcomes = _kill_at_points(runs, roots, server)
        exit_codes = [run.returncode for run in runs]
        newest = max(list_versions(watched, MODEL_NAME))  # 2 if publishing completed
        wait_for(lambda: served_version(server) == newest, "newest version served", server)
        log = server.log()
    report_figure("training killed mid-write", "; ".join(outcomes))
    # Each run really was killed at its point; only the last may win the race and publish.
    assert exit_codes[:2] == [-signal.SIGKILL, -signal.SIGKILL], outcomes
    assert exit_codes[2] in (-signal.SIGKILL, 0), outcomes
    for root in roots:
        for version in list_versions(root, MODEL_NAME):
            read_artifact(root / MODEL_NAME / str(version))  # complete and verified
        assert all(
            entry.name.startswith(".") or entry.name.isdigit()
            for entry in (root / MODEL_NAME).iterdir()
        )
    assert list_versions(roots[0], MODEL_NAME) == list_versions(roots[1], MODEL_NAME) == [1]
    assert "rejected" not in log


def _start_training(root: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "training.train", "--no-cv", "--epochs", "2"]
    with log.open("wb") as output:
        return subprocess.Popen(
            [*command, "--output", str(root)], cwd=REPO_ROOT, stdout=output, stderr=output
        )


def _kill_at_points(
    runs: list[subprocess.Popen[bytes]], roots: list[Path], server: ServerProcess
) -> list[str]:
    """Kill each run when its point is reached; check the served version meanwhile."""
    outcomes: dict[int, str] = {}
    deadline = time.monotonic() + 480  # three TensorFlow starts on a shared machine
    while len(outcomes) < len(runs):
        assert time.monotonic() < deadline, "training runs did not reach their kill points"
        for index, (run, root, point) in enumerate(zip(runs, roots, KILL_POINTS, strict=True)):
            if index in outcomes:
                continue
            if run.poll() is not None:
                outcomes[index] = f"{point.name}: finished (exit {run.returncode}) before"
                continue
            staging = next((root / MODEL_NAME).glob(".staging-*"), None)
            if staging is not None and point.reached(staging):
                run.kill()
                run.wait()
                outcomes[index] = f"{point.name}: killed"
        time.sleep(0.001)
    assert served_version(server) >= 1
    return [outcomes[index] for index in range(len(runs))]
