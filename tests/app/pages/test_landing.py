"""``GET /``: a page naming the served model and linking everything; JSON for JSON clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.artifact import read_artifact
from tests.app.pages.conftest import serving
from tests.app.pages.html import read_page
from tests.robustness.versions import copy_version
from tests.support import MODEL_NAME

LINKED = {
    "/docs",
    "/redoc",
    "/openapi.json",
    "/metadata",
    f"/models/{MODEL_NAME}/card",
    "/health",
    "/health/live",
    "/health/ready",
    "/metrics",
}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_the_landing_page_names_the_served_model_and_every_link_resolves(
    client: TestClient,
) -> None:
    response = client.get("/", headers={"accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["vary"] == "Accept"
    page = read_page(response.text)
    assert "Ready: serving multilabel version 1" in page.text
    links = {a.attributes["href"] for a in page.all("a")}
    assert links >= LINKED
    for link in links:
        assert client.get(link).status_code == 200, link


def test_a_json_client_gets_the_same_index_as_json(
    client: TestClient, trained_version: Path
) -> None:
    response = client.get("/", headers={"accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    index = response.json()
    assert index["status"] == "ready"
    assert index["reason"] is None
    assert (index["model"]["name"], index["model"]["version"]) == (MODEL_NAME, 1)
    created_at = read_artifact(trained_version).created_at
    assert index["model"]["created_at"] == created_at.isoformat(timespec="seconds")
    assert index["model"]["versions"] == [
        {"version": 1, "card": f"/models/{MODEL_NAME}/versions/1/card"}
    ]
    assert set(index["links"].values()) == LINKED
    assert index["service"]["title"] == client.get("/openapi.json").json()["info"]["title"]


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "text/html"),
        ("*/*", "text/html"),
        (BROWSER_ACCEPT, "text/html"),
        ("application/json", "application/json"),
        ("application/json, text/html;q=0.5", "application/json"),
        ("text/html;q=0.5, application/json;q=0.8", "application/json"),
        ("text/html, application/json", "text/html"),
        ("application/json;q=0.5, text/html;q=0.9", "text/html"),
        ("application/json;q=nonsense", "text/html"),
        ("APPLICATION/JSON", "application/json"),
    ],
)
def test_the_index_format_follows_the_accept_header(
    client: TestClient, accept: str | None, media_type: str
) -> None:
    headers = {} if accept is None else {"accept": accept}
    response = client.get("/", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)


def test_without_a_model_the_landing_page_says_not_ready_and_why(tmp_path: Path) -> None:
    with serving(tmp_path) as client:
        page = read_page(client.get("/").text)
        index = client.get("/", headers={"accept": "application/json"}).json()
        docs = client.get("/docs")
    reason = "no version of model 'multilabel' in the repository"
    assert f"Not ready: {reason}." in page.text
    assert {"/docs", "/health", "/metrics"} <= {a.attributes["href"] for a in page.all("a")}
    assert (index["status"], index["reason"], index["model"]) == ("not_ready", reason, None)
    assert docs.status_code == 200


def test_each_loaded_version_gets_a_link_to_its_card(repository: Path) -> None:
    copy_version(repository, 1, 2)
    with serving(repository) as client:
        page = read_page(client.get("/").text)
    assert "Ready: serving multilabel version 2" in page.text
    links = {a.attributes["href"] for a in page.all("a")}
    assert {f"/models/{MODEL_NAME}/versions/{v}/card" for v in (1, 2)} <= links
