"""Request data → float32 feature matrix (the data plane's conversion): the fast path and the
precise path always agree, and every refusal says which row and which feature."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.codecs.base import may_contain_booleans
from app.dataplane import (
    check_row_count,
    features_from_bytes,
    features_from_flat,
    features_from_rows,
    features_from_typed,
    row_list,
)
from app.errors import InvalidInput, InvalidRequest, PayloadTooLarge, ServiceError

NAMES = ["a", "b", "c"]
FLOAT32_MAX = float(np.finfo(np.float32).max)

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
    """The matrix as a list, or the error's type, message and location."""
    try:
        return function(*args, **kwargs).tolist()
    except ServiceError as error:
        return (type(error).__name__, error.message, error.row, error.field)


def scalars_in(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [s for item in value for s in scalars_in(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in scalars_in(item)]
    return [value]


@settings(max_examples=400, deadline=None)
@given(st.lists(rows, max_size=6), st.booleans())
def test_skipping_the_boolean_scan_never_changes_the_outcome_of_rows(
    batch: list[Any], named_rows: bool
) -> None:
    """Without booleans in the body, the vectorized path must answer exactly as the
    value-by-value path does: same matrix, or same error at the same place."""
    if any(type(v) is bool for v in scalars_in(batch)):
        return  # the cheap path is only taken when the body holds no boolean
    options = {"named_rows": named_rows}
    precise = outcome(features_from_rows, batch, NAMES, booleans_possible=True, **options)
    fast = outcome(features_from_rows, batch, NAMES, booleans_possible=False, **options)
    assert fast == precise


@settings(max_examples=300, deadline=None)
@given(st.lists(scalars, max_size=9))
def test_skipping_the_boolean_scan_never_changes_the_outcome_of_flat_data(
    data: list[Any],
) -> None:
    if any(type(v) is bool for v in scalars_in(data)):
        return
    count = max(len(data) // len(NAMES), 1)
    precise = outcome(features_from_flat, data, count, NAMES, booleans_possible=True)
    fast = outcome(features_from_flat, data, count, NAMES, booleans_possible=False)
    assert fast == precise


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b'{"a": [1, 2]}', False), (b'{"a": [true]}', True), (b'{"a": false}', True)],
)
def test_boolean_scan_looks_at_the_bytes(body: bytes, expected: bool) -> None:
    assert may_contain_booleans(body) is expected


def test_rows_as_lists_and_named_rows_become_one_float32_matrix() -> None:
    matrix = features_from_rows([[1, 2.5, -3], {"c": 0, "a": 1e30, "b": 7}], NAMES, named_rows=True)
    assert matrix.dtype == np.float32
    assert matrix.flags.c_contiguous
    assert matrix.tolist() == [[1, 2.5, -3], [np.float32(1e30), 7, 0]]


def test_named_rows_are_refused_where_the_protocol_has_none() -> None:
    with pytest.raises(InvalidInput) as raised:
        features_from_rows([[1, 2, 3], {"a": 1, "b": 2, "c": 3}], NAMES)
    assert raised.value.row == 1
    assert "expected a list of 3 numbers, got an object" in raised.value.message


def test_integers_round_like_the_same_numbers_written_as_floats() -> None:
    big = 2**53 + 1  # not a float64: goes through float64 like every other value
    as_ints = features_from_rows([[big, 16777217, 3]], NAMES)
    as_floats = features_from_rows([[float(big), 16777217.0, 3.0]], NAMES)
    assert as_ints.tobytes() == as_floats.tobytes()


def test_flat_data_in_row_major_order_gives_the_matrix_of_its_rows() -> None:
    flat = features_from_flat([1, 2, 3, 4, 5, 6], 2, NAMES)
    assert flat.tolist() == features_from_rows([[1, 2, 3], [4, 5, 6]], NAMES).tolist()


def test_binary_little_endian_float32_values_are_read_as_they_are() -> None:
    values = np.array([[0.1, -2.5, 3e38], [7, 8, 9]], dtype="<f4")
    matrix = features_from_bytes(values.tobytes(), 2, NAMES)
    assert matrix.dtype == np.float32
    assert matrix.tobytes() == values.tobytes()


@pytest.mark.parametrize(
    ("value", "column"), [(np.nan, 0), (np.inf, 1), (-np.inf, 2)], ids=["NaN", "inf", "-inf"]
)
def test_binary_non_finite_values_are_refused_naming_row_and_feature(
    value: float, column: int
) -> None:
    values = np.ones((3, 3), dtype="<f4")
    values[2, column] = value
    with pytest.raises(InvalidInput) as raised:
        features_from_bytes(values.tobytes(), 3, NAMES)
    assert (raised.value.row, raised.value.field) == (2, NAMES[column])
    assert f"row 2, feature {NAMES[column]}" in raised.value.message


