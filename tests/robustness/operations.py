"""The operations of our own OpenAPI document, and how to address the served model in them.

They are listed when tests are collected: routes are code, so no model (and no server) is
needed to know them. Tests then exercise each one on a real server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app.config import Settings
from app.main import create_app
from tests.support import MODEL_NAME

_PARAMETER = re.compile(r"{(\w+)}")

DOCUMENT = create_app(Settings(model_dir=Path("models"), poll_interval=0)).openapi()
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
