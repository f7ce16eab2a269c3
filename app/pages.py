"""Pages for people: self-hosted API docs, the landing page, the served model's card."""

from __future__ import annotations

from fastapi import FastAPI


def install_pages(app: FastAPI) -> None:
    """Add the pages' routes to the control plane."""
