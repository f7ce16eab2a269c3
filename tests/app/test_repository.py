"""The model repository: newest valid version served, versions on request, safe hot reload."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.artifact import ONNX_FILE, version_path
from app.config import Settings
from app.errors import ModelNotFound, ModelNotReady
from app.inference import Model, load_model
from app.repository import LoadEvent, ModelRepository, watch
from app.signing import KeyFileError, SigningKey, Trust, load_trusted_keys, sign_version
from tests.robustness.signed_versions import (
    POISONED_LABEL,
    corrupt_signature,
    new_key_pair,
    poison_network,
    raise_a_threshold,
    rename_features,
    rename_model,
    republish,
    reverse_labels,
    sign_in_old_format,
    sign_with_stock_cli,
    stranger_key,
    wider_model,
)
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
    root: Path, events: Events | None = None, *, max_versions: int = 2, **checks: Any
) -> ModelRepository:
    """A repository with the real loader, recording its events; refreshed once.

    ``checks``: ``trusted_keys``, ``allow_schema_change``."""
    recorded: Events = [] if events is None else events
    repository = ModelRepository(
        root,
        MODEL_NAME,
        loader=load_model,
        max_versions=max_versions,
        on_event=lambda event, version: recorded.append((event, version)),
        **checks,
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


# Signed versions: with trusted keys, only what a trusted key signed is loaded.


@pytest.fixture
def key_pair(tmp_path: Path) -> tuple[SigningKey, Path]:
    """A fresh key pair from the operators' generator: the signing key, the public key file."""
    return new_key_pair(tmp_path / "keys")


@pytest.fixture
def signing_key(key_pair: tuple[SigningKey, Path]) -> tuple[SigningKey, Trust]:
    """The signing key, and its public key as the only trusted one."""
    private_key, public_path = key_pair
    return private_key, load_trusted_keys(public_path)


def publish_signed_copy(root: Path, key: SigningKey) -> Path:
    """A new version of the trained network, published and signed as training does."""
    return republish(root, version_path(root, MODEL_NAME, 1), key=key)


def signed_then_poisoned(root: Path, key: SigningKey) -> None:
    poison_network(publish_signed_copy(root, key))


def unsigned(root: Path, key: SigningKey) -> None:
    republish(root, version_path(root, MODEL_NAME, 1))


def signed_in_the_old_format(root: Path, key: SigningKey) -> None:
    sign_in_old_format(republish(root, version_path(root, MODEL_NAME, 1)))


def signed_by_an_untrusted_key(root: Path, key: SigningKey) -> None:
    publish_signed_copy(root, stranger_key(root.parent))


def signature_corrupted(root: Path, key: SigningKey) -> None:
    corrupt_signature(publish_signed_copy(root, key))


def threshold_raised_after_signing(root: Path, key: SigningKey) -> None:
    raise_a_threshold(publish_signed_copy(root, key))


def signed_version_of_another_model(root: Path, key: SigningKey) -> None:
    republish(root, version_path(root, MODEL_NAME, 1), key=key, change=rename_model)


SIGNATURE_REFUSALS = [
    pytest.param(publish_bad, reason, id=publish_bad.__name__)
    for publish_bad, reason in [
        (
            signed_then_poisoned,
            "the files differ from what was signed (metadata.json changed; model.onnx changed)",
        ),
        (unsigned, "the version is not signed: model.sig is missing"),
        (signed_in_the_old_format, "python -m app.signing sign VERSION_DIR --key"),
        (signed_by_an_untrusted_key, "which is not a trusted key"),
        (signature_corrupted, "model.sig does not verify (key "),
        (
            threshold_raised_after_signing,
            "the files differ from what was signed (metadata.json changed)",
        ),
        (
            signed_version_of_another_model,
            "metadata.json names model 'othermodel', not 'multilabel': a version of another model",
        ),
    ]
]


def test_a_poisoned_network_with_its_hash_rewritten_passes_every_check_but_the_signature(
    repository: Path,
) -> None:
    """Hashes in unsigned metadata detect corruption, not tampering: without keys the poisoned
    network is served (label 2 turned on for everyone); that is what the signature is for."""
    clean = open_repository(repository).get(MODEL_NAME).predict(REFERENCE)
    poison_network(copy_version(repository, 1, 2))
    poisoned = open_repository(repository).get(MODEL_NAME)
    assert poisoned.version == 2
    assert not clean.positives[:, POISONED_LABEL].all()
    assert poisoned.predict(REFERENCE).positives[:, POISONED_LABEL].all()


