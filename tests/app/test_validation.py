"""Request data → feature matrix: the fast path and the precise path must always agree."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import InvalidInput, PayloadTooLarge, ServiceError
from app.validation import features_from_rows, features_from_tensor, may_contain_booleans

NAMES = ["a", "b", "c"]

scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
)
rows = st.one_of(
    st.lists(scalars, min_size=2, max_size=4),
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=3, max_size=3),
    st.dictionaries(st.sampled_from([*NAMES, "z"]), scalars, max_size=4),
    scalars,
)


def outcome(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs).tolist()
    except ServiceError as error:
        return (type(error).__name__, error.message, error.row, error.field)


@settings(max_examples=400, deadline=None)
@given(st.lists(rows, max_size=6))
def test_skipping_the_boolean_scan_never_changes_the_outcome(batch: list[Any]) -> None:
    """Without booleans in the body, the vectorized path must answer exactly as the
    value-by-value path does: same matrix, or same error at the same place."""
    if any(type(v) is bool for v in _scalars_in(batch)):
        return  # the cheap path is only taken when the body holds no boolean
    precise = outcome(features_from_rows, batch, NAMES, max_rows=100, booleans_possible=True)
    fast = outcome(features_from_rows, batch, NAMES, max_rows=100, booleans_possible=False)
    assert fast == precise


def _scalars_in(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [s for item in value for s in _scalars_in(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _scalars_in(item)]
    return [value]


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b'{"a": [1, 2]}', False), (b'{"a": [true]}', True), (b'{"a": false}', True)],
)
def test_boolean_scan_looks_at_the_bytes(body: bytes, expected: bool) -> None:
    assert may_contain_booleans(body) is expected


def test_rows_become_a_float32_matrix() -> None:
    matrix = features_from_rows([[1, 2.5, -3], {"c": 0, "a": 1e30, "b": 7}], NAMES, max_rows=5)
    assert matrix.dtype == np.float32
    assert matrix.flags.c_contiguous
    assert matrix.tolist() == [[1, 2.5, -3], [np.float32(1e30), 7, 0]]


@pytest.mark.parametrize(
    ("data", "shape", "datatype"),
    [
        ([1, 2, 3, 4, 5, 6], [2, 3], "FP32"),
        ([[1, 2, 3], [4, 5, 6]], [2, 3], "FP64"),
        ([1, 2, 3, 4, 5, 6], [2, 3], "INT64"),
    ],
)
def test_tensors_flat_or_nested_become_the_same_matrix(
    data: list[Any], shape: list[int], datatype: str
) -> None:
    matrix = features_from_tensor(data, shape, datatype, NAMES, max_rows=5)
    assert matrix.tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    ("data", "shape", "datatype", "error", "row", "field"),
    [
        ([1, 2, 3], [1, 3], "BYTES", InvalidInput, None, None),
        ([1, 2, 3], [3], "FP32", InvalidInput, None, None),
        ([1, 2, 3], [1, 4], "FP32", InvalidInput, None, None),
        ([1, 2, 3, 4], [1, 3], "FP32", InvalidInput, None, None),
        ([1, 2, 3, 4, "x", 6], [2, 3], "FP32", InvalidInput, 1, "b"),
        ([1, 2, 3, 4, 5, True], [2, 3], "FP32", InvalidInput, 1, "c"),
        ([1, 2.5, 3], [1, 3], "INT32", InvalidInput, 0, "b"),
        ([[1, 2, 3]], [2, 3], "FP32", InvalidInput, None, None),
        ([1, 2, 3] * 6, [6, 3], "FP32", PayloadTooLarge, None, None),
        ([], [0, 3], "FP32", InvalidInput, None, None),
        ("abc", [1, 3], "FP32", InvalidInput, None, None),
    ],
)
def test_bad_tensors_are_refused_with_their_location(
    data: Any, shape: Any, datatype: str, error: type[ServiceError], row: Any, field: Any
) -> None:
    with pytest.raises(error) as raised:
        features_from_tensor(data, shape, datatype, NAMES, max_rows=5)
    assert (raised.value.row, raised.value.field) == (row, field)
