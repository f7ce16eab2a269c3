"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), from bundles that ship with the service.

FastAPI's own pages load their JavaScript, CSS and fonts from public hosts, so they stay blank
where the service has no internet access. These are the same pages (FastAPI's
``get_swagger_ui_html`` and ``get_redoc_html``) pointed at the copies of Swagger UI and ReDoc
that the ``fastapi-offline`` package carries, served under ``/static``.
"""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import Response

from app.pages.layout import FAVICON, PageProblem, asset_url, security_headers, url_prefix

# The asset package and what it names its files (fastapi_offline/static/); the pages'
# tests fetch each of them, so an upgrade that renames one fails there, not in a browser.
ASSET_PACKAGE = ("fastapi_offline", "static")
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"

# Swagger UI would otherwise ask a public validator about the document (validatorUrl).
SWAGGER_PARAMETERS = {"validatorUrl": None, "displayRequestDuration": True}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    """Interactive documentation: every operation, with "Try it out" against this service."""
    app: FastAPI = request.app
    html = get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{app.title} - Swagger UI",
        swagger_js_url=asset_url(request, SWAGGER_JS),
        swagger_css_url=asset_url(request, SWAGGER_CSS),
        swagger_favicon_url=asset_url(request, FAVICON),
        swagger_ui_parameters={**SWAGGER_PARAMETERS, **(app.swagger_ui_parameters or {})},
    )
    return _with_docs_policy(html)


@router.get("/redoc")
async def redoc(request: Request) -> Response:
    """The same document as a three-panel reference, without fonts from a public host."""
    app: FastAPI = request.app
    html = get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{app.title} - ReDoc",
        redoc_js_url=asset_url(request, REDOC_JS),
        redoc_favicon_url=asset_url(request, FAVICON),
        with_google_fonts=False,
    )
    return _with_docs_policy(html)


def _openapi_url(request: Request) -> str:
    openapi_url = request.app.openapi_url
    if openapi_url is None:
        raise PageProblem(
            404, "No API documentation", "This service publishes no OpenAPI document."
        )
    return url_prefix(request) + str(openapi_url)


def _with_docs_policy(page: Response) -> Response:
    """Scripts from here only, plus the page's own inline start-up script by its hash.

    Styles may be inline (both UIs set them from script) and images may be ``data:`` URLs
    (Swagger UI's icons); ReDoc runs its search index in a worker made from a ``blob:``.
    Requests ("Try it out") go to this origin only.
    """
    scripts = ["'self'"] + [
        f"'sha256-{digest}'" for digest in _inline_script_hashes(bytes(page.body))
    ]
    policy = (
        f"default-src 'none'; script-src {' '.join(scripts)}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    page.headers.update(security_headers(policy))
    return page


def _inline_script_hashes(html: bytes) -> list[str]:
    """The CSP hash (base64 SHA-256) of each inline ``<script>`` of a page."""
    finder = _InlineScripts()
    finder.feed(html.decode())
    finder.close()
    return [
        base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        for script in finder.scripts
    ]


class _InlineScripts(HTMLParser):
    """Collects the text of every ``<script>`` element that has no ``src``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inside = tag == "script" and not dict(attrs).get("src")
        if self._inside:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.scripts[-1] += data
