"""Request bodies: one builder per wire form, and the body files that bench/lua/post.lua rotates.

Binary V2 bodies are made by tritonclient itself (``generate_request_body`` with the client's
defaults: binary input, binary outputs asked for), so they are exactly what a Triton client
sends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import tritonclient.http as triton  # type: ignore[import-untyped]

from bench.workloads import (
    JSON,
    NATIVE,
    NATIVE_COLUMNS,
    OCTET_STREAM,
    V1,
    V1_COLUMNS,
    V2_BINARY,
    V2_INPUT_NAME,
    V2_JSON,
    Form,
    Workload,
)

BODIES_PER_WORKLOAD = 64


@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str
    header_length: int | None = None  # Inference-Header-Content-Length, binary V2 only

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.header_length is not None:
            headers["Inference-Header-Content-Length"] = str(self.header_length)
        return headers


def build_body(form: Form, rows: list[list[int]]) -> Body:
    """The body a client of ``form`` sends for ``rows``."""
    if form in (NATIVE, V1):
        return Body(orjson.dumps({"instances": rows}), JSON)
    if form == V1_COLUMNS:
        return Body(orjson.dumps({"inputs": rows}), JSON)
    if form == NATIVE_COLUMNS:
        return Body(orjson.dumps({"instances": rows, "format": "columns"}), JSON)
    if form == V2_JSON:
        tensor = {
            "name": V2_INPUT_NAME,
            "datatype": "FP32",
            "shape": [len(rows), len(rows[0])],
            "data": [value for row in rows for value in row],
        }
        return Body(orjson.dumps({"inputs": [tensor]}), JSON)
    if form == V2_BINARY:
        return _triton_binary_body(np.asarray(rows, dtype=np.float32))
    raise ValueError(f"no body builder for {form.key}")


def _triton_binary_body(features: np.ndarray) -> Body:
    tensor = triton.InferInput(V2_INPUT_NAME, list(features.shape), "FP32")
    tensor.set_data_from_numpy(features)  # the default: binary_data=True
    content, json_size = triton.InferenceServerClient.generate_request_body([tensor])
    return Body(content, OCTET_STREAM, json_size)


@dataclass(frozen=True)
class BodyFile:
    path: Path
    first: Body  # checked against the server before it is measured


def write_bodies(workload: Workload, pool: list[list[int]], directory: Path) -> BodyFile:
    """BODIES_PER_WORKLOAD bodies of different rows (windows of ``pool`` at distinct offsets,
    the same for every run), in the record format that bench/lua/post.lua reads."""
    offsets = random.Random(workload.key).sample(
        range(len(pool) - workload.rows + 1), BODIES_PER_WORKLOAD
    )
    bodies = [build_body(workload.form, pool[start : start + workload.rows]) for start in offsets]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{workload.form.key}-{workload.rows}.bodies"
    path.write_bytes(b"".join(_record(body) for body in bodies))
    return BodyFile(path, bodies[0])


def _record(body: Body) -> bytes:
    header = f"{len(body.content)} {body.content_type} {body.header_length or 0}\n"
    return header.encode() + body.content
