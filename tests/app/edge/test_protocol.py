"""``EdgeProtocol`` as uvicorn builds it. Its behaviour against hostile clients is tested on
real server processes in ``tests/robustness/test_hostile_sockets.py``."""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.config import Settings
from app.edge.protocol import EdgeProtocol
from app.main import create_app


def test_edge_protocol_is_uvicorns_httptools_protocol() -> None:
    assert issubclass(EdgeProtocol, HttpToolsProtocol)


def test_edge_protocol_adds_nothing_to_uvicorns_instance_dict(settings: Settings) -> None:
    """Its own state lives in slots: a larger instance dict slows uvicorn's attribute reads."""
    config = uvicorn.Config(create_app(settings))
    loop = asyncio.new_event_loop()
    try:
        uvicorns = HttpToolsProtocol(config, ServerState(), {}, _loop=loop)
        ours = EdgeProtocol(config, ServerState(), {}, _loop=loop)
    finally:
        loop.close()
    assert vars(ours).keys() == vars(uvicorns).keys()
