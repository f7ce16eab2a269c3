"""The Open Inference Protocol (KServe V2) REST API, as Triton's and KServe's clients speak it,
with Triton's binary tensor data extension.

The model takes one input, ``features`` (FP32 [rows, features]), and gives two outputs:
``probabilities`` (FP32 [rows, labels]) and ``labels`` (BOOL [rows, labels], each probability at
or above its threshold). Tensors travel as JSON, or as raw little-endian bytes after the JSON
header (``Inference-Header-Content-Length``), each input and output choosing for itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from app.codecs.base import (
    MESSAGE_ERROR_DESCRIPTIONS,
    Call,
    Codec,
    MessageError,
    Operation,
    Reply,
    decode_json,
    json_reply,
    model_in_path,
    model_operations,
    render_message_error,
    validate_envelope,
)
from app.codecs.v2_schemas import (
    InferenceRequest as V2Request,
)
from app.codecs.v2_schemas import (
    InferenceResponse,
    MetadataModelResponse,
    MetadataServerResponse,
    MetadataTensor,
    ModelReadyResponse,
    RequestInput,
    ServerLiveResponse,
    ServerReadyResponse,
)
from app.dataplane import (
    INPUT_NAME,
    OUTPUTS,
    InferenceRequest,
    InferenceResult,
    Output,
    outputs_named,
    thresholds_for,
)
from app.errors import BadRequest, InvalidRequest
from app.features import (
    features_from_bytes,
    features_from_flat,
    features_from_rows,
    may_contain_booleans,
)
from app.inference import Model
from app.version import SERVICE_NAME, SERVICE_VERSION

HEADER_LENGTH = b"inference-header-content-length"
BINARY_MEDIA_TYPE = b"application/octet-stream"
EXTENSIONS = ["binary_tensor_data"]
INPUT_DATATYPE = "FP32"
OUTPUT_DATATYPES: dict[Output, str] = {"probabilities": "FP32", "labels": "BOOL"}
PLATFORMS = {"onnx": "onnxruntime_onnx", "keras": "keras"}
_WIRE_DTYPES: dict[Output, np.dtype[Any]] = {
    "probabilities": np.dtype("<f4"),
    "labels": np.dtype(np.bool_),  # one byte per element, as the extension defines BOOL
}


@dataclass(frozen=True, slots=True)
class Answer:
    """How the request wants its answer: its id, and each output with whether it is binary."""

    id: str | None
    outputs: tuple[tuple[Output, bool], ...]


async def infer(call: Call) -> Reply:
    """Probabilities and thresholded labels for a [rows, features] tensor."""
    dataplane = call.dataplane
    model = model_in_path(call)
    header, binary = _split_body(call)
    payload = validate_envelope(V2Request, header)
    tensor = _the_input(payload, model, binary)
    rows = tensor.shape[0]
    thresholds = thresholds_for(model, payload.parameters.threshold, field="parameters.threshold")
    outputs = _outputs(payload)
    answer = Answer(
        payload.id,
        tuple((name, _binary_output(payload, index)) for index, name in enumerate(outputs)),
    )

    def decode() -> InferenceRequest:
        features = _features(tensor, binary, model, call.body)
        return InferenceRequest(model, features, thresholds, outputs)

    body, header_length = await dataplane.infer(rows, decode, lambda r: _encode(r, answer))
    served = (model.name, model.version)
    if header_length is None:
        return Reply(body, rows=rows, model=served)
    headers = ((HEADER_LENGTH, b"%d" % header_length),)
    return Reply(body, media_type=BINARY_MEDIA_TYPE, headers=headers, rows=rows, model=served)


def _split_body(call: Call) -> tuple[Any, memoryview]:
    """The JSON header, and the binary data after it (empty without the extension)."""
    declared = call.headers.get(HEADER_LENGTH)
    if declared is None:
        return decode_json(call.body), memoryview(b"")
    if not (declared.isdigit() and len(declared) <= 12):
        raise BadRequest(
            "Inference-Header-Content-Length must be a non-negative integer, got "
            f"{declared[:32].decode(errors='replace')!r}"
        )
    length = int(declared)
    if length > len(call.body):
        raise BadRequest(
            f"Inference-Header-Content-Length is {length} but the body has only "
            f"{len(call.body)} bytes"
        )
    body = memoryview(call.body)
    return decode_json(bytes(body[:length])), body[length:]


def _the_input(payload: V2Request, model: Model, binary: memoryview) -> RequestInput:
    """The one input tensor, with its name, datatype, shape and binary size as the model
    declares them (all cheap checks, made before the request is admitted)."""
    if len(payload.inputs) != 1:
        raise InvalidRequest(
            f"expected one input tensor, {INPUT_NAME!r}, got {len(payload.inputs)}",
            field="inputs",
        )
    tensor = payload.inputs[0]
    if tensor.name != INPUT_NAME:
        raise InvalidRequest(
            f"unknown input {tensor.name!r}; the model's input is {INPUT_NAME!r}",
            field="inputs.0.name",
        )
    if tensor.datatype != INPUT_DATATYPE:
        raise InvalidRequest(
            f"input {INPUT_NAME!r} has datatype {INPUT_DATATYPE}, got {tensor.datatype!r}",
            field="inputs.0.datatype",
        )
    shape, width = tensor.shape, model.n_features
    if not (
        isinstance(shape, list)
        and len(shape) == 2
        and all(type(size) is int for size in shape)
        and shape[1] == width
        and shape[0] >= 0
    ):
        raise InvalidRequest(f"shape must be [rows, {width}], got {shape}", field="inputs.0.shape")
    _check_binary_size(tensor, shape[0] * width * 4, binary)
    return tensor


def _check_binary_size(tensor: RequestInput, expected: int, binary: memoryview) -> None:
    """The binary data after the JSON header is exactly what the input declares."""
    size = tensor.parameters.binary_data_size
    if size is None:
        if binary:
            raise BadRequest(
                f"{len(binary)} bytes follow the JSON header but no input declares "
                "parameters.binary_data_size"
            )
        return
    if tensor.data is not None:
        raise InvalidRequest(
            "inputs.0: give either data or parameters.binary_data_size, not both",
            field="inputs.0.data",
        )
    if size != expected:
        raise BadRequest(
            f"inputs.0.parameters.binary_data_size is {size} but shape {tensor.shape} of "
            f"{INPUT_DATATYPE} needs {expected} bytes",
            field="inputs.0.parameters.binary_data_size",
        )
    if len(binary) != expected:
        raise BadRequest(
            f"the body has {len(binary)} bytes after the JSON header but the inputs declare "
            f"{expected}"
        )


def _features(tensor: RequestInput, binary: memoryview, model: Model, body: bytes) -> Any:
    """The input tensor as a float32 matrix: from the binary data, or from JSON data, flat in
    row-major order or nested by row."""
    rows, names = tensor.shape[0], model.metadata.features
    if tensor.parameters.binary_data_size is not None:
        return features_from_bytes(binary, rows, names)
    data = tensor.data
    if not isinstance(data, list):
        kind = "missing" if data is None else f"a {type(data).__name__}"
        raise InvalidRequest(f"inputs.0.data must be a list, got {kind}", field="inputs.0.data")
    booleans = _booleans_possible(data, body)
    if data and isinstance(data[0], list):
        if len(data) != rows:
            raise InvalidRequest(
                f"data has {len(data)} rows but shape says {rows}", field="inputs.0.data"
            )
        return features_from_rows(
            data, names, max_rows=rows, booleans_possible=booleans, what="inputs.0.data"
        )
    return features_from_flat(data, rows, names, booleans_possible=booleans)


def _booleans_possible(data: list[Any], body: bytes) -> bool:
    """Whether the tensor data may hold booleans (numpy would read them as 1 and 0).

    tritonclient's JSON requests always hold one (``"binary_data": false``), which would send
    every value through the value-by-value check; the types of flat data are collected at C
    speed instead.
    """
    if not may_contain_booleans(body):
        return False
    if data and not isinstance(data[0], list):
        return bool in set(map(type, data))
    return True


def _outputs(payload: V2Request) -> tuple[Output, ...]:
    if not payload.outputs:
        return OUTPUTS
    return outputs_named([output.name for output in payload.outputs], field="outputs")


def _binary_output(payload: V2Request, position: int) -> bool:
    """An output's own ``binary_data`` if it says, else the request's ``binary_data_output``."""
    if payload.outputs:
        own = payload.outputs[position].parameters.binary_data
        if own is not None:
            return own
    return payload.parameters.binary_data_output


def _encode(result: InferenceResult, answer: Answer) -> tuple[bytes, int | None]:
    """The response document, with binary outputs' bytes after it; and the header length
    when there are binary outputs."""
    model = result.model
    tensors = {"probabilities": result.probabilities, "labels": result.positives}
    shape = list(result.probabilities.shape)
    document: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version)}
    if answer.id is not None:
        document["id"] = answer.id
    outputs: list[dict[str, Any]] = []
    raw: list[bytes] = []
    for name, binary in answer.outputs:
        output: dict[str, Any] = {"name": name, "datatype": OUTPUT_DATATYPES[name], "shape": shape}
        if binary:
            data = tensors[name].astype(_WIRE_DTYPES[name], copy=False).tobytes()
            output["parameters"] = {"binary_data_size": len(data)}
            raw.append(data)
        else:
            output["data"] = tensors[name].ravel()
        outputs.append(output)
    document["outputs"] = outputs
    header = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    if not raw:
        return header, None
    return b"".join([header, *raw]), len(header)


async def server_live(call: Call) -> Reply:
    """200 while the process runs."""
    return json_reply({"live": True})


async def server_ready(call: Call) -> Reply:
    """200 once a version of the served model is loaded, else 503."""
    ready = call.dataplane.repository.ready
    return json_reply({"ready": ready}, 200 if ready else 503)


async def server_metadata(call: Call) -> Reply:
    """The server's name, version and protocol extensions."""
    return json_reply({"name": SERVICE_NAME, "version": SERVICE_VERSION, "extensions": EXTENSIONS})


