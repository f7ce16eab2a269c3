"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``), as Triton's and
KServe's gRPC clients speak it: each RPC decodes its message into the data plane's request,
encodes the result, and says how errors map to gRPC status codes.

``ModelInfer`` takes the one input, ``features`` (FP32 ``[rows, features]``), as typed contents
(``fp32_contents``) or as raw little-endian bytes (``raw_input_contents``), and answers as it
was asked: raw outputs (``raw_output_contents``: FP32 probabilities, BOOL labels one byte each)
to a raw request, typed contents otherwise. Thresholds and the decision are request
parameters: ``threshold`` (a number for every label), ``threshold.<label>`` (one label's),
``decision`` (``labels`` or ``set``), ``top_k`` (an integer, with ``set``); other parameters are
ignored, as the protocol allows. Decision ``set`` adds the outputs ``label_sets`` and
``label_set_probabilities``, and the answer's parameters say where the set probabilities come
from (``app.codecs.oip``).

``app.grpc_server`` serves these RPCs beside HTTP, in the same process, on the same data plane.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from app.codecs import oip
from app.codecs.base import NULL_REFUSED
from app.codecs.oip_grpc.open_inference_grpc_pb2 import (
    InferParameter,
    ModelInferRequest,
    ModelInferResponse,
    ModelMetadataRequest,
    ModelMetadataResponse,
    ModelReadyRequest,
    ModelReadyResponse,
    ServerLiveResponse,
    ServerMetadataResponse,
    ServerReadyResponse,
)
from app.dataplane import DataPlane, Fields, InferenceRequest, InferenceResult, Tensor
from app.errors import (
    SHOWN_LENGTH,
    BadRequest,
    InvalidRequest,
    ModelNotReady,
    Overloaded,
    ServiceError,
)
from app.version import SERVICE_NAME, SERVICE_VERSION

SERVICE = "inference.GRPCInferenceService"
FIELDS = Fields(
    thresholds="parameters.threshold", decision="parameters.decision", top_k="parameters.top_k"
)
THRESHOLD = "threshold"
LABEL_THRESHOLD = "threshold."
Parsed = TypeVar("Parsed", bound=Message)


@dataclass(frozen=True, slots=True)
class GrpcReply:
    """A finished answer: the serialized response message, and for the access log the rows
    predicted and the (name, version) that answered."""

    message: bytes
    rows: int | None = None
    model: tuple[str, int] | None = None


Handler = Callable[[DataPlane, bytes], Awaitable[GrpcReply]]


@dataclass(frozen=True)
class Rpc:
    """One RPC: its handler takes the serialized request, so that a message that is not one
    is the protocol's INVALID_ARGUMENT rather than the framework's INTERNAL."""

    name: str
    handler: Handler
    public: bool = False  # answered without an API key
    probe: bool = False  # a health probe (the standard health service is one too)

    @property
    def path(self) -> str:
        """The HTTP/2 path the RPC is called at, as the access log and metrics name it."""
        return f"/{SERVICE}/{self.name}"


# What each of the data plane's error statuses is on this protocol.
STATUS_CODES: Mapping[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}


def status_of(error: ServiceError) -> grpc.StatusCode:
    """The status code of an error: admission's refusal is RESOURCE_EXHAUSTED (retry later),
    a model not loaded UNAVAILABLE, anything unforeseen INTERNAL."""
    if isinstance(error, Overloaded):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return STATUS_CODES.get(error.status_code, grpc.StatusCode.INTERNAL)


async def model_infer(dataplane: DataPlane, data: bytes) -> GrpcReply:
    """Probabilities and thresholded labels for a [rows, features] tensor."""
    message = _parse(ModelInferRequest, data)
    thresholds, decision, top_k = _options(message.parameters)
    request = InferenceRequest(
        _tensors(message),
        model_name=message.model_name,
        model_version=message.model_version or None,
        thresholds=thresholds,
        outputs=[output.name for output in message.outputs] or None,
        decision=decision,
        top_k=top_k,
        id=message.id or None,
        fields=FIELDS,
    )
    result = await dataplane.infer(request)
    if message.raw_input_contents:  # raw outputs: bytes of the arrays, cheaper than a thread hop
        answer = _encode(result, True)
    else:
        answer = await dataplane.render(result.rows, _encode, result, False)
    served = (result.model.name, result.model.version)
    return GrpcReply(answer, result.rows, served)


def _parse(kind: type[Parsed], data: bytes) -> Parsed:
    try:
        return kind.FromString(data)
    except DecodeError as error:
        raise BadRequest(f"the message is not a {kind.DESCRIPTOR.full_name}") from error


def _options(parameters: Mapping[str, InferParameter]) -> tuple[Any, Any, Any]:
    """The thresholds (one number, or a mapping of labels), the decision and top_k, as sent."""
    if not parameters:  # most calls: protobuf's map would still build a view to iterate
        return None, None, None
    thresholds: Any = None
    by_label: dict[str, Any] = {}
    decision: Any = None
    top_k: Any = None
    for key, parameter in parameters.items():
        if key == THRESHOLD:
            thresholds = _value(key, parameter)
        elif key.startswith(LABEL_THRESHOLD):
            by_label[key[len(LABEL_THRESHOLD) :]] = _value(key, parameter)
        elif key == oip.DECISION:
            decision = _value(key, parameter)
        elif key == oip.TOP_K:
            top_k = _value(key, parameter)
    if by_label:
        if thresholds is not None:
            raise InvalidRequest(
                "parameters: give threshold or threshold.<label>, not both",
                field=FIELDS.thresholds,
            )
        thresholds = by_label
    return thresholds, decision, top_k


def _value(key: str, parameter: InferParameter) -> Any:
    """A parameter's value as its type says: bool, int, float or str. One with no value set is
    protobuf's null, refused as the JSON protocols refuse null (``refuse_null``)."""
    choice = parameter.WhichOneof("parameter_choice")
    if choice is None:
        where = f"parameters.{key[:SHOWN_LENGTH]}"
        raise InvalidRequest(f"{where}: {NULL_REFUSED} (it has no value set)", field=where)
    return getattr(parameter, choice)


def _tensors(message: ModelInferRequest) -> list[Tensor]:
    """The input tensors, each with its typed contents or its raw bytes (one raw content per
    input, in order, when any is raw)."""
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise BadRequest(
            f"raw_input_contents holds {len(raw)} tensors but there are "
            f"{len(message.inputs)} inputs",
            field="raw_input_contents",
        )
    tensors = []
    for index, given in enumerate(message.inputs):
        field, typed_field, raw_field = _field_names(index)
        shape = list(given.shape)
        if not raw:
            values = given.contents.fp32_contents
            tensors.append(
                Tensor(given.name, given.datatype, shape, values, field, typed_field, typed=True)
            )
            continue
        if given.HasField("contents"):
            raise InvalidRequest(
                f"{field}: give either contents or raw_input_contents, not both",
                field=f"{field}.contents",
            )
        tensors.append(Tensor(given.name, given.datatype, shape, raw[index], field, raw_field))
    return tensors


@lru_cache(maxsize=8)
def _field_names(index: int) -> tuple[str, str, str]:
    """Where input ``index`` and its values are in the message, as errors name them."""
    field = f"inputs.{index}"
    return field, f"{field}.contents.fp32_contents", f"raw_input_contents.{index}"


def _encode(result: InferenceResult, raw: bool) -> bytes:
    """The serialized answer: the outputs asked for, as raw contents or typed ones."""
    model = result.model
    response = ModelInferResponse(
        model_name=model.name, model_version=str(model.version), id=result.id or ""
    )
    for key, value in (oip.answer_parameters(result) or {}).items():
        response.parameters[key].string_param = value
    for name, values in oip.output_tensors(result):
        datatype = oip.OUTPUT_DATATYPES[name]
        output = response.outputs.add(name=name, datatype=datatype, shape=values.shape)
        if raw:
            response.raw_output_contents.append(oip.raw_bytes(name, values))
        elif datatype == "BOOL":
            output.contents.bool_contents.extend(values.ravel().tolist())
        else:
            output.contents.fp32_contents.extend(values.ravel().tolist())
    return response.SerializeToString()


_LIVE = GrpcReply(ServerLiveResponse(live=True).SerializeToString())
_READY = {
    ready: GrpcReply(ServerReadyResponse(ready=ready).SerializeToString())
    for ready in (False, True)
}
_SERVER_METADATA = GrpcReply(
    ServerMetadataResponse(name=SERVICE_NAME, version=SERVICE_VERSION).SerializeToString()
)


async def server_live(dataplane: DataPlane, data: bytes) -> GrpcReply:
    """Live while the process runs."""
    return _LIVE


async def server_ready(dataplane: DataPlane, data: bytes) -> GrpcReply:
    """Ready once a version of the served model is loaded."""
    return _READY[dataplane.ready]


async def server_metadata(dataplane: DataPlane, data: bytes) -> GrpcReply:
    """The server's name and version (no extensions: raw contents are the protocol's own)."""
    return _SERVER_METADATA


async def model_ready(dataplane: DataPlane, data: bytes) -> GrpcReply:
    """Whether the model (or that version) is loaded; NOT_FOUND for a model not served here."""
    message = _parse(ModelReadyRequest, data)
    try:
        dataplane.model(message.name, message.version or None)
    except ModelNotReady:
        return GrpcReply(ModelReadyResponse(ready=False).SerializeToString())
    return GrpcReply(ModelReadyResponse(ready=True).SerializeToString())


async def model_metadata(dataplane: DataPlane, data: bytes) -> GrpcReply:
    """The model's input and outputs (name, datatype, shape) and its loaded versions."""
    message = _parse(ModelMetadataRequest, data)
    model = dataplane.model(message.name, message.version or None)
    metadata = oip.model_metadata(model, dataplane.versions())
    return GrpcReply(ModelMetadataResponse(**metadata).SerializeToString())


RPCS: tuple[Rpc, ...] = (
    Rpc("ServerLive", server_live, public=True, probe=True),
    Rpc("ServerReady", server_ready, public=True, probe=True),
    Rpc("ModelReady", model_ready),
    Rpc("ServerMetadata", server_metadata),
    Rpc("ModelMetadata", model_metadata),
    Rpc("ModelInfer", model_infer),
)
