"""Training data from a CSV file, validated completely before any training starts.

Convention: the first line names the columns; columns whose name starts with ``label_`` are
the labels (0 or 1), every other column is a numeric feature. ``labels``/``features`` select
columns by name instead. Column names become the model's label and feature names as written.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
from numpy.typing import NDArray

from training.data import Dataset

if TYPE_CHECKING:
    from _csv import Reader

LABEL_PREFIX = "label_"
FLOAT32_MAX = float(np.finfo(np.float32).max)


class DataError(ValueError):
    """The data cannot be trained on; the message is one line naming the file, line, column."""


def load_csv(
    path: Path,
    *,
    features: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    min_rows: int = 2,
) -> Dataset:
    """Read and validate ``path``; ``min_rows`` is what the evaluation needs (e.g. the folds)."""
    with _open(path) as stream:
        reader = csv.reader(stream)
        header = _header(path, reader)
        feature_names, label_names = _select(path, header, features, labels)
        rows = list(_rows(path, reader, header, feature_names, label_names))
    if len(rows) < min_rows:
        raise DataError(
            f"{path.name}: {len(rows)} data rows are too few; this run needs at least {min_rows} "
            "(one per cross-validation fold)"
        )
    matrix = np.array(rows, dtype=np.float64)
    label_matrix = matrix[:, len(feature_names) :].astype(np.int64)
    _check_labels_vary(path, label_matrix, label_names)
    return Dataset(
        features=matrix[:, : len(feature_names)],
        labels=label_matrix,
        feature_names=feature_names,
        label_names=label_names,
        source=f"csv:{path.name}",
        parameters={"file": path.name, "sha256": _sha256(path)},
    )


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Iterator[str]]:
    """The file's lines; unreadable and non-UTF-8 files become DataError."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            yield _decoded(path, stream)
    except OSError as error:
        raise DataError(f"{path}: cannot read it ({error.strerror})") from error


def _decoded(path: Path, stream: TextIO) -> Iterator[str]:
    try:
        yield from stream
    except UnicodeDecodeError as error:
        raise DataError(f"{path.name}: not UTF-8 text ({error.reason})") from error


def _header(path: Path, reader: Reader) -> list[str]:
    header = [name.strip() for name in next(reader, [])]
    if not header:
        raise DataError(f"{path.name}: empty file; line 1 must name the columns")
    for position, name in enumerate(header, start=1):
        if not name:
            raise DataError(f"{path.name}: line 1, column {position} has no name")
        if header.index(name) != position - 1:
            raise DataError(f"{path.name}: line 1 names column {name!r} twice")
    return header


def _select(
    path: Path,
    header: list[str],
    features: Sequence[str] | None,
    labels: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    """The feature and label columns: as asked, or by the ``label_`` convention."""
    for option, names in (("--labels", labels), ("--features", features)):
        for name in names or ():
            if name not in header:
                raise DataError(
                    f"{path.name}: column {name!r} named by {option} is not in the header "
                    f"({', '.join(header)})"
                )
    label_names = list(labels) if labels else [n for n in header if n.startswith(LABEL_PREFIX)]
    if not label_names:
        raise DataError(
            f"{path.name}: no label columns; name them {LABEL_PREFIX}<name> or choose them "
            "with --labels"
        )
    feature_names = (
        list(features) if features else [name for name in header if name not in label_names]
    )
    if both := [name for name in feature_names if name in label_names]:
        raise DataError(f"{path.name}: column {both[0]!r} is selected as a feature and a label")
    if not feature_names:
        raise DataError(f"{path.name}: no feature columns left besides the labels")
    return feature_names, label_names


def _rows(
    path: Path,
    reader: Reader,
    header: list[str],
    feature_names: list[str],
    label_names: list[str],
) -> Iterator[list[float]]:
    """Each data row's selected values, features then labels; blank lines are skipped."""
    positions = [header.index(name) for name in (*feature_names, *label_names)]
    is_label = [False] * len(feature_names) + [True] * len(label_names)
    for row in reader:
        line = reader.line_num  # of the row's last line: a quoted value may span lines
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(
                f"{path.name}: line {line} has {len(row)} values, the header names {len(header)}"
            )
        yield [
            _value(
                row[position], label, where=f"{path.name}: line {line}, column {header[position]!r}"
            )
            for position, label in zip(positions, is_label, strict=True)
        ]


def _value(text: str, label: bool, *, where: str) -> float:
    text = text.strip()
    if not text:
        raise DataError(f"{where}: empty value")
    try:
        value = float(text)
    except ValueError:
        hint = "" if label else " (choose the feature columns with --features)"
        raise DataError(f"{where}: {text!r} is not a number{hint}") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {text} is not a finite number")
    if abs(value) > FLOAT32_MAX:
        raise DataError(f"{where}: {text} exceeds the float32 range the model computes in")
    if label and value not in (0.0, 1.0):
        raise DataError(f"{where}: label values must be 0 or 1, got {text}")
    return value


def _check_labels_vary(path: Path, labels: NDArray[np.int64], names: list[str]) -> None:
    for column, name in enumerate(names):
        on = int(labels[:, column].sum())
        if on in (0, len(labels)):
            state = "never" if on == 0 else "always"
            raise DataError(
                f"{path.name}: label column {name!r} is {state} on (value {int(on > 0)} in every "
                "row); a constant label cannot be learned"
            )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
