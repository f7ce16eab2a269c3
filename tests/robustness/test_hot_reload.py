"""Hot reload on a real server: versions dropped in, half-written and removed under load."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from app.artifact import ONNX_FILE, version_path
from tests.robustness.conftest import ReportFigure
from tests.robustness.load import LoadRun
from tests.robustness.servers import predict_body, served_version, serving, wait_for
from tests.robustness.versions import (
    broken_version,
    read_metadata,
    shift_parity_reference,
    truncate_model_file,
    write_metadata,
)
from tests.support import MODEL_NAME, ServerProcess

POLL_INTERVAL = 0.2
PHASE_SECONDS = 1.5  # load on each state of the repository
MIN_REQUESTS = 100  # answered in each phase


def loaded_versions(server: ServerProcess) -> list[int]:
    versions: list[int] = httpx.get(server.base_url + "/metadata", timeout=5).json()["versions"]
    return versions


def test_versions_dropped_in_under_load_never_fail_a_request(
    repository: Path, tmp_path: Path, report_figure: ReportFigure
) -> None:
    """Corrupt versions are refused, a valid one takes over once whole, removal falls back."""
    with serving(repository, tmp_path / "server.log", poll_interval=POLL_INTERVAL) as server:

        def logged(text: str) -> bool:
            return text in server.log()

        with LoadRun(server.base_url, duration=120) as run:

            def keep_loading(what: str) -> None:
                """Let the load run a while on the current state, and requests complete."""
                completed = run.completed
                time.sleep(PHASE_SECONDS)
                wait_for(lambda: run.completed >= completed + MIN_REQUESTS, what, server)

            keep_loading("warm-up")

            # A corrupt newest version (the network misses its parity reference): refused.
            broken_version(repository, 1, 5, shift_parity_reference)
            wait_for(lambda: logged("rejected multilabel version 5"), "version 5 refused", server)
            assert served_version(server) == 1
            keep_loading("load beside refused 5")

            # A valid version copied in file by file: refused while incomplete, then served.
            source = version_path(repository, MODEL_NAME, 1)
            target = version_path(repository, MODEL_NAME, 6)
            target.mkdir()
            write_metadata(target, {**read_metadata(source), "version": 6})
            (target / ONNX_FILE).write_bytes((source / ONNX_FILE).read_bytes()[:100])
            wait_for(lambda: logged("rejected multilabel version 6"), "half of 6 refused", server)
            assert served_version(server) == 1
            keep_loading("load beside half of 6")
            for file in source.iterdir():
                if file.name != "metadata.json":
                    shutil.copy(file, target / file.name)
            wait_for(lambda: served_version(server) == 6, "version 6 served", server)

            # A newer version whose model file was cut short: refused, 6 keeps serving.
            broken_version(repository, 1, 7, truncate_model_file)
            wait_for(lambda: logged("rejected multilabel version 7"), "version 7 refused", server)
            assert served_version(server) == 6
            keep_loading("load on 6")

            # The served version removed from disk: back to the newest valid one left.
            shutil.rmtree(target)
            wait_for(lambda: served_version(server) == 1, "back to version 1", server)
            keep_loading("load on 1 again")
        report = run.report()
    report_figure(
        "reload under load",
        f"{report.summary()}; answers by version {dict(sorted(report.versions.items()))}; "
        "corrupt versions 5 and 7 and half-written 6 refused, whole 6 served, "
        "removal of 6 fell back to 1",
    )
    assert report.failures == []
    assert set(report.versions) == {1, 6}


LOW_THRESHOLD = 0.125  # version 2's thresholds: same network, other decisions


def lower_thresholds(version: Path) -> None:
    write_metadata(version, {**read_metadata(version), "thresholds": [LOW_THRESHOLD] * 3})


def answers_on_one_version(answer: dict[str, Any], defaults: dict[str, float]) -> bool:
    """The answer's thresholds and labels are those of the version it names, all of them."""
    version = answer["model"]["version"]
    expected = defaults if version == 1 else dict.fromkeys(defaults, LOW_THRESHOLD)
    if answer["thresholds"] != expected:
        return False
    return all(
        row["labels"]
        == [label for label, p in row["probabilities"].items() if p >= expected[label]]
        for row in answer["predictions"]
    )


def test_requests_in_flight_across_a_swap_and_a_removal_each_finish_on_one_version(
    repository: Path, tmp_path: Path
) -> None:
    """Batches in flight while version 2 takes over and version 1 is deleted: every answer
    comes whole from the one version it names (its thresholds tell them apart), whatever
    order the requests arrive and finish in."""
    rows = np.random.default_rng(8).integers(0, 15, size=(2000, 10)).tolist()
    body = predict_body(rows)
    with serving(repository, tmp_path / "server.log", poll_interval=POLL_INTERVAL) as server:
        defaults = httpx.get(server.base_url + "/metadata").json()["thresholds"]
        stop = threading.Event()
        answers: list[httpx.Response] = []

        def keep_sending() -> None:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                while not stop.is_set():
                    answers.append(
                        client.post(
                            "/predict",
                            content=body,
                            headers={"content-type": "application/json"},
                        )
                    )

        senders = [threading.Thread(target=keep_sending) for _ in range(4)]
        for sender in senders:
            sender.start()
        try:
            wait_for(lambda: len(answers) >= 8, "answers from version 1", server)
            broken_version(repository, 1, 2, lower_thresholds)  # published whole, renamed
            wait_for(lambda: served_version(server) == 2, "version 2 served", server)
            shutil.rmtree(version_path(repository, MODEL_NAME, 1))
            wait_for(lambda: loaded_versions(server) == [2], "version 1 unloaded", server)
            settled = len(answers)
            wait_for(lambda: len(answers) >= settled + 8, "answers from version 2", server)
        finally:
            stop.set()
            for sender in senders:
                sender.join()
    assert [answer.status_code for answer in answers] == [200] * len(answers)
    documents = [orjson.loads(answer.content) for answer in answers]
    versions = [document["model"]["version"] for document in documents]
    assert {1, 2} <= set(versions)
    assert all(answers_on_one_version(document, defaults) for document in documents)
    assert versions[-1] == 2
