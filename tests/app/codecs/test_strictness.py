"""One list of validation cases, run against every protocol.

Each case is one thing wrong with a request (or one thing that looks wrong and is accepted),
with, for each protocol, how that case is written on its wire and the verdict: the status,
and where the error says it, the row and the field. A case that cannot be written on a
protocol's wire says why instead. The same list renders the strictness table of
docs/strictness.md:
``.venv/bin/python -m tests.app.codecs.test_strictness`` prints it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import grpc
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from app.codecs import CODECS, native, tfserving, v2
from app.codecs.base import Codec, MessageError
from app.codecs.grpc import SERVICE, STATUS_CODES
from app.codecs.oip_grpc import open_inference_grpc_pb2 as messages
from app.config import Settings
from app.main import create_app
from tests.app.codecs.protocols import error_message, filled, inference_operation
from tests.support import MODEL_NAME, REFERENCE_INPUTS, REPO_ROOT, free_port

MAX_ROWS = 100  # the test app's MULTILABEL_MAX_ROWS: small, so that "too many" stays small
MAX_BODY_BYTES = 65_536  # its MULTILABEL_MAX_BODY_BYTES
ROW = REFERENCE_INPUTS[0]
FEATURES = [f"x{index}" for index in range(len(ROW))]
FLOAT32_MAX = float(np.finfo(np.float32).max)
MARK = 123456789  # a value that a raw JSON literal (NaN, 1e309...) replaces in the body text
JSON = {"content-type": "application/json"}
HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass(frozen=True)
class Wire:
    """A case written on one protocol's wire, and the verdict it gets.

    ``field`` is the native error's ``field`` exactly; for the protocols whose error is a
    message, it is what the message names (as is ``row``, as "row N").
    """

    wire: str  # how the case is written, for the table
    body: bytes | None
    status: int
    row: int | None = None
    field: str | None = None
    code: str | None = None  # the native error's code
    headers: dict[str, str] = dataclasses.field(default_factory=lambda: dict(JSON))
    method: str = "POST"
    path: str | None = None  # None: the protocol's inference path


@dataclass(frozen=True)
class NotOnWire:
    """A case that does not exist on a protocol, and why."""

    reason: str


Cell = Wire | NotOnWire


@dataclass(frozen=True)
class Case:
    what: str
    native: Cell
    v2_json: Cell
    v2_binary: Cell
    tfserving: Cell
    grpc: Cell


@dataclass(frozen=True)
class Protocol:
    attribute: str  # the Case field holding its cells
    title: str  # the table's column
    codec: Codec | None  # whose inference operation serves the cells (None: gRPC's ModelInfer)

    @property
    def path(self) -> str:
        if self.codec is None:
            return f"/{SERVICE}/ModelInfer"
        operation = inference_operation(self.codec)
        assert operation is not None
        return filled(self.codec, operation.path)

    @property
    def message_envelope(self) -> bool:
        """Whether errors are one message, rather than an object with their row and field."""
        return self.codec is None or self.codec.error_model is MessageError


PROTOCOLS = [
    Protocol("native", "native `POST /predict`", native.CODEC),
    Protocol("v2_json", "V2 JSON `POST …/infer`", v2.CODEC),
    Protocol("v2_binary", "V2 binary tensors `POST …/infer`", v2.CODEC),
    Protocol("tfserving", "TF Serving `POST …:predict`", tfserving.CODEC),
    Protocol("grpc", "gRPC `ModelInfer`", None),
]
PREDICT, INFER, _, TF_PREDICT, _ = (protocol.path for protocol in PROTOCOLS)


def with_value(index: int, value: Any, row: list[Any] = ROW) -> list[Any]:
    changed = list(row)
    changed[index] = value
    return changed


def literal(body: bytes, text: str) -> bytes:
    """The body with the marker value replaced by a raw JSON text (NaN, 1e309, ...)."""
    assert str(MARK).encode() in body
    return body.replace(str(MARK).encode(), text.encode(), 1)


def native_body(rows: Any = None, **fields: Any) -> bytes:
    return orjson.dumps({"instances": [ROW] if rows is None else rows, **fields})


def tf_body(rows: Any = None, **fields: Any) -> bytes:
    return native_body(rows, **fields)


def v2_document(
    rows: Any = None, *, nested: bool = False, shape: Any = None, **tensor: Any
) -> dict[str, Any]:
    rows = [ROW] if rows is None else rows
    data = rows if nested else [value for row in rows for value in row]
    return {
        "name": "features",
        "shape": [len(rows), len(ROW)] if shape is None else shape,
        "datatype": "FP32",
        "data": data,
        **tensor,
    }


def v2_body(rows: Any = None, *, tensor: dict[str, Any] | None = None, **fields: Any) -> bytes:
    return orjson.dumps({"inputs": [{**v2_document(rows), **(tensor or {})}], **fields})


def triton_body(
    values: np.ndarray | None = None,
    *,
    datatype: str = "FP32",
    parameters: dict[str, Any] | None = None,
    outputs: list[Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A binary request as tritonclient writes it (no content type, as tritonclient sends)."""
    values = np.asarray([ROW], dtype=np.float32) if values is None else values
    tensor = triton.InferInput("features", list(values.shape), datatype)
    tensor.set_data_from_numpy(values)
    body, header_length = triton.InferenceServerClient.generate_request_body(
        [tensor], outputs, parameters=parameters
    )
    assert header_length is not None
    return body, {HEADER_LENGTH: str(header_length)}


def binary(wire: str, status: int, values: np.ndarray | None = None, **options: Any) -> Wire:
    """A binary request made by tritonclient, and its verdict (row, field, headers...)."""
    verdict = {
        key: options.pop(key) for key in ("row", "field", "method", "path") if key in options
    }
    extra_headers = options.pop("headers", {})
    body, headers = triton_body(values, **options)
    return Wire(wire, body, status, headers={**headers, **extra_headers}, **verdict)


def raw_binary(wire: str, status: int, header: bytes, data: bytes, **verdict: Any) -> Wire:
    """A binary request written byte by byte (what tritonclient never sends)."""
    declared = verdict.pop("declared", str(len(header)))
    return Wire(wire, header + data, status, headers={HEADER_LENGTH: declared}, **verdict)


