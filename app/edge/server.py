"""Running the service: uvicorn with the edge's protocol, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import math
import resource
import signal
import sys

import uvicorn

from app.config import Settings
from app.edge import PROTOCOL
from app.logs import configure_logging, logging_config
from app.metrics import multiprocess_directory

logger = logging.getLogger(__name__)

# Files a worker keeps open beside its client connections: the listening socket, the model,
# logs, metrics files, ONNX Runtime's own.
OTHER_OPEN_FILES = 64


def allow_open_files(needed: int) -> int:
    """Raise this process's soft limit on open files towards ``needed`` (never past the hard
    limit; worker processes inherit it); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    return raised


def serve(settings: Settings) -> None:
    """Run the service with uvicorn until SIGTERM or SIGINT: one process, or ``workers``.

    ``settings`` are the process's own (``get_settings()``): each worker process reads them
    again, for the application and for ``EdgeProtocol``.
    """
    configure_logging(settings)
    # Past the open-file limit, accepting fails before the connection cap can answer (a 1024
    # soft limit is common): make room for the cap.
    needed = settings.max_connections + OTHER_OPEN_FILES
    if allow_open_files(needed) < needed:
        logger.warning(
            "the open-file limit allows fewer than max_connections=%d connections; "
            "raise the hard limit (ulimit -Hn) or lower MULTILABEL_MAX_CONNECTIONS",
            settings.max_connections,
        )
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
            # By import string, so that worker processes start without importing the service
            # before they answer uvicorn's health checks, and each checks the edge's contract.
            http=PROTOCOL,
            ws="none",  # no WebSocket routes
            # EdgeProtocol takes its deadlines from the settings; the stock protocol it falls
            # back to keeps at least this one (uvicorn's is whole seconds).
            timeout_keep_alive=max(1, math.ceil(settings.keep_alive_timeout)),
            log_level=settings.log_level,
            log_config=logging_config(settings),
            access_log=False,  # the service logs each request itself (app.observability)
            # No X-Forwarded-* rewriting: the service never uses the client's address, and
            # parsing those headers is work on every request.
            proxy_headers=False,
            timeout_graceful_shutdown=settings.graceful_timeout,
        )
