"""Processes that die or are told to stop: the server under SIGKILL and SIGTERM, and a
training run killed while it writes a version."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from app.artifact import list_versions, read_artifact
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


# Where a run is killed (tests.robustness.killed_training), and what that point is.
KILL_POINTS = {
    "staging": "as soon as its staging directory exists",
    "onnx": "after its ONNX export, as it writes the model card",
    "publish": "as it publishes (metadata final, the rename next)",
}


def test_a_training_run_killed_mid_write_leaves_no_partial_version(
    repository: Path, tmp_path: Path, report_figure: ReportFigure
) -> None:
    """Runs are killed at several points (in parallel, each in its own repository copy); a
    server watches the one killed as it publishes. No partial version is ever listed or served,
    and each repository keeps the version it had."""
    roots = {point: tmp_path / f"repository-{point}" for point in KILL_POINTS}
    for root in roots.values():
        shutil.copytree(repository, root)
    watched = roots["publish"]
    with serving(watched, tmp_path / "server.log", poll_interval=0.1) as server:
        runs = {
            point: _start_training(point, root, tmp_path / f"train-{point}.log")
            for point, root in roots.items()
        }
        exit_codes = {point: run.wait(timeout=480) for point, run in runs.items()}
        time.sleep(0.5)  # five polls of the watched repository after the last run died
        assert served_version(server) == 1
        log = server.log()
    report_figure(
        "training killed mid-write",
        "; ".join(f"{KILL_POINTS[point]}: exit {code}" for point, code in exit_codes.items()),
    )
    assert exit_codes == dict.fromkeys(KILL_POINTS, -signal.SIGKILL), [
        (tmp_path / f"train-{point}.log").read_text()[-2000:] for point in KILL_POINTS
    ]
    for root in roots.values():
        assert list_versions(root, MODEL_NAME) == [1]
        read_artifact(root / MODEL_NAME / "1")  # untouched and verified
        # Only the dead run's staging directory is left, hidden from every listing; the next
        # run removes it once it is stale (tests/app/test_artifact.py).
        entries = [entry.name for entry in (root / MODEL_NAME).iterdir()]
        assert any(name.startswith(".staging-") for name in entries)
        assert all(name.startswith(".") or name.isdigit() for name in entries)
    assert "rejected" not in log


def _start_training(point: str, root: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.robustness.killed_training", point]
    arguments = ["--no-cv", "--epochs", "2", "--output", str(root)]
    with log.open("wb") as output:
        return subprocess.Popen([*command, *arguments], cwd=REPO_ROOT, stdout=output, stderr=output)
