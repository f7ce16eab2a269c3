"""The TensorFlow Serving REST API: ``/v1/models/{name}[/versions/{v}]`` status, metadata, predict.

The model is described as TF Serving would describe it: one input, ``features``, and three
signatures. ``serving_default`` gives the probabilities only, so its answers match a TF Serving
deployment of the Keras model; ``labels`` adds the thresholded labels (model defaults);
``label_sets`` decides the most probable label set instead (``labels`` is that set) and ranks
the sets (``label_sets``, ``label_set_probabilities``), ``top_k`` of them.

Beside ``instances`` (or ``inputs``), a request may say ``decision`` (``labels`` or ``set``)
and ``top_k``: the ``label_sets`` signature means ``"decision": "set"``, and ``"decision":
"set"`` with the ``labels`` signature decides ``labels`` by the most probable set. An answer of
decision ``set`` says where the set probabilities come from (``label_set_source``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from app.codecs.base import (
    MESSAGE_ERROR_DESCRIPTIONS,
    MODEL_PARAMETERS,
    Call,
    Codec,
    Handler,
    MessageError,
    Reply,
    json_reply,
    may_contain_booleans,
    model_in_path,
    model_operations,
    render_message_error,
    validate_envelope,
)
from app.codecs.json_numbers import Bulk, decode_json_numbers
from app.codecs.tfserving_schemas import (
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
from app.dataplane import (
    INPUT_NAME,
    OUTPUTS,
    Decision,
    Fields,
    InferenceRequest,
    InferenceResult,
    NumberArray,
    Output,
    Rows,
)
from app.errors import InvalidInput, InvalidRequest, NotSupported

DEFAULT_SIGNATURE = "serving_default"
SIGNATURES: dict[str, tuple[Output, ...]] = {
    DEFAULT_SIGNATURE: ("probabilities",),
    "labels": ("probabilities", "labels"),
    "label_sets": OUTPUTS,
}
# The decision a signature means when the request says none.
SIGNATURE_DECISIONS: dict[str, Decision] = {"label_sets": "set"}
OUTPUT_DTYPES: dict[Output, str] = {
    "probabilities": "DT_FLOAT",
    "labels": "DT_BOOL",
    "label_sets": "DT_BOOL",
    "label_set_probabilities": "DT_FLOAT",
}
# The signature chooses every output: errors about the outputs name it.
FIELDS = Fields(outputs="signature_name", output_names_listed=False)
# Rows (``instances``), or the columnar tensor, bare or as the one named input.
BULKS = (Bulk(("instances",)), Bulk(("inputs",)), Bulk(("inputs", INPUT_NAME)))


async def predict(call: Call) -> Reply:
    """Row format (``instances``) answers ``predictions``; columnar (``inputs``) ``outputs``."""
    document = decode_json_numbers(call.body, BULKS, call.dataplane.max_rows)
    payload = validate_envelope(TFServingPredictRequest, document)
    signature = payload.signature_name or DEFAULT_SIGNATURE
    outputs = _signature_outputs(signature)
    given = payload.model_fields_set & {"instances", "inputs"}
    if len(given) != 1:
        raise InvalidRequest(
            "send either instances (row format) or inputs (columnar format), "
            + ("not both" if given else "neither was given")
        )
    row_format = "instances" in given
    if row_format:
        rows = Rows(_instance_rows(payload.instances), "instances")
    else:
        rows = Rows(_input_tensor(payload.inputs), "inputs")
    rows.booleans_possible = not isinstance(rows.values, NumberArray) and may_contain_booleans(
        call.body
    )
    request = InferenceRequest(
        rows,
        model_name=call.path_params["name"],
        model_version=call.path_params.get("version"),
        outputs=outputs,
        decision=(
            SIGNATURE_DECISIONS.get(signature) if payload.decision is None else payload.decision
        ),
        top_k=payload.top_k,
        fields=FIELDS,
    )
    result = await call.dataplane.infer(request)
    body = await call.dataplane.render(result.rows, _encode, result, row_format)
    return Reply(body, rows=result.rows, model=(result.model.name, result.model.version))


def _signature_outputs(signature_name: str) -> tuple[Output, ...]:
    outputs = SIGNATURES.get(signature_name)
    if outputs is None:
        raise InvalidRequest(
            f"serving signature {signature_name!r} not found; the signatures are "
            f"{', '.join(SIGNATURES)}",
            field="signature_name",
        )
    return outputs


def _instance_rows(instances: Any) -> Any:
    """Rows given as lists, or all as objects naming the one input, ``{"features": [...]}``."""
    if not (isinstance(instances, list) and instances and isinstance(instances[0], dict)):
        return instances  # lists, checked row by row (an object among them is refused there)
    rows = []
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict) or instance.keys() != {INPUT_NAME}:
            raise InvalidInput(
                f"row {index}: expected an object with the model's one input, "
                f"{{{INPUT_NAME!r}: [...]}}, like the first row",
                row=index,
            )
        rows.append(instance[INPUT_NAME])
    return rows


def _input_tensor(inputs: Any) -> Any:
    """The columnar tensor, given bare or as ``{"features": tensor}``."""
    if isinstance(inputs, dict):
        if inputs.keys() != {INPUT_NAME}:
            unknown = ", ".join(repr(name) for name in inputs) or "no input"
            raise InvalidRequest(
                f"inputs: got {unknown}; the model's one input is {INPUT_NAME!r}", field="inputs"
            )
        return inputs[INPUT_NAME]
    return inputs


def _encode(result: InferenceResult, row_format: bool) -> bytes:
    """TF Serving's shapes: one output goes unnamed; several are named per row or per column."""
    tensors: dict[Output, np.ndarray[Any, Any]] = {
        "probabilities": result.probabilities,
        "labels": result.positives,
    }
    ranking = result.label_sets
    if ranking is not None:
        tensors["label_sets"] = ranking.sets
        tensors["label_set_probabilities"] = ranking.probabilities
    outputs = result.outputs
    key = "predictions" if row_format else "outputs"
    document: dict[str, Any]
    if len(outputs) == 1:
        document = {key: tensors[outputs[0]]}
    elif not row_format:
        document = {key: {name: tensors[name] for name in outputs}}
    else:
        # Rows stay numpy views, so orjson writes float32 values as float32.
        columns = [tensors[name] for name in outputs]
        document = {
            key: [dict(zip(outputs, values, strict=True)) for values in zip(*columns, strict=True)]
        }
    if ranking is not None:
        document["label_set_source"] = ranking.source
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


