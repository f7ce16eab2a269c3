"""Request and response models of the TensorFlow Serving REST API (``/v1/models/...``).

Shapes follow TF Serving's REST documentation and the JSON form of its protobuf messages
(``GetModelStatusResponse``, ``GetModelMetadataResponse``: 64-bit integers as strings).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from app.codecs.base import NOT_NULL, Decision, TopK
from app.codecs.examples import answer_examples
from app.inference import LabelSetSource

_ROW: list[Any] = [3, 3, 6, 7, 8, 2, 11, 11, 1, 3]
_MATRIX_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "array", "items": {"type": "number"}},
}
# Rows are checked by app.validation (vectorized, row and feature in each message).
Instances = Annotated[
    Any,
    NOT_NULL,
    WithJsonSchema(
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "array", "items": {"type": "number"}},
                    {
                        "type": "object",
                        "properties": {"features": {"type": "array", "items": {"type": "number"}}},
                    },
                ]
            },
        }
    ),
]
Inputs = Annotated[
    Any,
    NOT_NULL,
    WithJsonSchema(
        {
            "anyOf": [
                _MATRIX_SCHEMA,
                {"type": "object", "properties": {"features": _MATRIX_SCHEMA}},
            ]
        }
    ),
]


class TFServingPredictRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"instances": [_ROW]},
                {"instances": [{"features": _ROW}], "signature_name": "labels"},
                {"inputs": {"features": [_ROW]}},
                {"instances": [_ROW], "signature_name": "label_sets", "top_k": 2},
            ]
        }
    )

    signature_name: str = Field(
        default="serving_default",
        description="'serving_default' gives probabilities; 'labels' adds the thresholded labels; "
        "'label_sets' decides the most probable label set (decision 'set') and adds the ranked "
        "sets, label_sets and label_set_probabilities.",
    )
    decision: Decision = Field(
        default=None,
        description="'labels' (each label against the model's threshold) or 'set' (the most "
        "probable label set); the label_sets signature means 'set'.",
    )
    top_k: TopK = Field(
        default=None,
        description="With decision 'set': how many label sets to rank for each row, most "
        "probable first (1 when omitted).",
    )
    instances: Instances = Field(
        default=None,
        description="Row format: a list of rows, each a list of the features in order or "
        "{'features': [...]}.",
    )
    inputs: Inputs = Field(
        default=None,
        description="Columnar format: the [rows, features] tensor, or {'features': tensor}.",
    )


class TFServingPredictResponse(BaseModel):
    """One of the two keys, as the request's format: rows give predictions, columns outputs."""

    model_config = ConfigDict(
        json_schema_extra={"examples": answer_examples("TFServingPredictResponse")}
    )

    predictions: list[Any] | None = None
    outputs: list[Any] | dict[str, list[Any]] | None = None
    label_set_source: LabelSetSource | None = Field(
        default=None,
        description="With decision 'set': where the set probabilities come from, the model's "
        "label-set head or the product of its marginals.",
    )


class StatusProto(BaseModel):
    error_code: str = "OK"
    error_message: str = ""


class ModelVersionStatus(BaseModel):
    version: str
    state: Literal["AVAILABLE"]
    status: StatusProto


class GetModelStatusResponse(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={"examples": answer_examples("GetModelStatusResponse")},
    )

    model_version_status: list[ModelVersionStatus]


class Dim(BaseModel):
    size: str
    name: str = ""


class TensorShapeProto(BaseModel):
    dim: list[Dim]
    unknown_rank: bool = False


class TensorInfo(BaseModel):
    dtype: str
    tensor_shape: TensorShapeProto
    name: str


class SignatureDef(BaseModel):
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    method_name: str = "tensorflow/serving/predict"


class SignatureDefMap(BaseModel):
    signature_def: dict[str, SignatureDef]


class TFServingModelMetadata(BaseModel):
    signature_def: SignatureDefMap


class ModelSpec(BaseModel):
    name: str
    signature_name: str = ""
    version: str


def _example_tensor(name: str, width: int) -> dict[str, Any]:
    dims = [{"size": "-1", "name": ""}, {"size": str(width), "name": ""}]
    return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": name}


class GetModelMetadataResponse(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={"examples": answer_examples("GetModelMetadataResponse")},
    )

    model_spec: ModelSpec
    metadata: TFServingModelMetadata