async def model_metadata(call: Call) -> Reply:
    """The model's input and outputs (name, datatype, shape) and its loaded versions."""
    model = model_in_path(call)
    meta = model.metadata
    body = MetadataModelResponse(
        name=model.name,
        versions=[str(version) for version in call.dataplane.repository.snapshot.models],
        platform=PLATFORMS[model.backend_name],
        inputs=[
            MetadataTensor(name=INPUT_NAME, datatype=INPUT_DATATYPE, shape=[-1, model.n_features])
        ],
        outputs=[
            MetadataTensor(name=name, datatype=datatype, shape=[-1, len(meta.labels)])
            for name, datatype in OUTPUT_DATATYPES.items()
        ],
        properties={
            "features": ",".join(meta.features),
            "labels": ",".join(meta.labels),
            "thresholds": ",".join(str(threshold) for threshold in meta.thresholds),
        },
    )
    return json_reply(body.model_dump())


async def model_ready(call: Call) -> Reply:
    """200 when the model (or that version) is loaded; 404 unknown, 503 not loaded yet."""
    return json_reply({"name": model_in_path(call).name, "ready": True})


_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ServerReadyResponse, "description": "No model loaded"}
}

CODEC = Codec(
    name="v2",
    tag="Open Inference Protocol (V2)",
    operations=[
        *model_operations(
            "/v2/models",
            "POST",
            "/infer",
            infer,
            summary="Infer",
            request_model=V2Request,
            response_model=InferenceResponse,
            request_media={
                "application/octet-stream": {
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "description": "Binary tensor data extension: the JSON request of "
                        "Inference-Header-Content-Length bytes, then each binary input's bytes.",
                    }
                }
            },
            responses={
                200: {
                    "description": "JSON, or with binary outputs the JSON answer of "
                    "Inference-Header-Content-Length bytes followed by each binary output's bytes",
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                }
            },
            errors=(400, 401, 404, 408, 413, 415, 503),
        ),
        Operation(
            "GET", "/v2/health/live", server_live, "Server live", ServerLiveResponse, public=True
        ),
        Operation(
            "GET",
            "/v2/health/ready",
            server_ready,
            "Server ready",
            ServerReadyResponse,
            public=True,
            responses=_NOT_READY,
        ),
        *(
            Operation(
                "GET",
                path,
                server_metadata,
                "Server metadata",
                MetadataServerResponse,
                errors=(401,),
            )
            for path in ("/v2", "/v2/")
        ),
        *model_operations(
            "/v2/models",
            "GET",
            "",
            model_metadata,
            summary="Model metadata",
            response_model=MetadataModelResponse,
            errors=(401, 404, 503),
        ),
        *model_operations(
            "/v2/models",
            "GET",
            "/ready",
            model_ready,
            summary="Model ready",
            response_model=ModelReadyResponse,
            errors=(401, 404, 503),
        ),
    ],
    render_error=render_message_error,
    error_model=MessageError,
    error_descriptions=MESSAGE_ERROR_DESCRIPTIONS,
    binary_media_types=frozenset({BINARY_MEDIA_TYPE}),
)
