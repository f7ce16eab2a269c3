"""Turn decoded request data into a validated float32 feature matrix, for every protocol.

Each rule has one home here: a row has exactly the model's features; every value is a number
(not a boolean, string or null), finite and within float32 range. Errors say which row and
which feature. The common case (well-formed numbers) is converted by numpy in one call; only
when that fails does a row-by-row pass run, to find and name the first problem. Numbers a codec
already read straight from its wire into an array (``NumberArray``) are checked on the array.
"""

from __future__ import annotations

import array
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.errors import SHOWN_LENGTH, InvalidInput, InvalidRequest, PayloadTooLarge, shown
from app.inference import SMALL_BATCH_ROWS

FLOAT32_MAX = float(np.finfo(np.float32).max)
LITTLE_ENDIAN_FLOAT32 = np.dtype("<f4")
# Typed arrays for flat data, tried in order: all ints, then ints and floats.
_TYPED_ARRAYS = (("q", np.int64), ("d", np.float64))
_JSON_TYPE_NAMES = {
    bool: "a boolean",
    str: "a string",
    type(None): "null",
    list: "a list",
    dict: "an object",
}


@dataclass(frozen=True, slots=True)
class NumberArray:
    """A JSON array of numbers that a codec read straight into float64, without a Python
    object per number (app/codecs/json_numbers.py): ``values`` flat in row-major order; the
    array was flat (``rows`` None), or ``rows`` arrays of ``width`` numbers each. Anything
    else (ragged rows, values that are not numbers) stays a Python list, checked value by
    value."""

    values: NDArray[np.float64]
    rows: int | None = None
    width: int = 0

    def __len__(self) -> int:
        return len(self.values) if self.rows is None else self.rows


def row_list(rows: Any, what: str) -> list[Any]:
    """The request's rows, which must come as a JSON list (their contents are checked later)."""
    if not isinstance(rows, list):
        raise InvalidRequest(f"{what} must be a list of rows, got {_json_type(rows)}", field=what)
    return rows


def check_row_count(count: int, max_rows: int) -> None:
    if count == 0:
        raise InvalidInput("no rows: send at least one instance")
    if count > max_rows:
        raise PayloadTooLarge(f"{count} rows exceed the limit of {max_rows} rows per request")


def features_from_rows(
    rows: list[Any],
    feature_names: Sequence[str],
    *,
    named_rows: bool = False,
    booleans_possible: bool = True,
    what: str = "instances",
) -> NDArray[np.float32]:
    """Rows given as lists of numbers in feature order, or (``named_rows``) also as objects
    keyed by feature name. ``rows`` is a list (``row_list``) of an admitted count."""
    width = len(feature_names)
    if len(rows) <= SMALL_BATCH_ROWS:
        few = _few_rows_of_numbers(rows, width)
        if few is not None:
            return few
    if not booleans_possible:
        matrix = _rows_of_numbers(rows, width)
        if matrix is not None:
            return _to_float32(matrix, feature_names)
    values = [_row_values(row, index, feature_names, named_rows) for index, row in enumerate(rows)]
    return _to_float32(np.asarray(values, dtype=np.float64), feature_names)


