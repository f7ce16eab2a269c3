"""Starting the real app on a private copy of the trained repository, after a test has
published the versions it needs there; waiting for the watcher to load a new one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.support import MODEL_NAME

RELOAD_DEADLINE_SECONDS = 30.0


@contextmanager
def serving(repository: Path, **settings: Any) -> Iterator[TestClient]:
    """The app on ``repository``, started (lifespan run); no watcher unless asked for."""
    options: dict[str, Any] = {"poll_interval": 0, **settings}
    app = create_app(Settings(model_dir=repository, model_name=MODEL_NAME, **options))
    with TestClient(app) as client:
        yield client


def wait_until_served(client: TestClient, version: int) -> None:
    """Until the watcher has loaded ``version`` and serves it (bounded)."""
    deadline = time.monotonic() + RELOAD_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if client.get("/health").json().get("model", {}).get("version") == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"version {version} was not served within {RELOAD_DEADLINE_SECONDS} s")
