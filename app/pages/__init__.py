"""Pages for people: self-hosted API docs, the landing page, the served model's card.

Nothing here loads from another host: Swagger UI and ReDoc come from the ``fastapi-offline``
package, our stylesheet from ``app/pages/static``, both under ``/static``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.pages import card, docs, landing
from app.pages.layout import STATIC_PATH, PageProblem, error_page, problem_page


def install_pages(app: FastAPI, *, card_dependencies: Sequence[Any] = ()) -> None:
    """Add the pages' routes and their static files to the control plane.

    ``card_dependencies`` guard the model card as ``/metadata`` is guarded (API keys); the
    landing page and the docs stay open: a browser opening them sends no Authorization.
    """
    app.mount(
        STATIC_PATH,
        StaticFiles(packages=[docs.ASSET_PACKAGE, ("app.pages", "static")]),
        name="static",
    )
    app.add_exception_handler(PageProblem, problem_page)
    app.include_router(landing.router)
    app.include_router(docs.router)
    app.include_router(card.router, dependencies=list(card_dependencies))


__all__ = ["error_page", "install_pages"]
