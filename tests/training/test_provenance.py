"""What we commit names no temporary or machine-specific path: a reader would take it for ours.

The committed model version (every file, inside its archives too), the selection record it
cites, and the training docs are scanned for paths that only existed on the machine that wrote
them (a temporary directory, a home or work directory, pytest's scratch space).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

MACHINE_PATHS = re.compile(
    rb"(/tmp/|/var/folders/|/private/var/|/work/|/root/|/home/[A-Za-z]|/Users/[A-Za-z]"
    rb"|pytest-of-|[A-Z]:\\\\Users)"
)
COMMITTED = [
    *sorted((REPO_ROOT / "models").rglob("*")),
    REPO_ROOT / "training" / "selection.json",
    REPO_ROOT / "docs" / "training.md",
]


def contents(path: Path) -> list[tuple[str, bytes]]:
    """The file's bytes, and for a zip archive (model.keras) each member's too."""
    found = [(str(path.relative_to(REPO_ROOT)), path.read_bytes())]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            found += [(f"{found[0][0]}:{name}", archive.read(name)) for name in archive.namelist()]
    return found


@pytest.mark.parametrize(
    "path",
    [path for path in COMMITTED if path.is_file()],
    ids=lambda path: str(path.relative_to(REPO_ROOT)),
)
def test_a_committed_file_names_no_path_of_the_machine_that_wrote_it(path: Path) -> None:
    for name, data in contents(path):
        found = sorted({match.group().decode() for match in MACHINE_PATHS.finditer(data)})
        assert not found, f"{name} names {found}"


@pytest.mark.parametrize(
    "text",
    [
        "python -m training.select --output /tmp/h13/selection.json",
        "/tmp/pytest-of-root/pytest-3/trained0/multilabel/1",
        "/work/wt-calib/models",
        "saved to /home/alice/models",
        r"C:\\Users\\alice\\models",
    ],
)
def test_the_scan_finds_the_paths_seen_before(text: str) -> None:
    assert MACHINE_PATHS.search(text.encode())
