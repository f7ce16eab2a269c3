"""The model repository: newest valid version served, versions on request, safe hot reload."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from app.artifact import ONNX_FILE, version_path
from app.errors import ModelNotFound, ModelNotReady
from app.inference import load_model
from app.repository import LoadEvent, ModelRepository, watch
from tests.robustness.versions import (
    CORRUPTIONS,
    Corruption,
    broken_version,
    copy_version,
    read_metadata,
    write_metadata,
)
from tests.support import MODEL_NAME, REFERENCE_INPUTS

Events = list[tuple[LoadEvent, int]]
REFERENCE = np.asarray(REFERENCE_INPUTS, dtype=np.float32)


def open_repository(
    root: Path, events: Events | None = None, *, max_versions: int = 2
) -> ModelRepository:
    """A repository with the real loader, recording its events; refreshed once."""
    recorded: Events = [] if events is None else events
    repository = ModelRepository(
        root,
        MODEL_NAME,
        loader=load_model,
        max_versions=max_versions,
        on_event=lambda event, version: recorded.append((event, version)),
    )
    repository.refresh()
    return repository


def served_version(repository: ModelRepository) -> int:
    return repository.get(MODEL_NAME).version


def test_the_newest_valid_version_is_served(repository: Path) -> None:
    events: Events = []
    models = open_repository(repository, events)
    assert served_version(models) == 1
    copy_version(repository, 1, 2)
    copy_version(repository, 1, 3)
    assert models.refresh() is True
    assert served_version(models) == 3
    assert sorted(models.snapshot.models) == [2, 3]  # max_versions=2: version 1 unloaded
    assert events == [("loaded", 1), ("loaded", 3), ("loaded", 2), ("unloaded", 1)]
    assert models.refresh() is False  # nothing new: nothing reloaded
    assert len(events) == 4


def test_specific_loaded_versions_are_served_on_request(repository: Path) -> None:
    copy_version(repository, 1, 2)
    models = open_repository(repository)
    assert models.get(MODEL_NAME, 1).version == 1
    assert models.get(MODEL_NAME, 2).version == 2
    assert models.get(MODEL_NAME).version == 2
    with pytest.raises(ModelNotFound, match=r"version 3 of model 'multilabel' is not loaded"):
        models.get(MODEL_NAME, 3)


def test_older_versions_beyond_the_limit_are_not_loaded(repository: Path) -> None:
    copy_version(repository, 1, 2)
    models = open_repository(repository, max_versions=1)
    assert list(models.snapshot.models) == [2]
    with pytest.raises(ModelNotFound, match="loaded: 2"):
        models.get(MODEL_NAME, 1)


@pytest.mark.parametrize("name", ["other", "../multilabel", "multilabel/../../etc", "x" * 10_000])
def test_another_model_name_is_not_found_and_not_echoed_at_length(
    repository: Path, name: str
) -> None:
    models = open_repository(repository)
    with pytest.raises(ModelNotFound, match="is not served here") as raised:
        models.get(name)
    assert len(str(raised.value)) < 120


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda corruption: corruption.name)
def test_a_corrupt_version_is_rejected_and_the_previous_keeps_serving(
    repository: Path, corruption: Corruption, caplog: pytest.LogCaptureFixture
) -> None:
    events: Events = []
    models = open_repository(repository, events)
    broken_version(repository, 1, 2, corruption.apply)
    with caplog.at_level(logging.ERROR, logger="app.repository"):
        assert models.refresh() is False
    assert served_version(models) == 1
    assert events == [("loaded", 1), ("rejected", 2)]
    [record] = caplog.records
    assert "rejected multilabel version 2" in record.getMessage()
    assert corruption.reason in record.getMessage()
    with pytest.raises(ModelNotFound):
        models.get(MODEL_NAME, 2)


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda corruption: corruption.name)
def test_with_only_corrupt_versions_the_service_is_not_ready_and_says_why(
    repository: Path, corruption: Corruption
) -> None:
    broken_version(repository, 1, 2, corruption.apply)
    shutil.rmtree(version_path(repository, MODEL_NAME, 1))
    models = open_repository(repository)
    assert not models.ready
    assert models.snapshot.reason.startswith("version 2 was rejected: ")
    assert corruption.reason in models.snapshot.reason
    assert str(repository) not in models.snapshot.reason
    with pytest.raises(ModelNotReady, match="is not ready"):
        models.get(MODEL_NAME)


def test_an_empty_repository_is_not_ready(tmp_path: Path) -> None:
    models = open_repository(tmp_path)
    assert not models.ready
    assert models.snapshot.reason == "no version of model 'multilabel' in the repository"
    assert models.snapshot.default is None


def test_a_rejected_version_is_retried_only_once_its_files_change(repository: Path) -> None:
    """A version copied in file by file is refused while incomplete, then served when whole."""
    events: Events = []
    models = open_repository(repository, events)
    source = version_path(repository, MODEL_NAME, 1)
    target = version_path(repository, MODEL_NAME, 2)
    target.mkdir()
    write_metadata(target, {**read_metadata(source), "version": 2})
    (target / ONNX_FILE).write_bytes((source / ONNX_FILE).read_bytes()[:100])
    models.refresh()
    models.refresh()  # unchanged files: not loaded (nor logged) again
    assert events == [("loaded", 1), ("rejected", 2)]
    for file in source.iterdir():
        if not (target / file.name).exists() or file.name == ONNX_FILE:
            shutil.copy(file, target / file.name)
    assert models.refresh() is True
    assert served_version(models) == 2
    assert events[-1] == ("loaded", 2)


def test_removing_the_served_version_falls_back_without_disturbing_its_requests(
    repository: Path,
) -> None:
    events: Events = []
    copy_version(repository, 1, 2)
    models = open_repository(repository, events)
    in_flight = models.get(MODEL_NAME)  # a request that started on version 2
    expected = in_flight.predict(REFERENCE).probabilities
    shutil.rmtree(version_path(repository, MODEL_NAME, 2))
    assert models.refresh() is True
    assert served_version(models) == 1
    assert events[-1] == ("unloaded", 2)
    assert in_flight.version == 2
    assert np.array_equal(in_flight.predict(REFERENCE).probabilities, expected)


def test_removing_every_version_keeps_serving_from_memory_and_warns_once(
    repository: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models = open_repository(repository)
    shutil.rmtree(repository / MODEL_NAME)
    with caplog.at_level(logging.WARNING, logger="app.repository"):
        for _ in range(3):
            assert models.refresh() is False
    assert served_version(models) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "no loadable version of multilabel on disk; still serving version 1 from memory"
    ]


def test_a_swap_leaves_requests_in_flight_on_their_version(repository: Path) -> None:
    models = open_repository(repository)
    in_flight = models.get(MODEL_NAME)
    snapshot = models.snapshot
    copy_version(repository, 1, 2)
    models.refresh()
    assert served_version(models) == 2
    assert in_flight.version == 1
    assert list(snapshot.models) == [1]  # a published snapshot never changes
    assert in_flight.predict(REFERENCE).probabilities.shape == (2, 3)


def test_a_failing_event_listener_does_not_stop_a_version_loading(repository: Path) -> None:
    def failing_listener(event: LoadEvent, version: int) -> None:
        raise RuntimeError("metrics backend down")

    models = ModelRepository(repository, MODEL_NAME, load_model, on_event=failing_listener)
    models.refresh()
    copy_version(repository, 1, 2)
    assert models.refresh() is True
    assert served_version(models) == 2


def test_the_watcher_picks_up_a_new_version_without_restart(repository: Path) -> None:
    models = open_repository(repository)

    async def scenario() -> int:
        watcher = asyncio.create_task(watch(models, interval=0.05))
        try:
            copy_version(repository, 1, 2)
            deadline = time.monotonic() + 20
            while served_version(models) != 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return served_version(models)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    assert asyncio.run(scenario()) == 2
