"""The model card of a loaded version, in the browser, with its plots.

``/models/{name}/card`` is the served (newest loaded) version's card, so it follows hot
reload; ``/models/{name}/versions/{version}/card`` is one version's. A plot is served from its
own version's directory only if that version's metadata lists it (with its SHA-256, checked
again as it is read) and it is an image: no other file, no path outside the version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.artifact import version_path
from app.errors import shown_name
from app.inference import Model
from app.pages.layout import PageProblem, page, security_headers, url_prefix
from app.repository import ModelRepository
from app.services import services

# Written by training next to the model (training/report.py); listed in the version's files.
CARD_FILE = "model_card.md"
# The files a card may show, by suffix, with the type they are served as. Not SVG: an SVG
# opened on its own is a document that can run script.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_FILE_POLICY = "default-src 'none'; sandbox"

router = APIRouter(include_in_schema=False)


@router.get("/models/{name}/card")
def served_card(request: Request, name: str) -> Response:
    """The card of the version the service answers with now."""
    return _card_page(request, _loaded_version(request, name, None))


@router.get("/models/{name}/versions/{version}/card")
def version_card(request: Request, name: str, version: str) -> Response:
    return _card_page(request, _loaded_version(request, name, version))


@router.get("/models/{name}/versions/{version}/files/{path:path}")
def version_file(request: Request, name: str, version: str, path: str) -> Response:
    """A plot of the card, exactly as the version published it."""
    model = _loaded_version(request, name, version)
    media_type = _image_type(model, path)
    if media_type is None:
        raise PageProblem(
            404, "No such file", f"Version {model.version} has no image named {shown_name(path)}."
        )
    content = _read_published(request, model, path)
    return Response(content, media_type=media_type, headers=security_headers(_FILE_POLICY))


def card_url(request: Request, name: str, version: int | None = None) -> str:
    """Where a card is shown: one version's, or (no version) the served one's, which follows
    hot reload."""
    base = f"{url_prefix(request)}/models/{quote(name)}"
    return f"{base}/card" if version is None else f"{base}/versions/{version}/card"


def _card_page(request: Request, model: Model) -> Response:
    if CARD_FILE not in model.metadata.files:
        raise PageProblem(
            404,
            "No model card",
            f"Version {model.version} of {model.name!r} was published without a model card.",
        )
    markdown = _read_published(request, model, CARD_FILE).decode("utf-8", errors="replace")
    snapshot = _repository(request).snapshot
    context = {
        "title": f"Model card: {model.name} version {model.version}",
        "model": model,
        "served": model.version == max(snapshot.models, default=None),
        "versions": [
            (other, card_url(request, other.name, other.version))
            for other in snapshot.models.values()
        ],
        "card": _rendered_card(markdown, lambda name: _image_url(request, model, name)),
    }
    return page(request, "card.html", context)


def _image_type(model: Model, name: str) -> str | None:
    """The media type of a file the version lists and a card may show; None for any other."""
    if name not in model.metadata.files:
        return None
    return IMAGE_TYPES.get(PurePosixPath(name).suffix.lower())


def _image_url(request: Request, model: Model, name: str) -> str | None:
    if _image_type(model, name) is None:
        return None
    return (
        f"{url_prefix(request)}/models/{quote(model.name)}/versions/{model.version}"
        f"/files/{quote(name)}"
    )


def _repository(request: Request) -> ModelRepository:
    return services(request).repository


def _loaded_version(request: Request, name: str, version: str | None) -> Model:
    """The loaded model version a page is about, or the problem that says why there is none."""
    repository = _repository(request)
    if name != repository.name:
        raise PageProblem(404, "Unknown model", f"This service serves {repository.name!r} only.")
    snapshot = repository.snapshot
    if not snapshot.models:
        raise PageProblem(503, "Model not ready", f"No version is loaded: {snapshot.reason}.")
    if version is None:
        return snapshot.models[max(snapshot.models)]
    model = snapshot.models.get(int(version)) if version.isdecimal() else None
    if model is None:
        loaded = ", ".join(str(number) for number in snapshot.models)
        raise PageProblem(
            404,
            "Version not loaded",
            f"{name!r} has no loaded version {shown_name(version)} (loaded: {loaded}).",
        )
    return model


def _read_published(request: Request, model: Model, name: str) -> bytes:
    """A file of the version as it was published: its bytes must still match their hash."""
    directory: Path = version_path(_repository(request).root, model.name, model.version)
    try:
        content = (directory / name).read_bytes()
    except OSError:
        content = None
    if content is None or hashlib.sha256(content).hexdigest() != model.metadata.files[name]:
        raise PageProblem(
            404,
            "File changed or missing",
            f"{name} of version {model.version} is no longer as published; it is not shown.",
        )
    return content


def _rendered_card(markdown: str, image_url: Callable[[str], str | None]) -> Any:
    """The card as safe HTML; markdown-it and Jinja's markup load on the first card only."""
    from markupsafe import Markup

    from app.pages.card_html import card_html

    return Markup(card_html(markdown, image_url))