def grpc_body(
    rows: Any = None,
    *,
    raw: bool = False,
    datatype: str = "FP32",
    values: Any = None,
    shape: Any = None,
    **fields: Any,
) -> bytes:
    """A ModelInfer request: ``rows`` as float32 in ``fp32_contents`` (or raw), or ``values``
    of ``datatype`` in its own contents field, with ``shape`` (the rows' by default)."""
    matrix = np.asarray([ROW] if rows is None else rows, dtype=np.float32)
    tensor = messages.ModelInferRequest.InferInputTensor(
        name=fields.pop("name", "features"),
        datatype=datatype,
        shape=list(matrix.shape) if shape is None else shape,
    )
    request = messages.ModelInferRequest(model_name=fields.pop("model_name", MODEL_NAME), **fields)
    if raw:
        request.raw_input_contents.append(matrix.tobytes())
    else:
        contents = {"FP32": "fp32_contents", "FP64": "fp64_contents"}.get(datatype, "int_contents")
        flat = matrix.ravel().tolist() if values is None else values
        getattr(tensor.contents, contents).extend(flat)
    request.inputs.append(tensor)
    return request.SerializeToString()


def grpc_parameters(**parameters: Any) -> dict[str, messages.InferParameter]:
    """Request parameters, each in the field its Python type says (a JSON value's kind)."""
    fields = {bool: "bool_param", int: "int64_param", float: "double_param", str: "string_param"}
    return {
        name.replace("__", "."): messages.InferParameter(**{fields[type(value)]: value})
        for name, value in parameters.items()
    }


def rows_filled(count: int) -> list[list[int]]:
    return [ROW] * count


def float32(rows: Any) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)


def padded(body: bytes) -> bytes:
    """A body just over MAX_BODY_BYTES: JSON whitespace before its closing brace."""
    return body[:-1] + b" " * (MAX_BODY_BYTES - len(body) + 1) + b"}"


def padded_binary() -> Wire:
    body, headers = triton_body()
    header = body[: int(headers[HEADER_LENGTH])]
    spaced = header[:-1] + b" " * (MAX_BODY_BYTES - len(body) + 1) + b"}"
    return raw_binary("the header padded with spaces", 413, spaced, body[len(header) :])


BINARY_HEADER, _ = triton_body(float32([ROW]))
HEADER_ONLY = BINARY_HEADER[: -4 * len(ROW)]  # the JSON header of a one-row binary request
ROW_BYTES = float32([ROW]).tobytes()
UNKNOWN_FIELD = b"\x98\x06\x01"  # field number 99, a varint 1: in no ModelInferRequest
_REQUEST = messages.ModelInferRequest.FromString(grpc_body())
TWO_INPUTS = messages.ModelInferRequest(
    model_name=MODEL_NAME, inputs=[_REQUEST.inputs[0]] * 2
).SerializeToString()
BOTH_CONTENTS = messages.ModelInferRequest(
    model_name=MODEL_NAME, inputs=_REQUEST.inputs, raw_input_contents=[ROW_BYTES]
).SerializeToString()
NO_DATATYPE_HERE = NotOnWire("JSON numbers carry no datatype")
NO_THRESHOLD = NotOnWire("TF Serving's API has no threshold: signatures use the model's")
NO_BINARY_VALUES = NotOnWire("FP32 bytes hold numbers only")
NOT_BINARY = NotOnWire("no binary tensor data on this protocol")
NO_MODEL_IN_PATH = NotOnWire("`/predict` names no model: it serves the one model")
SAME_AS_JSON_HEADER = NotOnWire("the JSON header is V2 JSON's: see that column")
TYPED_VALUES = NotOnWire("`fp32_contents` holds float32 numbers only")
POSITIONAL = NotOnWire("tensor values are positional")
NO_JSON = NotOnWire("a protobuf message, not JSON")
NO_HEADER_LENGTH = NotOnWire("no header length: gRPC frames each message itself")
GRPC_CONTENT_TYPE = NotOnWire("gRPC's own `application/grpc`, checked by gRPC")
NO_NULL = NotOnWire("protobuf has no null: a field left out is its default")


def threshold_case(what: str, threshold: Any, shown: str, field_name: str = "threshold") -> Case:
    """A wrong threshold: the native field, V2's parameter in JSON and in a binary header."""
    return Case(
        what,
        native=Wire(
            f'`"threshold": {shown}`',
            native_body(threshold=threshold),
            422,
            code="invalid_request",
            field=field_name,
        ),
        v2_json=Wire(
            f'`"parameters": {{"threshold": {shown}}}`',
            v2_body(parameters={"threshold": threshold}),
            400,
            field="parameters.threshold",
        ),
        v2_binary=binary(
            "the same parameter in the JSON header",
            400,
            parameters={"threshold": threshold},
            field="parameters.threshold",
        ),
        tfserving=NO_THRESHOLD,
        grpc=grpc_threshold(threshold, shown),
    )


def grpc_threshold(threshold: Any, shown: str) -> Cell:
    """The same threshold as request parameters: ``threshold``, or ``threshold.<label>``."""
    if isinstance(threshold, list):
        return NotOnWire("parameters are scalars")
    given = (
        {f"threshold__{k}": v for k, v in threshold.items()}
        if isinstance(threshold, dict)
        else {"threshold": threshold}
    )
    if None in given.values():  # protobuf's null: a parameter with no value set
        (name,) = given
        unset = {name.replace("__", "."): messages.InferParameter()}
        written = f"`{name.replace('__', '.')}` with no value set"
        return Wire(
            f"parameter {written}", grpc_body(parameters=unset), 400, field="parameters.threshold"
        )
    written = ", ".join(
        f"`{name.replace('__', '.')}`: `{value!r}`" for name, value in given.items()
    )
    body = grpc_body(parameters=grpc_parameters(**given))
    return Wire(f"parameter {written}", body, 400, field="parameters.threshold")


def decision_case(what: str, field_name: str | None, status: int = 400, **options: Any) -> Case:
    """Decision options (``decision``, ``top_k``, ``threshold``) as each protocol sends them:
    native and TF Serving fields (TF Serving has no threshold), V2 and gRPC parameters; the
    verdict names the protocol's own spelling of ``field_name``."""
    shown = ", ".join(
        f'"{name}": {orjson.dumps(value).decode()}' for name, value in options.items()
    )
    native_field = field_name if status != 200 else None
    message_field = None if field_name is None else f"parameters.{field_name}"
    tf_options = {"signature_name": "label_sets", **options} if status == 200 else options
    tf_shown = ", ".join(
        f'"{name}": {orjson.dumps(value).decode()}' for name, value in tf_options.items()
    )
    return Case(
        what,
        native=Wire(
            f"`{shown}`",
            native_body(**options),
            422 if status == 400 else status,
            code="invalid_request" if status == 400 else None,
            field=native_field,
        ),
        v2_json=Wire(
            f'`"parameters": {{{shown}}}`',
            v2_body(parameters=options),
            status,
            field=message_field,
        ),
        v2_binary=binary(
            "the same parameters in the JSON header",
            status,
            parameters=options,
            field=message_field,
        ),
        tfserving=(
            NO_THRESHOLD
            if "threshold" in options
            else Wire(f"`{tf_shown}`", tf_body(**tf_options), status, field=field_name)
        ),
        grpc=(
            NotOnWire("parameters are scalars")
            if any(isinstance(value, list | dict) for value in options.values())
            else Wire(
                "parameters "
                + ", ".join(grpc_shown(name, value) for name, value in options.items()),
                grpc_body(parameters=grpc_parameters(**options)),
                status,
                field=message_field,
            )
        ),
    )


