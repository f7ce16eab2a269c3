"""Triton's own HTTP client, unmodified, against the service running as a real server process.

Three ways tritonclient exchanges tensors: its defaults (binary tensor data both ways: inputs
with ``set_data_from_numpy(x)``, outputs unnamed, so all binary), JSON only
(``binary_data=False`` both ways) and mixes of the two; for 1 row and 1000 rows, every answer
identical to the native ``/predict`` for the same rows; decision "set" read back the same ways.
Then the same client with an API key.
"""

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
LABELS = ["label_0", "label_1", "label_2"]
API_KEY = "e2e-key-8c1f0b2d"
FILE_KEY = "e2e-file-key-33aa"


def start(repository: Path, log: Path, **extra: str) -> Iterator[ServerProcess]:
    env = {
        "MULTILABEL_MODEL_DIR": str(repository),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_POLL_INTERVAL": "0",
        **extra,
    }
    with running_server(env, log, ready_path="/health/ready") as process:
        yield process


@pytest.fixture(scope="module")
def server(
    trained_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from start(trained_repository, tmp_path_factory.mktemp("tritonclient") / "server.log")


def triton_client(server: ServerProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.base_url.removeprefix("http://"))


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[triton.InferenceServerClient]:
    triton_client_ = triton_client(server)
    yield triton_client_
    triton_client_.close()


def test_server_and_model_report_live_and_ready(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL_NAME)
    assert client.is_model_ready(MODEL_NAME, "1")
    assert not client.is_model_ready(MODEL_NAME, "2")
    assert not client.is_model_ready("other")


def test_server_metadata_lists_the_binary_tensor_data_extension(
    client: triton.InferenceServerClient,
) -> None:
    metadata = client.get_server_metadata()
    assert metadata["name"] == "multilabel-service"
    assert metadata["extensions"] == ["binary_tensor_data"]


def test_model_metadata_describes_the_tensors(client: triton.InferenceServerClient) -> None:
    metadata = client.get_model_metadata(MODEL_NAME, "1")
    assert metadata["name"] == MODEL_NAME
    assert metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 10]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("probabilities", "FP32", [-1, 3]),
        ("labels", "BOOL", [-1, 3]),
        ("label_sets", "BOOL", [-1, -1, 3]),
        ("label_set_probabilities", "FP32", [-1, -1]),
    ]
    assert metadata["properties"]["label_set_source"] == "label_set_head"


