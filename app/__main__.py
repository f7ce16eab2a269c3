"""``python -m app`` (or ``multilabel-serve``): run the service with uvicorn from the settings."""

from __future__ import annotations

import signal
import sys

import uvicorn

from app.config import get_settings
from app.logs import logging_config
from app.metrics import multiprocess_directory


def main() -> None:
    settings = get_settings()
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again so the process
    # dies of it (status -15), which supervisors read as a crash. A clean shutdown exits 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    with multiprocess_directory(settings.workers):
        uvicorn.run(
            "app.main:app",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http="httptools",
            log_level=settings.log_level,
            log_config=logging_config(settings),
            access_log=False,  # the service logs each request itself (app.observability)
            timeout_graceful_shutdown=settings.graceful_timeout,
        )


if __name__ == "__main__":
    main()
