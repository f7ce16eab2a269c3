"""Two MLServer custom runtimes serving our ONNX file: the peers the bench measures as
``mlserver-1`` (``OnnxMultilabelRuntime``: MLServer's NumpyCodec both ways, two outputs) and
``mlserver-list-1`` (``OnnxListRuntime``: the stronger setup, one FP32 output built from a plain
list).

Runs in the MLServer virtualenv (bench/peers/pins.py), started by ``mlserver start <folder>``
on a folder the bench writes (bench/.work/peers/mlserver-<variant>-repository): its
``settings.json`` sets ``parallel_workers`` to 0 (inference in the server process, as ours does)
and its ``model-settings.json`` names the class, the ONNX file (``parameters.uri``) and the
thresholds
(``parameters.extra.thresholds``). ``OnnxMultilabelRuntime`` answers V2
(``POST /v2/models/<name>/infer``) with the ``probabilities`` (FP32) and ``labels`` (BOOL)
tensors, as our V2 route does, decoding and encoding with MLServer's own NumPy codec;
``OnnxListRuntime`` answers the probabilities alone, as
``ResponseOutput(data=p.ravel().tolist())``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mlserver import MLModel  # type: ignore[import-untyped]
from mlserver.codecs import NumpyCodec  # type: ignore[import-untyped]
from mlserver.types import (  # type: ignore[import-untyped]
    InferenceRequest,
    InferenceResponse,
    ResponseOutput,
)
from mlserver.utils import get_model_uri  # type: ignore[import-untyped]

from bench.peers.onnx_model import OnnxMultilabel


class OnnxMultilabelRuntime(MLModel):  # type: ignore[misc]  # mlserver is untyped
    """An MLServer runtime: the decoding and encoding are MLServer's, the work is ours."""

    _model: OnnxMultilabel  # set by load(), which MLServer runs before any predict()

    async def load(self) -> bool:
        parameters = self.settings.parameters
        extra = (parameters.extra if parameters else None) or {}
        self._model = OnnxMultilabel(Path(await get_model_uri(self.settings)), extra["thresholds"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        features = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        probabilities, labels = self._model.predict(features)
        return InferenceResponse(
            id=payload.id,
            model_name=self.name,
            model_version=self.version,
            outputs=[
                NumpyCodec.encode_output("probabilities", probabilities),
                NumpyCodec.encode_output("labels", labels),
            ],
        )


class OnnxListRuntime(OnnxMultilabelRuntime):  # type: ignore[misc]
    """The stronger MLServer setup a user can write: the same input decoding, and one FP32
    output, the probabilities, built from a plain list (no NumpyCodec on the way out)."""

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        features = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        probabilities, _ = self._model.predict(features)
        return InferenceResponse(
            id=payload.id,
            model_name=self.name,
            model_version=self.version,
            outputs=[
                ResponseOutput(
                    name="probabilities",
                    datatype="FP32",
                    shape=list(probabilities.shape),
                    data=probabilities.ravel().tolist(),
                )
            ],
        )