def grpc_shown(name: str, value: Any) -> str:
    """A request parameter as the message holds it: ``decision`` as string_param ``set``."""
    (field,) = grpc_parameters(**{name: value})[name].ListFields()
    return f"`{name}` as {field[0].name} `{orjson.dumps(value).decode()}`"


def value_case(what: str, index: int, text: str, shown: str | None = None) -> Case:
    """One feature value of the second row is the JSON text ``text`` instead of a number."""
    rows = [ROW, with_value(index, MARK)]
    feature = FEATURES[index]
    shown = shown or text
    return Case(
        what,
        native=Wire(
            f"`{shown}` as {feature} of row 1",
            literal(native_body(rows), text),
            422,
            code="invalid_input",
            row=1,
            field=feature,
        ),
        v2_json=Wire(
            f"`{shown}` in `data`", literal(v2_body(rows), text), 400, row=1, field=feature
        ),
        v2_binary=NO_BINARY_VALUES,
        tfserving=Wire(
            f"`{shown}` in row 1", literal(tf_body(rows), text), 400, row=1, field=feature
        ),
        grpc=TYPED_VALUES,
    )


def literal_case(what: str, text: str, binary_value: float | None) -> Case:
    """A JSON text that is not a JSON number (or not one a float64 holds): unreadable JSON."""
    rows = [ROW, with_value(0, MARK)]
    in_binary: Cell = NO_BINARY_VALUES
    in_grpc: Cell = TYPED_VALUES
    if binary_value is not None:
        in_binary = binary(
            f"float32 {text} as x0 of row 1",
            400,
            float32([ROW, with_value(0, binary_value)]),
            row=1,
            field="x0",
        )
        in_grpc = Wire(
            f"float32 {text} as x0 of row 1",
            grpc_body([ROW, with_value(0, binary_value)]),
            400,
            row=1,
            field="x0",
        )
    return Case(
        what,
        native=Wire(
            f"`{text}` in row 1",
            literal(native_body(rows), text),
            400,
            code="invalid_json",
        ),
        v2_json=Wire(f"`{text}` in `data`", literal(v2_body(rows), text), 400),
        v2_binary=in_binary,
        tfserving=Wire(f"`{text}` in row 1", literal(tf_body(rows), text), 400),
        grpc=in_grpc,
    )


def content_type_case(what: str, media_type: str | None, native: int, v2: int, tf: int) -> Case:
    headers = {} if media_type is None else {"content-type": media_type}
    shown = "no `content-type`" if media_type is None else f"`{media_type}`"
    code = {415: "unsupported_media_type"}.get(native)
    return Case(
        what,
        native=Wire(shown, native_body(), native, code=code, headers=headers),
        v2_json=Wire(shown, v2_body(), v2, headers=headers),
        v2_binary=binary(f"{shown}, binary body", v2, headers=headers),
        tfserving=Wire(shown, tf_body(), tf, headers=headers),
        grpc=GRPC_CONTENT_TYPE,
    )


def path_case(
    what: str,
    v2_path: str,
    tf_path: str,
    shown: str,
    grpc_fields: dict[str, str],
    status: int = 404,
) -> Case:
    grpc_shown = ", ".join(f'{name}: "{value}"' for name, value in grpc_fields.items())
    return Case(
        what,
        native=NO_MODEL_IN_PATH,
        v2_json=Wire(f"`{shown}`", v2_body(), status, path=v2_path),
        v2_binary=binary(f"`{shown}`", status, path=v2_path),
        tfserving=Wire(f"`{shown}`", tf_body(), status, path=tf_path),
        grpc=Wire(f"`{grpc_shown}`", grpc_body(**grpc_fields), status),
    )


NON_FINITE_ROWS = [ROW, [FLOAT32_MAX] * len(ROW)]
# The outputs of decision "set", when the request names none.
ANSWERED_SETS = ["probabilities", "labels", "label_sets", "label_set_probabilities"]

