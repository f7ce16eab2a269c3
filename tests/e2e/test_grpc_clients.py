"""Triton's and KServe's own gRPC clients, unmodified, against the service running as a real
server process: each with 1 row and 1000 rows, with typed and with raw contents, deciding by
labels and by label set (``decision: "set"``, ``top_k: 2``), every answer identical to
``/predict``'s for the same rows. Each client runs in a process of its own
(``tests/e2e/grpc_clients.py``), once for all its cases.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support import MODEL_NAME, REPO_ROOT, ServerProcess, free_port, running_server

ROWS = np.random.default_rng(8).integers(0, 30, size=(1000, 10)).tolist()
SET_DECISION = {"decision": "set", "top_k": 2}
CASES = [
    {
        "rows": ROWS[:count],
        "contents": contents,
        "id": f"{contents}-{count}{'-set' if parameters else ''}",
        **({"parameters": parameters} if parameters else {}),
    }
    for count in (1, 1000)
    for contents in ("typed", "raw")
    for parameters in (None, SET_DECISION)
]
LABELS = ["label_0", "label_1", "label_2"]


@pytest.fixture(scope="module")
def server(
    trained_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    env = {
        "MULTILABEL_MODEL_DIR": str(trained_repository),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_POLL_INTERVAL": "0",
        "MULTILABEL_GRPC_PORT": str(port),
    }
    log = tmp_path_factory.mktemp("grpc-clients") / "server.log"
    with running_server(env, log, ready_path="/health/ready") as process:
        yield process, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def native(server: tuple[ServerProcess, str]) -> dict[tuple[int, bool], dict[str, np.ndarray]]:
    """/predict's answers for the same rows, by labels and by label set: the reference."""
    answers = {}
    for count in (1, 1000):
        for by_set in (False, True):
            body = {"instances": ROWS[:count], **(SET_DECISION if by_set else {})}
            response = httpx.post(server[0].base_url + "/predict", json=body, timeout=60)
            assert response.status_code == 200, response.text
            answers[count, by_set] = outputs_of_native(response.json()["predictions"])
    return answers


def outputs_of_native(predictions: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """A native answer as the Open Inference Protocol's outputs."""
    outputs = {
        "probabilities": np.asarray(
            [[row["probabilities"][label] for label in LABELS] for row in predictions],
            dtype=np.float32,
        ),
        "labels": np.asarray([row["vector"] for row in predictions], dtype=bool),
    }
    if "top_sets" in predictions[0]:
        outputs["label_sets"] = np.asarray(
            [
                [[label in top["labels"] for label in LABELS] for top in row["top_sets"]]
                for row in predictions
            ]
        )
        outputs["label_set_probabilities"] = np.asarray(
            [[top["probability"] for top in row["top_sets"]] for row in predictions],
            dtype=np.float32,
        )
    return outputs


def asked(client: str, address: str) -> list[dict[str, Any]]:
    run = subprocess.run(
        [sys.executable, "-m", "tests.e2e.grpc_clients", client, address],
        input=json.dumps(CASES),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answers: list[dict[str, Any]] = json.loads(run.stdout)
    return answers


@pytest.fixture(scope="module", params=["triton", "kserve"])
def answers(request: pytest.FixtureRequest, server: tuple[ServerProcess, str]) -> Any:
    return request.param, asked(request.param, server[1])


@pytest.mark.parametrize("case", range(len(CASES)), ids=[case["id"] for case in CASES])
def test_each_client_gets_the_native_apis_answer(
    answers: tuple[str, list[dict[str, Any]]],
    native: dict[tuple[int, bool], dict[str, np.ndarray]],
    case: int,
) -> None:
    client, found = answers
    answer, sent = found[case], CASES[case]
    by_set = "parameters" in sent
    expected = native[len(sent["rows"]), by_set]
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (
        MODEL_NAME,
        "1",
        sent["id"],
    )
    assert answer["outputs"] == list(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(
            np.asarray(answer[name], dtype=values.dtype), values, f"{client}: {name}"
        )
    if by_set:
        assert answer["parameters"] == {"decision": "set", "label_set_source": "label_set_head"}
    else:
        assert answer["parameters"] == {}
