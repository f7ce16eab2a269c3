"""The OpenAPI document: FastAPI's, plus the schemas of bodies that routes parse themselves."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi


def install_openapi(app: FastAPI) -> None:
    """Generate the document once, moving nested request-body definitions into components.

    Routes that read their body with orjson declare it through ``openapi_extra``; the nested
    models of such a schema arrive under ``$defs``, which OpenAPI tools do not resolve there.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    for media in operation.get("requestBody", {}).get("content", {}).values():
                        components.update(media.get("schema", {}).pop("$defs", {}))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
