"""The HTTP behaviour every codec shares (``app.codecs.endpoint``): methods, media types, body
limits and deadlines, unknown models, probes, clients that go away and bugs, each answered in
the codec's own envelope.

The tables are read from the codecs themselves (``tests.app.codecs.protocols``): a codec added
to ``app.codecs.CODECS`` is covered here with no edit. Body delivery is driven over ASGI
message by message (``tests.app.codecs.asgi``), as a server hands it over; the rest goes
through the test client. What each protocol refuses in a body is in ``test_strictness.py``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Router

from app.codecs import CODECS, probe_paths
from app.codecs.base import Call, Codec, Operation, Reply
from app.codecs.endpoint import routes
from app.config import Settings
from app.main import create_app
from tests.app.codecs.asgi import body_messages, exchange, started
from tests.app.codecs.protocols import error_message, filled, inference_operation, valid_body
from tests.support import MODEL_NAME

MAX_BODY_BYTES = 2048
BODY_TIMEOUT = 0.2
HANG_SECONDS = 10  # stops a request that is never answered: no claim about timing
JSON = [("content-type", "application/json")]
# Each codec's inference: the operation, its path addressed to the served model, and a body
# the model answers.
INFERENCE = [
    pytest.param(codec, operation, filled(codec, operation.path), id=codec.name)
    for codec in CODECS
    if (operation := inference_operation(codec)) is not None
]


def served_methods(codec: Codec, path: str) -> list[str]:
    """The methods a path of ``codec`` answers: its operations', and HEAD wherever GET is."""
    methods = {operation.method for operation in codec.operations if operation.path == path}
    return sorted(methods | ({"HEAD"} if "GET" in methods else set()))


PATHS = sorted(
    {
        (codec.name, operation.path): served_methods(codec, operation.path)
        for codec in CODECS
        for operation in codec.operations
    }.items()
)
BY_NAME = {codec.name: codec for codec in CODECS}
# Every GET of every codec, its health probes first among them.
GETS = [
    (codec, operation.path)
    for codec in CODECS
    for operation in sorted(codec.operations, key=lambda operation: not operation.probe)
    if operation.method == "GET"
]


@pytest.mark.parametrize(
    ("codec_and_path", "methods"), PATHS, ids=[f"{c} {p}" for (c, p), _ in PATHS]
)
def test_a_method_not_served_gets_405_with_allow_in_the_codecs_envelope(
    client: TestClient, codec_and_path: tuple[str, str], methods: list[str]
) -> None:
    codec = BY_NAME[codec_and_path[0]]
    path = filled(codec, codec_and_path[1])
    response = client.request("PUT", path, content=b"{}", headers=dict(JSON))
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == ", ".join(methods)
    assert "PUT" in error_message(codec, response.content)
    assert response.headers["x-request-id"]


def test_every_probe_of_every_codec_is_a_get() -> None:
    """So that HEAD below covers each of them."""
    probes = {(codec.name, path) for codec in CODECS for path in codec.probe_paths}
    gets = {(codec.name, path) for codec, path in GETS}
    assert probes
    assert probes <= gets


@pytest.mark.parametrize(("codec", "template"), GETS, ids=[f"{c.name} {p}" for c, p in GETS])
def test_head_answers_like_get_without_a_body(
    client: TestClient, codec: Codec, template: str
) -> None:
    """Monitors probe with HEAD: same status and headers as GET (its Content-Length too), no
    body."""
    path = filled(codec, template)
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == get.status_code == 200, head.text
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(get.content) > 0
    for headers in (get.headers, head.headers):
        del headers["x-request-id"]
    assert head.headers == get.headers


