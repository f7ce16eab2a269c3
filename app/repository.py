"""The model repository: which versions of the served model are loaded, and swapping them.

Readers take one immutable ``Snapshot`` per request, so a request finishes on the version it
started with while ``refresh`` (run at start-up and by the watcher, off the request path)
loads new versions, verifies them, and replaces the snapshot in a single assignment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from app.artifact import METADATA_FILE, ArtifactError, list_versions, version_path
from app.errors import ModelNotFound, ModelNotReady
from app.inference import Model

logger = logging.getLogger(__name__)

LoadEvent = Literal["loaded", "rejected", "unloaded"]
Loader = Callable[[Path], Model]
EventListener = Callable[[LoadEvent, int], None]


@dataclass(frozen=True)
class Snapshot:
    """The loaded versions at one moment; never mutated after publication."""

    models: MappingProxyType[int, Model] = field(default_factory=lambda: MappingProxyType({}))
    reason: str = "no model loaded yet"

    @property
    def default(self) -> Model | None:
        return self.models[max(self.models)] if self.models else None


class ModelRepository:
    """Versions of one model under ``<root>/<name>/``: the newest valid ones are served."""

    def __init__(
        self,
        root: Path,
        name: str,
        loader: Loader,
        *,
        max_versions: int = 2,
        on_event: EventListener = lambda event, version: None,
    ):
        self.root = root
        self.name = name
        self._loader = loader
        self._max_versions = max_versions
        self._on_event = on_event
        self._snapshot = Snapshot()
        # Versions that failed to load, by their metadata's modification time: retried only
        # when they change (a training run cannot rewrite a published version, a person can).
        self._rejected: dict[int, float] = {}
        self._last_rejection = "no version could be loaded"
        self._refresh_lock = threading.Lock()

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def ready(self) -> bool:
        return bool(self._snapshot.models)

    def get(self, name: str, version: int | None = None) -> Model:
        """The model to serve a request, or the 404/503 that explains why there is none."""
        if name != self.name:
            raise ModelNotFound(f"model {name!r} is not served here")
        snapshot = self._snapshot
        if not snapshot.models:
            raise ModelNotReady(f"model {name!r} is not ready: {snapshot.reason}")
        if version is None:
            return snapshot.models[max(snapshot.models)]
        model = snapshot.models.get(version)
        if model is None:
            raise ModelNotFound(f"version {version} of model {name!r} is not loaded")
        return model

    def refresh(self) -> bool:
        """Load new versions, drop removed ones; return whether the served set changed."""
        with self._refresh_lock:
            on_disk = list_versions(self.root, self.name)
            current = self._snapshot.models
            kept: dict[int, Model] = {}
            for version in reversed(on_disk):  # newest first
                if len(kept) == self._max_versions:
                    break
                model = current.get(version) or self._load_unless_rejected(version)
                if model is not None:
                    kept[version] = model
            if not kept and current:
                # Every served version vanished from disk: keep answering from memory.
                logger.warning("no loadable version of %s on disk; still serving", self.name)
                return False
            if kept.keys() == current.keys():
                if not kept:
                    self._snapshot = Snapshot(reason=self._reason_for_none(on_disk))
                return False
            for version in current.keys() - kept.keys():
                logger.info("unloaded %s version %d", self.name, version)
                self._on_event("unloaded", version)
            self._snapshot = Snapshot(models=MappingProxyType(dict(sorted(kept.items()))))
            logger.info("serving %s version %d", self.name, max(kept))
            return True

    def _load_unless_rejected(self, version: int) -> Model | None:
        stamp = self._stamp(version)
        if self._rejected.get(version) == stamp:
            return None
        path = version_path(self.root, self.name, version)
        try:
            model = self._loader(path)
        except ArtifactError as error:
            self._rejected[version] = stamp
            self._last_rejection = f"version {version} was rejected: {error}"
            logger.error("rejected %s version %d: %s", self.name, version, error)
            self._on_event("rejected", version)
            return None
        self._rejected.pop(version, None)
        logger.info("loaded %s version %d from %s", self.name, version, path)
        self._on_event("loaded", version)
        return model

    def _stamp(self, version: int) -> float:
        """When the version's metadata last changed; -1 when it cannot be read."""
        try:
            return (version_path(self.root, self.name, version) / METADATA_FILE).stat().st_mtime
        except OSError:
            return -1.0

    def _reason_for_none(self, on_disk: list[int]) -> str:
        if not on_disk:
            return f"no version of model {self.name!r} in the repository"
        return self._last_rejection


async def watch(repository: ModelRepository, interval: float) -> None:
    """Poll for new versions every ``interval`` seconds, loading them in a worker thread."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(repository.refresh)
        except Exception:  # a watcher that dies silently would freeze the served version
            logger.exception("refreshing the model repository failed; will retry")