def native_predictions(server: ServerProcess, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and 0/1 label vectors from the native ``/predict`` for the same rows."""
    response = httpx.post(
        server.base_url + "/predict", json={"instances": rows.tolist()}, timeout=30
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    probabilities = [list(row["probabilities"].values()) for row in predictions]
    vectors = [row["vector"] for row in predictions]
    return np.asarray(probabilities, dtype=np.float32), np.asarray(vectors, dtype=bool)


def rows_of(count: int) -> np.ndarray:
    rng = np.random.default_rng(count)
    rows = np.vstack([REFERENCE_INPUTS, rng.uniform(-2, 16, size=(count, 10))])[:count]
    return rows.astype(np.float32)


# mode: (input in binary, outputs requested: None for tritonclient's default, else name ->
# binary); the defaults send no outputs, which asks for every output in binary.
MODES: dict[str, tuple[bool, dict[str, bool] | None]] = {
    "defaults: binary in and out": (True, None),
    "JSON only": (False, {"probabilities": False, "labels": False}),
    "binary in, probabilities JSON, labels binary": (
        True,
        {"probabilities": False, "labels": True},
    ),
    "JSON in, probabilities binary, labels JSON": (False, {"probabilities": True, "labels": False}),
}


@pytest.mark.parametrize("count", [1, 1000])
@pytest.mark.parametrize(("binary_input", "outputs"), MODES.values(), ids=MODES)
def test_infer_reads_back_with_as_numpy_identical_to_the_native_api(
    client: triton.InferenceServerClient,
    server: ServerProcess,
    count: int,
    binary_input: bool,
    outputs: dict[str, bool] | None,
) -> None:
    rows = rows_of(count)
    features = triton.InferInput("features", list(rows.shape), "FP32")
    if binary_input:
        features.set_data_from_numpy(rows)  # tritonclient's default: binary_data=True
    else:
        features.set_data_from_numpy(rows, binary_data=False)
    requested = None
    if outputs is not None:
        requested = [
            triton.InferRequestedOutput(name, binary_data=binary)
            for name, binary in outputs.items()
        ]
    result = client.infer(MODEL_NAME, [features], outputs=requested, request_id=f"rows-{count}")
    probabilities = result.as_numpy("probabilities")
    labels = result.as_numpy("labels")
    assert probabilities.dtype == np.float32
    assert labels.dtype == np.bool_
    assert probabilities.shape == labels.shape == (count, 3)
    expected_probabilities, expected_labels = native_predictions(server, rows)
    np.testing.assert_array_equal(probabilities, expected_probabilities)
    np.testing.assert_array_equal(labels, expected_labels)
    response = result.get_response()
    assert response["id"] == f"rows-{count}"
    assert response["model_version"] == "1"
    binary = dict.fromkeys(OUTPUTS, True) if outputs is None else outputs
    for output in response["outputs"]:
        assert ("data" in output) is not binary[output["name"]]


@pytest.mark.parametrize("count", [1, 1000])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "JSON"])
def test_decision_set_reads_back_with_as_numpy_identical_to_the_native_api(
    client: triton.InferenceServerClient, server: ServerProcess, count: int, binary: bool
) -> None:
    rows = rows_of(count)
    features = triton.InferInput("features", list(rows.shape), "FP32")
    features.set_data_from_numpy(rows, binary_data=binary)
    requested = [
        triton.InferRequestedOutput(name, binary_data=binary)
        for name in ("labels", "label_sets", "label_set_probabilities")
    ]
    result = client.infer(
        MODEL_NAME, [features], outputs=requested, parameters={"decision": "set", "top_k": 2}
    )
    labels = result.as_numpy("labels")
    sets = result.as_numpy("label_sets")
    probabilities = result.as_numpy("label_set_probabilities")
    assert (labels.dtype, sets.dtype, probabilities.dtype) == (np.bool_, np.bool_, np.float32)
    assert (sets.shape, probabilities.shape) == ((count, 2, 3), (count, 2))
    response = httpx.post(
        server.base_url + "/predict",
        json={"instances": rows.tolist(), "decision": "set", "top_k": 2},
        timeout=30,
    )
    predictions = response.json()["predictions"]
    np.testing.assert_array_equal(labels, [row["vector"] for row in predictions])
    expected_sets = [
        [[label in top["labels"] for label in LABELS] for top in row["top_sets"]]
        for row in predictions
    ]
    np.testing.assert_array_equal(sets, expected_sets)
    np.testing.assert_array_equal(
        probabilities,
        np.asarray(
            [[top["probability"] for top in row["top_sets"]] for row in predictions],
            dtype=np.float32,
        ),
    )
    assert result.get_response()["parameters"] == {
        "decision": "set",
        "label_set_source": "label_set_head",
    }


def test_reference_input_turns_labels_0_and_1_on_and_2_off(
    client: triton.InferenceServerClient,
) -> None:
    features = triton.InferInput("features", [1, 10], "FP32")
    features.set_data_from_numpy(np.asarray(REFERENCE_INPUTS[:1], dtype=np.float32))
    result = client.infer(MODEL_NAME, [features], model_version="1")
    assert result.as_numpy("labels").tolist() == [[True, True, False]]


def test_a_threshold_parameter_travels_with_binary_tensors(
    client: triton.InferenceServerClient,
) -> None:
    features = triton.InferInput("features", [2, 10], "FP32")
    features.set_data_from_numpy(np.asarray(REFERENCE_INPUTS, dtype=np.float32))
    result = client.infer(MODEL_NAME, [features], parameters={"threshold": 0.0})
    assert result.as_numpy("labels").all()


@pytest.mark.parametrize(
    ("model", "datatype", "status", "fragment"),
    [
        ("other", "FP32", "404", "'other'"),
        (MODEL_NAME, "FP64", "400", "FP64"),
    ],
    ids=["unknown model", "FP64 features"],
)
def test_errors_reach_the_client_with_their_status_and_message(
    client: triton.InferenceServerClient, model: str, datatype: str, status: str, fragment: str
) -> None:
    rows = np.asarray(REFERENCE_INPUTS, dtype=np.float64 if datatype == "FP64" else np.float32)
    features = triton.InferInput("features", list(rows.shape), datatype)
    features.set_data_from_numpy(rows)
    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, [features])
    assert raised.value.status() == status
    assert fragment in raised.value.message()


@pytest.fixture(scope="module")
def keyed_server(
    trained_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server with API keys from the environment and from a keys file."""
    directory = tmp_path_factory.mktemp("keyed")
    keys_file = directory / "api-keys"
    keys_file.write_text(f"{FILE_KEY}\n")
    yield from start(
        trained_repository,
        directory / "server.log",
        MULTILABEL_API_KEYS=API_KEY,
        MULTILABEL_API_KEYS_FILE=str(keys_file),
        MULTILABEL_LOG_LEVEL="debug",
    )


def reference_features() -> triton.InferInput:
    features = triton.InferInput("features", [2, 10], "FP32")
    features.set_data_from_numpy(np.asarray(REFERENCE_INPUTS, dtype=np.float32))
    return features


@pytest.mark.parametrize("key", [API_KEY, FILE_KEY], ids=["environment key", "file key"])
def test_tritonclient_with_an_api_key_header_is_served(
    keyed_server: ServerProcess, key: str
) -> None:
    client = triton_client(keyed_server)
    headers = {"Authorization": f"Bearer {key}"}
    try:
        assert client.is_model_ready(MODEL_NAME, headers=headers)
        assert client.get_model_metadata(MODEL_NAME, headers=headers)["name"] == MODEL_NAME
        result = client.infer(MODEL_NAME, [reference_features()], headers=headers)
        assert result.as_numpy("labels")[0].tolist() == [True, True, False]
    finally:
        client.close()


@pytest.mark.parametrize(
    "headers",
    [None, {"Authorization": "Bearer not-a-key"}, {"Authorization": f"Basic {API_KEY}"}],
    ids=["no header", "wrong key", "wrong scheme"],
)
def test_tritonclient_without_a_valid_key_gets_401_but_health_stays_open(
    keyed_server: ServerProcess, headers: dict[str, str] | None
) -> None:
    client = triton_client(keyed_server)
    try:
        assert client.is_server_live(headers=headers)
        assert client.is_server_ready(headers=headers)
        with pytest.raises(InferenceServerException) as raised:
            client.infer(MODEL_NAME, [reference_features()], headers=headers)
        assert raised.value.status() == "401"
        with pytest.raises(InferenceServerException) as metadata:
            client.get_model_metadata(MODEL_NAME, headers=headers)
        assert metadata.value.status() == "401"
    finally:
        client.close()


def test_no_key_appears_in_the_servers_log(keyed_server: ServerProcess) -> None:
    """After requests with right, wrong and missing keys (the tests above, and these), at the
    debug level: the log names neither key, nor the wrong one sent."""
    wrong = "wrong-key-5e5e5e"
    for key in (API_KEY, FILE_KEY, wrong):
        httpx.get(keyed_server.base_url + "/metadata", headers={"Authorization": f"Bearer {key}"})
    log = keyed_server.log()
    assert '"status":401' in log.replace(" ", "")  # the requests were logged, keys aside
    for secret in (API_KEY, FILE_KEY, wrong):
        assert secret not in log
