"""The gRPC ceilings: a bare ``grpc.aio`` server answering ``ModelInfer`` on uvloop, as ours runs.

    python -m bench.grpc_ceiling PORT constant             # a constant reply: gRPC's own cost
    python -m bench.grpc_ceiling PORT work MODEL.onnx T,T,T  # the work, nothing else

``work`` parses the request, reads its raw contents with ``np.frombuffer``, runs the same ONNX
session as the peers (``bench/peers/onnx_model.py``), applies the thresholds, and answers raw
contents: what any server must do for the same answer. Neither checks anything, logs anything
or counts anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
import numpy as np
import uvloop

from app.codecs.oip_grpc.open_inference_grpc_pb2 import ModelInferRequest, ModelInferResponse
from bench.peers.onnx_model import OnnxMultilabel, parse_thresholds

SERVICE = "inference.GRPCInferenceService"
CONSTANT = ModelInferResponse(model_name="multilabel", model_version="1").SerializeToString()


def work_handler(model: OnnxMultilabel):  # type: ignore[no-untyped-def]
    async def infer(data: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
        request = ModelInferRequest.FromString(data)
        tensor = request.inputs[0]
        features = np.frombuffer(request.raw_input_contents[0], dtype="<f4").reshape(
            list(tensor.shape)
        )
        probabilities, positives = model.predict(features)
        response = ModelInferResponse(model_name=request.model_name, model_version="1")
        shape = probabilities.shape
        response.outputs.add(name="probabilities", datatype="FP32", shape=shape)
        response.outputs.add(name="labels", datatype="BOOL", shape=shape)
        response.raw_output_contents.extend([probabilities.tobytes(), positives.tobytes()])
        return response.SerializeToString()

    return infer


async def constant(data: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
    return CONSTANT


async def serve(port: int, handler) -> None:  # type: ignore[no-untyped-def]
    server = grpc.aio.server()
    methods = {"ModelInfer": grpc.unary_unary_rpc_method_handler(handler)}
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, methods)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    port, kind = int(sys.argv[1]), sys.argv[2]
    if kind == "constant":
        handler = constant
    else:
        handler = work_handler(OnnxMultilabel(Path(sys.argv[3]), parse_thresholds(sys.argv[4])))
    uvloop.run(serve(port, handler))


if __name__ == "__main__":
    main()
