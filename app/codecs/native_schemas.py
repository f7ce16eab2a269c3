"""Request and response models of the native API, with examples from a real trained model."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from app.artifact import MetricSummary
from app.codecs.base import Decision, ErrorEnvelope, Threshold, TopK
from app.codecs.examples import answer_examples
from app.inference import LabelSetSource

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
# Rows are validated by the data plane (vectorized, with row/feature locations), not by
# pydantic, which would be an order of magnitude slower on large batches.
Rows = Annotated[
    Any,
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
                {"instances": [[3, 3, 6, 7, 8, 2, 11, 11, 1, 3]], "decision": "set", "top_k": 2},
                {
                    "instances": [
                        [3, 3, 6, 7, 8, 2, 11, 11, 1, 3],
                        [1, 1, 2, 4, 8, 10, 8, 8, 5, 6],
                    ],
                    "format": "columns",
                },
                {
                    "instances": [
                        [3, 3, 6, 7, 8, 2, 11, 11, 1, 3],
                        [1, 1, 2, 4, 8, 10, 8, 8, 5, 6],
                    ],
                    "format": "columns",
                    "decision": "set",
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
        description="Decision threshold: one number in [0, 1] for every label, or per label "
        "name. Labels not named keep the model's default. A label is on at or above it.",
    )
    format: Literal["rows", "columns"] = Field(
        default="rows",
        description="'rows': one object per row (the default). 'columns': one array per label "
        "for the probabilities and for the decisions, about a third of the size for large "
        "batches.",
    )
    decision: Decision = Field(
        default=None,
        description="How probabilities become labels: 'labels' (the default), each label on at "
        "or above its threshold; 'set', the most probable whole label set, with its "
        "probability (no threshold may come with it).",
    )
    top_k: TopK = Field(
        default=None,
        description="With decision 'set': also list each row's top_k most probable label sets "
        "with their probabilities, most probable first (1 to the number of label sets the "
        "model ranks: GET /metadata).",
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
    model_config = ConfigDict(json_schema_extra={"examples": answer_examples("PredictResponse")})

    model: ModelRef
    thresholds: dict[str, float] = Field(description="The thresholds this answer used.")
    predictions: list[RowPrediction] = Field(description="One per instance, in request order.")


class TopSet(BaseModel):
    labels: list[str] = Field(description="The labels on in this set (maybe none).")
    probability: float = Field(description="The probability of exactly this set.")


class SetRowPrediction(RowPrediction):
    """A row's answer with decision 'set': ``labels`` and ``vector`` are its most probable
    label set."""

    set_probability: float = Field(description="The probability of exactly that set.")
    top_sets: list[TopSet] | None = Field(
        default=None,
        description="With top_k: the top_k most probable sets, most probable first.",
    )


class SetAnswer(BaseModel):
    """What an answer of decision 'set' says before its rows."""

    model: ModelRef
    decision: Literal["set"]
    label_set_source: LabelSetSource = Field(
        description="Where the set probabilities come from: 'label_set_head', the model's "
        "softmax over the label sets seen in training (its second output); "
        "'product_of_marginals', the product over labels of p or 1 - p (labels taken as "
        "independent), over every one of the 2^labels sets."
    )


class SetPredictResponse(SetAnswer):
    """The answer with ``"decision": "set"``: each row's most probable label set."""

    model_config = ConfigDict(json_schema_extra={"examples": answer_examples("SetPredictResponse")})

    predictions: list[SetRowPrediction] = Field(description="One per instance, in order.")


class RowWarning(BaseModel):
    row: int
    feature: str
    value: float
    train_range: tuple[float, float]


class ColumnsResponse(BaseModel):
    """The answer with ``"format": "columns"``: the same content, by label rather than by row."""

    model_config = ConfigDict(json_schema_extra={"examples": answer_examples("ColumnsResponse")})

    model: ModelRef
    thresholds: dict[str, float] = Field(description="The thresholds this answer used.")
    probabilities: dict[str, list[float]] = Field(description="Per label, one value per row.")
    decisions: dict[str, list[Literal[0, 1]]] = Field(
        description="Per label, 1 where the row has the label on, in row order."
    )
    warnings: list[RowWarning] = Field(
        description="Features outside the range seen in training, with their row."
    )


class SetColumnsResponse(SetAnswer):
    """The answer with ``"decision": "set"`` and ``"format": "columns"``."""

    model_config = ConfigDict(json_schema_extra={"examples": answer_examples("SetColumnsResponse")})

    probabilities: dict[str, list[float]] = Field(description="Per label, one value per row.")
    decisions: dict[str, list[Literal[0, 1]]] = Field(
        description="Per label, 1 where the row's most probable set holds the label."
    )
    set_probability: list[float] = Field(description="Per row, the probability of that set.")
    top_sets: list[list[TopSet]] | None = Field(
        default=None,
        description="With top_k: per row, its top_k most probable sets, most probable first.",
    )
    warnings: list[RowWarning] = Field(
        description="Features outside the range seen in training, with their row."
    )


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Machine-readable, e.g. invalid_input, payload_too_large.")
    message: str = Field(description="What was wrong, for people.")
    row: int | None = Field(default=None, description="Index of the offending row, if any.")
    field: str | None = Field(default=None, description="Offending feature or request field.")


class ErrorResponse(ErrorEnvelope):
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

    @property
    def message(self) -> str:
        return self.error.message


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
    schema_change_allowed: bool = Field(
        description="Whether hot reload may serve a version whose features or labels differ "
        "(MULTILABEL_ALLOW_SCHEMA_CHANGE)."
    )
    schemas_differ: bool = Field(
        description="Whether the loaded versions take or answer different features or labels; "
        "only possible when schema changes are allowed. Ask for a version explicitly then."
    )
    signatures_verified: bool = Field(
        description="Whether every served version was verified against MULTILABEL_TRUSTED_KEYS."
    )
    decisions: list[str] = Field(description="The decisions a predict request may ask for.")
    label_set_source: LabelSetSource = Field(
        description="Where decision 'set' finds the probability of a label set: the model's "
        "label-set head, or the product of its marginals."
    )
    label_set_count: int = Field(
        description="How many label sets decision 'set' ranks: the largest top_k (0: this "
        "model cannot rank them, having more labels than the product of marginals covers)."
    )
    label_sets: list[list[str]] | None = Field(
        description="The label-set head's sets, in the order of its output; None without one."
    )
