"""The HTTP behaviour every codec shares (``app.codecs.endpoint``): methods, media types, body
limits and deadlines, clients that go away and bugs, each answered in the codec's own envelope.

Body delivery is driven over ASGI message by message (``tests.app.codecs.asgi``), as a server
hands it over; the rest goes through the test client. What each protocol refuses in a body
is in ``test_strictness.py``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.routing import Router

from app.codecs import CODECS
from app.codecs.base import Call, Codec, Operation, Reply
from app.codecs.endpoint import routes
from app.config import Settings
from app.main import create_app
from tests.app.codecs.asgi import body_messages, exchange, started
from tests.support import MODEL_NAME, REFERENCE_INPUTS

MAX_BODY_BYTES = 2048
BODY_TIMEOUT = 0.2
MESSAGE_ENVELOPE = {"native": False, "v2": True, "tfserving": True}
INFERENCE_PATHS = {
    "native": "/predict",
    "v2": f"/v2/models/{MODEL_NAME}/infer",
    "tfserving": f"/v1/models/{MODEL_NAME}:predict",
}
VALID_BODIES = {
    "native": orjson.dumps({"instances": REFERENCE_INPUTS}),
    "v2": orjson.dumps(
        {
            "inputs": [
                {"name": "features", "shape": [2, 10], "datatype": "FP32", "data": REFERENCE_INPUTS}
            ]
        }
    ),
    "tfserving": orjson.dumps({"instances": REFERENCE_INPUTS}),
}
JSON = [("content-type", "application/json")]


def filled(template: str) -> str:
    return template.replace("{name}", MODEL_NAME).replace("{version}", "1")


def assert_envelope(codec: str, body: bytes, status: int) -> str:
    """The codec's own error shape; returns the message."""
    document = orjson.loads(body)
    if MESSAGE_ENVELOPE[codec]:
        assert list(document) == ["error"], document
        assert isinstance(document["error"], str)
        return str(document["error"])
    error = document["error"]
    assert set(error) == {"code", "message", "row", "field"}, document
    assert status != 500 or error["code"] == "internal_error"
    return str(error["message"])


PATHS = sorted(
    {
        (codec.name, operation.path): sorted(
            o.method for o in codec.operations if o.path == operation.path
        )
        for codec in CODECS
        for operation in codec.operations
    }.items()
)


@pytest.mark.parametrize(
    ("codec_and_path", "methods"), PATHS, ids=[f"{c} {p}" for (c, p), _ in PATHS]
)
def test_a_method_not_served_gets_405_with_allow_in_the_codecs_envelope(
    client: TestClient, codec_and_path: tuple[str, str], methods: list[str]
) -> None:
    codec, template = codec_and_path
    response = client.request("PUT", filled(template), content=b"{}", headers=dict(JSON))
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == ", ".join(methods)
    message = assert_envelope(codec, response.content, 405)
    assert "PUT" in message
    assert response.headers["x-request-id"]


@pytest.fixture
def app(trained_repository: Path) -> Any:
    settings = Settings(
        model_dir=trained_repository,
        model_name=MODEL_NAME,
        poll_interval=0,
        max_body_bytes=MAX_BODY_BYTES,
        body_timeout=BODY_TIMEOUT,
    )
    return create_app(settings)


def run(app: Any, method: str, path: str, headers: Any, messages: Any, **options: Any) -> Any:
    async def scenario() -> Any:
        async with started(app) as state:
            return await exchange(app, state, method, path, headers, messages, **options)

    return asyncio.run(scenario())


CODEC_NAMES = list(INFERENCE_PATHS)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_a_body_in_several_chunks_is_read_whole(app: Any, codec: str) -> None:
    body = VALID_BODIES[codec]
    chunks = [body[i : i + 50] for i in range(0, len(body), 50)]
    sent = run(app, "POST", INFERENCE_PATHS[codec], JSON, body_messages(*chunks))
    assert sent.status == 200, sent.body
    assert sent.receives == len(chunks)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(app: Any, codec: str) -> None:
    headers = [*JSON, ("content-length", str(10**9))]
    sent = run(app, "POST", INFERENCE_PATHS[codec], headers, body_messages(b"{"))
    assert sent.status == 413
    assert sent.receives == 0
    assert sent.headers["connection"] == "close"
    assert "exceeds the limit of 2048 bytes" in assert_envelope(codec, sent.body, 413)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_a_streamed_body_over_the_limit_is_refused_as_soon_as_it_passes_it(
    app: Any, codec: str
) -> None:
    chunks = [b"[" * 1000] * 50  # no content-length: a chunked body
    sent = run(app, "POST", INFERENCE_PATHS[codec], JSON, body_messages(*chunks))
    assert sent.status == 413
    assert sent.receives == 3  # 3000 bytes passed the limit of 2048: nothing more was read
    assert sent.headers["connection"] == "close"
    assert_envelope(codec, sent.body, 413)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_the_media_type_is_checked_before_the_body_is_read(app: Any, codec: str) -> None:
    headers = [("content-type", "text/csv"), ("content-length", str(10**9))]
    sent = run(app, "POST", INFERENCE_PATHS[codec], headers, body_messages(b"a,b"))
    assert sent.status == 415
    assert sent.receives == 0
    assert "text/csv" in assert_envelope(codec, sent.body, 415)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_a_body_that_stops_arriving_gets_408_and_the_connection_closed(
    app: Any, codec: str
) -> None:
    first_chunk = {"type": "http.request", "body": VALID_BODIES[codec][:10], "more_body": True}
    sent = run(app, "POST", INFERENCE_PATHS[codec], JSON, [first_chunk], then_wait=True)
    assert sent.status == 408
    assert sent.headers["connection"] == "close"
    assert "did not arrive within 0.2 s" in assert_envelope(codec, sent.body, 408)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_a_client_that_goes_away_gets_no_answer_and_one_info_line(
    app: Any, codec: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = VALID_BODIES[codec]
    with caplog.at_level(logging.INFO):
        sent = run(
            app,
            "POST",
            INFERENCE_PATHS[codec],
            JSON,
            [{"type": "http.request", "body": body[:10], "more_body": True}],
        )
    assert sent.messages == []
    access = [r for r in caplog.records if r.name == "app.access"]
    assert [(r.levelno, r.fields["status"]) for r in access] == [(logging.INFO, 499)]  # type: ignore[attr-defined]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []


async def broken(call: Call) -> Reply:
    raise RuntimeError("a bug in a handler")


@pytest.mark.parametrize("codec", CODECS, ids=[codec.name for codec in CODECS])
def test_a_bug_in_a_handler_is_logged_once_and_answered_500_in_the_codecs_envelope(
    app: Any, codec: Codec, caplog: pytest.LogCaptureFixture
) -> None:
    """A codec whose one operation has a bug, served as every codec's operations are."""
    buggy = replace(codec, operations=[Operation("GET", "/bug", broken, summary="A bug")])
    router = Router(routes=routes([buggy]))

    async def scenario() -> Any:
        async with started(app) as state:
            return await exchange(router, state, "GET", "/bug", [], [])

    with caplog.at_level(logging.INFO):
        sent = asyncio.run(scenario())
    assert sent.status == 500
    message = assert_envelope(codec.name, sent.body, 500)
    assert message == "internal server error"
    assert "a bug" not in sent.body.decode()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "a bug in a handler" in str(errors[0].exc_info[1])
    access = [r for r in caplog.records if r.name == "app.access"]
    assert [r.fields["status"] for r in access] == [500]  # type: ignore[attr-defined]
