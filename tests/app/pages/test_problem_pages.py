"""A browser that opens a page it may not see (401) or a URL that serves nothing (404) gets a
small page that says what to do; API clients keep the native JSON error envelope."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.app.pages.conftest import serving
from tests.app.pages.html import read_page
from tests.app.pages.test_landing import BROWSER_ACCEPT
from tests.support import MODEL_NAME

KEY = "a-secret-key"
BROWSER = {"accept": BROWSER_ACCEPT}
PROTECTED_PAGES = [
    f"/models/{MODEL_NAME}/card",
    f"/models/{MODEL_NAME}/versions/1/card",
    "/metadata",
    "/metrics",
]
_LIST_ITEM = re.compile(r"<li>(.*?)</li>", re.DOTALL)
_HREF = re.compile(r'href="([^"]+)"')
API_CLIENTS = {
    "no Accept": {},
    "any type": {"accept": "*/*"},
    "JSON": {"accept": "application/json"},
    "JSON before HTML": {"accept": "application/json, text/html;q=0.5"},
}


@pytest.fixture(scope="module")
def keyed_client(trained_repository: Path) -> Iterator[TestClient]:
    with serving(trained_repository, api_keys=KEY) as client:
        yield client


@pytest.mark.parametrize("path", PROTECTED_PAGES)
def test_a_browser_without_a_key_gets_a_page_saying_how_to_send_one(
    keyed_client: TestClient, path: str
) -> None:
    response = keyed_client.get(path, headers=BROWSER)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["vary"] == "Accept"
    assert "script-src" not in response.headers["content-security-policy"]
    assert "<h1>API key needed</h1>" in response.text
    command = f"curl -H 'Authorization: Bearer <your key>' 'http://testserver{path}'"
    shown = re.search(r"<pre><code>(.*?)</code></pre>", response.text)
    assert shown is not None
    assert html.unescape(shown.group(1)) == command
    assert "/docs" in {a.attributes["href"] for a in read_page(response.text).all("a")}
    assert KEY not in response.text


@pytest.mark.parametrize("headers", API_CLIENTS.values(), ids=API_CLIENTS)
@pytest.mark.parametrize("path", PROTECTED_PAGES)
def test_an_api_client_without_a_key_keeps_the_json_envelope(
    keyed_client: TestClient, path: str, headers: dict[str, str]
) -> None:
    response = keyed_client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_browser_sending_a_wrong_key_is_told_it_was_refused(keyed_client: TestClient) -> None:
    headers = {**BROWSER, "authorization": "Bearer not-the-key"}
    response = keyed_client.get(f"/models/{MODEL_NAME}/card", headers=headers)
    assert response.status_code == 401
    assert "refused: the API key is not valid" in read_page(response.text).text


def test_with_the_key_the_browser_gets_the_card(keyed_client: TestClient) -> None:
    headers = {**BROWSER, "authorization": f"Bearer {KEY}"}
    response = keyed_client.get(f"/models/{MODEL_NAME}/card", headers=headers)
    assert response.status_code == 200
    assert "<title>Model card: multilabel version 1</title>" in response.text


def test_the_landing_page_marks_exactly_the_links_that_need_a_key(
    keyed_client: TestClient,
) -> None:
    landing = keyed_client.get("/", headers=BROWSER).text
    links = [(link, item) for item in _LIST_ITEM.findall(landing) for link in _HREF.findall(item)]
    assert len(links) >= 9
    for link, item in links:
        status = keyed_client.get(html.unescape(link), headers=BROWSER).status_code
        assert status == (401 if "(API key)" in item else 200), link
    assert "a browser does not send by itself" in read_page(landing).text


def test_without_keys_the_landing_page_marks_nothing(client: TestClient) -> None:
    assert "(API key)" not in client.get("/", headers=BROWSER).text


@pytest.mark.parametrize("path", ["/nothing-here", f"/models/{MODEL_NAME}", "/doc"])
def test_a_browser_opening_a_url_that_serves_nothing_gets_a_404_page(
    client: TestClient, path: str
) -> None:
    response = client.get(path, headers=BROWSER)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in response.text
    page = read_page(response.text)
    assert f"Nothing is served at {path}." in page.text
    assert {"/", "/docs"} <= {a.attributes["href"] for a in page.all("a")}


@pytest.mark.parametrize("headers", API_CLIENTS.values(), ids=API_CLIENTS)
def test_an_api_client_asking_for_nothing_keeps_the_json_envelope(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.get("/nothing-here", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_only_a_get_gets_a_page(client: TestClient) -> None:
    response = client.post("/nothing-here", headers=BROWSER)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_path_is_shown_as_text_on_the_404_page(client: TestClient) -> None:
    response = client.get("/<script>alert(1)</script>", headers=BROWSER)
    assert response.status_code == 404
    assert "<script>" not in response.text
    assert "Nothing is served at /<script>alert(1)</script>." in read_page(response.text).text
