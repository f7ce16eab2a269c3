"""What the standard-protocol routers (Open Inference Protocol V2, TensorFlow Serving) share.

Both publish 400 for a client's mistake where the native API says 422, both take the body as
JSON whatever its content-type says (as Triton, KServe and TF Serving do), and both name a
model version in the path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from app.config import Settings
from app.dependencies import get_app_settings, get_repository
from app.errors import InvalidInput, InvalidRequest, ModelNotFound, ServiceError
from app.http import (
    JSON_MEDIA_TYPE,
    DirectRoute,
    Endpoint,
    JsonBody,
    read_json,
    request_body_schema,
)
from app.inference import Model

INPUT_NAME = "features"
PROBABILITIES = "probabilities"
LABELS = "labels"

_VERSION_SEGMENT = re.compile(r"[0-9]{1,18}")
_JSON_CONTENT_TYPE = (b"content-type", JSON_MEDIA_TYPE.encode())


class BadRequest(ServiceError):
    """A client's mistake, reported with the 400 that both standard protocols publish."""

    status_code = 400
    code = "bad_request"


class ProtocolRoute(DirectRoute):
    """A direct route (the endpoint takes the request, no dependency solving per request)
    whose invalid-request and invalid-input errors, 422 natively, answer 400."""

    def get_route_handler(self) -> Endpoint:
        endpoint = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await endpoint(request)
            except (InvalidInput, InvalidRequest) as error:
                raise BadRequest(error.message, row=error.row, field=error.field) from error

        return handle


class ProtocolError(BaseModel):
    """The error body of both standard protocols."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "model 'other' is not served here"}]}
    )

    error: str


_ERROR_DESCRIPTIONS = {
    400: "Bad request: malformed JSON, wrong fields or unusable tensor values",
    404: "Unknown model or version",
    413: "Body or row count over the limit",
    503: "No model loaded",
}


def protocol_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries declaring the ``{"error": "..."}`` body for these statuses.

    The ``4XX`` range stands for the rest (405 wrong method...) and replaces the 422 that
    FastAPI would otherwise document for routes with path parameters, which never occurs here.
    """
    documented: dict[int | str, dict[str, Any]] = {
        status: {"model": ProtocolError, "description": _ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }
    documented["4XX"] = {"model": ProtocolError, "description": "Any other client error"}
    return documented


def inference_documentation(
    request_model: type[BaseModel], response_model: type[BaseModel]
) -> dict[str, Any]:
    """OpenAPI of an inference route: it reads its body itself, with orjson."""
    return {
        "response_model": response_model,
        "response_model_exclude_none": True,
        "responses": protocol_errors(400, 404, 413, 503),
        "openapi_extra": request_body_schema(request_model),
    }


def model_in_path(request: Request) -> Model:
    """The model the path names: the newest version, or the one ``{version}`` names."""
    repository = get_repository(request)
    name = request.path_params["name"]
    version = request.path_params.get("version")
    if version is None:
        return repository.get(name)
    if not _VERSION_SEGMENT.fullmatch(version):
        repository.get(name)  # an unknown or unready model is reported as that first
        raise ModelNotFound(f"version {version!r} of model {name!r} is not loaded")
    return repository.get(name, int(version))


def _name_parameter(name: Annotated[str, Path(description="The served model's name")]) -> None:
    pass


def _version_parameter(
    version: Annotated[str, Path(description="One of the loaded versions")],
) -> None:
    pass


# As ``dependencies=``, these only declare the path parameters for OpenAPI: a ProtocolRoute
# solves no dependencies, and model_in_path reads the parameters itself.
_MODEL_PATH = [Depends(_name_parameter)]
_VERSIONED_PATH = [*_MODEL_PATH, Depends(_version_parameter)]


def model_route(
    router: APIRouter, method: str, model_path: str, suffix: str = "", **documentation: Any
) -> Callable[[Endpoint], Endpoint]:
    """Serve an endpoint at ``model_path + suffix`` and at ``model_path/versions/{version}``
    ``+ suffix``, as both protocols do; ``model_path`` ends with ``{name}``."""

    def register(endpoint: Endpoint) -> Endpoint:
        for path, parameters in (
            (model_path + suffix, _MODEL_PATH),
            (f"{model_path}/versions/{{version}}{suffix}", _VERSIONED_PATH),
        ):
            router.add_api_route(
                path, endpoint, methods=[method], dependencies=parameters, **documentation
            )
        return endpoint

    return register


async def inference_inputs(request: Request) -> tuple[Model, Settings, JsonBody]:
    """What an inference route works from: the model the path names, the settings, and the
    body decoded as JSON, whatever the content-type header says.

    Triton's client sends no content-type and TF Serving's own examples post with ``curl -d``
    (form-encoded); the servers these protocols come from read the body as JSON regardless.
    """
    model = model_in_path(request)
    headers = [item for item in request.scope["headers"] if item[0] != b"content-type"]
    as_json = Request({**request.scope, "headers": [*headers, _JSON_CONTENT_TYPE]}, request.receive)
    return model, get_app_settings(request), await read_json(as_json)
