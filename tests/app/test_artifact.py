"""The artifact contract: what a published version holds, atomic publishing, verification."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from app.artifact import (
    KERAS_FILE,
    METADATA_FILE,
    ONNX_FILE,
    STALE_STAGING_SECONDS,
    ArtifactError,
    Metadata,
    list_versions,
    publish,
    read_artifact,
    sha256_of,
    staging_directory,
    version_path,
)
from tests.support import MODEL_NAME


def tree(root: Path) -> list[tuple[str, str]]:
    """Every path under root with its content hash (directories marked), sorted."""
    return sorted(
        (str(p.relative_to(root)), "dir" if p.is_dir() else sha256_of(p)) for p in root.rglob("*")
    )


def test_published_version_holds_models_and_complete_metadata(trained_version: Path) -> None:
    metadata = read_artifact(trained_version)
    assert {KERAS_FILE, ONNX_FILE, METADATA_FILE} <= {p.name for p in trained_version.iterdir()}
    assert (metadata.name, metadata.version) == (MODEL_NAME, 1)
    assert metadata.created_at.tzinfo is not None
    assert metadata.features == [f"x{i}" for i in range(10)]
    assert metadata.labels == ["label_0", "label_1", "label_2"]
    assert len(metadata.thresholds) == 3
    assert len(metadata.feature_ranges) == 10
    assert metadata.evaluation is not None
    assert len(metadata.evaluation.splits) == 2
    assert all("subset_accuracy" in split for split in metadata.evaluation.splits)
    assert "subset_accuracy" in metadata.evaluation.summary
    assert metadata.training["seed"] == 1
    assert metadata.training["epochs"] > 0
    assert {"keras", "numpy", "python"} <= metadata.libraries.keys()
    for name, digest in metadata.files.items():
        assert sha256_of(trained_version / name) == digest
    assert len(metadata.parity.inputs) == len(metadata.parity.outputs) >= 3
    assert metadata.data.n_samples == 1000
    assert metadata.data.parameters["random_state"] == 1


def stage_copy(source: Path, staging: Path) -> Metadata:
    for name in (KERAS_FILE, ONNX_FILE):
        shutil.copy(source / name, staging / name)
    return read_artifact(source)


def test_publishing_takes_the_next_version_and_hides_staging(
    trained_version: Path, tmp_path: Path
) -> None:
    for expected in (1, 2, 3):
        with staging_directory(tmp_path, MODEL_NAME) as staging:
            assert staging.name.startswith(".")
            assert list_versions(tmp_path, MODEL_NAME) == list(range(1, expected))
            published = publish(staging, stage_copy(trained_version, staging))
        assert published == version_path(tmp_path, MODEL_NAME, expected)
        assert read_artifact(published).version == expected
    assert list_versions(tmp_path, MODEL_NAME) == [1, 2, 3]
    assert not [p for p in (tmp_path / MODEL_NAME).iterdir() if p.name.startswith(".staging")]


@pytest.mark.parametrize("repository_exists", [True, False])
def test_a_failure_while_staging_leaves_the_repository_as_it_was(
    repository: Path, trained_version: Path, repository_exists: bool
) -> None:
    root = repository if repository_exists else repository / "fresh"
    before = tree(repository)

    def export_failing_half_way() -> None:
        with staging_directory(root, "other") as staging:
            stage_copy(trained_version, staging)
            raise RuntimeError("export failed half-way")

    with pytest.raises(RuntimeError):
        export_failing_half_way()
    assert tree(repository) == before


def test_a_version_must_match_its_directory(repository: Path) -> None:
    version = version_path(repository, MODEL_NAME, 1)
    moved = version.parent / "7"
    version.rename(moved)
    with pytest.raises(ArtifactError, match="says version 1, not 7"):
        read_artifact(moved)


@pytest.mark.parametrize("name", ["../outside.bin", "/etc/passwd"])
def test_metadata_may_not_point_outside_its_version(repository: Path, name: str) -> None:
    version = version_path(repository, MODEL_NAME, 1)
    document = json.loads((version / METADATA_FILE).read_text())
    document["files"][name] = "0" * 64
    (version / METADATA_FILE).write_text(json.dumps(document))
    with pytest.raises(ArtifactError, match="outside the version"):
        read_artifact(version)


@pytest.mark.parametrize("entry", [".staging-abc", "01", "v2", "0", "latest"])
def test_only_positive_integer_directories_are_versions(tmp_path: Path, entry: str) -> None:
    (tmp_path / MODEL_NAME / entry).mkdir(parents=True)
    (tmp_path / MODEL_NAME / "5").mkdir()
    assert list_versions(tmp_path, MODEL_NAME) == [5]


@pytest.mark.parametrize("name", ["..", "../x", ".hidden", "a/b", ""])
def test_unsafe_model_names_have_no_versions(tmp_path: Path, name: str) -> None:
    assert list_versions(tmp_path, name) == []


def test_staging_left_by_a_killed_run_is_cleared_once_stale(
    repository: Path, trained_version: Path
) -> None:
    model_dir = repository / MODEL_NAME
    stale, recent = model_dir / ".staging-killed", model_dir / ".staging-running"
    for directory in (stale, recent):
        directory.mkdir()
        (directory / ONNX_FILE).write_bytes(b"partial")
    day_and_more = time.time() - STALE_STAGING_SECONDS - 60
    os.utime(stale, (day_and_more, day_and_more))
    with staging_directory(repository, MODEL_NAME) as staging:
        publish(staging, stage_copy(trained_version, staging))
    assert not stale.exists()
    assert recent.exists()
    assert list_versions(repository, MODEL_NAME) == [1, 2]
