"""Property-based fuzzing of every endpoint of our own /openapi.json, against a real server.

Two generators, each bounded in examples: schemathesis, which reads the live OpenAPI document
and sends requests that fit it and requests that break it (path, query and body); and our
own hypothesis strategies, which send arbitrary JSON, mutations of the documented examples,
raw bytes and wrong media types to every operation that takes a body. Whatever arrives, the
answer is a 2xx or a 4xx in the documented error format: never a 5xx, never a hang; and
every answer to a schemathesis case fits the schema the document gives for its status
(schemathesis' ``response_schema_conformance``). The Open Inference Protocol's own spec is
checked the same way in ``test_oip_conformance.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import response_schema_conformance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.robustness.contract import assert_documented_outcome
from tests.robustness.operations import (
    BODY_OPERATIONS,
    OPERATIONS,
    documented_examples,
    fill_path,
    generated_cases,
    operation_id,
    send_case,
    served_parameters,
)
from tests.robustness.servers import served_version
from tests.support import ServerProcess

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def api_schema(server: ServerProcess) -> OpenApiSchema:
    return schemathesis.openapi.from_url(server.base_url + "/openapi.json")


@pytest.mark.parametrize("operation", OPERATIONS, ids=operation_id)
def test_schema_driven_requests_get_a_documented_answer(
    operation: tuple[str, str],
    api_schema: OpenApiSchema,
    server: ServerProcess,
    http_client: httpx.Client,
    trained_repository: Path,
) -> None:
    method, path = operation
    endpoint = api_schema[path][method]
    names = [parameter.name for parameter in endpoint.path_parameters]
    served = served_parameters(names, served_version(server))

    @given(case=generated_cases(endpoint, served))
    @FUZZ
    def answer_is_documented(case: Any) -> None:
        response = send_case(case, server.base_url, http_client)
        assert_documented_outcome(path, response, trained_repository)
        case.validate_response(response, checks=[response_schema_conformance])

    answer_is_documented()


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -0.0, 1e308, -1e308, 3.5e38, 1e-320, 2**63, -(2**64), 2**200])
    | st.text(max_size=40)
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children)
    ),
    max_leaves=30,
)
OTHER_MEDIA_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "APPLICATION/JSON",
    "application/problem+json",
    "",
]


def locations(document: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position in a JSON document, as the keys and indices that lead to it."""
    yield here
    if isinstance(document, dict):
        for key, value in document.items():
            yield from locations(value, (*here, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from locations(value, (*here, index))


@st.composite
def mutated(draw: st.DrawFn, example: Any) -> Any:
    """A documented example with one to three of its values replaced, removed or repeated."""
    document = {"root": copy.deepcopy(example)}
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(list(locations(document["root"], ("root",)))))
        parent = document
        for step in where[:-1]:
            parent = parent[step]
        key = where[-1]
        change = draw(st.sampled_from(["replace", "remove", "repeat", "wrap", "stringify"]))
        if change == "remove" and key != "root":
            del parent[key]
        elif change == "repeat" and isinstance(parent[key], list):
            parent[key] = parent[key] * draw(st.integers(0, 50))
        elif change == "wrap":
            parent[key] = [parent[key]]
        elif change == "stringify":
            parent[key] = json.dumps(parent[key])
        else:
            parent[key] = draw(ANY_JSON)
    return document.get("root")


def encoded(document: Any) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=operation_id)
def test_any_body_gets_a_documented_answer(
    operation: tuple[str, str],
    server: ServerProcess,
    http_client: httpx.Client,
    trained_repository: Path,
) -> None:
    method, template = operation
    path = fill_path(template, served_version(server))
    examples = documented_examples(operation)
    json_bodies = ANY_JSON.map(encoded)
    if examples:
        json_bodies |= st.sampled_from(examples).flatmap(mutated).map(encoded)
    bodies = st.tuples(json_bodies, st.just("application/json")) | st.tuples(
        json_bodies | st.binary(max_size=200), st.sampled_from(OTHER_MEDIA_TYPES)
    )

    @given(body_and_media_type=bodies)
    @FUZZ
    def answer_is_documented(body_and_media_type: tuple[bytes, str]) -> None:
        body, media_type = body_and_media_type
        response = http_client.request(
            method, path, content=body, headers={"content-type": media_type}
        )
        assert_documented_outcome(path, response, trained_repository)

    answer_is_documented()


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=operation_id)
def test_every_documented_example_is_accepted_and_answered_as_documented(
    operation: tuple[str, str],
    api_schema: OpenApiSchema,
    server: ServerProcess,
    http_client: httpx.Client,
) -> None:
    """The seeds of the mutations are themselves valid, so mutations start from real requests;
    and their answers fit the documented response schema."""
    method, template = operation
    endpoint = api_schema[template][method]
    names = [parameter.name for parameter in endpoint.path_parameters]
    served = served_parameters(names, served_version(server))
    examples = documented_examples(operation)
    assert examples, f"{operation_id(operation)} documents no request example"
    for example in examples:
        case = endpoint.Case(path_parameters=served, body=example, media_type="application/json")
        response = send_case(case, server.base_url, http_client)
        assert response.status_code == 200, response.text
        case.validate_response(response, checks=[response_schema_conformance])
