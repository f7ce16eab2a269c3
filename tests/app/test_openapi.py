"""The OpenAPI document: valid, complete, and its examples really work against the service."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from app.codecs import CODECS
from tests.app.codecs.protocols import filled


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_openapi_document_is_valid(document: dict[str, Any]) -> None:
    validate(document)


def test_docs_page_is_served(client: TestClient) -> None:
    assert "swagger" in client.get("/docs").text.lower()


def test_every_operation_declares_its_success_response(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        assert "200" in operation["responses"], f"{method} {path}"
        assert operation["responses"]["200"]["content"], f"{method} {path}"


def test_every_json_post_documents_body_and_client_errors(document: dict[str, Any]) -> None:
    posts = [(path, op) for path, method, op in operations(document) if method == "post"]
    assert posts
    for path, operation in posts:
        assert "application/json" in operation["requestBody"]["content"], path
        client_errors = [status for status in operation["responses"] if status.startswith("4")]
        assert client_errors, path


def test_native_errors_document_the_one_error_shape(document: dict[str, Any]) -> None:
    responses = document["paths"]["/predict"]["post"]["responses"]
    for status in ("400", "413", "415", "422", "503"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}


def test_predict_request_examples_are_served_as_documented(
    client: TestClient, document: dict[str, Any]
) -> None:
    request_schema = document["paths"]["/predict"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    schemas = document["components"]["schemas"]
    answers = [schemas[name]["examples"][0] for name in PREDICT_ANSWERS]
    for example in request_schema["examples"]:
        response = client.post("/predict", json=example)
        assert response.status_code == 200, response.text
        assert any(same_shape(response.json(), answer) for answer in answers), response.text


# The shapes of the native answer: by row or by column, of decision "labels" or "set".
PREDICT_ANSWERS = ["PredictResponse", "ColumnsResponse", "SetPredictResponse", "SetColumnsResponse"]


def same_shape(actual: Any, example: Any) -> bool:
    """Same keys and kinds of values all the way down (numbers may differ)."""
    if isinstance(example, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == example.keys()
            and all(same_shape(actual[key], example[key]) for key in example)
        )
    if isinstance(example, list):
        return (
            isinstance(actual, list) and all(same_shape(item, example[0]) for item in actual)
            if example
            else isinstance(actual, list)
        )
    if isinstance(example, bool | str):
        return type(actual) is type(example)
    return isinstance(actual, int | float)


def test_every_operation_of_every_codec_is_documented_under_its_protocol(
    document: dict[str, Any],
) -> None:
    for codec in CODECS:
        for operation in codec.operations:
            if not operation.documented:
                assert operation.method.lower() not in document["paths"].get(operation.path, {})
                continue
            documented = document["paths"][operation.path][operation.method.lower()]
            assert documented["tags"] == [codec.tag], operation.path
            assert documented["summary"] == operation.summary


@pytest.mark.parametrize(
    ("path", "method", "schema"),
    [
        ("/predict", "post", "ErrorResponse"),
        ("/v2/models/{name}/infer", "post", "MessageError"),
        ("/v2/models/{name}", "get", "MessageError"),
        ("/v1/models/{name}:predict", "post", "MessageError"),
    ],
)
def test_each_protocol_documents_its_own_error_envelope(
    document: dict[str, Any], path: str, method: str, schema: str
) -> None:
    responses = document["paths"][path][method]["responses"]
    errors = {status: response for status, response in responses.items() if status[0] == "4"}
    assert errors
    for status, response in errors.items():
        assert response["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{schema}"
        }, status


def test_v2_inference_documents_binary_tensors_both_ways(document: dict[str, Any]) -> None:
    """The request body, and the answer (binary outputs come as application/octet-stream)."""
    operation = document["paths"]["/v2/models/{name}/infer"]["post"]
    assert set(operation["requestBody"]["content"]) == {
        "application/json",
        "application/octet-stream",
    }
    assert set(operation["responses"]["200"]["content"]) == {
        "application/json",
        "application/octet-stream",
    }


def test_the_documentation_routes_are_never_served(client: TestClient) -> None:
    """Every documented data-plane path is answered by its codec, not by the documentation
    stand-in (which would raise)."""
    for codec in CODECS:
        for operation in codec.operations:
            path = filled(codec, operation.path)
            response = client.request(operation.method, path, json={})
            assert response.status_code < 500, (operation.path, response.text)
