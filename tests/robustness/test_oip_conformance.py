"""The Open Inference Protocol's own REST spec, run against a real server.

``specs/open_inference_rest.yaml`` (beside this file) is the protocol's OpenAPI document, byte
for byte (``specs/open_inference_rest.SOURCE.md`` says where from, and its SHA-256, checked
here). Two things in it are not OpenAPI as tools read it,
and are read here as the protocol's prose says: its path parameters are written
``${MODEL_NAME}`` (OpenAPI templating is ``{MODEL_NAME}``), and every model path also exists
without its ``/versions/${MODEL_VERSION}`` segment. Nothing else is changed: schemathesis
generates requests from the spec's own schemas and checks every answer against the schema the
spec gives for its status (``response_schema_conformance``), for requests that fit the spec
(mostly refused: the spec allows any tensor) and for valid requests to the served model.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import response_schema_conformance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.robustness.contract import assert_documented_outcome
from tests.robustness.operations import generated_cases, send_case
from tests.support import MODEL_NAME, REFERENCE_INPUTS, ServerProcess

SPEC = Path(__file__).parent / "specs" / "open_inference_rest.yaml"
SPEC_SHA256 = "719644d1cec52d1c98268ee16f3b75d6de7f523c6686463cbf06bf79134edbb2"
_DOLLAR_PARAMETER = re.compile(r"\$\{(\w+)\}")
VERSION_SEGMENT = "/versions/{MODEL_VERSION}"
FUZZ = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def spec_as_tools_read_it(document: dict[str, Any]) -> dict[str, Any]:
    """``${NAME}`` as ``{NAME}``, and each versioned model path also without its version."""
    adapted = copy.deepcopy(document)
    paths: dict[str, Any] = {}
    for template, item in document["paths"].items():
        path = _DOLLAR_PARAMETER.sub(r"{\1}", template)
        paths[path] = copy.deepcopy(item)
        if VERSION_SEGMENT in path:
            unversioned = copy.deepcopy(item)
            unversioned["parameters"] = [
                parameter
                for parameter in item.get("parameters", [])
                if parameter["name"] != "MODEL_VERSION"
            ]
            paths[path.replace(VERSION_SEGMENT, "")] = unversioned
    adapted["paths"] = paths
    return adapted


SPEC_DOCUMENT = spec_as_tools_read_it(yaml.safe_load(SPEC.read_text()))
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in SPEC_DOCUMENT["paths"].items()
    for method in item
    if method != "parameters"
)
SERVED = {"MODEL_NAME": MODEL_NAME, "MODEL_VERSION": "1"}


@pytest.fixture(scope="module")
def oip() -> OpenApiSchema:
    return schemathesis.openapi.from_dict(SPEC_DOCUMENT)


def test_the_spec_is_the_published_one_and_lists_every_operation() -> None:
    """The file is the one SOURCE.md names; the reading above adds only unversioned paths."""
    assert hashlib.sha256(SPEC.read_bytes()).hexdigest() == SPEC_SHA256
    assert SPEC_SHA256 in SPEC.with_name("open_inference_rest.SOURCE.md").read_text()
    assert len(OPERATIONS) == 9
    assert ("POST", "/v2/models/{MODEL_NAME}/infer") in OPERATIONS


@pytest.mark.parametrize("operation", OPERATIONS, ids=" ".join)
def test_answers_to_requests_the_spec_generates_fit_the_spec(
    operation: tuple[str, str],
    oip: OpenApiSchema,
    server: ServerProcess,
    http_client: httpx.Client,
    trained_repository: Path,
) -> None:
    method, path = operation
    endpoint = oip[path][method]
    served = {parameter.name: SERVED[parameter.name] for parameter in endpoint.path_parameters}

    @given(case=generated_cases(endpoint, served))
    @FUZZ
    def answer_fits_the_spec(case: Any) -> None:
        response = send_case(case, server.base_url, http_client)
        assert_documented_outcome(case.formatted_path, response, trained_repository)
        case.validate_response(response, checks=[response_schema_conformance])

    answer_fits_the_spec()


def features(rows: list[list[float]], *, nested: bool = False) -> dict[str, Any]:
    data: list[Any] = rows if nested else [value for row in rows for value in row]
    return {"name": "features", "shape": [len(rows), 10], "datatype": "FP32", "data": data}


VALID_REQUESTS: dict[str, dict[str, Any]] = {
    "one row": {"inputs": [features(REFERENCE_INPUTS[:1])]},
    "two rows, nested, with an id": {
        "id": "7",
        "inputs": [features(REFERENCE_INPUTS, nested=True)],
    },
    "labels only, threshold": {
        "inputs": [features(REFERENCE_INPUTS)],
        "outputs": [{"name": "labels"}],
        "parameters": {"threshold": 0.9},
    },
    "outputs in reverse order": {
        "inputs": [features(REFERENCE_INPUTS)],
        "outputs": [{"name": "labels"}, {"name": "probabilities"}],
    },
}
INFER_PATHS = [
    "/v2/models/{MODEL_NAME}/infer",
    "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer",
]


@pytest.mark.parametrize("path", INFER_PATHS)
@pytest.mark.parametrize("body", VALID_REQUESTS.values(), ids=VALID_REQUESTS)
def test_answers_to_valid_inference_requests_fit_the_spec(
    oip: OpenApiSchema,
    server: ServerProcess,
    http_client: httpx.Client,
    path: str,
    body: dict[str, Any],
) -> None:
    endpoint = oip[path]["POST"]
    served = {parameter.name: SERVED[parameter.name] for parameter in endpoint.path_parameters}
    case = endpoint.Case(path_parameters=served, body=body, media_type="application/json")
    response = send_case(case, server.base_url, http_client)
    assert response.status_code == 200, response.text
    case.validate_response(response, checks=[response_schema_conformance])
