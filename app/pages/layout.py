"""What every page shares: templates, URLs that survive a path prefix, security headers, and
the page that explains a problem (404, 503) to a person."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

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


@dataclass
class PageProblem(Exception):
    """Why a page cannot be shown; rendered as a page for people, with this status."""

    status_code: int
    title: str
    detail: str


async def problem_page(request: Request, error: Exception) -> Response:
    """The exception handler for ``PageProblem``."""
    assert isinstance(error, PageProblem)
    context = {"title": error.title, "detail": error.detail}
    return page(request, "problem.html", context, status_code=error.status_code)
