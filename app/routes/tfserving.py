"""The TensorFlow Serving REST API: ``/v1/models/{name}[/versions/{v}]`` status, metadata, predict.

The model is described as TF Serving would describe it: one input, ``features``, and two
signatures. ``serving_default`` gives the probabilities only, so its answers match a TF Serving
deployment of the Keras model; ``labels`` adds the thresholded labels (model defaults).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.dependencies import get_repository
from app.http import json_response, validate_body
from app.inference import Prediction
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
from app.routes.tfserving_schemas import (
    Dim,
    GetModelMetadataResponse,
    GetModelStatusResponse,
    ModelSpec,
    SignatureDef,
    SignatureDefMap,
    TensorInfo,
    TensorShapeProto,
    TFServingModelMetadata,
    TFServingPredictRequest,
    TFServingPredictResponse,
)
from app.validation import features_from_rows

router = APIRouter(prefix="/v1/models", tags=["TensorFlow Serving"], route_class=ProtocolRoute)

DEFAULT_SIGNATURE = "serving_default"
SIGNATURES = {DEFAULT_SIGNATURE: (PROBABILITIES,), LABELS: (PROBABILITIES, LABELS)}
OUTPUT_DTYPES = {PROBABILITIES: "DT_FLOAT", LABELS: "DT_BOOL"}


# The hot route is registered first: requests are matched against routes in order.
@model_route(
    router,
    "POST",
    "/{name}",
    ":predict",
    **inference_documentation(TFServingPredictRequest, TFServingPredictResponse),
)
async def predict(request: Request) -> Response:
    """Row format (``instances``) answers ``predictions``; columnar (``inputs``) ``outputs``."""
    # Inline, not in a thread: a thread hop costs more than a small request's inference.
    model, settings, body = await inference_inputs(request)
    payload = validate_body(TFServingPredictRequest, body.value)
    outputs = _signature_outputs(payload.signature_name)
    given = payload.model_fields_set & {"instances", "inputs"}
    if len(given) != 1:
        raise BadRequest(
            "send either instances (row format) or inputs (columnar format), "
            + ("not both" if given else "neither was given")
        )
    row_format = "instances" in given
    rows = _instance_rows(payload.instances) if row_format else _input_rows(payload.inputs)
    features = features_from_rows(
        rows,
        model.metadata.features,
        max_rows=settings.max_rows,
        booleans_possible=body.booleans_possible,
    )
    prediction, _ = predict_observed(model, features)
    return json_response(_render(prediction, outputs, row_format))


@model_route(
    router,
    "GET",
    "/{name}",
    response_model=GetModelStatusResponse,
    responses=protocol_errors(404, 503),
)
async def model_status(request: Request) -> Response:
    """Every loaded version's state (AVAILABLE), or the one version in the path."""
    model = model_in_path(request)
    if "version" in request.path_params:
        versions = [model.version]
    else:
        versions = sorted(get_repository(request).snapshot.models, reverse=True)
    available = {"state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    status = [{"version": str(version), **available} for version in versions]
    return json_response({"model_version_status": status})


@model_route(
    router,
    "GET",
    "/{name}",
    "/metadata",
    response_model=GetModelMetadataResponse,
    responses=protocol_errors(404, 503),
)
async def model_metadata(request: Request) -> Response:
    """The model's signatures: input and output names, dtypes and shapes."""
    model = model_in_path(request)
    n_labels = len(model.metadata.labels)
    features = _tensor_info(INPUT_NAME, "DT_FLOAT", model.n_features)
    signatures = {
        signature: SignatureDef(
            inputs={INPUT_NAME: features},
            outputs={name: _tensor_info(name, OUTPUT_DTYPES[name], n_labels) for name in outputs},
        )
        for signature, outputs in SIGNATURES.items()
    }
    body = GetModelMetadataResponse(
        model_spec=ModelSpec(name=model.name, version=str(model.version)),
        metadata=TFServingModelMetadata(signature_def=SignatureDefMap(signature_def=signatures)),
    )
    return json_response(body.model_dump())


def _tensor_info(name: str, dtype: str, width: int) -> TensorInfo:
    """A [-1, width] tensor: any number of rows."""
    shape = TensorShapeProto(dim=[Dim(size="-1"), Dim(size=str(width))])
    return TensorInfo(dtype=dtype, tensor_shape=shape, name=name)


def _signature_outputs(signature_name: str) -> tuple[str, ...]:
    outputs = SIGNATURES.get(signature_name or DEFAULT_SIGNATURE)
    if outputs is None:
        raise BadRequest(
            f"serving signature {signature_name!r} not found; the signatures are "
            f"{', '.join(SIGNATURES)}",
            field="signature_name",
        )
    return outputs


def _instance_rows(instances: Any) -> Any:
    """Rows given as lists, or as objects naming the one input, ``{"features": [...]}``."""
    if not (isinstance(instances, list) and instances and isinstance(instances[0], dict)):
        return instances
    rows = []
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict) or instance.keys() != {INPUT_NAME}:
            raise BadRequest(
                f"row {index}: expected an object with the model's one input, "
                f"{{{INPUT_NAME!r}: [...]}}, like the first row",
                row=index,
            )
        rows.append(instance[INPUT_NAME])
    return rows


def _input_rows(inputs: Any) -> Any:
    """The columnar tensor, given bare or as ``{"features": tensor}``."""
    if isinstance(inputs, dict):
        if inputs.keys() != {INPUT_NAME}:
            unknown = ", ".join(repr(name) for name in inputs) or "no input"
            raise BadRequest(
                f"inputs: got {unknown}; the model's one input is {INPUT_NAME!r}", field="inputs"
            )
        inputs = inputs[INPUT_NAME]
    if not isinstance(inputs, list):
        raise BadRequest(
            "inputs: expected a [rows, features] tensor (a list of rows)", field="inputs"
        )
    return inputs


def _render(prediction: Prediction, outputs: tuple[str, ...], row_format: bool) -> dict[str, Any]:
    """TF Serving's shapes: one output goes unnamed; several are named per row or per column."""
    tensors = {PROBABILITIES: prediction.probabilities, LABELS: prediction.positives}
    key = "predictions" if row_format else "outputs"
    if len(outputs) == 1:
        return {key: tensors[outputs[0]]}
    if not row_format:
        return {key: {name: tensors[name] for name in outputs}}
    # Rows stay numpy views, so orjson writes float32 values as float32, like the other formats.
    columns = [tensors[name] for name in outputs]
    return {key: [dict(zip(outputs, values, strict=True)) for values in zip(*columns, strict=True)]}
