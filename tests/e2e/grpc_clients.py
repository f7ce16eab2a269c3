"""One real gRPC client, unmodified, asking the service for each case read on standard input;
the answers go to standard output, as JSON. A process per client: tritonclient's and KServe's
generated messages both register ``inference.*`` in protobuf's default pool, and one process
cannot hold both.

    python -m tests.e2e.grpc_clients triton|kserve HOST:PORT < cases.json

A case is ``{"rows": [[...]], "contents": "typed" | "raw", "id": "...", "parameters": {...}}``
(parameters optional: ``decision``, ``top_k``); an answer is ``{"model_name", "model_version",
"id", "raw", "parameters", "probabilities", "labels"}`` and, for decision "set",
``"label_sets"`` and ``"label_set_probabilities"``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np

MODEL = "multilabel"


def triton(address: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Raw contents through ``InferenceServerClient.infer`` (how tritonclient.grpc sends
    tensors); typed contents through the client's own generated stub and messages."""
    import grpc
    import tritonclient.grpc as client
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    triton_client = client.InferenceServerClient(address)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(address))
    answers = []
    for case in cases:
        rows = np.asarray(case["rows"], dtype=np.float32)
        parameters = case.get("parameters")
        if case["contents"] == "raw":
            tensor = client.InferInput("features", list(rows.shape), "FP32")
            tensor.set_data_from_numpy(rows)
            result = triton_client.infer(
                MODEL, [tensor], request_id=case["id"], parameters=parameters
            )
            answer = _answer(result.get_response())
            # The client's own reading of raw outputs, beside the message's.
            for name in answer["outputs"]:
                assert np.array_equal(result.as_numpy(name), np.asarray(answer[name])), name
        else:
            typed = service_pb2.ModelInferRequest.InferInputTensor(
                name="features", datatype="FP32", shape=list(rows.shape)
            )
            typed.contents.fp32_contents.extend(rows.ravel().tolist())
            request = service_pb2.ModelInferRequest(model_name=MODEL, id=case["id"], inputs=[typed])
            for key, value in (parameters or {}).items():
                _set_parameter(request.parameters[key], value)
            answer = _answer(stub.ModelInfer(request))
        answers.append(answer)
    return answers


def _set_parameter(parameter: Any, value: Any) -> None:
    """A request parameter in the field its JSON type says (an integer in int64_param)."""
    if isinstance(value, str):
        parameter.string_param = value
    else:
        parameter.int64_param = value


def _answer(response: Any) -> dict[str, Any]:
    """A ModelInferResponse of either client's messages, outputs by name."""
    answer: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
        "raw": bool(response.raw_output_contents),
        "parameters": {key: value.string_param for key, value in response.parameters.items()},
        "outputs": [output.name for output in response.outputs],
    }
    for index, output in enumerate(response.outputs):
        if response.raw_output_contents:
            dtype = np.float32 if output.datatype == "FP32" else np.bool_
            values = np.frombuffer(response.raw_output_contents[index], dtype=dtype)
        elif output.datatype == "FP32":
            values = np.asarray(output.contents.fp32_contents, dtype=np.float32)
        else:
            values = np.asarray(output.contents.bool_contents, dtype=np.bool_)
        answer[output.name] = values.reshape(list(output.shape)).tolist()
    return answer


def kserve(address: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """KServe's InferenceGRPCClient: typed contents from a list, raw from a numpy array."""
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    async def ask() -> list[dict[str, Any]]:
        client = InferenceGRPCClient(address, timeout=60)
        answers = []
        for case in cases:
            rows = np.asarray(case["rows"], dtype=np.float32)
            tensor = InferInput("features", list(rows.shape), "FP32")
            if case["contents"] == "raw":
                tensor.set_data_from_numpy(rows, binary_data=True)
            else:
                tensor = InferInput("features", list(rows.shape), "FP32", rows.ravel().tolist())
            request = InferRequest(
                MODEL, [tensor], request_id=case["id"], parameters=case.get("parameters")
            )
            response = await client.infer(request)
            answer = {
                "model_name": response.model_name,
                "model_version": response.model_version,
                "id": response.id,
                "raw": bool(response.raw_outputs) if hasattr(response, "raw_outputs") else None,
                "parameters": {  # the message's InferParameter values, as KServe keeps them
                    key: value.string_param for key, value in (response.parameters or {}).items()
                },
                "outputs": [output.name for output in response.outputs],
            }
            for output in response.outputs:
                answer[output.name] = output.as_numpy().tolist()
            answers.append(answer)
        await client.close()
        return answers

    return asyncio.run(ask())


if __name__ == "__main__":
    name, address = sys.argv[1], sys.argv[2]
    found = {"triton": triton, "kserve": kserve}[name](address, json.load(sys.stdin))
    json.dump(found, sys.stdout)
