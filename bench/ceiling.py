"""The ceiling: the least an ASGI server can do per request (read the body, parse it with
orjson, send a constant reply). Nothing built on the same server can be faster.

    uvicorn bench.ceiling:app --loop uvloop --http httptools
"""

from __future__ import annotations

from typing import Any

import orjson

REPLY = b'{"ok":true}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(REPLY))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if body:
        orjson.loads(body)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": REPLY})
