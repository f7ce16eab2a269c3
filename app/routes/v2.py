"""The Open Inference Protocol (KServe V2) REST API, as Triton's and KServe's clients speak it.

The model takes one input, ``features`` (FP32 [rows, features]; FP64, FP16 and integer types
are converted) and gives two outputs: ``probabilities`` (FP32 [rows, labels]) and ``labels``
(BOOL [rows, labels], each probability at or above its threshold). The binary tensor data and
shared memory extensions are not supported: requests using them get a 400 that says so.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.dependencies import get_repository
from app.http import json_response, validate_body
from app.inference import Model, Prediction
from app.observability import predict_observed
from app.routes.standard import (
    INPUT_NAME,
    LABELS,
    PROBABILITIES,
    BadRequest,
    ProtocolRoute,
    inference_documentation,
    inference_inputs,
    model_in_path,
    model_route,
    protocol_errors,
)
from app.routes.v2_schemas import (
    InferenceRequest,
    InferenceResponse,
    MetadataModelResponse,
    MetadataServerResponse,
    MetadataTensor,
    ModelReadyResponse,
    Parameters,
    RequestInput,
    ServerLiveResponse,
    ServerReadyResponse,
)
from app.validation import features_from_tensor

router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (V2)"], route_class=ProtocolRoute)

SERVER_NAME = "multilabel-service"
OUTPUT_DATATYPES = {PROBABILITIES: "FP32", LABELS: "BOOL"}
PLATFORMS = {"onnx": "onnxruntime_onnx", "keras": "keras"}
BINARY_HEADER = "inference-header-content-length"
# Parameters that switch on an extension this server does not implement.
_EXTENSION_PARAMETERS = {
    "binary_data_output": "binary tensor data",
    "binary_data": "binary tensor data",
    "binary_data_size": "binary tensor data",
    "shared_memory_region": "shared memory",
}
_AS_JSON_HINT = (
    "send tensors as JSON data (tritonclient: set_data_from_numpy(..., binary_data=False) "
    "and InferRequestedOutput(name, binary_data=False))"
)


# The hot route is registered first: requests are matched against routes in order.
@model_route(
    router,
    "POST",
    "/models/{name}",
    "/infer",
    **inference_documentation(InferenceRequest, InferenceResponse),
)
async def infer(request: Request) -> Response:
    """Probabilities and thresholded labels for a [rows, features] tensor."""
    # Inline, not in a thread: a thread hop costs more than a small request's inference.
    if BINARY_HEADER in request.headers:
        raise BadRequest(f"the binary tensor data extension is not supported: {_AS_JSON_HINT}")
    model, settings, body = await inference_inputs(request)
    payload = validate_body(InferenceRequest, body.value)
    tensor = _the_input(payload)
    features = features_from_tensor(
        tensor.data,
        tensor.shape,
        tensor.datatype,
        model.metadata.features,
        max_rows=settings.max_rows,
        booleans_possible=_booleans_possible(tensor.data, body.booleans_possible),
    )
    parameters = payload.parameters
    prediction, _ = predict_observed(
        model, features, model.thresholds_for(parameters.threshold if parameters else None)
    )
    return json_response(_inference_response(model, payload, prediction))


@router.get("/health/live", response_model=ServerLiveResponse)
async def server_live(request: Request) -> Response:
    """200 while the process runs."""
    return json_response({"live": True})


@router.get(
    "/health/ready",
    response_model=ServerReadyResponse,
    responses={503: {"model": ServerReadyResponse, "description": "No model loaded"}},
)
async def server_ready(request: Request) -> Response:
    """200 once a version of the served model is loaded, else 503."""
    ready = get_repository(request).ready
    return json_response({"ready": ready}, status_code=200 if ready else 503)


@router.get("", response_model=MetadataServerResponse)
@router.get("/", response_model=MetadataServerResponse, include_in_schema=False)
async def server_metadata(request: Request) -> Response:
    """The server's name and version; no protocol extensions."""
    return json_response({"name": SERVER_NAME, "version": request.app.version, "extensions": []})


