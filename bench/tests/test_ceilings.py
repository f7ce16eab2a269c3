"""The two ceilings, called as ASGI apps: each answers its constant to the body it is made
for, and fails on any other, so a workload sent to the wrong ceiling cannot look fast."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from bench import ceiling, ceiling_binary
from bench.bodies import build_body
from bench.workloads import NATIVE, NATIVE_COLUMNS, V1, V2_BINARY, V2_JSON, Form


@pytest.fixture
def json_ceiling() -> Iterator[TestClient]:
    with TestClient(ceiling.app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def binary_ceiling() -> Iterator[TestClient]:
    with TestClient(ceiling_binary.app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("form", [NATIVE, NATIVE_COLUMNS, V2_JSON, V1], ids=lambda f: f.key)
@pytest.mark.parametrize("rows", [1, 1000])
def test_the_json_ceiling_answers_its_constant_to_json_bodies(
    json_ceiling: TestClient, pool: list[list[int]], form: Form, rows: int
) -> None:
    body = build_body(form, pool[:rows])
    response = json_ceiling.post(form.path, content=body.content, headers=body.headers())
    assert response.status_code == 200
    assert response.content == ceiling.REPLY


def test_the_json_ceiling_fails_on_a_binary_body(
    json_ceiling: TestClient, pool: list[list[int]]
) -> None:
    body = build_body(V2_BINARY, pool[:1000])
    response = json_ceiling.post(V2_BINARY.path, content=body.content, headers=body.headers())
    assert response.status_code == 500


@pytest.mark.parametrize("rows", [1, 1000])
def test_the_binary_ceiling_answers_its_constant_to_a_triton_body(
    binary_ceiling: TestClient, pool: list[list[int]], rows: int
) -> None:
    body = build_body(V2_BINARY, pool[:rows])
    response = binary_ceiling.post(V2_BINARY.path, content=body.content, headers=body.headers())
    assert response.status_code == 200
    assert response.content == ceiling.REPLY


@pytest.mark.parametrize(
    "drop", ["inference-header-content-length", "tensor bytes"], ids=["no header", "short body"]
)
def test_the_binary_ceiling_fails_on_a_body_it_cannot_view(
    binary_ceiling: TestClient, pool: list[list[int]], drop: str
) -> None:
    body = build_body(V2_BINARY, pool[:1000])
    headers = body.headers()
    content = body.content
    if drop == "tensor bytes":
        content = content[:-4]
    else:
        del headers["Inference-Header-Content-Length"]
    response = binary_ceiling.post(V2_BINARY.path, content=content, headers=headers)
    assert response.status_code == 500
