"""What the tests of the two standard protocols (V2, TF Serving) share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.robustness.versions import copy_version
from tests.support import MODEL_NAME


def assert_error_object(response: Any, status: int, fragment: str) -> None:
    """The protocols' error: the status, and a body that is ``{"error": "<message>"}`` only."""
    assert response.status_code == status, response.text
    error = response.json()
    assert list(error) == ["error"]
    assert isinstance(error["error"], str)
    assert fragment in error["error"]


@contextmanager
def serving(model_dir: Path, **changes: Any) -> Iterator[TestClient]:
    """The real app, started on the repository at ``model_dir`` with these settings changed."""
    settings = Settings(model_dir=model_dir, model_name=MODEL_NAME, poll_interval=0, **changes)
    with TestClient(create_app(settings)) as client:
        yield client


@contextmanager
def serving_two_versions(repository: Path) -> Iterator[TestClient]:
    """The app on a writable repository holding versions 1 and 2 of the trained model."""
    copy_version(repository, 1, 2)
    with serving(repository) as client:
        yield client
