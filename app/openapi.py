"""The OpenAPI document: the control plane's routes and every codec's operations, in one.

The data plane's operations are served by ``app.codecs.endpoint``, not by FastAPI; they are
documented by handing FastAPI's own generator one documentation-only ``APIRoute`` per
operation, made from the same ``Operation`` that serves it, so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.auth import bearer_scheme
from app.codecs.base import Codec, Operation
from app.codecs.examples import error_example

_PATH_PARAMETER = re.compile(r"{(\w+)}")


def install_openapi(app: FastAPI, codecs: Sequence[Codec], *, secured: bool) -> None:
    """Generate the document once, on first request, from the app's routes and the codecs."""
    documented = documentation_routes(codecs, secured=secured)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*documented, *app.routes],
                tags=[{"name": codec.tag} for codec in codecs],
            )
            _move_nested_definitions(document)
            _add_error_examples(document, codecs)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def documentation_routes(codecs: Sequence[Codec], *, secured: bool) -> list[APIRoute]:
    """One APIRoute per operation, never served: FastAPI's generator reads them."""
    return [
        APIRoute(
            operation.path,
            _signature_of(codec, operation),
            methods=[operation.method],
            name=f"{codec.name}: {operation.summary}",
            summary=operation.summary,
            description=inspect.cleandoc(operation.handler.__doc__ or ""),
            operation_id=_operation_id(codec, operation),
            tags=[codec.tag],
            response_model=operation.response_model,
            response_model_exclude_none=True,
            responses={**_error_responses(codec, operation), **operation.responses},
            openapi_extra=_request_body(operation),
            dependencies=[Depends(bearer_scheme)] if secured and not operation.public else None,
        )
        for codec in codecs
        for operation in codec.operations
        if operation.documented
    ]


def _signature_of(codec: Codec, operation: Operation) -> Any:
    """A function whose signature declares the path's parameters, described as the codec
    describes them, as FastAPI reads them."""

    def endpoint(**parameters: str) -> None:
        raise RuntimeError("documentation only: app.codecs.endpoint serves this operation")

    endpoint.__doc__ = operation.handler.__doc__
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[
                    str, Path(description=codec.path_parameters[name].description)
                ],
            )
            for name in _PATH_PARAMETER.findall(operation.path)
        ]
    )
    return endpoint


def _operation_id(codec: Codec, operation: Operation) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", operation.path).strip("_") or "root"
    slash = "_slash" if operation.path.endswith("/") else ""
    return f"{codec.name}_{operation.method.lower()}_{words}{slash}"


def _error_responses(codec: Codec, operation: Operation) -> dict[int | str, dict[str, Any]]:
    """The operation's error statuses in the codec's error shape; ``4XX`` for the rest (405
    wrong method...), which also keeps FastAPI from documenting a 422 the codec never sends."""
    documented: dict[int | str, dict[str, Any]] = {
        status: _error_response(codec, status) for status in operation.errors
    }
    documented["4XX"] = {"model": codec.error_model, "description": "Any other client error"}
    return documented


def _error_response(codec: Codec, status: int) -> dict[str, Any]:
    return {"model": codec.error_model, "description": codec.error_descriptions[status]}


def _add_error_examples(document: dict[str, Any], codecs: Sequence[Codec]) -> None:
    """Each error status of each operation shows the answer its codec really gives. Added
    after generation: FastAPI's generator drops the nulls an example holds (``"row": null``)."""
    for codec in codecs:
        for operation in codec.operations:
            if not operation.documented:
                continue
            responses = document["paths"][operation.path][operation.method.lower()]["responses"]
            for status in operation.errors:
                example = error_example(codec.name, status)
                if example is not None:
                    content = responses[str(status)]["content"]["application/json"]
                    content["example"] = example


def _request_body(operation: Operation) -> dict[str, Any] | None:
    """The body an operation reads itself (with orjson, not FastAPI), with its examples."""
    model: type[BaseModel] | None = operation.request_model
    if model is None:
        return None
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    json_media: dict[str, Any] = {"schema": schema}
    examples = schema.get("examples", [])
    if examples:
        json_media["examples"] = {
            f"example {index + 1}": {"value": example} for index, example in enumerate(examples)
        }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": json_media, **operation.request_media},
        }
    }


def _move_nested_definitions(document: dict[str, Any]) -> None:
    """Nested models of a request body schema arrive under ``$defs``, which OpenAPI tools do
    not resolve there: move them into the components."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                components.update(media.get("schema", {}).pop("$defs", {}))
