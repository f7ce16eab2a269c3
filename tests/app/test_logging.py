"""Request ids and logs: every response carries an X-Request-ID, every request writes one log
line with it; the service's and uvicorn's logs come out as JSON (or text on a terminal) at the
configured level, without uvicorn's own access lines."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.logs import (
    FLUSH_INTERVAL,
    JsonFormatter,
    LoopFlushedStreamHandler,
    TextFormatter,
    logging_config,
    resolve_format,
)
from app.main import Service, create_app
from tests.support import MODEL_NAME, REFERENCE_INPUTS, REPO_ROOT, free_port, running_server

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
JSON = {"content-type": "application/json"}
TEXT = {"content-type": "text/plain"}
REQUESTS: list[tuple[str, str, dict[str, Any], int]] = [
    ("GET", "/health", {}, 200),
    ("GET", "/metrics", {}, 200),
    ("POST", "/predict", {"json": {"instances": REFERENCE_INPUTS}}, 200),
    ("POST", "/predict", {"content": b"{", "headers": JSON}, 400),
    ("POST", "/predict", {"content": b"{}", "headers": {"content-type": "text/csv"}}, 415),
    ("POST", "/predict", {"json": {"instances": [[1, 2]]}}, 422),
    ("POST", "/predict", {"content": b"[" * 9_000_000, "headers": JSON}, 413),
    ("POST", "/v2/models/multilabel/infer", {"content": b"{", "headers": JSON}, 400),
    ("POST", "/v2/models/other/infer", {"content": b"{}", "headers": JSON}, 404),
    ("GET", "/v2/models/multilabel/infer", {}, 405),
    ("POST", "/v1/models/multilabel:predict", {"content": b"{}", "headers": TEXT}, 415),
    ("GET", "/v2/health/live", {}, 200),
    ("GET", "/no/such/path", {}, 404),
    ("DELETE", "/health", {}, 405),
    ("GET", "/boom", {}, 500),
]


@pytest.fixture
def app(settings: Settings) -> Service:
    """The real application, plus one control-plane route with a bug in it (the 500 case)."""
    application = create_app(settings)

    @application.control.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    return application


@pytest.fixture
def lenient_client(app: Service) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def access_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.fields for r in caplog.records if r.name == "app.access"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("method", "path", "options", "status"),
    REQUESTS,
    ids=[f"{m} {p} {s}" for m, p, _, s in REQUESTS],
)
def test_every_response_has_a_request_id_and_every_request_one_log_line(
    lenient_client: TestClient,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        response = lenient_client.request(method, path, **options)
    assert response.status_code == status
    request_id = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(request_id)
    (line,) = access_records(caplog)
    assert line["request_id"] == request_id
    assert (line["method"], line["path"], line["status"]) == (method, path, status)
    assert line["latency_ms"] >= 0


def test_the_log_line_of_a_prediction_names_its_rows_and_model(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        client.post("/predict", json={"instances": REFERENCE_INPUTS})
    (line,) = access_records(caplog)
    assert (line["rows"], line["model"], line["model_version"]) == (2, MODEL_NAME, 1)


@pytest.mark.parametrize(
    "sent", ["abc-123", "7f9c0a6e-2b1d-4c8e-9f00-123456789abc", "trace:42.7_x", "a" * 128]
)
def test_a_request_id_the_caller_sends_is_echoed_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture, sent: str
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        response = client.get("/health", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] == sent
    assert access_records(caplog)[0]["request_id"] == sent


@pytest.mark.parametrize(
    "sent",
    ["", "a" * 129, "has space", "<script>", 'quote"d', "semi;colon", "ünïcode"],
    ids=["empty", "too-long", "space", "markup", "quote", "semicolon", "non-ascii"],
)
def test_an_unusable_request_id_is_replaced_by_a_generated_one(
    client: TestClient, sent: str
) -> None:
    response = client.get("/health", headers={"X-Request-ID": sent.encode()})
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


def test_each_request_without_an_id_gets_a_new_one(client: TestClient) -> None:
    ids = {client.get("/health").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_the_error_log_of_a_bug_carries_the_request_id(lenient_client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("app").addHandler(handler)
    try:
        response = lenient_client.get("/boom", headers={"X-Request-ID": "bug-1"})
    finally:
        logging.getLogger("app").removeHandler(handler)
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "bug-1"
    assert response.json()["error"]["message"] == "internal server error"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (error,) = [line for line in lines if line["level"] == "error"]
    assert error["request_id"] == "bug-1"
    assert "RuntimeError: a bug" in error["exception"]


def _record(name: str, message: str, **fields: Any) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, message, (), None)
    if fields:
        record.fields = fields
    return record


def test_json_lines_hold_time_level_logger_message_and_fields() -> None:
    fields = {"method": "GET", "path": "/health", "status": 200, "request_id": "r1"}
    record = _record("app.access", "GET /health 200", **fields)
    record.created = 1_700_000_000.1237
    line = json.loads(JsonFormatter().format(record))
    assert line.keys() == {"time", "level", "logger", "message", *fields}
    assert (line["level"], line["logger"], line["status"]) == ("info", "app.access", 200)
    assert line["time"] == "2023-11-14T22:13:20.123Z"


class CountedWrites(io.StringIO):
    """A stream that keeps each write apart, as a line-buffered stderr makes each one a system
    call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_lines_written_on_the_event_loop_leave_together_and_in_order() -> None:
    stream = CountedWrites()
    handler = LoopFlushedStreamHandler(stream)
    handler.setFormatter(JsonFormatter())

    async def serve() -> list[str]:
        handler.emit_line("first")
        handler.emit(_record("app", "second"))
        handler.emit_line("third")
        written_at_once = list(stream.writes)
        await asyncio.sleep(FLUSH_INTERVAL * 4)
        return written_at_once

    assert asyncio.run(serve()) == []
    [together] = stream.writes
    lines = together.splitlines()
    assert together.endswith("\n")
    assert len(lines) == 3
    assert (lines[0], json.loads(lines[1])["message"], lines[2]) == ("first", "second", "third")


