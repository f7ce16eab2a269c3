"""What the tests of the codecs share: apps on a given repository, the native API's answers as
arrays (the reference every other protocol must match), and what a table-driven test needs of
any codec, read from the codec itself (a valid request, a path to send it to, its errors)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi.testclient import TestClient

from app.codecs.base import Codec, Operation
from app.config import Settings
from app.main import create_app
from tests.robustness.versions import copy_version
from tests.support import MODEL_NAME

LABELS = ["label_0", "label_1", "label_2"]


@contextmanager
def serving(model_dir: Path, **changes: Any) -> Iterator[TestClient]:
    """The real app, started on the repository at ``model_dir`` with these settings changed."""
    settings = Settings(model_dir=model_dir, model_name=MODEL_NAME, poll_interval=0, **changes)
    with TestClient(create_app(settings)) as client:
        yield client


@contextmanager
def serving_two_versions(repository: Path) -> Iterator[TestClient]:
    """The app on a writable repository holding versions 1 and 2 of the trained model."""
    copy_version(repository, 1, 2)
    with serving(repository) as client:
        yield client


def native_outputs(
    client: TestClient, rows: list[list[Any]], threshold: Any = None
) -> dict[str, np.ndarray]:
    """The native API's probabilities (float32) and decisions (bool) for the same rows."""
    body: dict[str, Any] = {"instances": rows}
    if threshold is not None:
        body["threshold"] = threshold
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    return {
        "probabilities": np.asarray(
            [[row["probabilities"][label] for label in LABELS] for row in predictions],
            dtype=np.float32,
        ),
        "labels": np.asarray([row["vector"] for row in predictions], dtype=bool),
    }


def assert_message_error(response: Any, status: int, fragment: str) -> None:
    """The standard protocols' error: the status, and a body that is ``{"error": "<message>"}``."""
    assert response.status_code == status, response.text
    error = response.json()
    assert list(error) == ["error"]
    assert isinstance(error["error"], str)
    assert fragment in error["error"]


PATH_VALUES = {"model": MODEL_NAME, "version": "1"}  # what the served model's paths name


def filled(codec: Codec, template: str) -> str:
    """A path template of ``codec`` addressed to the served model (and its version 1)."""
    for name, parameter in codec.path_parameters.items():
        template = template.replace(f"{{{name}}}", PATH_VALUES[parameter.names])
    return template


def inference_operation(codec: Codec) -> Operation | None:
    """The codec's first operation that reads a request body (its inference), if any."""
    return next((operation for operation in codec.operations if operation.reads_body), None)


def valid_body(operation: Operation) -> bytes:
    """The first example of the operation's request schema: a request the served model answers."""
    assert operation.request_model is not None
    examples = operation.request_model.model_json_schema()["examples"]
    return orjson.dumps(examples[0])


def error_message(codec: Codec, body: bytes) -> str:
    """The message of an error body, which must be exactly the codec's error envelope."""
    document = orjson.loads(body)
    envelope = codec.error_model.model_validate(document)
    assert envelope.model_dump(mode="json") == document, document
    return envelope.message
