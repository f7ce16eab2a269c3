"""``python -m app`` (or ``multilabel-serve``): run the service from the settings."""

from __future__ import annotations

from app.config import get_settings
from app.edge.server import serve


def main() -> None:
    serve(get_settings())


if __name__ == "__main__":
    main()
