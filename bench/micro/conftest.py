"""Fixtures of the micro-benchmarks: the reference model (trained once, kept in bench/.work)
and request data drawn like its training data."""

from __future__ import annotations

import pytest

from app.inference import Model, load_model
from bench.prepare import WORK, ensure_model, fresh_rows
from bench.run import POOL_ROWS

BATCHES = [1, 10_000]


@pytest.fixture(scope="session")
def model() -> Model:
    return load_model(ensure_model(WORK / "models"))


@pytest.fixture(scope="session")
def pool() -> list[list[int]]:
    """The harness's fresh rows, repeated up to the largest batch."""
    rows = fresh_rows(POOL_ROWS)
    return (rows * (max(BATCHES) // len(rows) + 1))[: max(BATCHES)]
