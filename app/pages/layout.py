"""What every page shares: templates, URLs that survive a path prefix, security headers, what
the client asked for (HTML or JSON), and the page that explains a problem to a person."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

JSON_MEDIA_TYPE = "application/json"
HTML_MEDIA_TYPE = "text/html"
STATIC_PATH = "/static"
FAVICON = "favicon.png"  # shipped by fastapi-offline beside the Swagger UI and ReDoc bundles
STYLESHEET = "pages.css"

# Our own pages run no script and load nothing but our stylesheet, favicon and the card's
# plots: whatever a version directory holds, it cannot run code in the service's origin.
PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@cache
def _templates() -> Jinja2Templates:
    """Loaded on the first page: a worker that only serves inference never imports Jinja."""
    from starlette.templating import Jinja2Templates

    return Jinja2Templates(directory=Path(__file__).parent / "templates")  # autoescapes


def url_prefix(request: Request) -> str:
    """The path the service is mounted under (uvicorn ``--root-path``), '' when none.

    Every URL a page writes starts with it, so the links and assets of a service behind a
    path-prefixing proxy resolve through that proxy.
    """
    root_path: str = request.scope.get("root_path", "")
    return root_path.rstrip("/")


def asset_url(request: Request, name: str) -> str:
    return f"{url_prefix(request)}{STATIC_PATH}/{name}"


def security_headers(policy: str) -> dict[str, str]:
    """Headers of every page and file the pages serve: the content policy, no sniffing."""
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """Render one of our templates as a complete page, with its security headers."""
    return _templates().TemplateResponse(
        request,
        template,
        {
            "prefix": url_prefix(request),
            "stylesheet": asset_url(request, STYLESHEET),
            "favicon": asset_url(request, FAVICON),
            **context,
        },
        status_code=status_code,
        headers=security_headers(PAGE_POLICY),
    )


def accept_quality(accept: str) -> tuple[float, float]:
    """How much an Accept header wants HTML and JSON (0 when it names neither)."""
    quality = {HTML_MEDIA_TYPE: 0.0, JSON_MEDIA_TYPE: 0.0}
    for item in accept.split(","):
        media_type, *parameters = (part.strip() for part in item.split(";"))
        if media_type.lower() in quality:
            quality[media_type.lower()] = _quality(parameters)
    return quality[HTML_MEDIA_TYPE], quality[JSON_MEDIA_TYPE]


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def is_browser_navigation(request: Request) -> bool:
    """A GET that asks for HTML before JSON, as a browser opening a URL does; ``*/*`` (curl,
    HTTP libraries) and no Accept at all are API clients."""
    html, json = accept_quality(request.headers.get("accept", ""))
    return request.method in ("GET", "HEAD") and html > json


@dataclass
class PageProblem(Exception):
    """Why a page cannot be shown; rendered as a page for people, with this status."""

    status_code: int
    title: str
    detail: str
    advice: list[str] = field(default_factory=list)  # what to do: one paragraph each
    command: str | None = None  # shown as code after the first paragraph of advice
    headers: dict[str, str] = field(default_factory=dict)


async def problem_page(request: Request, error: Exception) -> Response:
    """The exception handler for ``PageProblem``."""
    assert isinstance(error, PageProblem)
    context = {
        "title": error.title,
        "detail": error.detail,
        "advice": error.advice,
        "command": error.command,
    }
    response = page(request, "problem.html", context, status_code=error.status_code)
    response.headers.update(error.headers)
    return response


async def error_page(
    request: Request, status_code: int, message: str, headers: Mapping[str, str]
) -> Response | None:
    """The page a browser gets instead of the JSON error of a 401 or 404, saying what to do;
    None for any other status or client (API clients keep their error envelope)."""
    if status_code not in (401, 404) or not is_browser_navigation(request):
        return None
    if status_code == 401:
        problem = _unauthorized(request, message, headers)
    else:
        problem = PageProblem(
            404,
            "Page not found",
            f"Nothing is served at {request.url.path}.",
            advice=["The links above lead to every page: the home page lists the others."],
        )
    response = await problem_page(request, problem)
    response.headers["Vary"] = "Accept"
    return response


def _unauthorized(request: Request, message: str, headers: Mapping[str, str]) -> PageProblem:
    detail = "This service runs with API keys, and this page needs one."
    if "authorization" in request.headers:
        detail += f" The key this browser sent was refused: {message}."
    return PageProblem(
        401,
        "API key needed",
        detail,
        advice=[
            "A browser sends no key by itself. Fetch this URL with a client that sends "
            "your key in the Authorization header, for example:",
            "Or open the API docs (no key needed): their Authorize button sends your key "
            "with every operation you try there.",
            "The home page, the API docs and the health probes need no key.",
        ],
        command=f"curl -H 'Authorization: Bearer <your key>' '{request.url}'",
        headers=dict(headers),
    )
