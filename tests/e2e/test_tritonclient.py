"""Triton's own HTTP client, unmodified, against the service running as a real uvicorn process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.support import MODEL_NAME, REFERENCE_INPUTS, ServerProcess, running_server

OUTPUTS = ("probabilities", "labels")


@pytest.fixture(scope="module")
def server(
    trained_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {
        "MULTILABEL_MODEL_DIR": str(trained_repository),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_POLL_INTERVAL": "0",
    }
    log = tmp_path_factory.mktemp("tritonclient") / "server.log"
    with running_server(env, log, ready_path="/health/ready") as process:
        yield process


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[triton.InferenceServerClient]:
    triton_client = triton.InferenceServerClient(server.base_url.removeprefix("http://"))
    yield triton_client
    triton_client.close()


def json_input(rows: np.ndarray) -> triton.InferInput:
    """The rows as a JSON tensor (the service does not speak the binary data extension)."""
    tensor = triton.InferInput("features", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=False)
    return tensor


def json_outputs() -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=False) for name in OUTPUTS]


def test_server_and_model_report_live_and_ready(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL_NAME)
    assert client.is_model_ready(MODEL_NAME, "1")
    assert not client.is_model_ready(MODEL_NAME, "2")
    assert not client.is_model_ready("other")


def test_server_metadata_reads_back(client: triton.InferenceServerClient) -> None:
    metadata = client.get_server_metadata()
    assert metadata["name"] == "multilabel-service"
    assert metadata["extensions"] == []


def test_model_metadata_describes_the_tensors(client: triton.InferenceServerClient) -> None:
    metadata = client.get_model_metadata(MODEL_NAME, "1")
    assert metadata["name"] == MODEL_NAME
    assert metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 10]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("probabilities", "FP32", [-1, 3]),
        ("labels", "BOOL", [-1, 3]),
    ]


def native_predictions(server: ServerProcess, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and 0/1 label vectors from the native ``/predict`` for the same rows."""
    response = httpx.post(server.base_url + "/predict", json={"instances": rows.tolist()})
    predictions = response.json()["predictions"]
    probabilities = [list(row["probabilities"].values()) for row in predictions]
    vectors = [row["vector"] for row in predictions]
    return np.asarray(probabilities, dtype=np.float32), np.asarray(vectors, dtype=bool)


@pytest.mark.parametrize("n_rows", [1, 64])
def test_infer_reads_back_with_as_numpy_identical_to_the_native_api(
    client: triton.InferenceServerClient, server: ServerProcess, n_rows: int
) -> None:
    rng = np.random.default_rng(n_rows)
    rows = np.vstack([REFERENCE_INPUTS, rng.uniform(-2, 16, size=(n_rows, 10))])[:n_rows]
    rows = rows.astype(np.float32)
    result = client.infer(
        MODEL_NAME, [json_input(rows)], outputs=json_outputs(), request_id=f"rows-{n_rows}"
    )
    probabilities = result.as_numpy("probabilities")
    labels = result.as_numpy("labels")
    assert probabilities.dtype == np.float32
    assert labels.dtype == np.bool_
    assert probabilities.shape == labels.shape == (n_rows, 3)
    expected_probabilities, expected_labels = native_predictions(server, rows)
    np.testing.assert_array_equal(probabilities, expected_probabilities)
    np.testing.assert_array_equal(labels, expected_labels)
    assert result.get_response()["id"] == f"rows-{n_rows}"
    assert result.get_response()["model_version"] == "1"


def test_reference_input_turns_labels_0_and_1_on_and_2_off(
    client: triton.InferenceServerClient,
) -> None:
    rows = np.asarray(REFERENCE_INPUTS[:1], dtype=np.float32)
    result = client.infer(MODEL_NAME, [json_input(rows)], model_version="1", outputs=json_outputs())
    assert result.as_numpy("labels").tolist() == [[True, True, False]]


def test_binary_tensor_data_is_refused_with_a_clear_400(
    client: triton.InferenceServerClient,
) -> None:
    """tritonclient's defaults use the binary extension; the error says how to ask for JSON."""
    tensor = triton.InferInput("features", [1, 10], "FP32")
    tensor.set_data_from_numpy(np.asarray(REFERENCE_INPUTS[:1], dtype=np.float32))
    with pytest.raises(InferenceServerException) as raised:
        client.infer(MODEL_NAME, [tensor])
    assert raised.value.status() == "400"
    assert "binary_data=False" in raised.value.message()


def test_unknown_model_is_an_error_naming_it(client: triton.InferenceServerClient) -> None:
    rows = np.asarray(REFERENCE_INPUTS, dtype=np.float32)
    with pytest.raises(InferenceServerException) as raised:
        client.infer("other", [json_input(rows)], outputs=json_outputs())
    assert raised.value.status() == "404"
    assert "'other'" in raised.value.message()