@pytest.fixture(scope="module")
def secured_client(trained_repository: Path) -> Any:
    settings = Settings(
        model_dir=trained_repository, model_name=MODEL_NAME, poll_interval=0, api_keys="k"
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("codec", CODECS, ids=[codec.name for codec in CODECS])
def test_every_probe_answers_without_a_key_and_the_edge_knows_it(
    secured_client: TestClient, codec: Codec
) -> None:
    for path in codec.probe_paths:
        assert secured_client.get(filled(codec, path)).status_code == 200, path
        assert path.encode() in probe_paths()


@pytest.mark.parametrize(("codec", "operation", "path"), INFERENCE)
def test_inference_needs_the_key_when_keys_are_configured(
    secured_client: TestClient, codec: Codec, operation: Operation, path: str
) -> None:
    body = valid_body(operation)
    refused = secured_client.post(path, content=body, headers=dict(JSON))
    assert refused.status_code == 401
    assert error_message(codec, refused.content)
    answered = secured_client.post(
        path, content=body, headers={**dict(JSON), "authorization": "Bearer k"}
    )
    assert answered.status_code == 200, answered.text


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
        async with started(app) as state, asyncio.timeout(HANG_SECONDS):
            return await exchange(app, state, method, path, headers, messages, **options)

    return asyncio.run(scenario())


@pytest.mark.parametrize(("codec", "operation", "path"), INFERENCE)
def test_a_body_in_several_chunks_is_read_whole(
    app: Any, codec: Codec, operation: Operation, path: str
) -> None:
    body = valid_body(operation)
    chunks = [body[i : i + 50] for i in range(0, len(body), 50)]
    sent = run(app, "POST", path, JSON, body_messages(*chunks))
    assert sent.status == 200, sent.body
    assert sent.receives == len(chunks)


@pytest.mark.parametrize(("codec", "operation", "path"), INFERENCE)
def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    app: Any, codec: Codec, operation: Operation, path: str
) -> None:
    headers = [*JSON, ("content-length", str(10**9))]
    sent = run(app, "POST", path, headers, body_messages(b"{"))
    assert sent.status == 413
    assert sent.receives == 0
    assert sent.headers["connection"] == "close"
    assert "exceeds the limit of 2048 bytes" in error_message(codec, sent.body)


@pytest.mark.parametrize(("codec", "operation", "path"), INFERENCE)
def test_a_streamed_body_over_the_limit_is_refused_as_soon_as_it_passes_it(
    app: Any, codec: Codec, operation: Operation, path: str
) -> None:
    chunks = [b"[" * 1000] * 50  # no content-length: a chunked body
    sent = run(app, "POST", path, JSON, body_messages(*chunks))
    assert sent.status == 413
    assert sent.receives == 3  # 3000 bytes passed the limit of 2048: nothing more was read
    assert sent.headers["connection"] == "close"
    assert "exceeds the limit" in error_message(codec, sent.body)


@pytest.mark.parametrize(("codec", "operation", "path"), INFERENCE)
def test_the_media_type_is_checked_before_the_body_is_read(
    app: Any, codec: Codec, operation: Operation, path: str
) -> None:
    headers = [("content-type", "text/csv"), ("content-length", str(10**9))]
    sent = run(app, "POST", path, headers, body_messages(b"a,b"))
    assert sent.status == 415
    assert sent.receives == 0
    assert "text/csv" in error_message(codec, sent.body)


@pytest.mark.parametrize(("codec", "operation", "path"), INFERENCE)
def test_a_model_no_one_serves_is_refused_before_the_body_is_read(
    app: Any, codec: Codec, operation: Operation, path: str
) -> None:
    """Where the path names the model; a path that names none serves the one model."""
    models = [f"{{{name}}}" for name, p in codec.path_parameters.items() if p.names == "model"]
    names_a_model = any(parameter in operation.path for parameter in models)
    other = path.replace(MODEL_NAME, "other", 1) if names_a_model else path
    headers = [*JSON, ("content-length", str(10**9))]
    sent = run(app, "POST", other, headers, body_messages(b"{"))
    if not names_a_model:
        assert sent.status == 413  # the served model's own limits apply: nothing to look up
        return
    assert sent.status == 404
    assert sent.receives == 0
    assert "'other'" in error_message(codec, sent.body)


@pytest.mark.parametrize("sent_first", [1, 0], ids=["after a first chunk", "before any byte"])
@pytest.mark.parametrize(("codec", "operation", "path"), INFERENCE)
def test_a_body_that_stops_arriving_gets_408_and_the_connection_closed(
    app: Any, codec: Codec, operation: Operation, path: str, sent_first: int
) -> None:
    first_chunk = {"type": "http.request", "body": valid_body(operation)[:10], "more_body": True}
    headers = [*JSON, ("content-length", "100")]
    sent = run(app, "POST", path, headers, [first_chunk][:sent_first], then_wait=True)
    assert sent.status == 408
    assert sent.headers["connection"] == "close"
    assert "did not arrive within 0.2 s" in error_message(codec, sent.body)


@pytest.mark.parametrize(("codec", "operation", "path"), INFERENCE)
def test_a_client_that_goes_away_gets_no_answer_and_one_info_line(
    app: Any, codec: Codec, operation: Operation, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    first_chunk = {"type": "http.request", "body": valid_body(operation)[:10], "more_body": True}
    with caplog.at_level(logging.INFO):
        sent = run(app, "POST", path, JSON, [first_chunk])
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
    assert error_message(codec, sent.body) == "internal server error"
    assert "a bug" not in sent.body.decode()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "a bug in a handler" in str(errors[0].exc_info[1])
    access = [r for r in caplog.records if r.name == "app.access"]
    assert [r.fields["status"] for r in access] == [500]  # type: ignore[attr-defined]