@model_route(
    router,
    "GET",
    "/models/{name}",
    response_model=MetadataModelResponse,
    responses=protocol_errors(404, 503),
)
async def model_metadata(request: Request) -> Response:
    """The model's input and outputs (name, datatype, shape) and its loaded versions."""
    model = model_in_path(request)
    meta = model.metadata
    width = len(meta.labels)
    body = MetadataModelResponse(
        name=model.name,
        versions=[str(version) for version in get_repository(request).snapshot.models],
        platform=PLATFORMS[model.backend_name],
        inputs=[MetadataTensor(name=INPUT_NAME, datatype="FP32", shape=[-1, model.n_features])],
        outputs=[
            MetadataTensor(name=name, datatype=datatype, shape=[-1, width])
            for name, datatype in OUTPUT_DATATYPES.items()
        ],
        properties={
            "features": ",".join(meta.features),
            "labels": ",".join(meta.labels),
            "thresholds": ",".join(str(threshold) for threshold in meta.thresholds),
        },
    )
    return json_response(body.model_dump())


@model_route(
    router,
    "GET",
    "/models/{name}",
    "/ready",
    response_model=ModelReadyResponse,
    responses=protocol_errors(404, 503),
)
async def model_ready(request: Request) -> Response:
    """200 when the model (or that version) is loaded; 404 unknown, 503 not loaded yet."""
    return json_response({"name": model_in_path(request).name, "ready": True})


def _the_input(payload: InferenceRequest) -> RequestInput:
    """The one input tensor, after refusing every unsupported extension the request uses."""
    _refuse_extensions(payload.parameters.model_extra if payload.parameters else None, "")
    for position, output in enumerate(payload.outputs or ()):
        _refuse_extensions(output.parameters, f"outputs.{position}.")
        if output.name not in OUTPUT_DATATYPES:
            raise BadRequest(
                f"unknown output {output.name!r}; the outputs are {', '.join(OUTPUT_DATATYPES)}",
                field=f"outputs.{position}.name",
            )
    if len(payload.inputs) != 1:
        raise BadRequest(
            f"expected one input tensor, {INPUT_NAME!r}, got {len(payload.inputs)}",
            field="inputs",
        )
    tensor = payload.inputs[0]
    _refuse_extensions(tensor.parameters, "inputs.0.")
    if tensor.name != INPUT_NAME:
        raise BadRequest(
            f"unknown input {tensor.name!r}; the model's input is {INPUT_NAME!r}",
            field="inputs.0.name",
        )
    return tensor


def _booleans_possible(data: Any, anywhere_in_body: bool) -> bool:
    """Whether the tensor data may hold booleans (numpy would read them as 1 and 0).

    tritonclient's requests always hold one (``"binary_data": false``), which would send every
    value through the value-by-value check; the types of flat data are collected at C speed.
    """
    if anywhere_in_body and isinstance(data, list) and data and not isinstance(data[0], list):
        return bool in set(map(type, data))
    return anywhere_in_body


def _refuse_extensions(parameters: Parameters | None, where: str) -> None:
    if not parameters:
        return
    for name, extension in _EXTENSION_PARAMETERS.items():
        if parameters.get(name):
            raise BadRequest(
                f"{where}parameters.{name}: the {extension} extension is not supported; "
                + _AS_JSON_HINT,
                field=f"{where}parameters.{name}",
            )


def _inference_response(
    model: Model, payload: InferenceRequest, prediction: Prediction
) -> dict[str, Any]:
    """The response document; tensors stay numpy arrays, which orjson writes whole."""
    tensors = {PROBABILITIES: prediction.probabilities, LABELS: prediction.positives}
    names = [output.name for output in payload.outputs] if payload.outputs else list(tensors)
    shape = list(prediction.probabilities.shape)
    response: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version)}
    if payload.id is not None:
        response["id"] = payload.id
    response["outputs"] = [
        {
            "name": name,
            "datatype": OUTPUT_DATATYPES[name],
            "shape": shape,
            "data": tensors[name].ravel(),
        }
        for name in names
    ]
    return response
