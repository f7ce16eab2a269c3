"""Request and response models of the native API, with examples from a real trained model."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from app.artifact import MetricSummary
from app.errors import shown

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def _is_probability(value: object) -> bool:
    return isinstance(value, int | float) and type(value) is not bool and 0.0 <= value <= 1.0


def _check_threshold(value: object) -> object:
    """One clear message per mistake, instead of one per member of the union."""
    if value is None or _is_probability(value):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "threshold",
            "must be a number in [0, 1], or an object mapping label names to such numbers; "
            "got {value}",
            {"value": shown(value)},
        )
    for label, number in value.items():
        if not _is_probability(number):
            raise PydanticCustomError(
                "threshold",
                "label {label} needs a number in [0, 1], got {value}",
                {"label": shown(label), "value": shown(number)},
            )
    return value


Threshold = Annotated[
    Probability | dict[str, Probability] | None, BeforeValidator(_check_threshold)
]

_ROW_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "array", "items": {"type": "number"}, "description": "values in feature order"},
        {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "values keyed by feature name",
        },
    ]
}
# Rows are validated by app.validation (vectorized, with row/feature locations), not by
# pydantic, which would be an order of magnitude slower on large batches.
Rows = Annotated[
    list[Any],
    WithJsonSchema({"type": "array", "items": _ROW_SCHEMA, "minItems": 1}),
]


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"instances": [[3, 3, 6, 7, 8, 2, 11, 11, 1, 3]]},
                {
                    "instances": [
                        {
                            "x0": 1,
                            "x1": 1,
                            "x2": 2,
                            "x3": 4,
                            "x4": 8,
                            "x5": 10,
                            "x6": 8,
                            "x7": 8,
                            "x8": 5,
                            "x9": 6,
                        }
                    ],
                    "threshold": {"label_2": 0.9},
                },
            ]
        },
    )

    instances: Rows = Field(
        description="Rows to predict: each a list of the model's features in order, or an "
        "object keyed by feature name (see GET /metadata)."
    )
    threshold: Threshold = Field(
        default=None,
        description="Decision threshold: one for every label, or per label name. "
        "Labels not named keep the model's default.",
    )


class ModelRef(BaseModel):
    name: str
    version: int


class OutOfRangeWarning(BaseModel):
    feature: str
    value: float
    train_range: tuple[float, float]


class RowPrediction(BaseModel):
    probabilities: dict[str, float] = Field(description="Probability of each label, by name.")
    labels: list[str] = Field(description="Labels at or above their threshold (maybe none).")
    vector: list[Literal[0, 1]] = Field(description="The same decision as 0/1, in label order.")
    warnings: list[OutOfRangeWarning] = Field(
        description="Features outside the range seen in training; the prediction still stands."
    )


class PredictResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "multilabel", "version": 1},
                    "thresholds": {"label_0": 0.5, "label_1": 0.5, "label_2": 0.5},
                    "predictions": [
                        {
                            "probabilities": {
                                "label_0": 0.99884903,
                                "label_1": 0.98249424,
                                "label_2": 0.00097176433,
                            },
                            "labels": ["label_0", "label_1"],
                            "vector": [1, 1, 0],
                            "warnings": [],
                        }
                    ],
                }
            ]
        }
    )

    model: ModelRef
    thresholds: dict[str, float] = Field(description="The thresholds this answer used.")
    predictions: list[RowPrediction] = Field(description="One per instance, in request order.")


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable, e.g. invalid_input, payload_too_large.")
    message: str = Field(description="What was wrong, for people.")
    row: int | None = Field(default=None, description="Index of the offending row, if any.")
    field: str | None = Field(default=None, description="Offending feature or request field.")


class ErrorResponse(BaseModel):
    """The one error shape of the native API."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "invalid_input",
                        "message": "row 0, feature x7: expected a number, got a string",
                        "row": 0,
                        "field": "x7",
                    }
                }
            ]
        }
    )

    error: ErrorDetail


class HealthResponse(BaseModel):
    status: Literal["ready", "not_ready", "live"]
    model: ModelRef | None = None
    reason: str | None = Field(default=None, description="Why the service is not ready.")


class FeatureSchema(BaseModel):
    name: str
    train_range: tuple[float, float]


class MetadataResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: int
    versions: list[int] = Field(description="All loaded versions; the newest is the default.")
    created_at: datetime
    backend: str
    features: list[FeatureSchema] = Field(description="Input schema, in order.")
    labels: list[str]
    thresholds: dict[str, float] = Field(description="Default decision threshold per label.")
    evaluation: dict[str, MetricSummary] | None = Field(
        description="Cross-validation summary per metric (subset_accuracy is the multi-label "
        "accuracy_score: every label of a sample right)."
    )
    data_fingerprint: str
    training: dict[str, Any]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries declaring the native error shape for these statuses."""
    descriptions = {
        400: "Malformed JSON",
        404: "Unknown model or version",
        413: "Body or row count over the limit",
        415: "Body is not JSON",
        422: "Invalid request or input values",
        503: "No model loaded",
    }
    return {
        status: {"model": ErrorResponse, "description": descriptions.get(status, "Error")}
        for status in statuses
    }
