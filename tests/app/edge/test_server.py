"""How the service runs its edge: the protocol uvicorn loads by import string, the probe
allowlist against the deployed manifests, and stock uvicorn, with a warning, when the edge's
contract does not hold (on a real server process)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from uvicorn.importer import import_from_string

from app.edge import PROTOCOL
from app.edge.contract import UVICORN_VERSION
from app.edge.probes import PROBE_PATHS
from app.edge.protocol import EdgeProtocol
from tests.robustness.servers import serving
from tests.robustness.sockets import answered, connect, request_head
from tests.support import REFERENCE_INPUTS, REPO_ROOT


def test_uvicorn_loads_the_edge_protocol_from_its_import_string() -> None:
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


# uvicorn as another version would be: what the contract names has changed.
ANOTHER_UVICORN = (
    "import runpy, uvicorn; uvicorn.__version__ = '0.99.0'; "
    "runpy.run_module('app', run_name='__main__')"
)


def test_when_the_contract_breaks_stock_uvicorn_serves_and_says_so(
    trained_repository: Path, tmp_path: Path
) -> None:
    with serving(
        trained_repository,
        tmp_path / "server.log",
        command=[sys.executable, "-c", ANOTHER_UVICORN],
        log_format="json",
    ) as server:
        predicted = httpx.post(
            server.base_url + "/predict", json={"instances": REFERENCE_INPUTS}, timeout=10
        )
        connection = connect(server)
        try:
            # A head over max_header_bytes: EdgeProtocol answers 431, stock uvicorn serves it.
            oversized = answered(
                connection, request_head("GET", "/health/live", headers=[("X-Big", "a" * 20_000)])
            )
        finally:
            connection.close()
        log = server.log()

    assert predicted.status_code == 200
    assert len(predicted.json()["predictions"]) == len(REFERENCE_INPUTS)
    assert oversized.status == 200
    assert f"uvicorn is 0.99.0, not {UVICORN_VERSION}" in log
    assert "serving with stock uvicorn, without the header deadline" in log
