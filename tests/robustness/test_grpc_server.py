"""The gRPC port of a real server (``python -m app``, two workers sharing it) under what a
hostile or busy world does: messages that are not what they claim, sizes and shapes that lie,
a new model version dropped in while gRPC calls keep coming, and HTTP connections past their
cap while an orchestrator probes gRPC.

One server for the module: two workers, a small HTTP connection cap, hot reload every 0.2 s.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from app.codecs.grpc import SERVICE
from app.codecs.oip_grpc import open_inference_grpc_pb2 as messages
from tests.app.codecs.grpc_calls import infer_request
from tests.robustness.servers import serving, wait_for
from tests.robustness.versions import copy_version
from tests.support import MODEL_NAME, REFERENCE_INPUTS, ServerProcess, free_port

MAX_CONNECTIONS = 8  # per worker
MiB = 1024 * 1024
MAX_ERROR_BYTES = 4096
INFER = f"/{SERVICE}/ModelInfer"


@pytest.fixture(scope="module")
def server(
    trained_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, str, Path]]:
    root = tmp_path_factory.mktemp("grpc-robustness")
    repository = root / "models"
    shutil.copytree(trained_repository, repository)
    port = free_port()
    with serving(
        repository,
        root / "server.log",
        poll_interval=0.2,
        grpc_port=str(port),
        workers="2",
        max_connections=str(MAX_CONNECTIONS),
    ) as process:
        wait_for(
            lambda: process.log().count("gRPC: listening") == 2, "both workers on gRPC", process
        )
        yield process, f"127.0.0.1:{port}", repository


def own_channel(address: str) -> grpc.Channel:
    """A channel on a connection of its own (no subchannel shared with other channels)."""
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def test_both_workers_share_the_port_and_fresh_connections_are_all_answered(
    server: tuple[ServerProcess, str, Path],
) -> None:
    process, address, _ = server
    assert process.log().count("gRPC: listening") == 2  # both bound it (SO_REUSEPORT)
    for _ in range(40):
        with own_channel(address) as channel:
            answer = channel.unary_unary(INFER)(
                infer_request(REFERENCE_INPUTS).SerializeToString(), timeout=30
            )
            assert messages.ModelInferResponse.FromString(answer).model_name == MODEL_NAME


def raw_with(shape: list[int], data: bytes, datatype: str = "FP32", **fields: Any) -> bytes:
    tensor = messages.ModelInferRequest.InferInputTensor(
        name="features", datatype=datatype, shape=shape
    )
    request = messages.ModelInferRequest(
        **{"model_name": MODEL_NAME, "inputs": [tensor], "raw_input_contents": [data], **fields}
    )
    return request.SerializeToString()


ROW = np.asarray([REFERENCE_INPUTS[0]], dtype=np.float32)
HOSTILE: list[tuple[str, bytes, set[grpc.StatusCode]]] = [
    ("random bytes", os.urandom(4096), {grpc.StatusCode.INVALID_ARGUMENT}),
    (
        "a truncated message",
        infer_request(REFERENCE_INPUTS).SerializeToString()[:-7],
        {grpc.StatusCode.INVALID_ARGUMENT},
    ),
    (
        "a message over the size limit",
        raw_with([1, 10], b"\0" * (9 * MiB)),
        {grpc.StatusCode.RESOURCE_EXHAUSTED},
    ),
    (
        "2**62 rows declared",
        raw_with([2**62, 10], ROW.tobytes()),
        {grpc.StatusCode.INVALID_ARGUMENT},
    ),
    ("a negative row count", raw_with([-5, 10], ROW.tobytes()), {grpc.StatusCode.INVALID_ARGUMENT}),
    (
        "a shape of 64 dimensions",
        raw_with([1] * 64, ROW.tobytes()),
        {grpc.StatusCode.INVALID_ARGUMENT},
    ),
    ("39 bytes for 40", raw_with([1, 10], ROW.tobytes()[:-1]), {grpc.StatusCode.INVALID_ARGUMENT}),
    (
        "NaN",
        raw_with([1, 10], np.full((1, 10), np.nan, np.float32).tobytes()),
        {grpc.StatusCode.INVALID_ARGUMENT},
    ),
    (
        "an unknown model of 1 MB",
        raw_with([1, 10], ROW.tobytes(), model_name="m" * MiB),
        {grpc.StatusCode.NOT_FOUND},
    ),
    (
        "a version of 1 MB",
        raw_with([1, 10], ROW.tobytes(), model_version="9" * MiB),
        {grpc.StatusCode.NOT_FOUND},
    ),
    (
        "a datatype of 1 MB",
        raw_with([1, 10], ROW.tobytes(), datatype="F" * MiB),
        {grpc.StatusCode.INVALID_ARGUMENT},
    ),
    (
        "no inputs",
        messages.ModelInferRequest(model_name=MODEL_NAME).SerializeToString(),
        {grpc.StatusCode.INVALID_ARGUMENT},
    ),
    (
        "BOOL values",
        raw_with([1, 10], ROW.tobytes(), datatype="BOOL"),
        {grpc.StatusCode.INVALID_ARGUMENT},
    ),
    (
        "10,000 parameters",
        infer_request(
            REFERENCE_INPUTS,
            parameters={
                f"p{i}": messages.InferParameter(string_param="x" * 50) for i in range(10_000)
            },
        ).SerializeToString(),
        {grpc.StatusCode.OK},
    ),
]


@pytest.mark.parametrize(
    ("message", "codes"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE]
)
def test_a_hostile_message_gets_a_clear_status_and_the_server_carries_on(
    server: tuple[ServerProcess, str, Path], message: bytes, codes: set[grpc.StatusCode]
) -> None:
    process, address, _ = server
    with own_channel(address) as channel:
        call = channel.unary_unary(INFER)
        try:
            call(message, timeout=60)
            code, details = grpc.StatusCode.OK, ""
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""  # type: ignore[attr-defined]
        assert code in codes, details[:500]
        assert len(details.encode()) <= MAX_ERROR_BYTES
        assert "Traceback" not in details
        follow_up = call(infer_request(REFERENCE_INPUTS).SerializeToString(), timeout=30)
        assert messages.ModelInferResponse.FromString(follow_up).outputs
    assert process.process.poll() is None


def test_a_version_dropped_in_under_grpc_load_fails_no_call(
    server: tuple[ServerProcess, str, Path],
) -> None:
    process, address, repository = server
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def load() -> None:
        with own_channel(address) as channel:
            call = channel.unary_unary(INFER)
            request = infer_request(
                np.tile(REFERENCE_INPUTS, (50, 1)), raw=True
            ).SerializeToString()
            while not stop.is_set():
                try:
                    answer = messages.ModelInferResponse.FromString(call(request, timeout=30))
                    versions.add(answer.model_version)
                except grpc.RpcError as error:
                    failures.append(f"{error.code()}: {error.details()}")  # type: ignore[attr-defined]

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: "1" in versions, "calls answered by version 1", process)
        copy_version(repository, 1, 2)
        wait_for(lambda: "2" in versions, "calls answered by version 2", process, timeout=60)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert versions == {"1", "2"}


def test_past_the_http_connection_cap_grpc_probes_still_answer(
    server: tuple[ServerProcess, str, Path],
) -> None:
    process, address, _ = server
    host, port = httpx.URL(process.base_url).host, httpx.URL(process.base_url).port
    held: list[socket.socket] = []
    try:
        # Idle connections until a new one is refused: the kernel hands them to either
        # worker, and each has its own cap.
        while len(held) < 50 * MAX_CONNECTIONS:
            held += [socket.create_connection((host, port), timeout=5) for _ in range(4)]
            if httpx.get(process.base_url + "/metadata", timeout=10).status_code == 503:
                break
        else:
            raise AssertionError(f"no 503 past {len(held)} connections\n{process.log()[-3000:]}")
        with own_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", SERVICE):
                answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
            call = channel.unary_unary(INFER)
            answer = call(infer_request(REFERENCE_INPUTS).SerializeToString(), timeout=30)
            assert messages.ModelInferResponse.FromString(answer).outputs
    finally:
        for connection in held:
            connection.close()
