"""Request and response models of the Open Inference Protocol (KServe V2) REST API.

Field names and shapes follow the protocol's published OpenAPI document; examples come from a
real trained model.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from app.codecs.base import NOT_NULL, Decision, Omittable, Threshold, TopK
from app.codecs.examples import answer_examples

_SHAPE_SCHEMA: dict[str, Any] = {"type": "array", "items": {"type": "integer"}}
_NUMBERS_SCHEMA: dict[str, Any] = {"type": "array", "items": {"type": "number"}}
# Tensor shape and data are checked by the codec and the data plane (vectorized, with row and
# feature in each message), not by pydantic, which would copy and check the data value by value.
Shape = Annotated[Any, WithJsonSchema(_SHAPE_SCHEMA)]
TensorData = Annotated[
    Any,
    NOT_NULL,
    WithJsonSchema(
        {
            "anyOf": [_NUMBERS_SCHEMA, {"type": "array", "items": _NUMBERS_SCHEMA}],
            "description": "Row-major values, flat or nested by row.",
        }
    ),
]
Parameters = dict[str, Any]

_REFERENCE_ROWS: list[Any] = [3, 3, 6, 7, 8, 2, 11, 11, 1, 3, 1, 1, 2, 4, 8, 10, 8, 8, 5, 6]


class ServerLiveResponse(BaseModel):
    live: bool


class ServerReadyResponse(BaseModel):
    ready: bool = Field(description="Whether a version of the served model is loaded.")


class ModelReadyResponse(BaseModel):
    name: str
    ready: bool


class MetadataServerResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": answer_examples("MetadataServerResponse")}
    )

    name: str
    version: str
    extensions: list[str] = Field(description="Protocol extensions supported.")


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks the batch dimension (any number of rows).")


class MetadataModelResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": answer_examples("MetadataModelResponse")}
    )

    name: str
    versions: list[str] = Field(description="Loaded versions, oldest first.")
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    properties: dict[str, str] = Field(
        description="Feature, label and default threshold order (comma-separated): the columns "
        "of the input and of the outputs; the decisions ('labels,set'); label_set_source, "
        "where decision 'set' finds a label set's probability ('label_set_head' or "
        "'product_of_marginals'); label_set_count, the largest top_k."
    )


class InferenceParameters(BaseModel):
    """Request parameters; others are ignored, as the protocol allows."""

    model_config = ConfigDict(extra="allow")

    threshold: Threshold = Field(
        default=None,
        description="Decision threshold for the labels output: one number in [0, 1] for every "
        "label, or some by label name (others keep the model's default).",
    )
    decision: Decision = Field(
        default=None,
        description="How probabilities become the labels output: 'labels' (the default), each "
        "label on at or above its threshold; 'set', the most probable whole label set (no "
        "threshold may come with it), with the outputs label_sets and label_set_probabilities "
        "ranking the top_k most probable sets.",
    )
    top_k: TopK = Field(
        default=None,
        description="With decision 'set': how many label sets to rank for each row, most "
        "probable first (1 to the model's label_set_count; 1 when omitted).",
    )
    binary_data_output: bool = Field(
        default=False,
        strict=True,
        description="Binary tensor data extension: every output (unless it says otherwise) "
        "comes back as raw bytes after the JSON header.",
    )


class TensorParameters(BaseModel):
    model_config = ConfigDict(extra="allow")

    binary_data_size: Omittable[int] = Field(
        default=None,
        ge=0,
        strict=True,
        description="Binary tensor data extension: the input's bytes follow the JSON header.",
    )


class OutputParameters(BaseModel):
    model_config = ConfigDict(extra="allow")

    binary_data: Omittable[bool] = Field(
        default=None,
        strict=True,
        description="Binary tensor data extension: this output as raw bytes.",
    )


class RequestInput(BaseModel):
    name: str = Field(description="The model's input, 'features'.")
    shape: Shape = Field(description="[rows, number of features].")
    datatype: str = Field(description="FP32, the model's declared datatype.")
    parameters: TensorParameters = Field(default_factory=TensorParameters)
    data: TensorData = Field(
        default=None, description="The values; absent when sent as binary tensor data."
    )


class RequestOutput(BaseModel):
    name: str = Field(
        description="'probabilities' or 'labels'; with decision 'set', also 'label_sets' or "
        "'label_set_probabilities'."
    )
    parameters: OutputParameters = Field(default_factory=OutputParameters)


class InferenceRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "42",
                    "inputs": [
                        {
                            "name": "features",
                            "shape": [2, 10],
                            "datatype": "FP32",
                            "data": _REFERENCE_ROWS,
                        }
                    ],
                },
                {
                    "inputs": [
                        {
                            "name": "features",
                            "shape": [1, 10],
                            "datatype": "FP32",
                            "data": [_REFERENCE_ROWS[:10]],
                        }
                    ],
                    "outputs": [{"name": "labels"}],
                    "parameters": {"threshold": 0.9},
                },
                {
                    "id": "43",
                    "inputs": [
                        {
                            "name": "features",
                            "shape": [1, 10],
                            "datatype": "FP32",
                            "data": _REFERENCE_ROWS[:10],
                        }
                    ],
                    "parameters": {"decision": "set", "top_k": 2},
                },
            ]
        }
    )

    id: Omittable[str] = Field(default=None, description="Echoed in the response.")
    parameters: InferenceParameters = Field(default_factory=InferenceParameters)
    inputs: list[RequestInput] = Field(description="Exactly one input tensor, 'features'.")
    outputs: list[RequestOutput] = Field(
        default_factory=list, description="Outputs to return, in this order; all when omitted."
    )


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = Field(
        default=None, description="binary_data_size when the data follows as raw bytes."
    )
    data: list[Any] | None = Field(
        default=None, description="Row-major, flat; absent when sent as binary data."
    )


class InferenceResponse(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={"examples": answer_examples("InferenceResponse")},
    )

    model_name: str
    model_version: str
    id: str | None = Field(default=None, description="The request's id, if it had one.")
    parameters: Parameters | None = Field(
        default=None,
        description="With decision 'set': the decision, and label_set_source, where the set "
        "probabilities come from ('label_set_head' or 'product_of_marginals').",
    )
    outputs: list[ResponseOutput]
