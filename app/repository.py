"""The model repository: which versions of the served model are loaded, and swapping them.

Readers take one immutable ``Snapshot`` per request, so a request finishes on the version it
started with while ``refresh`` (run at start-up and by the watcher, off the request path)
loads new versions, verifies them, and replaces the snapshot in a single assignment.

A version that fails to load is rejected (a log line and a ``rejected`` event) and the versions
already served stay served. It is tried again only once its files change, so a version that
was still being copied in is picked up when the copy completes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from app.artifact import ArtifactError, list_versions, version_path
from app.config import Settings
from app.errors import ModelNotFound, ModelNotReady, shown
from app.inference import Model

logger = logging.getLogger(__name__)

LoadEvent = Literal["loaded", "rejected", "unloaded"]
Loader = Callable[[Path], Model]
EventListener = Callable[[LoadEvent, int], None]
# What the files of a version directory looked like: (relative path, size, mtime) of each.
Fingerprint = tuple[tuple[str, int, int], ...]


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
        # Versions that failed to load, with the state of their files when they did.
        self._rejected: dict[int, Fingerprint] = {}
        self._last_rejection = "no version could be loaded"
        self._serving_from_memory = False
        self._refresh_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, loader: Loader, on_event: EventListener | None = None
    ) -> ModelRepository:
        """The repository the settings describe (directory, name, versions kept, checks)."""
        return cls(
            settings.model_dir,
            settings.model_name,
            loader,
            max_versions=settings.max_versions,
            on_event=on_event or (lambda event, version: None),
        )

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def ready(self) -> bool:
        return bool(self._snapshot.models)

    def get(self, name: str, version: int | None = None) -> Model:
        """The model to serve a request, or the 404/503 that explains why there is none."""
        if name != self.name:
            raise ModelNotFound(f"model {shown(name)} is not served here")
        snapshot = self._snapshot
        if not snapshot.models:
            raise ModelNotReady(f"model {name!r} is not ready: {snapshot.reason}")
        if version is None:
            return snapshot.models[max(snapshot.models)]
        model = snapshot.models.get(version)
        if model is None:
            loaded = ", ".join(str(v) for v in snapshot.models)
            raise ModelNotFound(
                f"version {version} of model {name!r} is not loaded (loaded: {loaded})"
            )
        return model

    def refresh(self) -> bool:
        """Load new versions, drop removed ones; return whether the served set changed."""
        with self._refresh_lock:
            try:
                on_disk = list_versions(self.root, self.name)
            except OSError as error:  # e.g. the directory vanished between two system calls
                logger.error("cannot list the versions of %s: %s", self.name, error)
                return False
            self._rejected = {v: f for v, f in self._rejected.items() if v in on_disk}
            current = self._snapshot.models
            kept: dict[int, Model] = {}
            for version in reversed(on_disk):  # newest first
                if len(kept) == self._max_versions:
                    break
                model = current.get(version) or self._load_unless_rejected(version)
                if model is not None:
                    kept[version] = model
            if not kept and current:
                self._keep_serving_from_memory()
                return False
            self._serving_from_memory = False
            if kept.keys() == current.keys():
                if not kept:
                    self._snapshot = Snapshot(reason=self._reason_for_none(on_disk))
                return False
            self._snapshot = Snapshot(models=MappingProxyType(dict(sorted(kept.items()))))
            for version in current.keys() - kept.keys():
                logger.info("unloaded %s version %d", self.name, version)
                self._emit("unloaded", version)
            logger.info("serving %s version %d", self.name, max(kept))
            return True

    def _keep_serving_from_memory(self) -> None:
        """Every served version vanished from disk and none replaces it: keep answering."""
        if not self._serving_from_memory:
            self._serving_from_memory = True
            served = ", ".join(str(v) for v in self._snapshot.models)
            logger.warning(
                "no loadable version of %s on disk; still serving version %s from memory",
                self.name,
                served,
            )

    def _load_unless_rejected(self, version: int) -> Model | None:
        path = version_path(self.root, self.name, version)
        fingerprint = _fingerprint(path)  # taken first: a change while loading means a retry
        if self._rejected.get(version) == fingerprint:
            return None
        try:
            model = self._loader(path)
        except ArtifactError as error:
            reason = str(error)
        except OSError as error:
            reason = f"a file cannot be read ({error.strerror or type(error).__name__})"
        except Exception as error:  # a loader bug must not stop the served versions serving
            logger.exception("loading %s version %d failed unexpectedly", self.name, version)
            reason = f"loading failed unexpectedly ({type(error).__name__})"
        else:
            self._rejected.pop(version, None)
            logger.info("loaded %s version %d from %s", self.name, version, path)
            self._emit("loaded", version)
            return model
        self._rejected[version] = fingerprint
        self._last_rejection = f"version {version} was rejected: {reason}"
        logger.error("rejected %s version %d: %s", self.name, version, reason)
        self._emit("rejected", version)
        return None

    def _emit(self, event: LoadEvent, version: int) -> None:
        try:
            self._on_event(event, version)
        except Exception:  # a failing listener (metrics) must not break loading
            logger.exception("the listener of %r events failed for version %d", event, version)

    def _reason_for_none(self, on_disk: list[int]) -> str:
        if not on_disk:
            return f"no version of model {self.name!r} in the repository"
        return self._last_rejection


def _fingerprint(path: Path) -> Fingerprint:
    """Every file under a version directory with its size and modification time."""
    found = []
    for directory, _, files in os.walk(path):
        for name in files:
            file = Path(directory, name)
            try:
                stat = file.stat()
            except OSError:  # removed while we looked: the next scan sees the new state
                continue
            found.append((str(file.relative_to(path)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


async def watch(repository: ModelRepository, interval: float) -> None:
    """Poll for new versions every ``interval`` seconds, loading them in a worker thread."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(repository.refresh)
        except Exception:  # a watcher that dies silently would freeze the served version
            logger.exception("refreshing the model repository failed; will retry")
