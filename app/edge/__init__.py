"""The HTTP edge: uvicorn, with the limits that hold against hostile clients.

``serve`` (``app.edge.server``) runs the service with uvicorn, giving it ``PROTOCOL``: the
import string of ``Protocol``, which is ``EdgeProtocol`` (``app.edge.protocol``: deadlines,
header limits, the connection cap, chunked-body 400s, the write deadline) when its contract
with uvicorn's internals holds (``app.edge.contract``), and uvicorn's stock httptools protocol,
with a warning, when it does not. ``uvicorn app.main:app --http app.edge:Protocol`` gets the
same choice.
"""

from __future__ import annotations

from typing import Any

PROTOCOL = "app.edge:Protocol"


def __getattr__(name: str) -> Any:
    """``Protocol``, chosen on first access (in each worker process, as uvicorn imports it)."""
    if name == "Protocol":
        from app.edge.contract import select_protocol

        protocol = select_protocol()
        globals()["Protocol"] = protocol
        return protocol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
