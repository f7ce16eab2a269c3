"""The binary-body ceiling: the least an ASGI server can do with a V2 request in Triton's
binary tensor form. It reads the body, parses its JSON header (the first
``Inference-Header-Content-Length`` bytes) with orjson, views each input's raw little-endian
bytes as a numpy array (``np.frombuffer``, no copy) of the declared shape, and sends the same
constant reply as the JSON ceiling (bench/ceiling.py).

    uvicorn bench.ceiling_binary:app --loop uvloop --http httptools
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from bench.ceiling import Receive, Scope, Send, lifespan, read_body, send_constant

HEADER_LENGTH = b"inference-header-content-length"
DTYPES: dict[str, np.dtype[Any]] = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "INT64": np.dtype("<i8"),
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    body = await read_body(receive)
    if body:
        view_tensors(scope, body)
    await send_constant(send)  # a request without a body is the ready probe


def view_tensors(scope: Scope, body: bytes) -> None:
    """The binary body's JSON header parsed, and each input viewed as its numpy array."""
    header_length = next(int(value) for name, value in scope["headers"] if name == HEADER_LENGTH)
    header = orjson.loads(body[:header_length])
    offset = header_length
    for tensor in header["inputs"]:
        size = tensor["parameters"]["binary_data_size"]
        dtype = DTYPES[tensor["datatype"]]
        np.frombuffer(body, dtype, size // dtype.itemsize, offset).reshape(tensor["shape"])
        offset += size
