"""``/docs`` and ``/redoc``: FastAPI's pages, with every asset served by the service itself."""

from __future__ import annotations

import base64
import hashlib

import pytest
from fastapi.testclient import TestClient

from tests.app.pages.html import read_page

ASSET_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_the_service(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    urls = read_page(response.text).urls()
    assert "/openapi.json" in urls
    assert len(urls) >= 3  # a bundle, a favicon and the document, at least
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert asset.headers["content-type"].startswith(ASSET_TYPES[suffix]), url


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_run_only_their_own_scripts(client: TestClient, path: str) -> None:
    response = client.get(path)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    script_sources = policy["script-src"].split()
    inline_hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in read_page(response.text).inline_scripts
    }
    assert set(script_sources) == {"'self'", *inline_hashes}
    assert policy["connect-src"] == "'self'"
    assert policy["default-src"] == "'none'"


def test_swagger_ui_asks_no_public_validator(client: TestClient) -> None:
    (start_up,) = read_page(client.get("/docs").text).inline_scripts
    assert '"validatorUrl": null' in start_up
