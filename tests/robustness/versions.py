"""Making model versions for tests: valid copies of a trained version, and ways to break one.

A copy of a trained version under another number is a genuinely valid version (same network,
its metadata saying the new number). Each corruption turns a valid version into one that a
server must refuse, the way real accidents do: a file missing or cut short, a tampered file,
metadata that no longer describes the network.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.artifact import METADATA_FILE, ONNX_FILE, sha256_of, version_path
from tests.support import MODEL_NAME


def read_metadata(version: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((version / METADATA_FILE).read_text())
    return document


def write_metadata(version: Path, document: dict[str, Any]) -> None:
    (version / METADATA_FILE).write_text(json.dumps(document, indent=2))


def copy_version(root: Path, source: int, target: int, *, name: str = MODEL_NAME) -> Path:
    """Publish a valid copy of ``source`` as ``target``, atomically (built aside, renamed)."""
    staging = root / name / f".copy-{target}"
    shutil.copytree(version_path(root, name, source), staging)
    write_metadata(staging, {**read_metadata(staging), "version": target})
    return staging.rename(version_path(root, name, target))


def broken_version(root: Path, source: int, target: int, corrupt: Callable[[Path], None]) -> Path:
    """Publish a copy of ``source`` as ``target``, broken by ``corrupt``, atomically."""
    staging = root / MODEL_NAME / f".broken-{target}"
    shutil.copytree(version_path(root, MODEL_NAME, source), staging)
    write_metadata(staging, {**read_metadata(staging), "version": target})
    corrupt(staging)
    return staging.rename(version_path(root, MODEL_NAME, target))


def update_hash(version: Path, file_name: str) -> None:
    document = read_metadata(version)
    document["files"][file_name] = sha256_of(version / file_name)
    write_metadata(version, document)


def remove_model_file(version: Path) -> None:
    (version / ONNX_FILE).unlink()


def truncate_model_file(version: Path) -> None:
    path = version / ONNX_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def replace_model_file_and_its_hash(version: Path) -> None:
    """A tampered network whose hash was updated to match: only the runtime can tell."""
    (version / ONNX_FILE).write_bytes(b"\x08\x07 not an ONNX graph " * 64)
    update_hash(version, ONNX_FILE)


def remove_metadata(version: Path) -> None:
    (version / METADATA_FILE).unlink()


def truncate_metadata(version: Path) -> None:
    path = version / METADATA_FILE
    path.write_bytes(path.read_bytes()[:200])


def claim_another_version_number(version: Path) -> None:
    write_metadata(version, {**read_metadata(version), "version": 999})


def shift_parity_reference(version: Path) -> None:
    document = read_metadata(version)
    outputs = document["parity"]["outputs"]
    document["parity"]["outputs"] = [[value + 0.01 for value in row] for row in outputs]
    write_metadata(version, document)


def claim_an_extra_feature(version: Path) -> None:
    """Metadata (and its parity inputs) for 11 features, beside a network that takes 10."""
    document = read_metadata(version)
    document["features"].append("extra")
    document["feature_ranges"].append({"min": 0.0, "max": 1.0})
    document["parity"]["inputs"] = [[*row, 0.0] for row in document["parity"]["inputs"]]
    write_metadata(version, document)


def name_another_model(version: Path) -> None:
    """A version of another model dropped into this one's directory (issue 20, hole 1)."""
    write_metadata(version, {**read_metadata(version), "name": "othermodel"})


def point_a_hash_outside_the_version(version: Path) -> None:
    document = read_metadata(version)
    document["files"][f"../1/{ONNX_FILE}"] = document["files"][ONNX_FILE]
    write_metadata(version, document)


def empty_the_directory(version: Path) -> None:
    for entry in version.iterdir():
        entry.unlink()


@dataclass(frozen=True)
class Corruption:
    apply: Callable[[Path], None]
    reason: str  # what the rejection says

    @property
    def name(self) -> str:
        return self.apply.__name__


CORRUPTIONS = [
    Corruption(remove_model_file, f"{ONNX_FILE} is missing"),
    Corruption(truncate_model_file, "does not match its SHA-256"),
    Corruption(replace_model_file_and_its_hash, "cannot load the model file"),
    Corruption(remove_metadata, f"{METADATA_FILE} is unreadable"),
    Corruption(truncate_metadata, f"{METADATA_FILE} is invalid"),
    Corruption(claim_another_version_number, "says version 999"),
    Corruption(shift_parity_reference, "differs from the reference outputs"),
    Corruption(claim_an_extra_feature, "fails on the parity inputs"),
    Corruption(name_another_model, "names model 'othermodel', not 'multilabel'"),
    Corruption(point_a_hash_outside_the_version, "outside the version"),
    Corruption(empty_the_directory, f"{METADATA_FILE} is unreadable"),
]
