"""Calling the service's gRPC port with the codec's own messages: an app started with gRPC on
a free port, and calls that send and receive bytes, so that a test can send any bytes at all."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from fastapi.testclient import TestClient

from app.codecs.grpc import SERVICE
from app.codecs.oip_grpc import open_inference_grpc_pb2 as messages
from app.config import Settings
from app.main import create_app
from tests.support import MODEL_NAME, free_port

API_KEY = "grpc-test-key"
KEY = (("authorization", f"Bearer {API_KEY}"),)


@dataclass
class GrpcApp:
    """The real app, started, with gRPC on ``address``; ``http`` is its test client."""

    http: TestClient
    address: str
    channel: grpc.Channel

    def call(
        self, rpc: str, request: bytes, metadata: Sequence[tuple[str, str]] = KEY
    ) -> tuple[bytes, Any]:
        """The response bytes and the call (trailing metadata); raises grpc.RpcError."""
        method = self.channel.unary_unary(f"/{SERVICE}/{rpc}")
        response, call = method.with_call(request, metadata=metadata, timeout=30)
        return response, call

    def infer(self, request: messages.ModelInferRequest) -> messages.ModelInferResponse:
        response, _ = self.call("ModelInfer", request.SerializeToString())
        return messages.ModelInferResponse.FromString(response)

    def status(self, rpc: str, request: bytes, metadata: Sequence[tuple[str, str]] = KEY) -> Any:
        """The error a call ends with (it must end with one)."""
        try:
            self.call(rpc, request, metadata)
        except grpc.RpcError as error:
            return error
        raise AssertionError(f"{rpc} answered instead of failing")


@contextmanager
def grpc_app(model_dir: Path, **changes: Any) -> Iterator[GrpcApp]:
    """The app on ``model_dir`` with gRPC on a free port, API key ``API_KEY``, these changes."""
    port = free_port()
    settings = Settings(
        model_dir=model_dir,
        model_name=MODEL_NAME,
        poll_interval=0,
        grpc_port=port,
        api_keys=API_KEY,
        **changes,
    )
    with TestClient(create_app(settings)) as http:
        http.headers["authorization"] = f"Bearer {API_KEY}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield GrpcApp(http, f"127.0.0.1:{port}", channel)


def infer_request(rows: Any, *, raw: bool = False, **fields: Any) -> messages.ModelInferRequest:
    """A ModelInfer request for ``rows`` (float32), typed or raw."""
    values = np.asarray(rows, dtype=np.float32)
    tensor = messages.ModelInferRequest.InferInputTensor(
        name="features", datatype="FP32", shape=list(values.shape)
    )
    request = messages.ModelInferRequest(**{"model_name": MODEL_NAME, "inputs": [tensor], **fields})
    if raw:
        request.raw_input_contents.append(values.tobytes())
    else:
        tensor = request.inputs[0]
        tensor.contents.fp32_contents.extend(values.ravel().tolist())
    return request


def outputs_of(response: messages.ModelInferResponse) -> dict[str, np.ndarray]:
    """Each output as an array of its shape, from raw or typed contents."""
    found = {}
    for index, output in enumerate(response.outputs):
        shape = list(output.shape)
        if response.raw_output_contents:
            data = response.raw_output_contents[index]
            dtype = np.float32 if output.datatype == "FP32" else np.bool_
            found[output.name] = np.frombuffer(data, dtype=dtype).reshape(shape)
        elif output.datatype == "FP32":
            found[output.name] = np.asarray(output.contents.fp32_contents, np.float32).reshape(
                shape
            )
        else:
            found[output.name] = np.asarray(output.contents.bool_contents, bool).reshape(shape)
    return found


def threshold(value: Any) -> messages.InferParameter:
    """A parameter holding ``value`` in the field its Python type says."""
    if isinstance(value, bool):
        return messages.InferParameter(bool_param=value)
    if isinstance(value, int):
        return messages.InferParameter(int64_param=value)
    if isinstance(value, float):
        return messages.InferParameter(double_param=value)
    return messages.InferParameter(string_param=value)
