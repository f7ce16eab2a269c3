"""What a protocol is made of: its operations (method, path and its parameters, handler,
documentation, whether it is a probe), the way it renders errors, and the request and reply
every handler works with. Everything the HTTP edge, the OpenAPI document and the tests know of
a protocol, they read here. No HTTP plumbing: ``app.codecs.endpoint`` serves operations; the
handlers see only ``Call`` and return ``Reply``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetJsonSchemaHandler,
    ValidationError,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from app.dataplane import DECISIONS, DataPlane
from app.errors import SHOWN_LENGTH, InvalidJSON, InvalidRequest, ServiceError
from app.inference import Model

JSON_MEDIA_TYPE = b"application/json"
NOT_AN_OBJECT = "body must be a JSON object"
Envelope = TypeVar("Envelope", bound=BaseModel)
Value = TypeVar("Value")
NULL_REFUSED = "must not be null"


def refuse_null(value: Any) -> Any:
    """An optional field of a request is given a value or left out: ``null`` is neither (the
    protocols' schemas declare a type, not null), and is refused the same way everywhere."""
    if value is None:
        raise PydanticCustomError("null", NULL_REFUSED)
    return value


# Validates before the field's own type: a field left out keeps its default (None).
NOT_NULL = BeforeValidator(refuse_null)


class _NullLeftOutOfSchema:
    """The JSON schema of ``Value | None`` without its ``null``: a request may leave the field
    out, never send null."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        document = handler(schema)
        options = [option for option in document.pop("anyOf", []) if option != {"type": "null"}]
        if len(options) == 1:
            document.update(options[0])
        elif options:
            document["anyOf"] = options
        return document


# An optional field of a request: its type, or left out (None); never null.
Omittable = Annotated[Value | None, NOT_NULL, _NullLeftOutOfSchema()]

_PROBABILITY_SCHEMA: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}
# A threshold as a JSON body sends it: checked by the data plane (app.dataplane.thresholds_for),
# the same way for every protocol.
Threshold = Annotated[
    Any,
    NOT_NULL,
    WithJsonSchema(
        {
            "anyOf": [
                _PROBABILITY_SCHEMA,
                {"type": "object", "additionalProperties": _PROBABILITY_SCHEMA},
            ]
        }
    ),
]

# The decision and top_k as a body sends them: checked by the data plane (decision_named,
# top_k_for), the same way for every protocol.
Decision = Annotated[Any, NOT_NULL, WithJsonSchema({"type": "string", "enum": list(DECISIONS)})]
TopK = Annotated[Any, NOT_NULL, WithJsonSchema({"type": "integer", "minimum": 1})]


@dataclass(slots=True)
class Reply:
    """A finished answer: status, body bytes, and headers beyond content-type and length."""

    body: bytes
    status: int = 200
    media_type: bytes = JSON_MEDIA_TYPE
    headers: tuple[tuple[bytes, bytes], ...] = ()
    rows: int | None = None  # rows predicted, for the access log
    model: tuple[str, int] | None = None  # (name, version) that answered, for the access log


def error_headers(error: ServiceError) -> tuple[tuple[bytes, bytes], ...]:
    """The headers an error asks for (Allow, Retry-After, WWW-Authenticate...)."""
    return tuple((name.lower().encode(), value.encode()) for name, value in error.headers.items())


def json_reply(document: Any, status: int = 200, *, options: int = 0) -> Reply:
    """A JSON document (numpy arrays included) as a reply."""
    return Reply(orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY | options), status)


@dataclass(slots=True)
class Call:
    """One HTTP request to an operation, as its handler sees it."""

    method: str
    path_params: dict[str, str]
    headers: dict[bytes, bytes]  # lower-case names; a repeated header keeps its last value
    body: bytes
    dataplane: DataPlane

    @property
    def content_type(self) -> bytes:
        """The media type alone, lower case, without parameters (b"" when absent)."""
        value = self.headers.get(b"content-type", b"")
        return value.split(b";", 1)[0].strip().lower()


Handler = Callable[[Call], Awaitable[Reply]]


@dataclass(frozen=True)
class Operation:
    """One operation of a protocol: served at ``path`` for ``method``, documented in OpenAPI."""

    method: str
    path: str
    handler: Handler
    summary: str
    response_model: Any = None  # a pydantic model, or a union of them
    request_model: type[BaseModel] | None = None
    # Extra request media types the operation reads besides JSON (and how they look).
    request_media: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    public: bool = False  # answered without an API key (health probes)
    probe: bool = False  # a health probe: the edge answers it even past its connection cap
    # In the OpenAPI document; False for a second spelling of a documented path, or for a
    # protocol's verb the service refuses (served, so that the refusal is the protocol's own).
    documented: bool = True
    # OpenAPI response entries beyond the response model (e.g. a 503 health body).
    responses: dict[int | str, dict[str, Any]] = field(default_factory=dict)

    @property
    def reads_body(self) -> bool:
        return self.request_model is not None


@dataclass(frozen=True)
class PathParameter:
    """A parameter of a codec's paths: what it names (a model, or one of its versions), and
    its description in the OpenAPI document."""

    names: Literal["model", "version"]
    description: str


# The parameters of both standard protocols' model paths.
MODEL_PARAMETERS = {
    "name": PathParameter("model", "The served model's name"),
    "version": PathParameter("version", "One of the loaded versions"),
}


def model_operations(
    models_path: str, method: str, suffix: str, handler: Handler, **documentation: Any
) -> list[Operation]:
    """An operation on a model, at ``<models_path>/{name}<suffix>`` and at its
    ``/versions/{version}`` form, as both standard protocols publish them
    (``MODEL_PARAMETERS``)."""
    return [
        Operation(method, f"{models_path}/{{name}}{suffix}", handler, **documentation),
        Operation(
            method,
            f"{models_path}/{{name}}/versions/{{version}}{suffix}",
            handler,
            **documentation,
        ),
    ]


def model_in_path(call: Call) -> Model:
    """The model a ``MODEL_PARAMETERS`` path names: its newest version, or ``{version}``."""
    return call.dataplane.model(call.path_params["name"], call.path_params.get("version"))


class ErrorEnvelope(BaseModel):
    """A protocol's error body; ``message`` is what it says, however the protocol nests it."""

    model_config = ConfigDict(extra="forbid")

    @property
    def message(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Codec:
    """A protocol: its operations, their path parameters, and its error envelope."""

    name: str
    tag: str
    operations: Sequence[Operation]
    render_error: Callable[[ServiceError], Reply]
    error_model: type[ErrorEnvelope]
    error_descriptions: dict[int, str]
    # Media types its request bodies may declare besides JSON; none means JSON only.
    binary_media_types: frozenset[bytes] = frozenset()
    path_parameters: dict[str, PathParameter] = field(default_factory=dict)

    @property
    def probe_paths(self) -> list[str]:
        return [operation.path for operation in self.operations if operation.probe]


def decode_json(body: bytes) -> Any:
    """The body parsed as JSON; 400 when it is not JSON (NaN and Infinity are not JSON)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidJSON(f"body is not valid JSON: {error}") from error


def may_contain_booleans(body: bytes) -> bool:
    """Whether a JSON text can hold a boolean at all. Without the bytes ``true`` or ``false``
    it cannot, and numbers can go to numpy without a per-value type check (numpy would
    silently read ``true`` as 1)."""
    return b"true" in body or b"false" in body


def validate_envelope(model: type[Envelope], value: Any) -> Envelope:
    """Check a decoded body's top-level fields against a pydantic model; errors name the field.

    The models type bulky data (rows, tensors) as ``Any``: those are checked by the data plane,
    vectorized, with row and feature in each message. A ``null`` where a field's type is
    expected is refused in the same words whatever the field (``refuse_null``).
    """
    if not isinstance(value, dict):
        raise InvalidRequest(NOT_AN_OBJECT)
    try:
        return model.model_validate(value)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])[:SHOWN_LENGTH] or None
        # null for a field of the model (an unknown one is refused as unknown, whatever it holds)
        null_for_a_field = first["input"] is None and first["type"] != "extra_forbidden"
        reason = NULL_REFUSED if null_for_a_field else first["msg"]
        message = f"{where}: {reason}" if where else reason
        raise InvalidRequest(message, field=where) from error


class MessageError(ErrorEnvelope):
    """The error body of the Open Inference Protocol and of TensorFlow Serving."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "model 'other' is not served here"}]}
    )

    error: str

    @property
    def message(self) -> str:
        return self.error


def render_message_error(error: ServiceError) -> Reply:
    """``{"error": "<message>"}``, with the 400 both standard protocols publish for every
    mistake of the client's that the native API tells apart as 422."""
    status = 400 if error.status_code == 422 else error.status_code
    body = orjson.dumps({"error": error.message})
    return Reply(body, status, headers=error_headers(error))


MESSAGE_ERROR_DESCRIPTIONS = {
    400: "Bad request: malformed body, wrong fields or unusable tensor values",
    401: "Missing or wrong API key (when keys are configured)",
    404: "Unknown model or version",
    405: "Method not allowed",
    408: "The request body did not arrive in time",
    413: "Body or row count over the limit",
    415: "Body is neither JSON nor a binary tensor body",
    503: "No model loaded, or the server is at its limit of work (see Retry-After)",
}