# TF Serving's other two inference APIs, which need classification or regression signatures:
# refused in its envelope (without them, ``/v1/models/{name}`` would match ``name:classify``
# and answer 405).
UNSUPPORTED_VERBS = ("classify", "regress")


def refusal(verb: str) -> Handler:
    """The handler of ``:<verb>``: 404 for a model or version not served, else 400 saying that
    only predict is."""

    async def refuse(call: Call) -> Reply:
        model = model_in_path(call)
        raise NotSupported(
            f"{verb} is not supported: {model.name!r} has predict signatures only "
            f"({', '.join(SIGNATURES)}); use :predict"
        )

    refuse.__doc__ = f"Not supported: TF Serving's {verb} API (the model predicts only)."
    return refuse


async def model_status(call: Call) -> Reply:
    """Every loaded version's state (AVAILABLE), or the one version in the path."""
    model = model_in_path(call)
    if "version" in call.path_params:
        versions = [model.version]
    else:
        versions = sorted(call.dataplane.versions(), reverse=True)
    available = {"state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    return json_reply(
        {"model_version_status": [{"version": str(v), **available} for v in versions]}
    )


async def model_metadata(call: Call) -> Reply:
    """The model's signatures: input and output names, dtypes and shapes."""
    model = model_in_path(call)
    n_labels = len(model.metadata.labels)
    features = _tensor_info(INPUT_NAME, "DT_FLOAT", [model.n_features])
    signatures = {
        signature: SignatureDef(
            inputs={INPUT_NAME: features},
            outputs={
                name: _tensor_info(name, OUTPUT_DTYPES[name], _OUTPUT_DIMS[name](n_labels))
                for name in outputs
            },
        )
        for signature, outputs in SIGNATURES.items()
    }
    body = GetModelMetadataResponse(
        model_spec=ModelSpec(name=model.name, version=str(model.version)),
        metadata=TFServingModelMetadata(signature_def=SignatureDefMap(signature_def=signatures)),
    )
    return json_reply(body.model_dump())


# Each output's dimensions after the rows: -1 is k, the label sets ranked (top_k).
_OUTPUT_DIMS: dict[Output, Callable[[int], list[int]]] = {
    "probabilities": lambda labels: [labels],
    "labels": lambda labels: [labels],
    "label_sets": lambda labels: [-1, labels],
    "label_set_probabilities": lambda labels: [-1],
}


def _tensor_info(name: str, dtype: str, dims: list[int]) -> TensorInfo:
    """A [-1, *dims] tensor: any number of rows."""
    shape = TensorShapeProto(dim=[Dim(size="-1"), *(Dim(size=str(size)) for size in dims)])
    return TensorInfo(dtype=dtype, tensor_shape=shape, name=name)


CODEC = Codec(
    name="tfserving",
    tag="TensorFlow Serving",
    operations=[
        *model_operations(
            "/v1/models",
            "POST",
            ":predict",
            predict,
            summary="Predict",
            request_model=TFServingPredictRequest,
            response_model=TFServingPredictResponse,
            errors=(400, 401, 404, 408, 413, 415, 503),
        ),
        *(
            operation
            for verb in UNSUPPORTED_VERBS
            for operation in model_operations(
                "/v1/models",
                "POST",
                f":{verb}",
                refusal(verb),
                summary=f"{verb.capitalize()} (not supported)",
                errors=(400, 401, 404),
                documented=False,
            )
        ),
        *model_operations(
            "/v1/models",
            "GET",
            "/metadata",
            model_metadata,
            summary="Model metadata",
            response_model=GetModelMetadataResponse,
            errors=(401, 404, 503),
        ),
        *model_operations(
            "/v1/models",
            "GET",
            "",
            model_status,
            summary="Model status",
            response_model=GetModelStatusResponse,
            errors=(401, 404, 503),
        ),
    ],
    render_error=render_message_error,
    error_model=MessageError,
    error_descriptions=MESSAGE_ERROR_DESCRIPTIONS,
    path_parameters=MODEL_PARAMETERS,
)