@pytest.mark.parametrize(("publish_bad", "reason"), SIGNATURE_REFUSALS)
def test_with_trusted_keys_a_version_not_as_signed_is_rejected_and_the_signed_one_serves(
    repository: Path,
    signing_key: tuple[SigningKey, Trust],
    publish_bad: Callable[[Path, SigningKey], None],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    private_key, trusted = signing_key
    sign_version(version_path(repository, MODEL_NAME, 1), private_key)
    events: Events = []
    models = open_repository(repository, events, trusted_keys=trusted)
    expected = models.get(MODEL_NAME).predict(REFERENCE).probabilities
    publish_bad(repository, private_key)
    with caplog.at_level(logging.ERROR, logger="app.repository"):
        assert models.refresh() is False
    assert events == [("loaded", 1), ("rejected", 2)]
    [record] = caplog.records
    assert record.getMessage().startswith("rejected multilabel version 2: ")
    assert reason in record.getMessage()
    assert np.array_equal(models.get(MODEL_NAME).predict(REFERENCE).probabilities, expected)


def test_files_swapped_after_the_signature_check_are_not_the_ones_loaded(
    repository: Path, signing_key: tuple[SigningKey, Trust]
) -> None:
    """The loader reads a private copy of what was verified: an attacker who rewrites the
    version directory the moment loading starts changes nothing that is served."""
    private_key, trusted = signing_key
    sign_version(version_path(repository, MODEL_NAME, 1), private_key)
    loaded_from: list[Path] = []

    def loader_raced_by_an_attacker(path: Path) -> Model:
        if path.name == "2" and all(earlier.name != "2" for earlier in loaded_from):
            poison_network(version_path(repository, MODEL_NAME, 2))
        loaded_from.append(path)
        return load_model(path)

    models = ModelRepository(
        repository, MODEL_NAME, loader=loader_raced_by_an_attacker, trusted_keys=trusted
    )
    models.refresh()
    publish_signed_copy(repository, private_key)
    assert models.refresh() is True
    served = models.get(MODEL_NAME)
    assert served.version == 2
    assert not served.predict(REFERENCE).positives[:, POISONED_LABEL].all()
    assert version_path(repository, MODEL_NAME, 2) not in loaded_from
    assert not any(path.exists() for path in loaded_from)  # the private copies are removed


@pytest.mark.parametrize("signer", ["ours", "stock-cli"])
def test_with_trusted_keys_an_unsigned_version_is_served_once_it_is_signed(
    repository: Path, signing_key: tuple[SigningKey, Trust], tmp_path: Path, signer: str
) -> None:
    """Signed in place, by our command or by the stock ``model_signing`` CLI."""
    private_key, trusted = signing_key
    events: Events = []
    models = open_repository(repository, events, trusted_keys=trusted)
    assert not models.ready
    assert models.snapshot.reason == (
        "version 1 was rejected: the version is not signed: model.sig is missing"
    )
    models.refresh()  # files unchanged: not tried again
    assert events == [("rejected", 1)]
    version = version_path(repository, MODEL_NAME, 1)
    if signer == "ours":
        sign_version(version, private_key)
    else:
        sign_with_stock_cli(version, tmp_path / "keys" / "signing-key.pem")
    assert models.refresh() is True
    assert served_version(models) == 1
    assert events == [("rejected", 1), ("loaded", 1)]


def test_trusted_keys_from_settings_are_required_of_every_version(
    repository: Path, key_pair: tuple[SigningKey, Path]
) -> None:
    private_key, public_path = key_pair
    settings = Settings(model_dir=repository, model_name=MODEL_NAME, trusted_keys=public_path)
    models = ModelRepository.from_settings(settings, loader=load_model)
    assert models.verifies_signatures
    publish_signed_copy(repository, private_key)
    models.refresh()
    assert list(models.snapshot.models) == [2]  # version 1 is not signed


def test_an_unusable_trusted_keys_setting_stops_the_repository_being_built(
    repository: Path, tmp_path: Path
) -> None:
    (tmp_path / "trusted.pem").write_text("not a key\n")
    settings = Settings(
        model_dir=repository, model_name=MODEL_NAME, trusted_keys=tmp_path / "trusted.pem"
    )
    expected = (
        r"^MULTILABEL_TRUSTED_KEYS: trusted keys file \S+ holds no PEM public key or certificate$"
    )
    with pytest.raises(KeyFileError, match=expected):
        ModelRepository.from_settings(settings, loader=load_model)


# Schema-safe reload: a version that changes features or labels is refused unless allowed.


@pytest.fixture(scope="module")
def wider_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wider_model(tmp_path_factory)


SchemaChange = Callable[[Path, Path], Path]


def features_renamed(root: Path, wider: Path) -> Path:
    return republish(root, version_path(root, MODEL_NAME, 1), change=rename_features)


def labels_reordered(root: Path, wider: Path) -> Path:
    return republish(root, version_path(root, MODEL_NAME, 1), change=reverse_labels)


def fewer_features_more_labels(root: Path, wider: Path) -> Path:
    return republish(root, wider)


SCHEMA_CHANGES = [
    pytest.param(
        features_renamed,
        "other feature names ('f0', 'f1', 'f2', 'f3', 'f4', … 5 more instead of "
        "'x0', 'x1', 'x2', 'x3', 'x4', … 5 more)",
        id="features-renamed",
    ),
    pytest.param(
        labels_reordered,
        "labels in another order ('label_2', 'label_1', 'label_0' instead of "
        "'label_0', 'label_1', 'label_2')",
        id="labels-reordered",
    ),
    pytest.param(
        fewer_features_more_labels,
        "8 features instead of 10 ('x0', 'x1', 'x2', 'x3', 'x4', … 3 more); "
        "4 labels instead of 3 ('label_0', 'label_1', 'label_2', 'label_3')",
        id="counts-changed",
    ),
]


@pytest.mark.parametrize(("publish_changed", "change"), SCHEMA_CHANGES)
def test_a_version_of_another_schema_is_refused_and_the_served_one_stays(
    repository: Path,
    wider_version: Path,
    publish_changed: SchemaChange,
    change: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: Events = []
    models = open_repository(repository, events)
    publish_changed(repository, wider_version)
    with caplog.at_level(logging.ERROR, logger="app.repository"):
        assert models.refresh() is False
        assert models.refresh() is False  # unchanged files: refused once, not on every scan
    assert served_version(models) == 1
    assert events == [("loaded", 1), ("incompatible", 2)]
    [record] = caplog.records
    assert record.getMessage().startswith(
        "refused multilabel version 2: incompatible with served version 1: "
    )
    assert change in record.getMessage()
    assert record.getMessage().endswith("(MULTILABEL_ALLOW_SCHEMA_CHANGE=true allows it)")
    assert not models.snapshot.schemas_differ


@pytest.mark.parametrize(("publish_changed", "change"), SCHEMA_CHANGES)
def test_allowing_schema_changes_serves_the_new_schema_and_says_the_versions_differ(
    repository: Path,
    wider_version: Path,
    publish_changed: SchemaChange,
    change: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: Events = []
    models = open_repository(repository, events, allow_schema_change=True)
    assert models.allow_schema_change
    assert not models.snapshot.schemas_differ
    new_version = publish_changed(repository, wider_version)
    with caplog.at_level(logging.WARNING, logger="app.repository"):
        assert models.refresh() is True
    assert served_version(models) == 2
    assert sorted(models.snapshot.models) == [1, 2]
    assert models.snapshot.schemas_differ
    assert events == [("loaded", 1), ("loaded", 2)]
    assert models.get(MODEL_NAME).metadata.labels == read_metadata(new_version)["labels"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("multilabel version 2 changes the schema of served version 1: ")
    assert change in warning


def test_at_start_the_newest_version_sets_the_schema_and_older_ones_must_match(
    repository: Path,
) -> None:
    """With two versions kept, an older version of another schema is not served beside it."""
    copy_version(repository, 1, 2)
    republish(repository, version_path(repository, MODEL_NAME, 1), change=reverse_labels)
    events: Events = []
    models = open_repository(repository, events, max_versions=3)
    assert list(models.snapshot.models) == [3]
    assert events == [("loaded", 3), ("incompatible", 2), ("incompatible", 1)]
    assert not models.snapshot.schemas_differ


def test_a_compatible_version_with_other_thresholds_is_served(repository: Path) -> None:
    models = open_repository(repository)
    raise_a_threshold(copy_version(repository, 1, 2))
    assert models.refresh() is True
    assert models.get(MODEL_NAME).metadata.thresholds[0] == 0.9