ROW_ERRORS: list[tuple[str, Any, type[ServiceError], int | None, str | None]] = [
    # (case, rows, error, row, field)
    ("row too short", [[1, 2, 3], [1, 2]], InvalidInput, 1, None),
    ("row too long", [[1, 2, 3, 4]], InvalidInput, 0, None),
    ("row is a number", [[1, 2, 3], 4], InvalidInput, 1, None),
    ("string value", [[1, "2", 3]], InvalidInput, 0, "b"),
    ("boolean value", [[1, 2, True]], InvalidInput, 0, "c"),
    ("null value", [[None, 2, 3]], InvalidInput, 0, "a"),
    ("list value", [[1, [2], 3]], InvalidInput, 0, "b"),
    ("every value a one-element list", [[[1], [2], [3]], [[4], [5], [6]]], InvalidInput, 0, "a"),
    ("beyond float32", [[1, 2, 3], [1, 2, 3.5e38]], InvalidInput, 1, "c"),
    ("integer beyond float32", [[10**40, 2, 3]], InvalidInput, 0, "a"),
    ("unknown feature", [{"a": 1, "b": 2, "c": 3, "d": 4}], InvalidInput, 0, "d"),
    ("missing feature", [{"a": 1, "b": 2}], InvalidInput, 0, "c"),
]


@pytest.mark.parametrize(
    ("rows_given", "error", "row", "field"),
    [case[1:] for case in ROW_ERRORS],
    ids=[case[0] for case in ROW_ERRORS],
)
def test_bad_rows_are_refused_with_their_location(
    rows_given: Any, error: type[ServiceError], row: int | None, field: str | None
) -> None:
    """By the precise path, and by the fast one wherever the body holds no boolean."""
    modes = [True] if any(type(v) is bool for v in scalars_in(rows_given)) else [True, False]
    for booleans_possible in modes:
        with pytest.raises(error) as raised:
            features_from_rows(
                rows_given, NAMES, named_rows=True, booleans_possible=booleans_possible
            )
        assert (raised.value.row, raised.value.field) == (row, field)
        if row is not None:
            assert f"row {row}" in raised.value.message


FLAT_ERRORS: list[tuple[str, list[Any], int, int | None, str | None]] = [
    # (case, data, rows, row, field)
    ("too few values", [1, 2, 3, 4], 2, None, None),
    ("too many values", [1, 2, 3, 4], 1, None, None),
    ("string value", [1, 2, 3, 4, "x", 6], 2, 1, "b"),
    ("boolean value", [1, 2, 3, 4, 5, True], 2, 1, "c"),
    ("nested list value", [1, 2, [3]], 1, 0, "c"),
    ("beyond float32", [1, 2, 3, -1e39, 5, 6], 2, 1, "a"),
]


@pytest.mark.parametrize(
    ("data", "count", "row", "field"),
    [case[1:] for case in FLAT_ERRORS],
    ids=[case[0] for case in FLAT_ERRORS],
)
def test_bad_flat_data_is_refused_with_its_location(
    data: list[Any], count: int, row: int | None, field: str | None
) -> None:
    with pytest.raises(InvalidInput) as raised:
        features_from_flat(data, count, NAMES)
    assert (raised.value.row, raised.value.field) == (row, field)


@pytest.mark.parametrize("given", [{"a": 1}, "rows", 3, None], ids=repr)
def test_rows_must_come_as_a_list(given: Any) -> None:
    with pytest.raises(InvalidRequest) as raised:
        row_list(given, "instances")
    assert raised.value.field == "instances"
    assert raised.value.message.startswith("instances must be a list of rows, got ")


def test_typed_values_are_read_in_row_major_order() -> None:
    values = np.array([0.1, -2.5, 3e38, 7, 8, 9], dtype=np.float32)
    matrix = features_from_typed(values, 2, NAMES)
    assert matrix.dtype == np.float32
    assert matrix.tobytes() == values.tobytes()


@pytest.mark.parametrize(
    ("values", "count", "row", "field"),
    [
        ([1, 2, 3, 4], 1, None, None),
        ([1, 2, 3, 4, 5], 2, None, None),
        ([1, 2, 3, 4, np.nan, 6], 2, 1, "b"),
        ([1, 2, -np.inf], 1, 0, "c"),
    ],
    ids=["too many", "too few", "NaN", "-inf"],
)
def test_typed_values_of_another_size_or_not_finite_are_refused(
    values: list[float], count: int, row: int | None, field: str | None
) -> None:
    with pytest.raises(InvalidInput) as raised:
        features_from_typed(np.asarray(values, dtype=np.float32), count, NAMES)
    assert (raised.value.row, raised.value.field) == (row, field)
    if row is None:
        assert f"shape [{count}, 3] needs {count * 3}" in raised.value.message


@pytest.mark.parametrize(
    ("count", "error"), [(0, InvalidInput), (6, PayloadTooLarge)], ids=["none", "over"]
)
def test_row_count_is_between_one_and_the_limit(count: int, error: type[ServiceError]) -> None:
    check_row_count(1, 5)
    check_row_count(5, 5)
    with pytest.raises(error):
        check_row_count(count, 5)


def test_the_largest_float32_is_accepted_and_the_next_double_refused() -> None:
    assert features_from_rows([[FLOAT32_MAX, -FLOAT32_MAX, 0]], NAMES).tolist() == [
        [FLOAT32_MAX, -FLOAT32_MAX, 0]
    ]
    with pytest.raises(InvalidInput):
        features_from_rows([[np.nextafter(FLOAT32_MAX, np.inf), 0, 0]], NAMES)
