"""Large JSON bodies read without a Python object per number (app/codecs/json_numbers.py):
well-formed numbers come out as the very float64 values orjson reads; anything else comes out
exactly as orjson parses it, for the data plane to check value by value; hostile structure is
refused before anything is built. And every case of the strictness table, written in a body
large enough to take this path, gets the verdict it gets small."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from app.codecs import native, tfserving, v2
from app.codecs.base import NOT_AN_OBJECT
from app.codecs.json_numbers import MIN_BODY_BYTES, Bulk, decode_json_numbers
from app.dataplane import NumberArray
from app.errors import InvalidRequest, PayloadTooLarge
from tests.app.codecs import test_strictness as strictness
from tests.app.codecs.test_strictness import served  # noqa: F401 (the strictness table's app)

MAX_ROWS = 10_000
ROWS = 400  # enough 10-value rows of small integers to pass MIN_BODY_BYTES
RNG = np.random.default_rng(7)


def integer_rows(count: int = ROWS, width: int = 10) -> list[list[int]]:
    return RNG.integers(0, 20, (count, width)).tolist()


def float_rows(count: int = ROWS, width: int = 10) -> list[list[float]]:
    """Floats over float64's whole range and shortest forms, with -0.0 and subnormals."""
    scales = 10.0 ** RNG.integers(-300, 300, (count, width))
    rows: list[list[float]] = (RNG.standard_normal((count, width)) * scales).tolist()
    rows[0][:3] = [-0.0, 5e-324, 1.7976931348623157e308]
    return rows


def native_body(rows: Any, **fields: Any) -> bytes:
    return orjson.dumps({"instances": rows, **fields})


def v2_body(data: Any, shape: list[int]) -> bytes:
    tensor = {"name": "features", "shape": shape, "datatype": "FP32", "data": data}
    return orjson.dumps({"id": "7", "inputs": [tensor], "parameters": {"threshold": 0.4}})


def same_bits(numbers: NumberArray, expected: Any) -> bool:
    reference = np.asarray(expected, dtype=np.float64).ravel()
    return bool(np.array_equal(numbers.values.view(np.uint64), reference.view(np.uint64)))


@pytest.mark.parametrize("rows", [integer_rows(), float_rows()], ids=["integers", "floats"])
def test_rows_of_numbers_are_read_as_orjson_reads_them(rows: list[list[Any]]) -> None:
    body = native_body(rows, threshold={"label_0": 0.3}, format="columns")
    assert len(body) > MIN_BODY_BYTES
    document = decode_json_numbers(body, native.INSTANCES, MAX_ROWS)
    numbers = document.pop("instances")
    assert isinstance(numbers, NumberArray)
    assert (numbers.rows, numbers.width) == (ROWS, 10)
    assert same_bits(numbers, rows)
    assert document == {"threshold": {"label_0": 0.3}, "format": "columns"}


def test_a_flat_tensor_is_read_flat_and_the_rest_of_the_message_as_python() -> None:
    rows = float_rows()
    flat = [value for row in rows for value in row]
    document = decode_json_numbers(v2_body(flat, [ROWS, 10]), v2.DATA, MAX_ROWS)
    numbers = document["inputs"][0].pop("data")
    assert isinstance(numbers, NumberArray)
    assert numbers.rows is None
    assert same_bits(numbers, flat)
    assert document == {
        "id": "7",
        "inputs": [{"name": "features", "shape": [ROWS, 10], "datatype": "FP32"}],
        "parameters": {"threshold": 0.4},
    }


def test_a_tensor_nested_by_row_is_read_as_rows() -> None:
    rows = integer_rows()
    numbers = decode_json_numbers(v2_body(rows, [ROWS, 10]), v2.DATA, MAX_ROWS)["inputs"][0]["data"]
    assert isinstance(numbers, NumberArray)
    assert (numbers.rows, numbers.width) == (ROWS, 10)


@pytest.mark.parametrize(
    "body",
    [
        orjson.dumps({"inputs": integer_rows()}),
        orjson.dumps({"inputs": {"features": integer_rows()}}),
        orjson.dumps({"instances": integer_rows(), "signature_name": "labels"}),
    ],
    ids=["bare columnar tensor", "named columnar tensor", "rows"],
)
def test_tf_serving_bodies_take_the_first_place_that_holds_the_rows(body: bytes) -> None:
    found = [
        value
        for value in _leaves(decode_json_numbers(body, tfserving.BULKS, MAX_ROWS))
        if isinstance(value, NumberArray)
    ]
    assert len(found) == 1
    assert found[0].rows == ROWS


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


def with_row(index: int, row: Any) -> list[Any]:
    rows: list[Any] = integer_rows()
    rows[index] = row
    return rows