CASES: list[Case] = [
    Case(
        "nothing wrong (the reference row)",
        native=Wire('`{"instances": [[3, 3, 6, …]]}`', native_body(), 200),
        v2_json=Wire("FP32 `[1, 10]`, flat `data`", v2_body(), 200),
        v2_binary=binary("FP32 `[1, 10]`, 40 bytes", 200),
        tfserving=Wire('`{"instances": [[3, 3, 6, …]]}`', tf_body(), 200),
        grpc=Wire("FP32 `[1, 10]`, 10 values in `fp32_contents`", grpc_body(), 200),
    ),
    value_case("a value is a boolean", 7, "true"),
    value_case("a value is a string", 3, '"7"'),
    value_case("a value is null", 5, "null"),
    value_case("a value is a list", 2, "[1]"),
    value_case("a value is an object", 4, '{"v": 1}'),
    Case(
        "every value is a one-element list",
        native=Wire(
            "`[[3], [3], [6], …]`",
            native_body([[[value] for value in ROW]]),
            422,
            code="invalid_input",
            row=0,
            field="x0",
        ),
        v2_json=Wire(
            "nested `data`, `[[[3], [3], …]]`",
            orjson.dumps(
                {"inputs": [v2_document([[[value] for value in ROW]], nested=True, shape=[1, 10])]}
            ),
            400,
            row=0,
            field="x0",
        ),
        v2_binary=NO_BINARY_VALUES,
        tfserving=Wire(
            "`[[3], [3], [6], …]`", tf_body([[[value] for value in ROW]]), 400, row=0, field="x0"
        ),
        grpc=TYPED_VALUES,
    ),
    value_case("a number beyond float32", 6, "1e39"),
    value_case("an integer beyond float32", 8, "1" + "0" * 40, "10⁴⁰ written out"),
    literal_case("a `NaN` literal", "NaN", float("nan")),
    literal_case("an `Infinity` literal", "Infinity", float("inf")),
    literal_case("a `-Infinity` literal", "-Infinity", float("-inf")),
    literal_case("a number beyond float64", "1e309", None),
    Case(
        "the model's outputs are not finite (every value 3.4e38)",
        native=Wire(
            "row 1 all 3.4028235e38",
            native_body(NON_FINITE_ROWS),
            422,
            code="invalid_input",
            row=1,
        ),
        v2_json=Wire("row 1 all 3.4028235e38", v2_body(NON_FINITE_ROWS), 400, row=1),
        v2_binary=binary("row 1 all 3.4028235e38", 400, float32(NON_FINITE_ROWS), row=1),
        tfserving=Wire("row 1 all 3.4028235e38", tf_body(NON_FINITE_ROWS), 400, row=1),
        grpc=Wire("row 1 all 3.4028235e38", grpc_body(NON_FINITE_ROWS), 400, row=1),
    ),
    Case(
        "a row is too short",
        native=Wire(
            "row 1 of 9 values",
            native_body([ROW, ROW[:9]]),
            422,
            code="invalid_input",
            row=1,
        ),
        v2_json=Wire(
            "nested `data`, row 1 of 9 values",
            orjson.dumps({"inputs": [v2_document([ROW, ROW[:9]], nested=True, shape=[2, 10])]}),
            400,
            row=1,
        ),
        v2_binary=binary("shape `[2, 9]`, 72 bytes", 400, float32([ROW[:9]] * 2), field="shape"),
        tfserving=Wire("row 1 of 9 values", tf_body([ROW, ROW[:9]]), 400, row=1),
        grpc=Wire("shape `[2, 9]`, 18 values", grpc_body([ROW[:9]] * 2), 400, field="shape"),
    ),
    Case(
        "a row is too long",
        native=Wire(
            "row 0 of 11 values",
            native_body([[*ROW, 1]]),
            422,
            code="invalid_input",
            row=0,
        ),
        v2_json=Wire(
            "shape `[1, 10]`, 11 values",
            v2_body(tensor={"data": [*ROW, 1]}),
            400,
            field="11 values",
        ),
        v2_binary=binary("shape `[1, 11]`, 44 bytes", 400, float32([[*ROW, 1]]), field="shape"),
        tfserving=Wire("row 0 of 11 values", tf_body([[*ROW, 1]]), 400, row=0),
        grpc=Wire("shape `[1, 11]`, 11 values", grpc_body([[*ROW, 1]]), 400, field="shape"),
    ),
    Case(
        "a row is not a list",
        native=Wire("row 1 is `7`", native_body([ROW, 7]), 422, code="invalid_input", row=1),
        v2_json=Wire(
            "nested `data`, row 1 is `7`",
            orjson.dumps({"inputs": [v2_document([ROW, 7], nested=True, shape=[2, 10])]}),
            400,
            row=1,
        ),
        v2_binary=NO_BINARY_VALUES,
        tfserving=Wire("row 1 is `7`", tf_body([ROW, 7]), 400, row=1),
        grpc=POSITIONAL,
    ),
    Case(
        "a row is given as an object",
        native=Wire(
            '`{"x0": 3, …, "x9": 3}`: accepted, by name',
            native_body([dict(zip(FEATURES, ROW, strict=True))]),
            200,
        ),
        v2_json=Wire(
            'nested `data`, row 1 `{"x0": 3, …}`',
            orjson.dumps(
                {
                    "inputs": [
                        v2_document(
                            [ROW, dict(zip(FEATURES, ROW, strict=True))],
                            nested=True,
                            shape=[2, 10],
                        )
                    ]
                }
            ),
            400,
            row=1,
        ),
        v2_binary=NO_BINARY_VALUES,
        tfserving=Wire(
            '`{"features": [3, 3, …]}`: accepted, TF Serving\'s named input',
            tf_body([{"features": ROW}]),
            200,
        ),
        grpc=POSITIONAL,
    ),
    Case(
        "rows mix lists and objects, a list first",
        native=Wire(
            '`[[3, …], {"x0": 3, …}]`: accepted, each row by itself',
            native_body([ROW, dict(zip(FEATURES, ROW, strict=True))]),
            200,
        ),
        v2_json=NotOnWire("no named rows in tensor data"),
        v2_binary=NO_BINARY_VALUES,
        tfserving=Wire(
            '`[[3, …], {"features": […]}]`',
            tf_body([ROW, {"features": ROW}]),
            400,
            row=1,
        ),
        grpc=POSITIONAL,
    ),
    Case(
        "rows mix lists and objects, an object first",
        native=Wire(
            '`[{"x0": 3, …}, [3, …]]`: accepted, each row by itself',
            native_body([dict(zip(FEATURES, ROW, strict=True)), ROW]),
            200,
        ),
        v2_json=NotOnWire("no named rows in tensor data"),
        v2_binary=NO_BINARY_VALUES,
        tfserving=Wire(
            '`[{"features": […]}, [3, …]]`',
            tf_body([{"features": ROW}, ROW]),
            400,
            row=1,
        ),
        grpc=POSITIONAL,
    ),
    Case(
        "a row names an unknown feature",
        native=Wire(
            '`"x42": 1` beside x0…x9',
            native_body([{**dict(zip(FEATURES, ROW, strict=True)), "x42": 1}]),
            422,
            code="invalid_input",
            row=0,
            field="x42",
        ),
        v2_json=NotOnWire("tensor values are positional"),
        v2_binary=NotOnWire("tensor values are positional"),
        tfserving=Wire(
            '`{"features": […], "x42": 1}`',
            tf_body([{"features": ROW, "x42": 1}]),
            400,
            row=0,
        ),
        grpc=POSITIONAL,
    ),
    Case(
        "a row lacks a feature",
        native=Wire(
            "object without x9",
            native_body([dict(zip(FEATURES[:9], ROW[:9], strict=True))]),
            422,
            code="invalid_input",
            row=0,
            field="x9",
        ),
        v2_json=NotOnWire("tensor values are positional"),
        v2_binary=NotOnWire("tensor values are positional"),
        tfserving=NotOnWire('`{"features": […]}` holds every value, by position'),
        grpc=POSITIONAL,
    ),
    Case(
        "no rows",
        native=Wire('`"instances": []`', native_body([]), 422, code="invalid_input"),
        v2_json=Wire("shape `[0, 10]`, `data: []`", v2_body([]), 400, field="no rows"),
        v2_binary=binary(
            "shape `[0, 10]`, 0 bytes", 400, np.zeros((0, 10), np.float32), field="no rows"
        ),
        tfserving=Wire('`"instances": []`', tf_body([]), 400, field="no rows"),
        grpc=Wire("shape `[0, 10]`, no values", grpc_body(np.zeros((0, 10))), 400, field="no rows"),
    ),
    Case(
        "too many rows (`MULTILABEL_MAX_ROWS` + 1)",
        native=Wire(
            "`MAX_ROWS + 1` rows",
            native_body(rows_filled(MAX_ROWS + 1)),
            413,
            code="payload_too_large",
        ),
        v2_json=Wire("`MAX_ROWS + 1` rows", v2_body(rows_filled(MAX_ROWS + 1)), 413),
        v2_binary=binary("`MAX_ROWS + 1` rows", 413, float32(rows_filled(MAX_ROWS + 1))),
        tfserving=Wire("`MAX_ROWS + 1` rows", tf_body(rows_filled(MAX_ROWS + 1)), 413),
        grpc=Wire("`MAX_ROWS + 1` rows", grpc_body(rows_filled(MAX_ROWS + 1)), 413),
    ),
    Case(
        "body over `MULTILABEL_MAX_BODY_BYTES`",
        native=Wire(
            "one row, padded with spaces",
            padded(native_body()),
            413,
            code="payload_too_large",
        ),
        v2_json=Wire("one row, padded with spaces", padded(v2_body()), 413),
        v2_binary=padded_binary(),
        tfserving=Wire("one row, padded with spaces", padded(tf_body()), 413),
        grpc=Wire(
            "one row, and an `id` as long as the limit", grpc_body(id="x" * MAX_BODY_BYTES), 413
        ),
    ),
    Case(
        "the rows are missing",
        native=Wire("`{}`", b"{}", 422, code="invalid_request", field="instances"),
        v2_json=Wire('`{"id": "1"}`', b'{"id": "1"}', 400, field="inputs"),
        v2_binary=raw_binary("header `{}`, no data", 400, b"{}", b"", field="inputs"),
        tfserving=Wire("`{}`", b"{}", 400, field="neither"),
        grpc=Wire(
            "no `inputs`",
            messages.ModelInferRequest(model_name=MODEL_NAME).SerializeToString(),
            400,
            field="got 0",
        ),
    ),
    Case(
        "body is not JSON",
        native=Wire('`{"instances": [[1, 2`', b'{"instances": [[1, 2', 400, code="invalid_json"),
        v2_json=Wire('`{"inputs": [{`', b'{"inputs": [{', 400, field="not valid JSON"),
        v2_binary=raw_binary('header `{"inputs": [{`', 400, b'{"inputs": [{', ROW_BYTES),
        tfserving=Wire('`{"instances": [[1, 2`', b'{"instances": [[1, 2', 400),
        grpc=Wire(
            "bytes that are no `ModelInferRequest`", b"\xff\xff\xff", 400, field="ModelInferRequest"
        ),
    ),
    Case(
        "body is empty",
        native=Wire("no bytes", b"", 400, code="invalid_json"),
        v2_json=Wire("no bytes", b"", 400),
        v2_binary=raw_binary("header length 0, no bytes", 400, b"", b""),
        tfserving=Wire("no bytes", b"", 400),
        grpc=NotOnWire("an empty message is one with every field at its default"),
    ),
    Case(
        "body is a JSON array",
        native=Wire("`[[3, 3, …]]`", orjson.dumps([ROW]), 422, code="invalid_request"),
        v2_json=Wire("`[{…tensor…}]`", orjson.dumps([v2_document()]), 400, field="JSON object"),
        v2_binary=raw_binary("header `[]`", 400, b"[]", b"", field="JSON object"),
        tfserving=Wire("`[[3, 3, …]]`", orjson.dumps([ROW]), 400, field="JSON object"),
        grpc=NO_JSON,
    ),
    Case(
        "an unknown top-level field",
        native=Wire(
            '`"extra": 1`',
            native_body(extra=1),
            422,
            code="invalid_request",
            field="extra",
        ),
        v2_json=Wire('`"extra": 1`: ignored, as the protocol allows', v2_body(extra=1), 200),
        v2_binary=SAME_AS_JSON_HEADER,
        tfserving=Wire('`"extra": 1`: ignored', tf_body(extra=1), 200),
        grpc=Wire("field number 99: ignored, as protobuf does", grpc_body() + UNKNOWN_FIELD, 200),
    ),
    content_type_case("explicit non-JSON content type", "text/plain", 415, 415, 415),
    content_type_case(
        "form-encoded content type (`curl -d`)", "application/x-www-form-urlencoded", 415, 415, 415
    ),
    content_type_case("binary content type", "application/octet-stream", 415, 200, 415),
    content_type_case("missing content type (accepted)", None, 200, 200, 200),
    content_type_case("JSON with a charset", "application/json; charset=utf-8", 200, 200, 200),
    content_type_case("a `+json` media type", "application/vnd.api+json", 200, 200, 200),
    Case(
        "wrong method",
        native=Wire("`GET /predict`", None, 405, code="method_not_allowed", method="GET"),
        v2_json=Wire("`GET …/infer`", None, 405, method="GET"),
        v2_binary=NotOnWire("a GET has no body: see V2 JSON"),
        tfserving=Wire("`GET …:predict`", None, 405, method="GET"),
        grpc=NotOnWire("one RPC per operation"),
    ),
    path_case(
        "unknown model",
        "/v2/models/other/infer",
        "/v1/models/other:predict",
        "models/other",
        {"model_name": "other"},
    ),
    path_case(
        "unknown version",
        f"/v2/models/{MODEL_NAME}/versions/9/infer",
        f"/v1/models/{MODEL_NAME}/versions/9:predict",
        "versions/9",
        {"model_version": "9"},
    ),
    path_case(
        "version is not a number",
        f"/v2/models/{MODEL_NAME}/versions/v1/infer",
        f"/v1/models/{MODEL_NAME}/versions/v1:predict",
        "versions/v1",
        {"model_version": "v1"},
    ),
    decision_case("decision `set` with `top_k` 2 (accepted)", None, 200, decision="set", top_k=2),
    decision_case("an unknown decision", "decision", decision="best"),
    decision_case("decision is not a string", "decision", decision=1),
    decision_case("`top_k` is 0", "top_k", decision="set", top_k=0),
    decision_case("`top_k` above the label sets the model ranks", "top_k", decision="set", top_k=9),
    decision_case("`top_k` is a float", "top_k", decision="set", top_k=2.0),
    decision_case("`top_k` is a string", "top_k", decision="set", top_k="2"),
    decision_case("`top_k` is a boolean", "top_k", decision="set", top_k=True),
    decision_case("`top_k` without decision `set`", "top_k", top_k=2),
    decision_case("a threshold with decision `set`", "threshold", decision="set", threshold=0.5),
    Case(
        "a label-set output with decision `labels`",
        native=NotOnWire("the decision chooses the answer's fields"),
        v2_json=Wire(
            '`"outputs": [{"name": "label_sets"}]`, no decision',
            v2_body(outputs=[{"name": "label_sets"}]),
            400,
            field="outputs.0.name",
        ),
        v2_binary=binary(
            '`InferRequestedOutput("label_set_probabilities")`',
            400,
            outputs=[triton.InferRequestedOutput("label_set_probabilities")],
            field="outputs.0.name",
        ),
        tfserving=Wire(
            '`"signature_name": "label_sets", "decision": "labels"`',
            tf_body(signature_name="label_sets", decision="labels"),
            400,
            field="signature_name",
        ),
        grpc=Wire(
            '`outputs: [{name: "label_sets"}]`, no decision',
            grpc_body(outputs=[{"name": "label_sets"}]),
            400,
            field="outputs.0.name",
        ),
    ),
    Case(
        "decision `set` with no output that shows the set",
        native=NotOnWire("the decision chooses the answer's fields"),
        v2_json=Wire(
            '`"outputs": [{"name": "probabilities"}]`, decision `set`',
            v2_body(outputs=[{"name": "probabilities"}], parameters={"decision": "set"}),
            400,
            field="outputs",
        ),
        v2_binary=binary(
            '`InferRequestedOutput("probabilities")`, decision `set`',
            400,
            outputs=[triton.InferRequestedOutput("probabilities")],
            parameters={"decision": "set"},
            field="outputs",
        ),
        tfserving=Wire(
            '`"decision": "set"`, the default signature',
            tf_body(decision="set"),
            400,
            field="signature_name",
        ),
        grpc=Wire(
            '`outputs: [{name: "probabilities"}]`, decision `set`',
            grpc_body(
                outputs=[{"name": "probabilities"}],
                parameters=grpc_parameters(decision="set"),
            ),
            400,
            field="outputs",
        ),
    ),
    threshold_case("threshold is a boolean", True, "true"),
    threshold_case("threshold is a string", "0.7", '"0.7"'),
    threshold_case("threshold above 1", 1.5, "1.5"),
    threshold_case("threshold below 0", -0.1, "-0.1"),
    threshold_case("threshold is a list", [0.5], "[0.5]"),
    threshold_case(
        "unknown label in threshold", {"label_9": 0.5}, '{"label_9": 0.5}', "threshold.label_9"
    ),
    threshold_case(
        "a label's threshold is a boolean",
        {"label_1": True},
        '{"label_1": true}',
        "threshold.label_1",
    ),
    threshold_case(
        "a label's threshold is a string",
        {"label_1": "0.5"},
        '{"label_1": "0.5"}',
        "threshold.label_1",
    ),
    Case(
        "datatype FP64 (the model declares FP32)",
        native=NO_DATATYPE_HERE,
        v2_json=Wire(
            '`"datatype": "FP64"`', v2_body(tensor={"datatype": "FP64"}), 400, field="FP64"
        ),
        v2_binary=binary(
            "FP64, 80 bytes",
            400,
            np.asarray([ROW], dtype=np.float64),
            datatype="FP64",
            field="FP64",
        ),
        tfserving=NotOnWire("TF Serving's JSON carries no dtype"),
        grpc=Wire(
            "FP64, 10 values in `fp64_contents`", grpc_body(datatype="FP64"), 400, field="FP64"
        ),
    ),
    Case(
        "datatype INT8 (the model declares FP32)",
        native=NO_DATATYPE_HERE,
        v2_json=Wire(
            '`"datatype": "INT8"`', v2_body(tensor={"datatype": "INT8"}), 400, field="INT8"
        ),
        v2_binary=binary(
            "INT8, 10 bytes",
            400,
            np.asarray([ROW], dtype=np.int8),
            datatype="INT8",
            field="INT8",
        ),
        tfserving=NotOnWire("TF Serving's JSON carries no dtype"),
        grpc=Wire(
            "INT8, 10 values in `int_contents`",
            grpc_body(datatype="INT8", values=ROW),
            400,
            field="INT8",
        ),
    ),
    Case(
        "the input has another name",
        native=NotOnWire("rows, not named tensors"),
        v2_json=Wire('`"name": "input0"`', v2_body(tensor={"name": "input0"}), 400, field="input0"),
        v2_binary=raw_binary(
            '`"name": "input0"`',
            400,
            HEADER_ONLY.replace(b'"features"', b'"input0"'),
            ROW_BYTES,
            field="input0",
        ),
        tfserving=Wire(
            '`{"inputs": {"input0": [[…]]}}`',
            orjson.dumps({"inputs": {"input0": [ROW]}}),
            400,
            field="input0",
        ),
        grpc=Wire('`name: "input0"`', grpc_body(name="input0"), 400, field="input0"),
    ),
    Case(
        "two input tensors",
        native=NotOnWire("rows, not named tensors"),
        v2_json=Wire(
            "`features` twice",
            orjson.dumps({"inputs": [v2_document(), v2_document()]}),
            400,
            field="got 2",
        ),
        v2_binary=SAME_AS_JSON_HEADER,
        tfserving=Wire(
            '`{"inputs": {"features": …, "x": …}}`',
            orjson.dumps({"inputs": {"features": [ROW], "x": [ROW]}}),
            400,
            field="'x'",
        ),
        grpc=Wire("`features` twice", TWO_INPUTS, 400, field="got 2"),
    ),
    Case(
        "shape disagrees with the data",
        native=NotOnWire("rows carry their own length"),
        v2_json=Wire(
            "shape `[2, 10]`, 10 values",
            v2_body(tensor={"shape": [2, 10]}),
            400,
            field="needs 20",
        ),
        v2_binary=raw_binary(
            "shape `[2, 10]`, `binary_data_size` 40",
            400,
            HEADER_ONLY.replace(b"[1,10]", b"[2,10]"),
            ROW_BYTES,
            field="binary_data_size",
        ),
        tfserving=NotOnWire("rows carry their own length"),
        grpc=Wire("shape `[2, 10]`, 10 values", grpc_body(shape=[2, 10]), 400, field="needs 20"),
    ),
    Case(
        "`outputs` is not a list",
        native=NotOnWire("the outputs are fixed"),
        v2_json=Wire('`"outputs": "labels"`', v2_body(outputs="labels"), 400, field="outputs"),
        v2_binary=raw_binary(
            '`"outputs": "labels"` in the header',
            400,
            HEADER_ONLY[:-1] + b', "outputs": "labels"}',
            ROW_BYTES,
            field="outputs",
        ),
        tfserving=NotOnWire("the signature chooses the outputs"),
        grpc=NotOnWire("`outputs` is a repeated field"),
    ),
    Case(
        "an unknown output",
        native=NotOnWire("the outputs are fixed"),
        v2_json=Wire(
            '`"outputs": [{"name": "scores"}]`',
            v2_body(outputs=[{"name": "scores"}]),
            400,
            field="scores",
        ),
        v2_binary=binary(
            '`InferRequestedOutput("scores")`',
            400,
            outputs=[triton.InferRequestedOutput("scores")],
            field="scores",
        ),
        tfserving=Wire(
            '`"signature_name": "scores"`', tf_body(signature_name="scores"), 400, field="scores"
        ),
        grpc=Wire(
            '`outputs: [{name: "scores"}]`',
            grpc_body(outputs=[{"name": "scores"}]),
            400,
            field="scores",
        ),
    ),
    Case(
        "an output asked for twice",
        native=NotOnWire("the outputs are fixed"),
        v2_json=Wire(
            "`labels` twice",
            v2_body(outputs=[{"name": "labels"}, {"name": "labels"}]),
            400,
            field="twice",
        ),
        v2_binary=SAME_AS_JSON_HEADER,
        tfserving=NotOnWire("the signature chooses the outputs"),
        grpc=Wire(
            "`labels` twice", grpc_body(outputs=[{"name": "labels"}] * 2), 400, field="twice"
        ),
    ),
    Case(
        "`id` is not a string",
        native=NotOnWire("no request id in the body"),
        v2_json=Wire('`"id": 42`', v2_body(id=42), 400, field="id"),
        v2_binary=SAME_AS_JSON_HEADER,
        tfserving=NotOnWire("no request id in the body"),
        grpc=NotOnWire("`id` is a string field"),
    ),
    # null where a schema declares a type: a field is given a value or left out, never null
    Case(
        "an optional string field is null",
        native=Wire(
            '`"format": null`',
            native_body(format=None),
            422,
            code="invalid_request",
            field="format",
        ),
        v2_json=Wire('`"id": null`', v2_body(id=None), 400, field="id"),
        v2_binary=raw_binary(
            '`"id": null` in the header',
            400,
            HEADER_ONLY[:-1] + b', "id": null}',
            ROW_BYTES,
            field="id",
        ),
        tfserving=Wire(
            '`"signature_name": null`',
            tf_body(signature_name=None),
            400,
            field="signature_name",
        ),
        grpc=NO_NULL,
    ),
    Case(
        "an optional object field is null",
        native=NotOnWire("its one object field is `threshold`: see threshold is null"),
        v2_json=Wire('`"parameters": null`', v2_body(parameters=None), 400, field="parameters"),
        v2_binary=raw_binary(
            '`"parameters": null` in the header',
            400,
            HEADER_ONLY.replace(b'"parameters":{"binary_data_output":true}', b'"parameters":null'),
            ROW_BYTES,
            field="parameters",
        ),
        tfserving=NotOnWire("no object field but the rows: see the rows are null"),
        grpc=NO_NULL,
    ),
    threshold_case("threshold is null", None, "null"),
    threshold_case(
        "a label's threshold is null", {"label_1": None}, '{"label_1": null}', "threshold.label_1"
    ),
    Case(
        "the rows are null",
        native=Wire(
            '`"instances": null`',
            b'{"instances": null}',
            422,
            code="invalid_request",
            field="instances",
        ),
        v2_json=Wire('`"data": null`', v2_body(tensor={"data": None}), 400, field="inputs.0.data"),
        v2_binary=NO_BINARY_VALUES,
        tfserving=Wire(
            '`"instances": null`',
            b'{"instances": null}',
            400,
            field="instances",
        ),
        grpc=NO_NULL,
    ),
    Case(
        "a binary data parameter is null",
        native=NOT_BINARY,
        v2_json=Wire(
            '`"outputs": [{"name": "labels", "parameters": {"binary_data": null}}]`',
            v2_body(outputs=[{"name": "labels", "parameters": {"binary_data": None}}]),
            400,
            field="outputs.0.parameters.binary_data",
        ),
        v2_binary=raw_binary(
            '`"binary_data_size": null`',
            400,
            HEADER_ONLY.replace(b'"binary_data_size":40', b'"binary_data_size":null'),
            ROW_BYTES,
            field="inputs.0.parameters.binary_data_size",
        ),
        tfserving=NOT_BINARY,
        grpc=NO_NULL,
    ),
    Case(
        "both the row and the columnar format",
        native=NotOnWire("one format"),
        v2_json=NotOnWire("one format"),
        v2_binary=NotOnWire("one format"),
        tfserving=Wire(
            '`"instances"` and `"inputs"`', tf_body(inputs=[ROW]), 400, field="not both"
        ),
        grpc=NotOnWire("one format"),
    ),
    Case(
        "`Inference-Header-Content-Length` beyond the body",
        native=NOT_BINARY,
        v2_json=NOT_BINARY,
        v2_binary=raw_binary("header length 10,000", 400, HEADER_ONLY, ROW_BYTES, declared="10000"),
        tfserving=NOT_BINARY,
        grpc=NO_HEADER_LENGTH,
    ),
    Case(
        "`Inference-Header-Content-Length` is not a number",
        native=NOT_BINARY,
        v2_json=NOT_BINARY,
        v2_binary=raw_binary("header length `abc`", 400, HEADER_ONLY, ROW_BYTES, declared="abc"),
        tfserving=NOT_BINARY,
        grpc=NO_HEADER_LENGTH,
    ),
    Case(
        "bytes left over after the inputs",
        native=NOT_BINARY,
        v2_json=NOT_BINARY,
        v2_binary=raw_binary("40 bytes declared, 44 sent", 400, HEADER_ONLY, ROW_BYTES + b"\0" * 4),
        tfserving=NOT_BINARY,
        grpc=Wire(
            "raw contents for 2 tensors, 1 input",
            grpc_body(raw=True, raw_input_contents=[ROW_BYTES]),
            400,
            field="raw_input_contents",
        ),
    ),
    Case(
        "bytes after a JSON-only header",
        native=NOT_BINARY,
        v2_json=NOT_BINARY,
        v2_binary=raw_binary(
            "JSON `data` and 40 bytes", 400, v2_body(), ROW_BYTES, field="binary_data_size"
        ),
        tfserving=NOT_BINARY,
        grpc=NO_HEADER_LENGTH,
    ),
    Case(
        "both `data` and `binary_data_size`",
        native=NOT_BINARY,
        v2_json=NOT_BINARY,
        v2_binary=raw_binary(
            "both in one input",
            400,
            v2_body(tensor={"parameters": {"binary_data_size": 40}}),
            ROW_BYTES,
            field="not both",
        ),
        tfserving=NOT_BINARY,
        grpc=Wire("`contents` and `raw_input_contents`", BOTH_CONTENTS, 400, field="not both"),
    ),
    Case(
        "binary body without `Inference-Header-Content-Length`",
        native=NOT_BINARY,
        v2_json=NOT_BINARY,
        v2_binary=Wire("header and 40 bytes, no length", HEADER_ONLY + ROW_BYTES, 400, headers={}),
        tfserving=NOT_BINARY,
        grpc=NO_HEADER_LENGTH,
    ),
]

