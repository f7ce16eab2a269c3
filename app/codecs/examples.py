"""The OpenAPI document's answer and error examples: real answers of the committed model.

They are recorded in ``examples.json`` beside this module, never written by hand:
``python -m tests.app.codecs.test_examples`` asks the committed model (``models/``) every
documented request, and every error status of every protocol, and rewrites the file; the same
test fails when an example differs from what the service answers.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

EXAMPLES_FILE = Path(__file__).with_name("examples.json")


@cache
def _recorded() -> dict[str, Any]:
    recorded: dict[str, Any] = json.loads(EXAMPLES_FILE.read_text())
    return recorded


def answer_examples(schema: str) -> list[Any]:
    """The recorded answers a response schema documents (those of its shape)."""
    examples: list[Any] = _recorded()["answers"].get(schema, [])
    return examples


def error_example(codec: str, status: int) -> Any | None:
    """The recorded answer of ``codec`` for an error ``status``, if one is recorded."""
    return _recorded()["errors"].get(codec, {}).get(str(status))
