"""Driving the application over ASGI as a server does, message by message.

A test client hands the application a whole body at once; a server hands it over in chunks,
late, or reports that the client went away. These helpers play the server's part: they run
the lifespan (the application's state comes from it) and send one request whose body
messages the test chooses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message

Receive = Callable[[], Awaitable[Message]]


@asynccontextmanager
async def started(app: ASGIApp) -> AsyncIterator[dict[str, Any]]:
    """Run the application's lifespan; yield the state each request's scope carries."""
    state: dict[str, Any] = {}
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    message = await outbox.get()
    assert message["type"] == "lifespan.startup.complete", message
    try:
        yield state
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


@dataclass
class Exchange:
    """What the application sent back, and how many times it asked for the body."""

    messages: list[Message] = field(default_factory=list)
    receives: int = 0

    @property
    def status(self) -> int | None:
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        return int(starts[0]["status"]) if starts else None

    @property
    def headers(self) -> dict[str, str]:
        (start,) = [m for m in self.messages if m["type"] == "http.response.start"]
        return {name.decode(): value.decode() for name, value in start["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )


def body_messages(*chunks: bytes) -> list[Message]:
    """A body in these chunks, as a server hands it over."""
    return [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]


async def exchange(
    app: ASGIApp,
    state: dict[str, Any],
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]],
    messages: Sequence[Message],
    *,
    then_wait: bool = False,
) -> Exchange:
    """One request: its body messages in order; after the last, a disconnect, or (with
    ``then_wait``) nothing ever again, as a client that stopped sending."""
    result = Exchange()
    pending = list(messages)

    async def receive() -> Message:
        result.receives += 1
        if pending:
            return pending.pop(0)
        if then_wait:
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        result.messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": dict(state),
    }
    await app(scope, receive, send)
    return result
