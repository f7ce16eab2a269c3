"""The whole API under a root path, as two deployments set it up:

- ``uvicorn app.main:app --root-path /prefix``, behind a proxy that strips the prefix
  (requests arrive as ``/...``: what uvicorn's root path means);
- ``python -m app`` with ``MULTILABEL_ROOT_PATH=/prefix``, behind a proxy that strips the
  prefix and behind one that forwards it (requests arrive as ``/prefix/...``).

Every route and every error envelope must answer as the same application without a root path
does (served in-process here, on the same model): same status, same body, same protocol
headers. Only what names the prefix may differ, and must name it: the OpenAPI document's
server URL, and the links of the HTML pages.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.support import MODEL_NAME, REFERENCE_INPUTS, ServerProcess, free_port, running_server

PREFIX = "/prefix"
COMPARED_HEADERS = ("content-type", "allow", "retry-after", "www-authenticate")
JSON = {"content-type": "application/json"}
V2_BODY = {
    "inputs": [{"name": "features", "shape": [2, 10], "datatype": "FP32", "data": REFERENCE_INPUTS}]
}


def binary_request() -> tuple[bytes, dict[str, str]]:
    """Two rows as tritonclient sends them by default: binary tensors both ways."""
    features = triton.InferInput("features", [2, 10], "FP32")
    features.set_data_from_numpy(np.asarray(REFERENCE_INPUTS, dtype=np.float32))
    body, length = triton.InferenceServerClient.generate_request_body([features])
    return body, {"Inference-Header-Content-Length": str(length)}


BINARY_BODY, BINARY_HEADERS = binary_request()


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    compare_body: bool = True  # False where the body changes between calls (metrics)

    @property
    def name(self) -> str:
        shown = f" {self.body[:20]!r}" if self.body else ""
        return f"{self.method} {self.path}{shown}"


def post(path: str, document: Any, headers: dict[str, str] | None = None) -> Call:
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    return Call("POST", path, body, headers if headers is not None else JSON)


INFER = f"/v2/models/{MODEL_NAME}/infer"
TF_PREDICT = f"/v1/models/{MODEL_NAME}:predict"
CALLS = [
    # control plane
    Call("GET", "/health"),
    Call("GET", "/health/live"),
    Call("GET", "/health/ready"),
    Call("GET", "/metadata"),
    Call("GET", "/metrics", compare_body=False),
    Call("GET", "/no/such/path"),
    Call("DELETE", "/health"),
    # native
    post("/predict", {"instances": REFERENCE_INPUTS}),
    post("/predict", {"instances": REFERENCE_INPUTS, "format": "columns"}),
    post("/predict", b'{"instances": [[1, 2'),
    post("/predict", {"instances": [[1, 2]]}),
    post("/predict", {"instances": REFERENCE_INPUTS}, {"content-type": "text/plain"}),
    Call("GET", "/predict"),
    # Open Inference Protocol
    Call("GET", "/v2"),
    Call("GET", "/v2/health/live"),
    Call("GET", "/v2/health/ready"),
    Call("GET", f"/v2/models/{MODEL_NAME}"),
    Call("GET", f"/v2/models/{MODEL_NAME}/versions/1"),
    Call("GET", f"/v2/models/{MODEL_NAME}/ready"),
    post(INFER, V2_BODY),
    post(f"/v2/models/{MODEL_NAME}/versions/1/infer", V2_BODY),
    post(INFER, BINARY_BODY, BINARY_HEADERS),
    post("/v2/models/other/infer", V2_BODY),
    post(INFER, {"inputs": []}),
    post(INFER, V2_BODY, {"content-type": "text/plain"}),
    Call("GET", INFER),
    # TensorFlow Serving
    Call("GET", f"/v1/models/{MODEL_NAME}"),
    Call("GET", f"/v1/models/{MODEL_NAME}/metadata"),
    post(TF_PREDICT, {"instances": REFERENCE_INPUTS}),
    post(TF_PREDICT, {"instances": REFERENCE_INPUTS, "signature_name": "labels"}),
    post("/v1/models/other:predict", {"instances": REFERENCE_INPUTS}),
    post(TF_PREDICT, {"instances": []}),
    post(TF_PREDICT, {"instances": REFERENCE_INPUTS}, {"content-type": "text/plain"}),
    Call("GET", TF_PREDICT),
]
UVICORN_ROOT_PATH = "uvicorn --root-path, proxy strips the prefix"
SETTING_STRIPPED = "MULTILABEL_ROOT_PATH, proxy strips the prefix"
SETTING_FORWARDED = "MULTILABEL_ROOT_PATH, proxy forwards the prefix"
# Each deployment: which server, and the prefix its requests arrive with.
DEPLOYMENTS = {
    UVICORN_ROOT_PATH: ("uvicorn", ""),
    SETTING_STRIPPED: ("setting", ""),
    SETTING_FORWARDED: ("setting", PREFIX),
}


@pytest.fixture(scope="module")
def servers(
    trained_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    """The two ways to run under a prefix, each a real server process."""
    env = {"MULTILABEL_MODEL_DIR": str(trained_repository), "MULTILABEL_POLL_INTERVAL": "0"}
    logs = tmp_path_factory.mktemp("root-path")
    port = free_port()
    uvicorn = [
        *(sys.executable, "-m", "uvicorn", "app.main:app", "--root-path", PREFIX),
        *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
    ]
    with (
        running_server(
            env, logs / "uvicorn.log", command=uvicorn, port=port, ready_path="/health/ready"
        ) as with_uvicorn,
        running_server(
            {**env, "MULTILABEL_ROOT_PATH": PREFIX},
            logs / "setting.log",
            ready_path=PREFIX + "/health/ready",
        ) as with_setting,
    ):
        yield {"uvicorn": with_uvicorn, "setting": with_setting}


def url(servers: dict[str, ServerProcess], deployment: str, path: str) -> str:
    server, prefix = DEPLOYMENTS[deployment]
    return servers[server].base_url + prefix + path


@pytest.fixture(scope="module")
def reference(trained_repository: Path) -> Iterator[TestClient]:
    """The same application without a root path."""
    settings = Settings(model_dir=trained_repository, model_name=MODEL_NAME, poll_interval=0)
    with TestClient(create_app(settings)) as client:
        yield client


def headers_of(response: Any) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in COMPARED_HEADERS}


@pytest.mark.parametrize("call", CALLS, ids=[call.name for call in CALLS])
@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_every_route_and_error_answers_as_without_a_root_path(
    servers: dict[str, ServerProcess], reference: TestClient, call: Call, deployment: str
) -> None:
    expected = reference.request(call.method, call.path, content=call.body, headers=call.headers)
    answered = httpx.request(
        call.method, url(servers, deployment, call.path), content=call.body, headers=call.headers
    )
    assert answered.status_code == expected.status_code, answered.text[:300]
    assert headers_of(answered) == headers_of(expected)
    if call.compare_body:
        assert answered.content == expected.content


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_the_openapi_document_names_the_root_path_and_nothing_else_changes(
    servers: dict[str, ServerProcess], reference: TestClient, deployment: str
) -> None:
    answered = httpx.get(url(servers, deployment, "/openapi.json"))
    assert answered.status_code == 200
    document = answered.json()
    assert document.pop("servers") == [{"url": PREFIX}]
    assert document == reference.get("/openapi.json").json()


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
@pytest.mark.parametrize("page", ["/docs", "/"])
def test_pages_link_under_the_root_path(
    servers: dict[str, ServerProcess], deployment: str, page: str
) -> None:
    answered = httpx.get(url(servers, deployment, page))
    assert answered.status_code == 200
    assert f'"{PREFIX}/' in answered.text
    assert '"/static/' not in answered.text