CELLS = [
    pytest.param(
        protocol, getattr(case, protocol.attribute), id=f"{protocol.attribute}: {case.what}"
    )
    for case in CASES
    for protocol in PROTOCOLS
    if isinstance(getattr(case, protocol.attribute), Wire)
]


@pytest.fixture(scope="module")
def served(trained_repository: Path) -> Iterator[tuple[TestClient, grpc.Channel]]:
    """The app, and a channel to its gRPC port."""
    port = free_port()
    settings = Settings(
        model_dir=trained_repository,
        model_name=MODEL_NAME,
        poll_interval=0,
        max_rows=MAX_ROWS,
        max_body_bytes=MAX_BODY_BYTES,
        grpc_port=port,
    )
    with (
        TestClient(create_app(settings)) as test_client,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield test_client, channel


@pytest.mark.parametrize(("protocol", "wire"), CELLS)
def test_each_case_gets_its_verdict_on_each_protocol(
    served: tuple[TestClient, grpc.Channel], protocol: Protocol, wire: Wire
) -> None:
    client, channel = served
    if protocol.codec is None:
        assert_grpc_verdict(channel, protocol, wire)
        return
    response = client.request(
        wire.method, wire.path or protocol.path, content=wire.body, headers=wire.headers
    )
    assert response.status_code == wire.status, response.text[:500]
    if wire.status == 200:
        assert_an_answer(protocol, response)
        return
    message = error_message(protocol.codec, response.content)
    if wire.row is not None:
        assert f"row {wire.row}" in message, message
    if protocol.message_envelope:
        if wire.field is not None:
            assert wire.field in message, message
    else:
        assert_native_error(response, wire)
    if wire.status == 405:
        assert response.headers["allow"] == "POST"


def assert_grpc_verdict(channel: grpc.Channel, protocol: Protocol, wire: Wire) -> None:
    """The status code the data plane's verdict is on gRPC, and its message as the message
    protocols' (row and field named in it)."""
    assert wire.body is not None
    call = channel.unary_unary(protocol.path)
    if wire.status == 200:
        response = messages.ModelInferResponse.FromString(call(wire.body, timeout=30))
        names = [output.name for output in response.outputs]
        assert names in (["probabilities", "labels"], ANSWERED_SETS), names
        assert len(response.outputs[1].contents.bool_contents) >= 3
        return
    with pytest.raises(grpc.RpcError) as raised:
        call(wire.body, timeout=30)
    error: Any = raised.value
    message = error.details()
    assert error.code() == STATUS_CODES[wire.status], message
    if wire.row is not None:
        assert f"row {wire.row}" in message, message
    if wire.field is not None:
        assert wire.field in message, message


def assert_an_answer(protocol: Protocol, response: Any) -> None:
    """A 200 that answers every row sent (one, or two for the mixed-rows cases)."""
    if protocol.attribute == "v2_binary":
        length = int(response.headers["inference-header-content-length"])
        result = triton.InferResult.from_response_body(response.content, header_length=length)
        assert result.as_numpy("labels").dtype == np.bool_
        return
    document = response.json()
    if protocol.attribute == "v2_json":
        names = [output["name"] for output in document["outputs"]]
        assert names in (["probabilities", "labels"], ANSWERED_SETS), names
    else:
        assert len(document["predictions"]) >= 1


def assert_native_error(response: Any, wire: Wire) -> None:
    error = response.json()["error"]
    assert (error["row"], error["field"]) == (wire.row, wire.field), error
    if wire.code is not None:
        assert error["code"] == wire.code, error


def request_models() -> list[type[BaseModel]]:
    """Every model a codec validates a request body with, the nested ones included."""
    found: list[type[BaseModel]] = []
    pending = [op.request_model for codec in CODECS for op in codec.operations if op.request_model]
    while pending:
        model = pending.pop()
        if model not in found:
            found.append(model)
            for field in model.model_fields.values():
                pending += models_in(field.annotation)
    return found


def models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in get_args(annotation) for model in models_in(argument)]


