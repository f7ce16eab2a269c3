"""Logging of the service and of uvicorn: one JSON object per line, or text for people.

``python -m app`` hands ``logging_config(settings)`` to uvicorn, which applies it in every worker
process before the application starts. ``uvicorn app.main:app --log-config app/logging.json``
gets the same handler from the file (``settings_handler``) before uvicorn writes its first
line. ``configure_logging`` runs when the application starts: it sets logging up if nothing
did, and applies the level setting to the service's own handler however it was installed.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import sys
import time
from contextvars import ContextVar
from typing import IO, TYPE_CHECKING, Any, Literal

import orjson

if TYPE_CHECKING:  # light to import: uvicorn's workers load this module before they answer
    from app.config import Settings

Format = Literal["json", "text"]
_current_request_id: ContextVar[str | None] = ContextVar("multilabel_request_id", default=None)


def set_request_id(request_id: str) -> None:
    """Name the request being served in this context: its log lines carry the id."""
    _current_request_id.set(request_id)


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _current_request_id.get()


# How long a line written on the event loop may wait for others to share its write.
FLUSH_INTERVAL = 0.05


class LoopFlushedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that, on an event loop, writes the lines of many requests at once.

    stderr writes every line as it comes (it is line-buffered, or unbuffered under
    PYTHONUNBUFFERED, as in the container): a system call per request's access-log line, which
    under load cost a one-row gRPC call about a tenth of its throughput (docs/performance.md).
    So on an event loop a line waits, at most ``FLUSH_INTERVAL``, and the waiting lines leave in
    one write. Off the loop (start-up, worker threads) a line is written at once, after any
    still waiting, so lines keep their order; ``flush`` (as at exit) writes what waits.
    """

    def __init__(self, stream: IO[str] | None = None):
        super().__init__(stream)
        self._waiting: list[str] = []
        self._writer: asyncio.AbstractEventLoop | None = None  # the loop due to write them

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # as logging.StreamHandler.emit: a bad record must not raise
            self.handleError(record)
            return
        self.emit_line(line)

    def emit_line(self, line: str) -> None:
        """Write a line this handler's formatter already made (the access log's direct path:
        ``direct_access_handler``), as ``emit`` writes a record's."""
        with self.lock:  # type: ignore[union-attr]  # StreamHandler always creates its lock
            self._waiting.append(line)
            if self._writer is not None and not self._writer.is_closed():
                return  # a write is already due
            try:
                self._writer = asyncio.get_running_loop()
            except RuntimeError:  # no loop in this thread: written now
                self.flush()
                return
            self._writer.call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """Write the waiting lines now, in one write."""
        with self.lock:  # type: ignore[union-attr]
            self._writer = None
            if self._waiting:
                lines, self._waiting = self._waiting, []
                self.stream.write(self.terminator.join(lines) + self.terminator)
            super().flush()

    def close(self) -> None:
        self.flush()
        super().close()


def direct_access_handler(logger: logging.Logger) -> LoopFlushedStreamHandler | None:
    """The handler ``logger``'s info lines go to when that is the service's own JSON handler
    alone, with no filter anywhere: then a line can be formatted and written without a
    LogRecord and the logging module's dispatch (most of a line's cost). None otherwise
    (text format, a test capturing logs, any other configuration): use the logger."""
    if logger.handlers or logger.filters or not logger.propagate:
        return None
    handlers = logging.root.handlers
    if len(handlers) != 1 or logging.root.filters:
        return None
    handler = handlers[0]
    if (
        type(handler) is LoopFlushedStreamHandler
        and type(handler.formatter) is JsonFormatter
        and not handler.filters
        and handler.level <= logging.INFO
    ):
        return handler
    return None


def lighten_log_records() -> None:
    """Skip what no line of ours shows (thread, process and multiprocessing names): the
    logging module's documented optimization flags, a third of a record's cost."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...fields, "request_id"?, "exception"?}``."""

    _second: tuple[int, str] = (-1, "")  # the last second formatted (one line per request)

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if not fields and (request_id := current_request_id()) is not None:
            fields = {"request_id": request_id}  # a line written while serving a request
        exception = self.formatException(record.exc_info) if record.exc_info else None
        return self.format_line(
            record.created, record.levelname, record.name, record.getMessage(), fields, exception
        )

    def format_line(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        fields: dict[str, Any] | None,
        exception: str | None = None,
    ) -> str:
        """The line of a record with these attributes (``format``'s whole output)."""
        entry: dict[str, Any] = {
            "time": self._utc_time(created),
            "level": level.lower(),
            "logger": logger,
            "message": message,
            **(fields or {}),
        }
        if exception is not None:
            entry["exception"] = exception
        return orjson.dumps(entry, default=str).decode()

    def _utc_time(self, created: float) -> str:
        """RFC 3339 with milliseconds, ``2025-01-31T12:00:00.123Z``."""
        second = int(created)
        cached, text = self._second
        if cached != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{int((created - second) * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """``2025-01-31 12:00:00,123 INFO app.access POST /predict 200 latency_ms=0.8 ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if not fields:
            return line
        details = " ".join(
            f"{key}={value}" for key, value in fields.items() if key not in _IN_MESSAGE
        )
        return f"{line} {details}"


_IN_MESSAGE = frozenset({"method", "path", "status"})
_FORMATTER_CLASSES: dict[Format, type[logging.Formatter]] = {
    "json": JsonFormatter,
    "text": TextFormatter,
}
_FORMATTERS = {name: f"{__name__}.{cls.__name__}" for name, cls in _FORMATTER_CLASSES.items()}


def resolve_format(setting: Literal["auto", "json", "text"], stream: IO[str]) -> Format:
    """``auto`` is text on a terminal, JSON otherwise (a container, a file, a pipe)."""
    if setting != "auto":
        return setting
    return "text" if stream.isatty() else "json"


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the service's and uvicorn's loggers.

    Everything goes to stderr through one handler; uvicorn's own access log is switched off,
    since the service writes a richer line per request (app.observability).
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "service": {"()": _FORMATTERS[resolve_format(settings.log_format, sys.stderr)]}
        },
        "handlers": {
            "stderr": {
                "class": f"{__name__}.{LoopFlushedStreamHandler.__name__}",
                "formatter": "service",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": settings.log_level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": settings.log_level.upper(), "handlers": [], "propagate": True},
            "uvicorn.error": {"level": settings.log_level.upper()},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure_logging(settings: Settings) -> None:
    """Apply ``logging_config`` unless logging is already set up, so that the service's own
    lines are never lost. Set up by the service's own handler alone (``python -m app``, or
    uvicorn with ``app/logging.json``), the levels follow the settings; set up otherwise (a
    test harness capturing logs, another configuration), logging is left as it is."""
    lighten_log_records()
    root = logging.getLogger()
    if not root.handlers:
        logging.config.dictConfig(logging_config(settings))
    elif [type(handler) for handler in root.handlers] == [LoopFlushedStreamHandler]:
        level = settings.log_level.upper()
        for logger in (root, logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error")):
            logger.setLevel(level)


def settings_handler() -> LoopFlushedStreamHandler:
    """The service's stderr handler, its format and level from the settings: the factory that
    ``app/logging.json`` names, so that ``uvicorn --log-config`` writes the service's format
    from its first line."""
    from app.config import get_settings  # here: importing this module must stay light

    settings = get_settings()
    handler = LoopFlushedStreamHandler(sys.stderr)
    handler.setFormatter(_FORMATTER_CLASSES[resolve_format(settings.log_format, sys.stderr)]())
    handler.setLevel(settings.log_level.upper())
    return handler