# Bodies the fast path must not decide: each comes out exactly as orjson parses it.
AS_ORJSON_READS_THEM = {
    "a short row": native_body(with_row(5, [1] * 9)),
    "a long row, then a short one": native_body([*integer_rows(), [1] * 11, [1] * 9]),
    "ragged rows with the right total": native_body([[1] * 11, [1] * 9, *integer_rows()]),
    "one-element lists as values": native_body(with_row(3, [[value] for value in range(10)])),
    "an empty row": native_body(with_row(0, [])),
    "every row empty": native_body([[]] * 2000),
    "a number as a row": native_body(with_row(2, 7)),
    "a number as a row beside a deeper one": native_body(
        [7, [[1] * 10, [1] * 10], *integer_rows()]
    ),
    "a row nested one level deeper": native_body(with_row(4, [[1] * 10])),
    "an object as a row": native_body(with_row(1, {f"x{i}": i for i in range(10)})),
    "a boolean": native_body(with_row(6, [True, *[1] * 9])),
    "a null": native_body(with_row(6, [None, *[1] * 9])),
    "a string": native_body(with_row(6, ["7", *[1] * 9])),
    "the key twice": native_body(integer_rows())[:-1] + b',"instances":[[1,2]]}',
    "the key's name as a value too": native_body(integer_rows(), format="instances"),
    "an escape in the body": native_body(integer_rows(), format="col\\u0075mns"),
    "an integer past 64 bits": native_body(integer_rows())[:-3] + b",1" + b"0" * 30 + b"]]}",
    "nested tensor rows of different lengths": v2_body([[1] * 10, [1] * 9], [2, 10]) + b" " * 5000,
    "a flat tensor holding a list": v2_body([*[1] * 4000, [1]], [400, 10]),
    "a flat tensor holding a boolean": v2_body([*[1] * 4000, False], [400, 10]),
}


@pytest.mark.parametrize("body", AS_ORJSON_READS_THEM.values(), ids=AS_ORJSON_READS_THEM.keys())
def test_anything_but_well_formed_numbers_comes_out_as_orjson_reads_it(body: bytes) -> None:
    assert len(body) > MIN_BODY_BYTES
    bulks = v2.DATA if body.startswith(b'{"id"') else native.INSTANCES
    decoded = decode_json_numbers(body, bulks, MAX_ROWS)
    assert decoded == orjson.loads(body)
    assert not any(isinstance(value, NumberArray) for value in _leaves(decoded))


def test_small_bodies_are_left_to_orjson() -> None:
    body = native_body(integer_rows(3))
    assert decode_json_numbers(body, native.INSTANCES, MAX_ROWS) == orjson.loads(body)


MiB = 1 << 20
EMPTY_LISTS = b"[" + b"[]," * ((8 * MiB - 4) // 3) + b"[]]"


@pytest.mark.parametrize(
    ("body", "bulks", "refusal", "message"),
    [
        (EMPTY_LISTS, native.INSTANCES, InvalidRequest, NOT_AN_OBJECT),
        (b'{"instances":' + EMPTY_LISTS + b"}", native.INSTANCES, PayloadTooLarge, "2796202 rows"),
        (
            b'{"inputs":[{"name":"features","data":' + EMPTY_LISTS + b"}]}",
            v2.DATA,
            PayloadTooLarge,
            "2796202 rows",
        ),
        (
            b'{"inputs": {"features": [' + b"{}," * 100_000 + b"{}]}}",
            tfserving.BULKS,
            PayloadTooLarge,
            "100001 rows exceed the limit of 10000",
        ),
    ],
    ids=["a top-level array", "rows", "a tensor's rows", "objects as rows"],
)
def test_hostile_structure_is_refused_before_anything_is_built(
    body: bytes, bulks: tuple[Bulk, ...], refusal: type[Exception], message: str
) -> None:
    with pytest.raises(refusal, match=message):
        decode_json_numbers(body, bulks, MAX_ROWS)


# Every strictness case with a JSON body, made large by JSON whitespace: simdjson parses it,
# and the verdict must not change.
PADDING = b" " * (MIN_BODY_BYTES + 100)
JSON_PROTOCOLS = [
    p for p in strictness.PROTOCOLS if p.attribute in ("native", "v2_json", "tfserving")
]
LARGE_CELLS = [
    pytest.param(
        protocol,
        dataclasses.replace(cell, body=PADDING + cell.body),
        id=f"{case.what} [{protocol.attribute}]",
    )
    for case in strictness.CASES
    for protocol in JSON_PROTOCOLS
    if isinstance(cell := getattr(case, protocol.attribute), strictness.Wire)
    and cell.body is not None
]


@pytest.mark.parametrize(("protocol", "wire"), LARGE_CELLS)
def test_each_case_gets_the_same_verdict_in_a_large_body(
    served: tuple[TestClient, grpc.Channel],  # noqa: F811 (the fixture imported above)
    protocol: strictness.Protocol,
    wire: strictness.Wire,
) -> None:
    strictness.test_each_case_gets_its_verdict_on_each_protocol(served, protocol, wire)