OPTIONAL_FIELDS = [
    pytest.param(model, name, id=f"{model.__name__}.{name}")
    for model in request_models()
    for name, field in model.model_fields.items()
    if not field.is_required()
]


def test_request_models_have_optional_fields() -> None:
    assert len(OPTIONAL_FIELDS) >= 10


@pytest.mark.parametrize(("model", "name"), OPTIONAL_FIELDS)
def test_no_optional_field_of_a_request_takes_null_nor_says_it_may(
    model: type[BaseModel], name: str
) -> None:
    """The rule behind the null cases above, for every field a codec declares (a field added
    later included): left out, or given a value of its type; null is refused, and the schema
    does not offer it."""
    with pytest.raises(ValidationError) as raised:
        model.model_validate({name: None})
    (refusal,) = [error for error in raised.value.errors() if error["loc"] == (name,)]
    assert refusal["input"] is None
    assert refusal["type"] != "extra_forbidden"
    schema = model.model_json_schema()["properties"][name]
    assert {"type": "null"} not in schema.get("anyOf", []), schema
    assert schema.get("type") != "null", schema


def test_every_case_is_written_on_some_protocol_and_named_once() -> None:
    names = [case.what for case in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        assert any(isinstance(getattr(case, p.attribute), Wire) for p in PROTOCOLS), case.what


def render_table() -> str:
    """The strictness table of docs/strictness.md, from CASES."""
    header = ["case", *(protocol.title for protocol in PROTOCOLS)]
    lines = [_row(header), _row(["---"] * len(header))]
    for case in CASES:
        lines.append(_row([case.what, *(_cell(getattr(case, p.attribute), p) for p in PROTOCOLS)]))
    return "\n".join(lines) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _cell(cell: Cell, protocol: Protocol) -> str:
    if isinstance(cell, NotOnWire):
        return f"n/a: {cell.reason}"
    verdict = f"**{cell.status}**"
    if protocol.codec is None:  # gRPC: the status code that verdict is
        verdict = "**OK**" if cell.status == 200 else f"**{STATUS_CODES[cell.status].name}**"
    if cell.code is not None:
        verdict += f" `{cell.code}`"
    where = [] if cell.row is None else [f"row {cell.row}"]
    if cell.field is not None:
        where.append(f"`{cell.field}`" if protocol.message_envelope else f"field `{cell.field}`")
    if where:
        named = "message names " if protocol.message_envelope else ""
        verdict += f" ({named}{', '.join(where)})"
    return f"{cell.wire} → {verdict}"


def test_the_strictness_page_holds_exactly_this_table() -> None:
    """Fails until the table (``python -m tests.app.codecs.test_strictness``) is in the page."""
    assert render_table() in (REPO_ROOT / "docs" / "strictness.md").read_text()


if __name__ == "__main__":
    print(render_table(), end="")
