"""The operations of our own OpenAPI document, and how to address the served model in them.

They are listed when tests are collected: routes are code, so no model (and no server) is
needed to know them. Tests then exercise each one on a real server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from app.config import Settings
from app.main import create_app
from tests.support import MODEL_NAME

_PARAMETER = re.compile(r"{(\w+)}")

DOCUMENT = create_app(Settings(model_dir=Path("models"), poll_interval=0)).control.openapi()
OPERATIONS = sorted(
    (method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item
)
BODY_OPERATIONS = [
    (method, path)
    for method, path in OPERATIONS
    if "requestBody" in DOCUMENT["paths"][path][method.lower()]
]


def operation_id(operation: tuple[str, str]) -> str:
    return " ".join(operation)


def documented_examples(operation: tuple[str, str]) -> list[Any]:
    """The request body examples the OpenAPI document gives for an operation."""
    method, path = operation
    content = DOCUMENT["paths"][path][method.lower()]["requestBody"]["content"]
    found: list[Any] = []
    for media in content.values():
        schema = media.get("schema", {})
        if "$ref" in schema:
            schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        found += schema.get("examples", [])
        found += [example["value"] for example in media.get("examples", {}).values()]
        if "example" in media:
            found.append(media["example"])
    return found


def fill_path(template: str, version: int) -> str:
    """A path template of /openapi.json with the served model's name and version filled in."""
    return _PARAMETER.sub(
        lambda match: str(version) if "version" in match.group(1) else MODEL_NAME, template
    )


def served_parameters(names: Iterable[str], version: int) -> dict[str, str]:
    """Path parameter values that address the served model (and its version)."""
    return {name: str(version) if "version" in name else MODEL_NAME for name in names}


def generated_cases(endpoint: Any, served: dict[str, str]) -> Any:
    """Schemathesis cases for one operation: requests that fit it, addressed to the served
    model and to any name and version; and requests that break it, where anything can."""
    strategies = [endpoint.as_strategy(GenerationMode.POSITIVE, path_parameters=served)]
    if served:  # any model name and version, not only the served ones
        strategies.append(endpoint.as_strategy(GenerationMode.POSITIVE))
    if served or endpoint.body:  # there is something to get wrong
        strategies.append(endpoint.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def send_case(case: Any, base_url: str, client: httpx.Client) -> httpx.Response:
    """A schemathesis case sent with httpx."""
    request = case.as_transport_kwargs(base_url=base_url)
    request.pop("cookies")  # none are documented; httpx takes them per client only
    if isinstance(request.get("data"), bytes | str):  # a raw body, in httpx's terms
        request["content"] = request.pop("data")
    response: httpx.Response = client.request(**request)
    return response