def features_from_flat(
    data: list[Any], rows: int, feature_names: Sequence[str], *, booleans_possible: bool = True
) -> NDArray[np.float32]:
    """A tensor's values flat in row-major order, ``rows`` by the model's features."""
    width = len(feature_names)
    _check_flat_size(len(data), rows, width)
    if booleans_possible:
        # The types of flat values are collected at C speed: tritonclient's JSON always holds
        # a boolean ("binary_data": false), which would otherwise send every value through
        # the value-by-value check below.
        booleans_possible = bool in set(map(type, data))
    flat = None if booleans_possible else _flat_numbers(data)
    if flat is None or flat.ndim != 1:
        for position, value in enumerate(data):
            _check_number(value, position // width, feature_names[position % width])
        flat = np.asarray(data, dtype=np.float64)
    return _to_float32(flat.reshape(rows, width), feature_names)


def features_from_numbers(
    numbers: NumberArray, feature_names: Sequence[str], rows: int | None = None
) -> NDArray[np.float32]:
    """Numbers read straight from JSON text: flat ones, ``rows`` by the model's features, or
    rows that all have the same count of numbers, which must be the model's. Every value is a
    number already; finiteness and float32 range are checked on the array."""
    width = len(feature_names)
    if numbers.rows is None:
        assert rows is not None, "flat numbers need the row count of their shape"
        _check_flat_size(len(numbers.values), rows, width)
        return _to_float32(numbers.values.reshape(rows, width), feature_names)
    if numbers.width != width:  # every row has the same count: the first one is named
        raise InvalidInput(f"row 0: expected {width} values, got {numbers.width}", row=0)
    return _to_float32(numbers.values.reshape(numbers.rows, width), feature_names)


def features_from_bytes(
    raw: bytes | memoryview, rows: int, feature_names: Sequence[str]
) -> NDArray[np.float32]:
    """Little-endian float32 values in row-major order (a binary tensor), checked finite."""
    matrix = np.frombuffer(raw, dtype=LITTLE_ENDIAN_FLOAT32).reshape(rows, len(feature_names))
    if rows <= SMALL_BATCH_ROWS:
        if all(map(math.isfinite, matrix.ravel().tolist())):
            return matrix  # a few values: checked faster in Python than by numpy's calls
    elif np.isfinite(matrix).all():
        return matrix.astype(np.float32, copy=False)
    _refuse_first(~np.isfinite(matrix), matrix, feature_names, "is not a finite number")
    return matrix.astype(np.float32, copy=False)


def features_from_typed(
    values: NDArray[Any], rows: int, feature_names: Sequence[str]
) -> NDArray[np.float32]:
    """Numbers a wire already typed (a flat array), ``rows`` by the model's features, checked
    finite."""
    width = len(feature_names)
    _check_flat_size(len(values), rows, width)
    matrix = values.astype(np.float32, copy=False).reshape(rows, width)
    if not np.isfinite(matrix).all():
        _refuse_first(~np.isfinite(matrix), matrix, feature_names, "is not a finite number")
    return matrix


def _check_flat_size(size: int, rows: int, width: int) -> None:
    if size != rows * width:
        raise InvalidInput(
            f"data has {size} values but shape [{rows}, {width}] needs {rows * width}"
        )


def _few_rows_of_numbers(rows: list[Any], width: int) -> NDArray[np.float32] | None:
    """A few well-formed rows, checked value by value in Python (for so few values, faster
    than numpy's calls); None for anything else, which the general path then names."""
    values: list[float] = []
    for row in rows:
        if type(row) is not list or len(row) != width:
            return None
        for value in row:
            kind = type(value)  # exact types: a boolean is not a number here
            if kind is float:
                if not abs(value) <= FLOAT32_MAX:  # also NaN
                    return None
            elif kind is int:
                value = float(value)  # as the general path: through float64, then float32
                if not abs(value) <= FLOAT32_MAX:
                    return None
            else:
                return None
            values.append(value)
    return np.array(values, dtype=np.float32).reshape(len(rows), width)


def _rows_of_numbers(rows: list[Any], width: int) -> NDArray[Any] | None:
    """Rows that are all lists of ``width`` numbers, as a matrix; None for anything else."""
    try:
        flat = list(chain.from_iterable(rows))
    except TypeError:  # a row that is not a list at all
        return None
    if len(flat) != len(rows) * width or set(map(len, rows)) != {width}:
        return None
    numbers = _flat_numbers(flat)  # rows given as objects fail here: their keys are strings
    if numbers is None or numbers.ndim != 1:  # values that are lists themselves: not numbers
        return None
    return numbers.reshape(len(rows), width)


def _flat_numbers(values: list[Any]) -> NDArray[Any] | None:
    """A flat list of numbers as a 1-d array, or None. The standard library's typed arrays
    take a list of ints (or of ints and floats) in one C loop, faster than numpy infers a
    dtype, and refuse anything else; numpy's own conversion then decides."""
    for code, dtype in _TYPED_ARRAYS:
        try:
            return np.frombuffer(array.array(code, values), dtype=dtype)
        except (TypeError, OverflowError):
            continue
    return _numeric_array(values)


def _numeric_array(values: list[Any]) -> NDArray[Any] | None:
    """numpy's own conversion, kept only when it found nothing but numbers."""
    try:
        converted = np.array(values)
    except (ValueError, TypeError, OverflowError):
        return None  # ragged rows or values numpy cannot hold: the slow pass names them
    return converted if converted.dtype.kind in "iuf" else None


def _row_values(row: Any, index: int, feature_names: Sequence[str], named_rows: bool) -> list[Any]:
    width = len(feature_names)
    if isinstance(row, list):
        if len(row) != width:
            raise InvalidInput(f"row {index}: expected {width} values, got {len(row)}", row=index)
        values = row
    elif isinstance(row, dict) and named_rows:
        values = _values_by_name(row, index, feature_names)
    else:
        expected = f"a list of {width} numbers" + (
            " or an object keyed by feature name" if named_rows else ""
        )
        raise InvalidInput(f"row {index}: expected {expected}, got {_json_type(row)}", row=index)
    for name, value in zip(feature_names, values, strict=True):
        _check_number(value, index, name)
    return values


def _values_by_name(row: dict[str, Any], index: int, feature_names: Sequence[str]) -> list[Any]:
    known = set(feature_names)
    for key in row:
        if key not in known:
            raise InvalidInput(
                f"row {index}: unknown feature {shown(key)}",
                row=index,
                field=str(key)[:SHOWN_LENGTH],
            )
    for name in feature_names:
        if name not in row:
            raise InvalidInput(f"row {index}: missing feature {name!r}", row=index, field=name)
    return [row[name] for name in feature_names]


def _check_number(value: Any, row: int, feature: str) -> None:
    if type(value) is bool or not isinstance(value, int | float):
        raise InvalidInput(
            f"row {row}, feature {feature}: expected a number, got {_json_type(value)}",
            row=row,
            field=feature,
        )


def _to_float32(matrix: NDArray[Any], feature_names: Sequence[str]) -> NDArray[np.float32]:
    """Refuse values a float32 model cannot take (non-finite or beyond float32), then cast."""
    if matrix.dtype.kind in "iu":
        # Integers (JSON's fit in 64 bits) are finite and within float32 range: nothing to
        # check. Cast through float64 like every other value, so they round the same way.
        return matrix.astype(np.float64).astype(np.float32)
    matrix = matrix.astype(np.float64, copy=False)
    outside = ~(np.abs(matrix) <= FLOAT32_MAX)  # also catches NaN
    _refuse_first(outside, matrix, feature_names, "is not a finite number within float32 range")
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _refuse_first(
    bad: NDArray[np.bool_], matrix: NDArray[Any], feature_names: Sequence[str], problem: str
) -> None:
    """Raise for the first flagged value in row order, naming its row and feature."""
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise InvalidInput(
            f"row {row}, feature {feature_names[column]}: {float(matrix[row, column])} {problem}",
            row=row,
            field=feature_names[column],
        )


def _json_type(value: Any) -> str:
    if isinstance(value, int | float) and type(value) is not bool:
        return "a number"
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
