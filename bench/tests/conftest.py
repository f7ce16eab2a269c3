"""Fixtures of the harness's own tests: a small, really trained model (the project's test
recipe), our real app serving it, and the harness's request rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.artifact import version_path
from bench.prepare import ServedModel, fresh_rows, served_model
from bench.run import POOL_ROWS
from tests.support import MODEL_NAME, trained_once


@pytest.fixture(scope="session")
def trained_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return version_path(trained_once(tmp_path_factory, "trained"), MODEL_NAME, 1)


@pytest.fixture(scope="session")
def model(trained_version: Path) -> ServedModel:
    return served_model(trained_version)


@pytest.fixture(scope="session")
def pool() -> list[list[int]]:
    return fresh_rows(POOL_ROWS)


@pytest.fixture
def client(model: ServedModel) -> Iterator[TestClient]:
    """Our real application, started (lifespan run) on the trained model."""
    # Imported here: the tests that need no app keep running while it is being rewritten.
    from app.config import Settings
    from app.main import create_app

    settings = Settings(model_dir=model.repository, model_name=MODEL_NAME, poll_interval=0)
    with TestClient(create_app(settings)) as test_client:
        yield test_client
