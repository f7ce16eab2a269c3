"""CSV training data: the naming convention, column selection, and validation before training."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from training.csv_data import DataError, load_csv
from training.train import main as train_main

HEADER = "x0,x1,label_a,label_b"
GOOD_ROWS = ["1,2.5,1,0", "3,-4,0,1", "5,6e2,1,1", "7,8,0,0"]


def write_csv(directory: Path, text: str, name: str = "data.csv") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def good_csv(directory: Path) -> Path:
    return write_csv(directory, "\n".join([HEADER, *GOOD_ROWS]) + "\n")


def test_label_prefixed_columns_are_labels_and_the_rest_features(tmp_path: Path) -> None:
    dataset = load_csv(good_csv(tmp_path))
    assert dataset.feature_names == ["x0", "x1"]
    assert dataset.label_names == ["label_a", "label_b"]
    assert dataset.features.tolist() == [[1, 2.5], [3, -4], [5, 600], [7, 8]]
    assert dataset.labels.tolist() == [[1, 0], [0, 1], [1, 1], [0, 0]]
    assert dataset.source == "csv:data.csv"


def test_columns_can_be_chosen_by_name_in_any_order(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "id,sports,weight,tech\nr1,1,0.5,0\nr2,0,1.5,1\n")
    dataset = load_csv(path, features=["weight"], labels=["tech", "sports"])
    assert dataset.feature_names == ["weight"]
    assert dataset.label_names == ["tech", "sports"]
    assert dataset.labels.tolist() == [[0, 1], [1, 0]]


def test_quoted_values_blank_lines_and_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    text = "\ufeff" + HEADER + "\n" + '"1", 2 ,1,0\n\n3,4,0,1\n'
    dataset = load_csv(write_csv(tmp_path, text))
    assert dataset.features.tolist() == [[1, 2], [3, 4]]


def tree_digest(root: Path) -> str:
    """One hash over every path and file content under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


BAD_CSVS = [
    pytest.param(
        [HEADER, *GOOD_ROWS],
        ["--labels", "label_a,nope"],
        "column 'nope' named by --labels is not in the header",
        id="missing-label-column",
    ),
    pytest.param(
        [HEADER, *GOOD_ROWS],
        ["--features", "x9"],
        "column 'x9' named by --features is not in the header",
        id="missing-feature-column",
    ),
    pytest.param(
        [HEADER, "1,2,1,0", "3,abc,0,1", *GOOD_ROWS],
        [],
        "line 3, column 'x1': 'abc' is not a number",
        id="non-numeric",
    ),
    pytest.param(
        [HEADER, *GOOD_ROWS, "1,2,,0"],
        [],
        "line 6, column 'label_a': empty value",
        id="empty-value",
    ),
    pytest.param(
        [HEADER, "nan,2,1,0", *GOOD_ROWS],
        [],
        "line 2, column 'x0': nan is not a finite number",
        id="nan",
    ),
    pytest.param(
        [HEADER, *GOOD_ROWS[:2], "1,-inf,1,0", *GOOD_ROWS[2:]],
        [],
        "line 4, column 'x1': -inf is not a finite number",
        id="infinity",
    ),
    pytest.param(
        [HEADER, *GOOD_ROWS, "1,1e39,1,0"],
        [],
        "line 6, column 'x1': 1e39 exceeds the float32 range",
        id="beyond-float32",
    ),
    pytest.param(
        [HEADER, *GOOD_ROWS, "1,2,2,0"],
        [],
        "line 6, column 'label_a': label values must be 0 or 1, got 2",
        id="label-not-binary",
    ),
    pytest.param(
        [HEADER, "1,2,1,0", "3,4,1,0", "5,6,1,0"],
        ["--no-cv"],
        "label column 'label_a' is always on",
        id="label-always-on",
    ),
    pytest.param(
        [HEADER, "1,2,1,0", "3,4,0,0", "5,6,1,0"],
        ["--no-cv"],
        "label column 'label_b' is never on",
        id="label-never-on",
    ),
    pytest.param(
        [HEADER, *GOOD_ROWS],
        [],
        "4 data rows are too few; this run needs at least 10",
        id="too-few-rows-for-folds",
    ),
    pytest.param([HEADER, "1,2,1"], [], "line 2 has 3 values, the header names 4", id="ragged-row"),
    pytest.param(
        ["x0,x1,y", "1,2,1"],
        [],
        "no label columns; name them label_<name> or choose them with --labels",
        id="no-label-columns",
    ),
    pytest.param(
        ["x0,x0,label_a", "1,2,1"], [], "line 1 names column 'x0' twice", id="duplicate-column"
    ),
    pytest.param(
        [HEADER, *GOOD_ROWS],
        ["--labels", "label_a", "--features", "x0,label_a"],
        "column 'label_a' is selected as a feature and a label",
        id="feature-and-label",
    ),
    pytest.param([], [], "empty file", id="empty-file"),
]


@pytest.mark.parametrize(("lines", "options", "message"), BAD_CSVS)
def test_bad_csv_gets_one_clear_error_line_and_leaves_the_models_untouched(
    lines: list[str],
    options: list[str],
    message: str,
    repository: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_csv(tmp_path, "\n".join(lines) + ("\n" if lines else ""))
    before = tree_digest(repository)
    code = train_main(["--data", str(path), "--output", str(repository), *options])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(f"error: data.csv: {message}")
    assert captured.err.count("\n") == 1
    assert tree_digest(repository) == before


def test_a_missing_file_is_named_in_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "models"
    code = train_main(["--data", str(tmp_path / "absent.csv"), "--output", str(output)])
    assert code == 2
    assert "absent.csv: cannot read it" in capsys.readouterr().err
    assert not output.exists()


def test_non_utf8_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(HEADER.encode() + b"\n1,2,1,0\n\xe9,1,0,1\n")
    with pytest.raises(DataError, match="not UTF-8 text"):
        load_csv(path)


def test_loaded_values_keep_full_precision(tmp_path: Path) -> None:
    path = write_csv(tmp_path, f"{HEADER}\n0.1234567890123,2,1,0\n3,4,0,1\n")
    assert load_csv(path).features[0, 0] == np.float64(0.1234567890123)
