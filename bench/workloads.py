"""What the bench sends: the wire forms (protocol and body layout) and the workloads (a form,
rows per request, concurrent connections)."""

from __future__ import annotations

from dataclasses import dataclass

MODEL_NAME = "multilabel"
V2_INPUT_NAME = "features"  # our V2 input, as its model metadata declares it
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class Form:
    """One way of asking for predictions: a protocol's route and body layout."""

    key: str
    name: str
    path: str
    content_type: str


NATIVE = Form("native", "native rows", "/predict", JSON)
NATIVE_COLUMNS = Form("native-columns", "native columns", "/predict", JSON)
V2_JSON = Form("v2", "V2 JSON", f"/v2/models/{MODEL_NAME}/infer", JSON)
V2_BINARY = Form("v2-binary", "V2 binary", f"/v2/models/{MODEL_NAME}/infer", OCTET_STREAM)
V1 = Form("v1", "TF Serving / KServe V1", f"/v1/models/{MODEL_NAME}:predict", JSON)
# TF Serving's columnar format, ``{"inputs": rows}``, answered ``{"outputs": ...}``.
V1_COLUMNS = Form("v1-columns", "TF Serving columns", V1.path, JSON)
FORMS = (NATIVE, NATIVE_COLUMNS, V2_JSON, V2_BINARY, V1, V1_COLUMNS)


@dataclass(frozen=True)
class Workload:
    key: str
    name: str
    form: Form
    rows: int
    connections: int


WORKLOADS = (
    Workload("native-1-c1", "native 1 row, c=1", NATIVE, 1, 1),
    Workload("native-1-c32", "native 1 row, c=32", NATIVE, 1, 32),
    Workload("native-100", "native 100 rows, c=4", NATIVE, 100, 4),
    Workload("native-1000", "native 1000 rows, c=4", NATIVE, 1000, 4),
    Workload("native-columns-1000", "native columns 1000 rows, c=4", NATIVE_COLUMNS, 1000, 4),
    Workload("v2-1", "V2 JSON 1 row, c=32", V2_JSON, 1, 32),
    Workload("v2-1000", "V2 JSON 1000 rows, c=4", V2_JSON, 1000, 4),
    Workload("v2-binary-1000", "V2 binary 1000 rows, c=4", V2_BINARY, 1000, 4),
    Workload("v1-1", "V1 1 row, c=32", V1, 1, 32),
    Workload("v1-1000", "V1 1000 rows, c=4", V1, 1000, 4),
    Workload("v1-columns-1000", "TF Serving columns 1000 rows, c=4", V1_COLUMNS, 1000, 4),
)
WORKLOAD_KEYS = tuple(workload.key for workload in WORKLOADS)
BY_KEY = {workload.key: workload for workload in WORKLOADS}
# The batch workloads whose answers' sizes the report compares, one per form.
BATCH_OF_FORM = {
    NATIVE.key: "native-1000",
    NATIVE_COLUMNS.key: "native-columns-1000",
    V2_JSON.key: "v2-1000",
    V2_BINARY.key: "v2-binary-1000",
    V1.key: "v1-1000",
    V1_COLUMNS.key: "v1-columns-1000",
}
