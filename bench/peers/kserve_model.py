"""KServe's ModelServer serving our ONNX file: the peer the bench measures as ``kserve-1``.

    python -m bench.peers.kserve_model --model_name multilabel --onnx .../model.onnx \\
        --thresholds 0.5,0.5,0.5 --http_port 8080 --grpc_port 8081

Runs in the KServe virtualenv (bench/peers/pins.py). V1 (``POST /v1/models/<name>:predict``
with ``{"instances": rows}``) answers the probabilities, as TF Serving's default signature and
our ``:predict`` do; V2 (``POST /v2/models/<name>/infer``) answers the ``probabilities`` (FP32)
and ``labels`` (BOOL) tensors, as our V2 route does. Everything else is KServe's default: one
uvicorn worker, its per-request latency log line and metrics.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from kserve import (  # type: ignore[import-untyped]
    InferOutput,
    InferRequest,
    InferResponse,
    Model,
    ModelServer,
)
from kserve.model_server import (  # type: ignore[import-untyped]
    parser as model_server_parser,
)
from kserve.utils.utils import generate_uuid  # type: ignore[import-untyped]

from bench.peers.onnx_model import OnnxMultilabel, parse_thresholds


class OnnxMultilabelModel(Model):  # type: ignore[misc]  # kserve is untyped
    """A KServe custom model: the decoding and encoding are KServe's, the work is ours."""

    def __init__(self, name: str, onnx_path: Path, thresholds: list[float]):
        super().__init__(name)
        self._onnx_path = onnx_path
        self._thresholds = thresholds
        self._model: OnnxMultilabel | None = None

    def load(self) -> bool:
        self._model = OnnxMultilabel(self._onnx_path, self._thresholds)
        self.ready = True
        return self.ready

    async def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        if self._model is None:
            raise RuntimeError("predict called before load")
        if isinstance(payload, InferRequest):
            return self._predict_v2(self._model, payload)
        features = np.asarray(payload["instances"], dtype=np.float32)
        probabilities, _ = self._model.predict(features)
        return {"predictions": probabilities.tolist()}

    def _predict_v2(self, model: OnnxMultilabel, payload: InferRequest) -> InferResponse:
        features = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
        probabilities, labels = model.predict(features)
        if payload.from_grpc:
            # Over gRPC, KServe writes outputs given as arrays only as raw contents.
            outputs = [
                InferOutput("probabilities", list(probabilities.shape), "FP32"),
                InferOutput("labels", list(labels.shape), "BOOL"),
            ]
            outputs[0].set_data_from_numpy(probabilities, binary_data=True)
            outputs[1].set_data_from_numpy(labels, binary_data=True)
        else:
            outputs = [
                InferOutput("probabilities", list(probabilities.shape), "FP32", probabilities),
                InferOutput("labels", list(labels.shape), "BOOL", labels),
            ]
        return InferResponse(
            # KServe's own runtimes answer a request without an id with a fresh one.
            response_id=payload.id or generate_uuid(),
            model_name=self.name,
            infer_outputs=outputs,
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )


def main() -> None:
    # KServe's own parser (ports, workers) plus the two things this model needs.
    parser = argparse.ArgumentParser(parents=[model_server_parser])
    parser.add_argument("--onnx", type=Path, required=True, help="the served model.onnx")
    parser.add_argument("--thresholds", type=parse_thresholds, required=True)
    args, _ = parser.parse_known_args()
    model = OnnxMultilabelModel(args.model_name, args.onnx, args.thresholds)
    model.load()
    ModelServer().start([model])


if __name__ == "__main__":
    main()