def test_off_the_loop_a_line_leaves_at_once_after_those_still_waiting() -> None:
    stream = CountedWrites()
    handler = LoopFlushedStreamHandler(stream)
    handler.emit_line("start-up")
    assert stream.writes == ["start-up\n"]

    async def end_at_once(line: str) -> None:
        handler.emit_line(line)  # the loop ends before the line's write is due

    asyncio.run(end_at_once("last words"))
    assert stream.writes == ["start-up\n"]
    handler.flush()  # as logging.shutdown does at exit
    assert stream.writes[1:] == ["last words\n"]
    asyncio.run(end_at_once("still waiting"))
    handler.emit_line("from a thread")  # the loop due to write is gone: written now, in order
    assert stream.writes[2:] == ["still waiting\nfrom a thread\n"]


def test_text_lines_are_for_people() -> None:
    record = _record("app.access", "GET /health 200", method="GET", latency_ms=0.5, rows=None)
    line = TextFormatter().format(record)
    assert line.endswith("INFO    app.access GET /health 200 latency_ms=0.5 rows=None")


@pytest.mark.parametrize(
    ("setting", "terminal", "expected"),
    [
        ("auto", True, "text"),
        ("auto", False, "json"),
        ("json", True, "json"),
        ("text", False, "text"),
    ],
)
def test_the_log_format_is_text_on_a_terminal_unless_set(
    setting: Any, terminal: bool, expected: str, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        if terminal:
            leader, follower = os.openpty()
            stack.callback(os.close, leader)
            stream = stack.enter_context(os.fdopen(follower, "w"))
        else:
            stream = stack.enter_context((tmp_path / "log").open("w"))
        assert resolve_format(setting, stream) == expected


def test_uvicorn_access_lines_are_switched_off() -> None:
    config = logging_config(Settings())
    assert config["loggers"]["uvicorn.access"] == {"handlers": [], "propagate": False}


# The documented ways to start the service; each must log JSON from its first line.
LOG_CONFIG = "app/logging.json"  # relative to the repository root, as documented


def _command(way: str, port: int) -> list[str]:
    if way == "python -m app":
        return [sys.executable, "-m", "app"]
    if way == "multilabel-serve":
        return [str(Path(sys.executable).with_name("multilabel-serve"))]
    assert way == "uvicorn --log-config"
    uvicorn = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    return [*uvicorn, "--log-config", LOG_CONFIG]


WAYS = ["python -m app", "multilabel-serve", "uvicorn --log-config"]


def _served_lines(
    tmp_path: Path, trained_repository: Path, way: str = "python -m app", **env: str
) -> list[str]:
    """Start a real server, send three requests with known ids, stop it, return its log."""
    settings = {
        "MULTILABEL_MODEL_DIR": str(trained_repository),
        "MULTILABEL_POLL_INTERVAL": "0",
        **env,
    }
    port = free_port()
    with running_server(
        settings, tmp_path / "server.log", command=_command(way, port), port=port
    ) as server:
        for request_id in ("first", "second", "third"):
            httpx.post(
                server.base_url + "/predict",
                json={"instances": REFERENCE_INPUTS},
                headers={"X-Request-ID": request_id},
            )
    return [line for line in server.log().splitlines() if line.strip()]


@pytest.mark.parametrize("way", WAYS)
def test_a_served_process_logs_json_from_its_first_line_one_per_request_and_its_own_events(
    tmp_path: Path, trained_repository: Path, way: str
) -> None:
    lines = [json.loads(line) for line in _served_lines(tmp_path, trained_repository, way)]
    assert lines[0]["message"].startswith("Started server process")
    access = [line for line in lines if line["logger"] == "app.access"]
    sent = [line for line in access if line["request_id"] in ("first", "second", "third")]
    assert [line["request_id"] for line in sent] == ["first", "second", "third"]
    assert all(line["rows"] == 2 and line["model_version"] == 1 for line in sent)
    messages = [line["message"] for line in lines]
    assert any(m.startswith(f"loaded {MODEL_NAME} version 1") for m in messages)
    assert any(m.startswith("Uvicorn running on") for m in messages)
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]


@pytest.mark.parametrize("way", ["python -m app", "uvicorn --log-config"])
def test_the_log_level_setting_silences_the_request_lines(
    tmp_path: Path, trained_repository: Path, way: str
) -> None:
    lines = _served_lines(tmp_path, trained_repository, way, MULTILABEL_LOG_LEVEL="warning")
    assert not [line for line in lines if json.loads(line)["level"] in ("debug", "info")]


def test_the_documented_log_config_keeps_uvicorns_access_lines_off() -> None:
    """``app/logging.json`` routes uvicorn's loggers as ``logging_config`` does."""
    from_file = json.loads((REPO_ROOT / LOG_CONFIG).read_text())
    loggers = logging_config(Settings())["loggers"]
    assert from_file["loggers"]["uvicorn.access"] == loggers["uvicorn.access"]
    assert from_file["loggers"]["uvicorn"]["propagate"] is True
