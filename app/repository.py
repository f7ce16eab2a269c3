"""The model repository: which versions of the served model are loaded, and swapping them.

Readers take one immutable ``Snapshot`` per request, so a request finishes on the version it
started with while ``refresh`` (run at start-up and by the watcher, off the request path)
loads new versions, verifies them, and replaces the snapshot in a single assignment.

A version that fails to load is rejected (a log line and a ``rejected`` event) and the versions
already served stay served. It is tried again only once its files change, so a version that
was still being copied in is picked up when the copy completes.

Three checks come on top of the artifact's own (file hashes, parity), all refusing the same way:

- a version whose ``metadata.json`` names another model is refused: it would answer under that
  name, which no route serves;
- with trusted keys, a version is loaded only if its signature verifies (``app.signing``): the
  hashes catch corruption, the signature catches whoever rewrote a file and its hash;
- a version whose features or labels (names, order, count) differ from the served version's is
  refused as ``incompatible``, unless schema changes are allowed: clients built against the
  served schema would start failing or misreading answers. With nothing served yet (start-up)
  the newest valid version sets the schema.
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
from typing import TYPE_CHECKING, Literal

from app.artifact import METADATA_FILE, ArtifactError, list_versions, version_path
from app.config import Settings
from app.errors import ModelNotFound, ModelNotReady, shown_name
from app.inference import Model

if TYPE_CHECKING:  # app.signing imports model-signing (~1 s): only when signatures are checked
    from app.signing import Trust

logger = logging.getLogger(__name__)

# ``rejected``: failed a check (files, signature, parity); ``incompatible``: valid, but its
# schema differs from the served one while schema changes are not allowed.
LoadEvent = Literal["loaded", "rejected", "incompatible", "unloaded"]
Loader = Callable[[Path], Model]
EventListener = Callable[[LoadEvent, int], None]
# What the files of a version directory looked like: (relative path, size, mtime) of each.
Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Schema:
    """What clients depend on: the features a version takes and the labels it answers, in order."""

    features: tuple[str, ...]
    labels: tuple[str, ...]

    @classmethod
    def of(cls, model: Model) -> Schema:
        return cls(tuple(model.metadata.features), tuple(model.metadata.labels))

    def change_from(self, served: Schema) -> str | None:
        """How this schema differs from the served one, in words; None when it does not."""
        changes = [
            change
            for change in (
                _describe_change("features", served.features, self.features),
                _describe_change("labels", served.labels, self.labels),
            )
            if change is not None
        ]
        return "; ".join(changes) or None


def _describe_change(kind: str, served: tuple[str, ...], new: tuple[str, ...]) -> str | None:
    if new == served:
        return None
    if len(new) != len(served):
        return f"{len(new)} {kind} instead of {len(served)} ({_names(new)})"
    if sorted(new) == sorted(served):
        return f"{kind} in another order ({_names(new)} instead of {_names(served)})"
    return f"other {kind[:-1]} names ({_names(new)} instead of {_names(served)})"


def _names(names: tuple[str, ...], most: int = 5) -> str:
    shown_names = ", ".join(shown_name(name) for name in names[:most])
    return shown_names + (f", … {len(names) - most} more" if len(names) > most else "")


@dataclass(frozen=True)
class Snapshot:
    """The loaded versions at one moment; never mutated after publication."""

    models: MappingProxyType[int, Model] = field(default_factory=lambda: MappingProxyType({}))
    reason: str = "no model loaded yet"

    @property
    def default(self) -> Model | None:
        return self.models[max(self.models)] if self.models else None

    @property
    def schemas_differ(self) -> bool:
        """Whether the loaded versions take or answer different features or labels (only
        possible when schema changes are allowed)."""
        return len({Schema.of(model) for model in self.models.values()}) > 1


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
        trusted_keys: Trust | None = None,
        allow_schema_change: bool = False,
    ):
        """``trusted_keys``: when given, only versions signed by one of them (or by a
        certificate that chains to one of its roots) are loaded."""
        self.root = root
        self.name = name
        self._loader = loader
        self._max_versions = max_versions
        self._on_event = on_event
        self._trusted_keys = trusted_keys
        self._allow_schema_change = allow_schema_change
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
        """The repository the settings describe (directory, name, versions kept, checks).

        Raises ``app.signing.KeyFileError`` when ``trusted_keys`` is set but unusable: a
        service told to check signatures must not start without checking them.
        """
        trusted_keys = None
        if settings.trusted_keys is not None:
            from app.signing import KeyFileError, load_trusted_keys

            try:
                trusted_keys = load_trusted_keys(settings.trusted_keys)
            except KeyFileError as error:
                # One readable line before the framework's traceback ends start-up.
                logger.critical("cannot start: MULTILABEL_TRUSTED_KEYS: %s", error)
                raise KeyFileError(f"MULTILABEL_TRUSTED_KEYS: {error}") from error
            logger.info(
                "serving only versions of %s signed by a trusted key: %s",
                settings.model_name,
                trusted_keys.describe(),
            )
        return cls(
            settings.model_dir,
            settings.model_name,
            loader,
            max_versions=settings.max_versions,
            on_event=on_event or (lambda event, version: None),
            trusted_keys=trusted_keys,
            allow_schema_change=settings.allow_schema_change,
        )

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def allow_schema_change(self) -> bool:
        """Whether a version may be served whose features or labels differ from the served."""
        return self._allow_schema_change

    @property
    def verifies_signatures(self) -> bool:
        return self._trusted_keys is not None

    @property
    def ready(self) -> bool:
        return bool(self._snapshot.models)

    def get(self, name: str, version: int | None = None) -> Model:
        """The model to serve a request, or the 404/503 that explains why there is none."""
        if name != self.name:
            raise ModelNotFound(f"model {shown_name(name)} is not served here")
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
            # The schema new versions must keep: the served one's, else the newest loaded now.
            reference = self._snapshot.default
            kept: dict[int, Model] = {}
            for version in reversed(on_disk):  # newest first
                if len(kept) == self._max_versions:
                    break
                model = current.get(version) or self._load_unless_refused(version, reference)
                if model is not None:
                    kept[version] = model
                    if reference is None:
                        reference = model
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

    def _load_unless_refused(self, version: int, reference: Model | None) -> Model | None:
        """Load a version unless its files are as they were when it was last refused."""
        path = version_path(self.root, self.name, version)
        fingerprint = _fingerprint(path)  # taken first: a change while loading means a retry
        if self._rejected.get(version) == fingerprint:
            return None
        try:
            model = self._load_checked(path)
        except ArtifactError as error:
            reason = str(error)
        except OSError as error:
            reason = f"a file cannot be read ({error.strerror or type(error).__name__})"
        except Exception as error:  # a loader bug must not stop the served versions serving
            logger.exception("loading %s version %d failed unexpectedly", self.name, version)
            reason = f"loading failed unexpectedly ({type(error).__name__})"
        else:
            incompatibility = self._incompatibility(model, reference)
            if incompatibility is None:
                self._rejected.pop(version, None)
                logger.info("loaded %s version %d from %s", self.name, version, path)
                self._emit("loaded", version)
                return model
            self._rejected[version] = fingerprint
            logger.error("refused %s version %d: %s", self.name, version, incompatibility)
            self._emit("incompatible", version)
            return None
        self._rejected[version] = fingerprint
        self._last_rejection = f"version {version} was rejected: {reason}"
        logger.error("rejected %s version %d: %s", self.name, version, reason)
        self._emit("rejected", version)
        return None

    def _load_checked(self, path: Path) -> Model:
        """The loader's model, from a verified private copy when signatures are required,
        provided its metadata names this repository's model."""
        if self._trusted_keys is None:
            model = self._loader(path)
        else:
            from app.signing import verified_copy

            with verified_copy(path, self._trusted_keys) as (copy, signed):
                model = self._loader(copy)
            logger.info("%s version %s is signed by %s", self.name, path.name, signed.signer)
        if model.metadata.name != self.name:
            raise ArtifactError(
                f"{METADATA_FILE} names model {shown_name(model.metadata.name)}, not "
                f"{self.name!r}: a version of another model"
            )
        return model

    def _incompatibility(self, model: Model, reference: Model | None) -> str | None:
        """Why ``model`` may not be served beside ``reference``, or None when it may."""
        if reference is None:
            return None
        change = Schema.of(model).change_from(Schema.of(reference))
        if change is None:
            return None
        if self._allow_schema_change:
            logger.warning(
                "%s version %d changes the schema of served version %d: %s "
                "(allowed by MULTILABEL_ALLOW_SCHEMA_CHANGE)",
                self.name,
                model.version,
                reference.version,
                change,
            )
            return None
        return (
            f"incompatible with served version {reference.version}: {change} "
            "(MULTILABEL_ALLOW_SCHEMA_CHANGE=true allows it)"
        )

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
