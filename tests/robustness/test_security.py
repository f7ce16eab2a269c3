"""Loading is safe (Keras safe mode, no unpickling, hashes verified) and no error body shows
the server's internals, even when no model could be loaded."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from app.artifact import KERAS_FILE, ONNX_FILE, ArtifactError, version_path
from app.inference import BackendName, load_model
from tests.robustness.contract import assert_error_envelope, assert_no_internals
from tests.robustness.operations import OPERATIONS, fill_path
from tests.robustness.servers import predict_body
from tests.robustness.versions import (
    broken_version,
    copy_version,
    shift_parity_reference,
    update_hash,
)
from tests.support import MODEL_NAME, REFERENCE_INPUTS, running_server

BACKENDS: list[BackendName] = ["onnx", "keras"]
# Audit events of deserializers that can run code: unpickling a global, unmarshalling code.
CODE_LOADING_EVENTS = ("pickle.find_class", "marshal.loads")
_recorded: list[str] | None = None


def _record(event: str, args: object) -> None:
    if _recorded is not None and event in CODE_LOADING_EVENTS:
        _recorded.append(event)


sys.addaudithook(_record)  # hooks cannot be removed; this one records only when asked


@contextmanager
def code_loading_events() -> Iterator[list[str]]:
    global _recorded
    _recorded = []
    try:
        yield _recorded
    finally:
        _recorded = None


def keras_model_with_a_python_lambda(path: Path) -> None:
    import keras

    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Lambda(lambda x: x * 2.0),  # stored as marshalled bytecode
            keras.layers.Dense(3, activation="sigmoid"),
        ]
    )
    model.save(path)


def test_the_keras_backend_refuses_a_model_that_would_run_code(repository: Path) -> None:
    version = copy_version(repository, 1, 2)
    keras_model_with_a_python_lambda(version / KERAS_FILE)
    update_hash(version, KERAS_FILE)
    with pytest.raises(ArtifactError, match="cannot load the model file") as raised:
        load_model(version, backend="keras")
    assert "Lambda" in str(raised.value.__cause__)  # refused by safe mode, not as corrupt
    import keras

    with code_loading_events() as events:  # the same file, loaded unsafely, runs bytecode
        keras.saving.load_model(version / KERAS_FILE, compile=False, safe_mode=False)
    assert "marshal.loads" in events


@pytest.mark.parametrize("backend", BACKENDS)
def test_loading_a_version_unpickles_and_unmarshals_nothing(
    trained_version: Path, backend: BackendName
) -> None:
    load_model(trained_version, backend=backend)  # first load: imports (which unmarshal) done
    with code_loading_events() as events:
        model = load_model(trained_version, backend=backend)
    assert events == []
    assert model.predict(np.asarray(REFERENCE_INPUTS, dtype=np.float32)).positives.shape == (2, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_network_tampered_with_but_well_formed_is_refused_by_its_hash(
    repository: Path, backend: BackendName
) -> None:
    version = version_path(repository, MODEL_NAME, 1)
    network = onnx.load(version / ONNX_FILE)
    weights = network.graph.initializer[0]
    weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights) + 0.5, weights.name))
    onnx.save(network, version / ONNX_FILE)
    onnx.checker.check_model(onnx.load(version / ONNX_FILE))  # still a valid network
    with pytest.raises(ArtifactError, match=f"{ONNX_FILE} does not match its SHA-256"):
        load_model(version, backend=backend)


# Without a model: probes that say so, and the operations that need one, answer 503.
PROBES = {"/health", "/health/ready", "/v2/health/ready"}
NEED_THE_MODEL = PROBES | {"/metadata", "/predict"}


def status_without_a_model(template: str) -> int:
    return 503 if template in NEED_THE_MODEL or "{name}" in template else 200


def test_without_a_loadable_model_operations_say_503_and_no_answer_shows_internals(
    repository: Path, tmp_path: Path
) -> None:
    """Every operation of /openapi.json, on a server whose only version was rejected."""
    broken_version(repository, 1, 2, shift_parity_reference)
    shutil.rmtree(version_path(repository, MODEL_NAME, 1))
    env = {
        "MULTILABEL_MODEL_DIR": str(repository),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_POLL_INTERVAL": "0",
    }
    assert len([t for t in OPERATIONS if status_without_a_model(t[1]) == 503]) > len(PROBES)
    with running_server(env, tmp_path / "server.log") as server:
        for method, template in OPERATIONS:
            path = fill_path(template, 1)
            body = predict_body(REFERENCE_INPUTS) if method == "POST" else None
            response = httpx.request(
                method,
                server.base_url + path,
                content=body,
                headers={"content-type": "application/json"},
            )
            expected = status_without_a_model(template)
            assert response.status_code == expected, (method, path, response.text)
            if expected == 503 and template not in PROBES:
                assert "not ready" in str(assert_error_envelope(path, response))
            assert_no_internals(response, repository)
