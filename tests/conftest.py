"""Shared fixtures: one small, really trained model per test session, and apps serving it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.artifact import version_path
from app.config import Settings
from app.main import create_app
from tests.support import FIGURE_PROPERTY, MODEL_NAME, SIGMOID_TRAINING_ARGS, trained_once

# gRPC is on by default at 8001; the apps and servers of the tests leave it off unless a test
# asks for it on a free port (several test sessions may share a machine, and its port 8001).
os.environ.setdefault("MULTILABEL_GRPC_PORT", "0")


@pytest.fixture(scope="session")
def trained_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository holding version 1 of a small model trained by the real CLI, once
    for the whole run (``trained_once``).

    Read-only for tests: copy it (``repository`` fixture) before changing anything.
    """
    return trained_once(tmp_path_factory, "trained")


@pytest.fixture(scope="session")
def trained_version(trained_repository: Path) -> Path:
    return version_path(trained_repository, MODEL_NAME, 1)


@pytest.fixture(scope="session")
def sigmoid_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding version 1 of a model with one sigmoid output per label and no
    label-set head (``--head sigmoid``), trained by the real CLI once per run, in seconds (few
    epochs, no cross-validation). Read-only for tests."""
    return trained_once(tmp_path_factory, "sigmoid-head", *SIGMOID_TRAINING_ARGS)


@pytest.fixture(scope="session")
def sigmoid_version(sigmoid_repository: Path) -> Path:
    return version_path(sigmoid_repository, MODEL_NAME, 1)


@pytest.fixture
def repository(trained_repository: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the trained repository."""
    root = tmp_path / "models"
    shutil.copytree(trained_repository, root)
    return root


@pytest.fixture
def settings(trained_repository: Path) -> Settings:
    return Settings(model_dir=trained_repository, model_name=MODEL_NAME, poll_interval=0)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The real application, started (lifespan run) on the trained model."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures tests reported (``report_figure``), gathered from every worker's reports."""
    figures = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == FIGURE_PROPERTY
    ]
    if figures:
        terminalreporter.section("reliability figures")
        for line in figures:
            terminalreporter.write_line(str(line))
