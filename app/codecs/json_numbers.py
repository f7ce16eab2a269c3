"""Reading a JSON body whose bulk is one array of numbers (rows of features, or a tensor's flat
values) without a Python object per number.

orjson builds a Python int or float for every number and a list for every row: for a
1000-row batch that is most of the request's cost, before the numbers are even converted. A
body large enough to pay for it is instead parsed by simdjson (pysimdjson), which validates
all of it in C, and the protocol's array of numbers is copied straight from simdjson's parse
into a float64 array (``Array.as_buffer``, which refuses anything but numbers). The rest of
the message (names, shape, thresholds...) becomes Python objects as usual.

simdjson flattens nested arrays silently, so the array's structure is proven from the body's
bytes: the array is the value of the one occurrence of its key in the body, and its brackets
and commas, found with numpy, must make a flat array, or ``rows`` arrays that all hold the same
count of numbers. Only then does the codec get a ``NumberArray``; anything else (ragged rows,
objects as rows, a value that is not a number, escapes in the body, numbers simdjson cannot
hold) is parsed again by orjson, so that the data plane finds and names the problem exactly as
it always has: both parsers read only strict JSON, and read its numbers to the same float64.

Structure is also checked before anything is built: a large body whose top level is not an
object is refused at once, and so are rows (arrays or objects) past ``max_rows``, by their
count, before the rest of the request is checked (issue 20's hostile bodies: 8 MiB of ``[],``
would otherwise be millions of Python lists, built on the event loop).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simdjson

from app.codecs.base import NOT_AN_OBJECT, decode_json
from app.dataplane import NumberArray
from app.errors import InvalidRequest, TooManyRows

# Below this size orjson is faster: a few rows cost less than simdjson's call and the scans.
MIN_BODY_BYTES = 4096
# Above it a parser of its own, dropped after the call: simdjson keeps its buffers (about ten
# bytes per byte of the largest document it parsed), which must not stay with a thread.
REUSED_PARSER_MAX_BYTES = 1 << 20
OPEN, CLOSE, COMMA = ord("["), ord("]"), ord(",")
_VALUE_START = re.compile(rb"\s*:\s*\[")
_parsers = threading.local()
Key = str | int


@dataclass(frozen=True)
class Bulk:
    """Where a protocol's message holds its array of numbers: the path of keys (and list
    positions) to it, and whether it may be flat (a tensor's values in row-major order) rather
    than rows."""

    path: tuple[Key, ...]
    flat: bool = False


def decode_json_numbers(body: bytes, bulks: Sequence[Bulk], max_rows: int) -> Any:
    """The body parsed as JSON, like ``decode_json``; in a large enough body, the array at the
    first of ``bulks`` that holds one is a ``NumberArray`` when it is well-formed numbers."""
    if len(body) < MIN_BODY_BYTES or b"\\" in body:  # escapes could hide a key's bytes
        return decode_json(body)
    parser = _parser() if len(body) <= REUSED_PARSER_MAX_BYTES else simdjson.Parser()
    try:
        document = parser.parse(body)
    except (ValueError, RuntimeError, UnicodeDecodeError):
        # Not JSON (orjson says why), or JSON simdjson cannot hold (integers past 64 bits).
        return decode_json(body)
    if not isinstance(document, simdjson.Object):
        raise InvalidRequest(NOT_AN_OBJECT)
    for bulk in bulks:
        array = _at(document, bulk.path)
        if array is None:
            continue
        if len(array) > max_rows and isinstance(array[0], simdjson.Array | simdjson.Object):
            raise TooManyRows(len(array), max_rows)  # refused before any row is built
        numbers = _numbers(body, array, bulk)
        if numbers is not None:
            try:
                return _replaced(document, bulk.path, numbers)
            except _RepeatedKey:
                break
        break
    return decode_json(body)


def _parser() -> simdjson.Parser:
    """This thread's parser (a parser serves one document at a time)."""
    parser: simdjson.Parser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    return parser


def _at(document: simdjson.Object, path: tuple[Key, ...]) -> simdjson.Array | None:
    """The array at ``path``, or None when the message holds none there."""
    value: Any = document
    for key in path:
        if not _holds(value, key):
            return None
        value = value[key]
    return value if isinstance(value, simdjson.Array) else None


def _holds(value: Any, key: Key) -> bool:
    if isinstance(key, str):
        return isinstance(value, simdjson.Object) and key in value
    return isinstance(value, simdjson.Array) and key < len(value)


def _numbers(body: bytes, array: simdjson.Array, bulk: Bulk) -> NumberArray | None:
    """The array as a NumberArray when its values are all numbers and its structure is proven
    from the body's bytes; else None."""
    try:
        values = np.frombuffer(array.as_buffer(of_type="d"), dtype=np.float64)
    except TypeError:  # a value that is not a number: checked, and named, value by value
        return None
    start = _value_start(body, bulk.path[-1])
    if start is None:
        return None
    count = len(array)
    if bulk.flat:
        end = body.find(b"]", start)
        if body.find(b"[", start + 1, end) == -1:  # no array inside: flat, every value a number
            return NumberArray(values)
    return _rows(body, start, count, values)


def _value_start(body: bytes, key: Key) -> int | None:
    """Where the value of ``key`` starts in the body (its ``[``), when the key occurs once.
    Without escapes in the body, ``"key"`` occurs only as that string, which the parsed
    document holds: so the one occurrence is the one whose value was parsed."""
    token = b'"%s"' % str(key).encode()
    if body.count(token) != 1:
        return None
    found = _VALUE_START.match(body, body.index(token) + len(token))
    return None if found is None else found.end() - 1


def _rows(
    body: bytes, start: int, count: int, values: np.ndarray[Any, np.dtype[np.float64]]
) -> NumberArray | None:
    """``count`` rows of the same count of numbers, proven from the brackets and commas after
    ``start``: the array's text holds only numbers, commas, brackets and spaces (simdjson read
    every value as a number), so each of its brackets is structural. After the array's ``[``
    come exactly ``count`` pairs ``[ ... ]`` that neither nest nor overlap, then its ``]``;
    each pair holds the same count of commas (JSON puts one between two values, none
    elsewhere)."""
    text = np.frombuffer(body, dtype=np.uint8, offset=start)
    opens, closes = np.flatnonzero(text == OPEN), np.flatnonzero(text == CLOSE)
    if len(opens) < count + 1 or len(closes) < count + 1:
        return None
    end = int(closes[count])
    if len(opens) > count + 1 and opens[count + 1] < end:
        return None
    row_opens, row_closes = opens[1 : count + 1], closes[:count]
    if not (np.all(row_opens < row_closes) and np.all(row_closes[:-1] < row_opens[1:])):
        return None
    if count == 0:
        return NumberArray(values, rows=0)
    # Commas from each row's start to the next one's: its own, and the one after it but for
    # the last row.
    commas = np.add.reduceat(text[:end] == COMMA, row_opens, dtype=np.intp)
    width = int(commas[-1]) + 1
    if not (np.all(commas[:-1] == width) and len(values) == count * width):
        return None  # ragged rows, or empty ones
    return NumberArray(values, rows=count, width=width)


def _replaced(value: Any, path: tuple[Key, ...], numbers: NumberArray) -> Any:
    """The parsed value as Python objects, with ``numbers`` in place of the array at ``path``.
    Raises _RepeatedKey when an object on the way repeats a key (orjson keeps the last one;
    simdjson's lookup finds the first)."""
    if not path:
        return numbers
    key, rest = path[0], path[1:]
    if isinstance(value, simdjson.Array):
        return [
            _replaced(item, rest, numbers) if index == key else _python(item)
            for index, item in enumerate(value)
        ]
    names = list(value)  # an Object's keys; its items() would convert every value
    if len(set(names)) != len(names):
        raise _RepeatedKey
    return {
        name: _replaced(value[name], rest, numbers) if name == key else _python(value[name])
        for name in names
    }


class _RepeatedKey(Exception):
    """An object on the way to the numbers repeats a key: orjson decides what it means."""


def _python(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value
