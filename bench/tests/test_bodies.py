"""Request bodies and the record files that bench/lua/post.lua reads."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench.bodies import BODIES_PER_WORKLOAD, Body, write_bodies
from bench.workloads import BY_KEY, JSON, OCTET_STREAM, WORKLOADS, Workload


def read_records(path: Path) -> list[Body]:
    """The record format, read back as post.lua reads it."""
    data, bodies = path.read_bytes(), []
    while data:
        line, _, data = data.partition(b"\n")
        length, content_type, header_length = line.decode().split(" ")
        bodies.append(Body(data[: int(length)], content_type, int(header_length) or None))
        data = data[int(length) :]
    return bodies


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.key)
def test_every_workload_gets_distinct_bodies_of_its_rows(
    workload: Workload, pool: list[list[int]], tmp_path: Path
) -> None:
    written = write_bodies(workload, pool, tmp_path)
    bodies = read_records(written.path)
    assert len(bodies) == BODIES_PER_WORKLOAD
    assert bodies[0] == written.first
    assert len({body.content for body in bodies}) == BODIES_PER_WORKLOAD
    assert {body.content_type for body in bodies} == {workload.form.content_type}


def windows(pool: list[list[int]], rows: int) -> list[list[list[int]]]:
    return [pool[start : start + rows] for start in range(len(pool) - rows + 1)]


@pytest.mark.parametrize("key", ["native-1000", "native-columns-1000", "v1-1000", "v2-1000"])
def test_json_bodies_hold_the_rows(key: str, pool: list[list[int]], tmp_path: Path) -> None:
    workload = BY_KEY[key]
    first = write_bodies(workload, pool, tmp_path).first
    document = orjson.loads(first.content)
    assert first.content_type == JSON
    assert first.header_length is None
    if "instances" in document:
        assert document["instances"] in windows(pool, workload.rows)
    else:
        tensor = document["inputs"][0]
        assert tensor["shape"] == [workload.rows, len(pool[0])]
        flat = [
            [value for row in window for value in row] for window in windows(pool, workload.rows)
        ]
        assert tensor["data"] in flat
    assert ("format" in document) == (workload.form.key == "native-columns")


def test_binary_bodies_are_what_tritonclient_sends_by_default(
    pool: list[list[int]], tmp_path: Path
) -> None:
    workload = BY_KEY["v2-binary-1000"]
    first = write_bodies(workload, pool, tmp_path).first
    assert first.content_type == OCTET_STREAM
    assert first.header_length is not None
    header = orjson.loads(first.content[: first.header_length])
    assert header["parameters"] == {"binary_data_output": True}
    (tensor,) = header["inputs"]
    size = workload.rows * len(pool[0]) * 4
    assert tensor["datatype"] == "FP32"
    assert tensor["parameters"] == {"binary_data_size": size}
    assert len(first.content) == first.header_length + size
