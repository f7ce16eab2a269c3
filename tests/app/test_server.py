"""The server layer's contract with uvicorn, its configuration, and its probe allowlist.

Its behaviour against hostile clients is tested on real server processes in
``tests/robustness/test_hostile_sockets.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
import yaml
from fastapi.testclient import TestClient
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.config import Settings
from app.main import create_app
from app.server import PROBE_PATHS, PROTOCOL, EdgeProtocol
from tests.support import REPO_ROOT

# What EdgeProtocol overrides or calls, with uvicorn 0.54's signatures.
UVICORN_SIGNATURES = {
    "__init__": "(self, config: 'Config', server_state: 'ServerState', "
    "app_state: 'dict[str, Any]', _loop: 'asyncio.AbstractEventLoop | None' = None) -> 'None'",
    "connection_made": "(self, transport: 'asyncio.Transport') -> 'None'",
    "connection_lost": "(self, exc: 'Exception | None') -> 'None'",
    "data_received": "(self, data: 'bytes') -> 'None'",
    "on_message_begin": "(self) -> 'None'",
    "on_header": "(self, name: 'bytes', value: 'bytes') -> 'None'",
    "on_headers_complete": "(self) -> 'None'",
    "on_message_complete": "(self) -> 'None'",
    "timeout_keep_alive_handler": "(self) -> 'None'",
}
# uvicorn code that EdgeProtocol re-implements (data_received, on_header) or whose exact
# behaviour it builds on: on_response_complete arms the keep-alive timer that EdgeProtocol's
# timeout_keep_alive_handler answers; on_headers_complete creates the request's cycle (which
# EdgeProtocol refuses before, and closes after, for the connection cap).
# When uvicorn changes one of them: re-read EdgeProtocol against the new code, then update.
UVICORN_SOURCES = {
    "data_received": "010a7ae59a5d3b1a",
    "on_header": "65d62c044f61fdbd",
    "on_response_complete": "64e254f28e389e76",
    "on_headers_complete": "1ea8589acfad92d8",
}


@pytest.mark.parametrize(("method", "signature"), UVICORN_SIGNATURES.items())
def test_the_uvicorn_methods_edge_protocol_builds_on_keep_their_signature(
    method: str, signature: str
) -> None:
    assert str(inspect.signature(getattr(HttpToolsProtocol, method))) == signature


@pytest.mark.parametrize(("method", "digest"), UVICORN_SOURCES.items())
def test_the_uvicorn_code_edge_protocol_relies_on_is_unchanged(method: str, digest: str) -> None:
    source = inspect.getsource(getattr(HttpToolsProtocol, method))
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, (
        f"uvicorn's HttpToolsProtocol.{method} changed: check app/server.py against it"
    )


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


def test_uvicorn_loads_edge_protocol_from_its_import_string() -> None:
    """Worker processes import the protocol by this string (uvicorn's ``http=``)."""
    assert import_from_string(PROTOCOL) is EdgeProtocol


def probe_paths_in(document: Any) -> Iterator[str]:
    """Every ``httpGet.path`` of a Kubernetes object (liveness, readiness, startup probes)."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "httpGet":
                yield value["path"]
            else:
                yield from probe_paths_in(value)
    elif isinstance(document, list):
        for item in document:
            yield from probe_paths_in(item)


DEPLOYED_PROBES = sorted(
    {
        path
        for manifest in sorted((REPO_ROOT / "deploy").rglob("*.yaml"))
        for document in yaml.safe_load_all(manifest.read_text())
        for path in probe_paths_in(document)
    }
)


def test_the_manifests_have_probes() -> None:
    assert len(DEPLOYED_PROBES) >= 2, DEPLOYED_PROBES


@pytest.mark.parametrize("path", DEPLOYED_PROBES)
def test_every_deployed_probe_is_answered_past_the_connection_cap(path: str) -> None:
    assert path.encode() in PROBE_PATHS


@pytest.mark.parametrize("path", sorted(path.decode() for path in PROBE_PATHS))
def test_every_probe_path_is_answered_by_the_app(client: TestClient, path: str) -> None:
    """A probe path that no route answers would keep a 404 alive past the cap."""
    assert client.get(path).status_code == 200
