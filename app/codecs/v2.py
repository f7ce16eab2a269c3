"""The Open Inference Protocol (KServe V2) REST API, as Triton's and KServe's clients speak it,
with Triton's binary tensor data extension.

The model takes one input, ``features`` (FP32 [rows, features]), and gives two outputs:
``probabilities`` (FP32 [rows, labels]) and ``labels`` (BOOL [rows, labels], each probability at
or above its threshold). With the request parameter ``decision: "set"`` (and ``top_k``),
``labels`` is each row's most probable label set and two more outputs rank the sets
(``label_sets``, ``label_set_probabilities``: see ``app.codecs.oip``). Tensors travel as JSON,
or as raw little-endian bytes after the JSON header (``Inference-Header-Content-Length``), each
input and output choosing for itself.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.codecs import oip
from app.codecs.base import (
    MESSAGE_ERROR_DESCRIPTIONS,
    MODEL_PARAMETERS,
    Call,
    Codec,
    MessageError,
    Operation,
    Reply,
    decode_json,
    json_reply,
    may_contain_booleans,
    model_in_path,
    model_operations,
    render_message_error,
    validate_envelope,
)
from app.codecs.json_numbers import Bulk, decode_json_numbers
from app.codecs.v2_schemas import (
    InferenceRequest as V2Request,
)
from app.codecs.v2_schemas import (
    InferenceResponse,
    MetadataModelResponse,
    MetadataServerResponse,
    ModelReadyResponse,
    ServerLiveResponse,
    ServerReadyResponse,
)
from app.dataplane import Fields, InferenceRequest, InferenceResult, Tensor
from app.errors import BadRequest, InvalidRequest
from app.version import SERVICE_NAME, SERVICE_VERSION

HEADER_LENGTH = b"inference-header-content-length"
BINARY_MEDIA_TYPE = b"application/octet-stream"
EXTENSIONS = ["binary_tensor_data"]
FIELDS = Fields(
    thresholds="parameters.threshold", decision="parameters.decision", top_k="parameters.top_k"
)
DATA = (Bulk(("inputs", 0, "data"), flat=True),)  # the one input's values, flat or by row


async def infer(call: Call) -> Reply:
    """Probabilities and thresholded labels for a [rows, features] tensor."""
    header, binary = _split_body(call)
    payload = validate_envelope(V2Request, header)
    request = InferenceRequest(
        _tensors(payload, binary, call.body),
        model_name=call.path_params["name"],
        model_version=call.path_params.get("version"),
        thresholds=payload.parameters.threshold,
        outputs=[output.name for output in payload.outputs] if payload.outputs else None,
        decision=payload.parameters.decision,
        top_k=payload.parameters.top_k,
        id=payload.id,
        fields=FIELDS,
    )
    result = await call.dataplane.infer(request)
    as_binary = _binary_outputs(payload, len(result.outputs))
    body, header_length = await call.dataplane.render(result.rows, _encode, result, as_binary)
    served = (result.model.name, result.model.version)
    if header_length is None:
        return Reply(body, rows=result.rows, model=served)
    headers = ((HEADER_LENGTH, b"%d" % header_length),)
    return Reply(
        body, media_type=BINARY_MEDIA_TYPE, headers=headers, rows=result.rows, model=served
    )


def _split_body(call: Call) -> tuple[Any, memoryview]:
    """The JSON header, and the binary data after it (empty without the extension)."""
    declared = call.headers.get(HEADER_LENGTH)
    if declared is None:
        return decode_json_numbers(call.body, DATA, call.dataplane.max_rows), memoryview(b"")
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


def _tensors(payload: V2Request, binary: memoryview, body: bytes) -> list[Tensor]:
    """The input tensors, each with its JSON data or its share of the binary data after the
    header, which must be exactly what the inputs declare."""
    tensors = []
    offset = 0
    for index, given in enumerate(payload.inputs):
        field = f"inputs.{index}"
        size = given.parameters.binary_data_size
        if size is None:
            data, data_field = given.data, f"{field}.data"
        else:
            if given.data is not None:
                raise InvalidRequest(
                    f"{field}: give either data or parameters.binary_data_size, not both",
                    field=f"{field}.data",
                )
            data = binary[offset : offset + size]
            data_field = f"{field}.parameters.binary_data_size"
            offset += size
        tensor = Tensor(given.name, given.datatype, given.shape, data, field, data_field)
        tensor.booleans_possible = isinstance(data, list) and may_contain_booleans(body)
        tensors.append(tensor)
    if offset != len(binary):
        if not offset:
            raise BadRequest(
                f"{len(binary)} bytes follow the JSON header but no input declares "
                "parameters.binary_data_size"
            )
        raise BadRequest(
            f"the body has {len(binary)} bytes after the JSON header but the inputs declare "
            f"{offset}"
        )
    return tensors


def _binary_outputs(payload: V2Request, count: int) -> list[bool]:
    """Whether each output goes as binary data: its own ``binary_data`` if it says, else the
    request's ``binary_data_output``."""
    default = payload.parameters.binary_data_output
    if not payload.outputs:
        return [default] * count
    own = [output.parameters.binary_data for output in payload.outputs]
    return [default if binary is None else binary for binary in own]


def _encode(result: InferenceResult, binary_outputs: list[bool]) -> tuple[bytes, int | None]:
    """The response document, with binary outputs' bytes after it; and the header length
    when there are binary outputs."""
    model = result.model
    document: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version)}
    if result.id is not None:
        document["id"] = result.id
    parameters = oip.answer_parameters(result)
    if parameters is not None:
        document["parameters"] = parameters
    outputs: list[dict[str, Any]] = []
    raw: list[bytes] = []
    for (name, values), binary in zip(oip.output_tensors(result), binary_outputs, strict=True):
        output: dict[str, Any] = {
            "name": name,
            "datatype": oip.OUTPUT_DATATYPES[name],
            "shape": list(values.shape),
        }
        if binary:
            data = oip.raw_bytes(name, values)
            output["parameters"] = {"binary_data_size": len(data)}
            raw.append(data)
        else:
            output["data"] = values.ravel()
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
    ready = call.dataplane.ready
    return json_reply({"ready": ready}, 200 if ready else 503)


async def server_metadata(call: Call) -> Reply:
    """The server's name, version and protocol extensions."""
    return json_reply({"name": SERVICE_NAME, "version": SERVICE_VERSION, "extensions": EXTENSIONS})


async def model_metadata(call: Call) -> Reply:
    """The model's input and outputs (name, datatype, shape) and its loaded versions."""
    model = model_in_path(call)
    body = MetadataModelResponse(**oip.model_metadata(model, call.dataplane.versions()))
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
            "GET",
            "/v2/health/live",
            server_live,
            "Server live",
            ServerLiveResponse,
            public=True,
            probe=True,
        ),
        Operation(
            "GET",
            "/v2/health/ready",
            server_ready,
            "Server ready",
            ServerReadyResponse,
            public=True,
            probe=True,
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
    path_parameters=MODEL_PARAMETERS,
)
