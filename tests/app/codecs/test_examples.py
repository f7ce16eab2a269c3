"""The OpenAPI examples are what the committed model answers (app/codecs/examples.py).

Every documented request example, and every GET of a documented answer, is asked of the
service on the committed ``models/``; each answer is recorded under the response schema whose
shape it has. Every error status a protocol documents is provoked for real and its answer
recorded. The tests fail when ``app/codecs/examples.json`` differs from those answers, or when
two error statuses of a protocol would show the same example;
``python -m tests.app.codecs.test_examples`` rewrites the file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.codecs import CODECS
from app.codecs.base import Codec
from app.codecs.examples import EXAMPLES_FILE
from app.config import Settings
from app.main import create_app
from tests.app.codecs.asgi import exchange, started
from tests.app.codecs.protocols import filled, inference_operation, valid_body
from tests.app.test_openapi import same_shape
from tests.support import MODEL_NAME, REPO_ROOT

COMMITTED_MODELS = REPO_ROOT / "models"
API_KEY = "an-example-key"
DEADLINE_SECONDS = 1.0  # the 408 example's body deadline: the default (30 s) is too long to wait


def committed_settings(**changes: Any) -> Settings:
    defaults: dict[str, Any] = {"model_dir": COMMITTED_MODELS, "poll_interval": 0, "grpc_port": 0}
    return Settings(model_name=MODEL_NAME, **{**defaults, **changes})


def recorded() -> dict[str, Any]:
    examples: dict[str, Any] = json.loads(EXAMPLES_FILE.read_text())
    return examples


def answers_by_schema(client: TestClient, recorded_answers: dict[str, list[Any]]) -> dict:
    """The real answer to every documented request, by the response schema of its shape."""
    document = client.get("/openapi.json").json()
    found: dict[str, list[Any]] = {name: [] for name in recorded_answers}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            schemas = _answer_schemas(operation, recorded_answers)
            if not schemas:
                continue
            url = path.replace("{name}", MODEL_NAME).replace("{version}", "1")
            for body in _request_examples(operation) if method == "post" else [None]:
                response = client.request(method.upper(), url, json=body)
                assert response.status_code == 200, (method, url, body, response.text)
                answer = response.json()
                # An operation answering in several shapes (the native forms and decisions)
                # documents each under its own schema, told apart by shape.
                (schema,) = (
                    schemas
                    if len(schemas) == 1
                    else [
                        name
                        for name in schemas
                        if any(same_shape(answer, example) for example in recorded_answers[name])
                    ]
                )
                if answer not in found[schema]:
                    found[schema].append(answer)
    return found


def _answer_schemas(operation: dict[str, Any], recorded_answers: dict[str, Any]) -> list[str]:
    content = operation["responses"].get("200", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    references = [schema, *schema.get("anyOf", [])]
    names = [reference.get("$ref", "").rsplit("/", 1)[-1] for reference in references]
    return [name for name in names if name in recorded_answers]


def _request_examples(operation: dict[str, Any]) -> list[Any]:
    content = operation.get("requestBody", {}).get("content", {})
    examples = content.get("application/json", {}).get("examples", {})
    return [example["value"] for example in examples.values()]


# How each error status is provoked on a protocol's inference operation: the settings the
# service runs with, and the request (method, headers, body messages, then wait for more).
Provocation = tuple[dict[str, Any], list[tuple[str, str]], bytes | None]
JSON = [("content-type", "application/json")]
ERROR_PROVOCATIONS: dict[int, Callable[[Codec], Provocation]] = {
    400: lambda codec: ({}, JSON, b"{"),
    401: lambda codec: ({"api_keys": SecretStr(API_KEY)}, JSON, _valid_body(codec)),
    408: lambda codec: ({"body_timeout": DEADLINE_SECONDS}, [*JSON, ("content-length", "9")], None),
    413: lambda codec: ({}, JSON, b" " * (Settings().max_body_bytes + 1)),
    415: lambda codec: ({}, [("content-type", "text/plain")], b"{}"),
    422: lambda codec: ({}, JSON, b'{"instances": [["three"]]}'),
    503: lambda codec: ({"model_dir": Path("/nonexistent/models")}, JSON, _valid_body(codec)),
}


def _valid_body(codec: Codec) -> bytes:
    operation = inference_operation(codec)
    assert operation is not None
    return valid_body(operation)


async def _provoked(codec: Codec, status: int) -> tuple[int | None, Any]:
    """The real answer of ``codec``'s inference operation to the provocation of ``status``
    (404: the same operation for a model the service does not serve)."""
    operation = inference_operation(codec)
    assert operation is not None
    path = filled(codec, operation.path)
    if status == 404:
        changes, headers, body = {}, JSON, _valid_body(codec)
        path = path.replace(MODEL_NAME, "unknown-model")
    else:
        changes, headers, body = ERROR_PROVOCATIONS[status](codec)
    app = create_app(committed_settings(**changes))
    async with started(app) as state:
        messages = [] if body is None else [{"type": "http.request", "body": body}]
        result = await exchange(app, state, "POST", path, headers, messages, then_wait=True)
    return result.status, json.loads(result.body)


def errors_by_codec() -> dict[str, dict[str, Any]]:
    """Each protocol's real answer for every error status it documents (405 aside: its
    example is the generic 4XX one)."""
    errors: dict[str, dict[str, Any]] = {}
    for codec in CODECS:
        operation = inference_operation(codec)
        if operation is None:
            continue
        errors[codec.name] = {}
        for status in sorted(set(operation.errors) - {405}):
            answered, body = asyncio.run(_provoked(codec, status))
            assert answered == status, (codec.name, status, body)
            errors[codec.name][str(status)] = body
    return errors


@pytest.fixture(scope="module")
def committed_client() -> Iterator[TestClient]:
    with TestClient(create_app(committed_settings())) as client:
        yield client


def test_every_answer_example_is_what_the_committed_model_answers(
    committed_client: TestClient,
) -> None:
    answers = recorded()["answers"]
    assert answers_by_schema(committed_client, answers) == answers


def test_every_error_example_is_a_real_answer_and_no_two_statuses_share_one() -> None:
    errors = recorded()["errors"]
    assert errors_by_codec() == errors
    for codec, by_status in errors.items():
        bodies = [json.dumps(body, sort_keys=True) for body in by_status.values()]
        assert len(set(bodies)) == len(bodies), codec


def test_the_openapi_document_shows_each_status_its_own_example(
    committed_client: TestClient,
) -> None:
    document = committed_client.get("/openapi.json").json()
    errors = recorded()["errors"]
    for codec in CODECS:
        operation = inference_operation(codec)
        assert operation is not None
        path = document["paths"][operation.path]["post"]
        for status, body in errors[codec.name].items():
            shown = path["responses"][status]["content"]["application/json"]["example"]
            assert shown == body, (codec.name, status)


def main() -> None:
    """Rewrite app/codecs/examples.json from the committed model's answers."""
    with TestClient(create_app(committed_settings())) as client:
        answers = answers_by_schema(client, recorded()["answers"])
    examples = {"answers": answers, "errors": errors_by_codec()}
    EXAMPLES_FILE.write_text(json.dumps(examples, indent=2) + "\n")
    print(f"rewrote {EXAMPLES_FILE.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
