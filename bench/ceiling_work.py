"""The work ceiling: a bare ASGI app that does only the work every answer needs, for each wire
form the bench sends, and nothing else (no validation, no log line, no metrics):

- parse the body with orjson (a binary V2 body: its JSON header, then ``np.frombuffer`` of the
  raw input);
- convert the values to float32 (``np.asarray(..., dtype=np.float32)``);
- run the same ONNX session as the peers (``bench/peers/onnx_model.py``) and its thresholds;
- render the same answer shape as ours with orjson (numpy arrays written by orjson itself; the
  native row form as one dict per row, as a handler written with orjson would).

Each of our forms is read as a ratio to its own work ceiling; the constant-reply ceilings
(``bench/ceiling.py``, ``bench/ceiling_binary.py``) stay beside it as the HTTP stack's own cost.

    BENCH_MODEL=<version dir> uvicorn bench.ceiling_work:app --loop uvloop --http httptools
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from bench.ceiling import Receive, Scope, Send, lifespan, read_body, send_constant
from bench.peers.onnx_model import OnnxMultilabel

NUMPY = orjson.OPT_SERIALIZE_NUMPY
JSON_HEADERS = [(b"content-type", b"application/json")]
HEADER_LENGTH = b"inference-header-content-length"


class Work:
    """The served version: its ONNX session, labels, thresholds, name and version."""

    def __init__(self, version_dir: Path):
        metadata = json.loads((version_dir / "metadata.json").read_text())
        self.labels: list[str] = metadata["labels"]
        self.thresholds = np.asarray(metadata["thresholds"], dtype=np.float32)
        self.model = OnnxMultilabel(version_dir / "model.onnx", metadata["thresholds"])
        self.name: str = metadata["name"]
        self.version: int = metadata["version"]
        self.head = {
            "model": {"name": self.name, "version": self.version},
            "thresholds": dict(zip(self.labels, self.thresholds, strict=True)),
        }

    def native(self, document: dict[str, Any]) -> bytes:
        probabilities, positives = self.model.predict(_float32(document["instances"]))
        if document.get("format") == "columns":
            return orjson.dumps(
                {
                    **self.head,
                    "probabilities": dict(
                        zip(self.labels, np.ascontiguousarray(probabilities.T), strict=True)
                    ),
                    "decisions": dict(
                        zip(
                            self.labels,
                            np.ascontiguousarray(positives.T, dtype=np.uint8),
                            strict=True,
                        )
                    ),
                    "warnings": [],
                },
                option=NUMPY,
            )
        labels = self.labels
        predictions = [
            {
                "probabilities": dict(zip(labels, row, strict=True)),
                "labels": [label for label, on in zip(labels, on_row, strict=True) if on],
                "vector": [int(on) for on in on_row],
                "warnings": [],
            }
            for row, on_row in zip(probabilities, positives.tolist(), strict=True)
        ]
        return orjson.dumps({**self.head, "predictions": predictions}, option=NUMPY)

    def tfserving(self, document: dict[str, Any]) -> bytes:
        if "instances" in document:
            probabilities, _ = self.model.predict(_float32(document["instances"]))
            return orjson.dumps({"predictions": probabilities}, option=NUMPY)
        probabilities, _ = self.model.predict(_float32(document["inputs"]))
        return orjson.dumps({"outputs": probabilities}, option=NUMPY)

    def v2_json(self, document: dict[str, Any]) -> bytes:
        tensor = document["inputs"][0]
        features = _float32(tensor["data"]).reshape(tensor["shape"])
        probabilities, positives = self.model.predict(features)
        return orjson.dumps(self._v2_answer(probabilities, positives, None), option=NUMPY)

    def v2_binary(self, body: bytes, header_length: int) -> tuple[bytes, int]:
        header = orjson.loads(body[:header_length])
        tensor = header["inputs"][0]
        features = np.frombuffer(body, "<f4", offset=header_length).reshape(tensor["shape"])
        probabilities, positives = self.model.predict(features)
        raw = [probabilities.tobytes(), positives.tobytes()]
        answer = orjson.dumps(self._v2_answer(probabilities, positives, raw))
        return b"".join([answer, *raw]), len(answer)

    def _v2_answer(
        self, probabilities: NDArray[np.float32], positives: NDArray[np.bool_], raw: Any
    ) -> dict[str, Any]:
        shape = list(probabilities.shape)
        outputs = []
        for index, (name, datatype, values) in enumerate(
            (("probabilities", "FP32", probabilities), ("labels", "BOOL", positives))
        ):
            output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
            if raw is None:
                output["data"] = values.ravel()
            else:
                output["parameters"] = {"binary_data_size": len(raw[index])}
            outputs.append(output)
        return {"model_name": self.name, "model_version": str(self.version), "outputs": outputs}


def _float32(values: Any) -> NDArray[np.float32]:
    return np.asarray(values, dtype=np.float32)


_work: Work | None = None


def work() -> Work:
    global _work
    if _work is None:
        _work = Work(Path(os.environ["BENCH_MODEL"]))
    return _work


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        work()  # the session is made before the first request
        await lifespan(receive, send)
        return
    body = await read_body(receive)
    if not body:  # the ready probe
        await send_constant(send)
        return
    path: str = scope["path"]
    headers = [*JSON_HEADERS]
    declared = dict(scope["headers"]).get(HEADER_LENGTH)
    if declared is not None:
        answer, header_length = work().v2_binary(body, int(declared))
        headers = [
            (b"content-type", b"application/octet-stream"),
            (HEADER_LENGTH, b"%d" % header_length),
        ]
    elif path == "/predict":
        answer = work().native(orjson.loads(body))
    elif path.startswith("/v2/"):
        answer = work().v2_json(orjson.loads(body))
    else:
        answer = work().tfserving(orjson.loads(body))
    headers.append((b"content-length", b"%d" % len(answer)))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
