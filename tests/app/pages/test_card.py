"""The model card in the browser: the served version's card, each version's, and its plots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.artifact import version_path
from tests.app.pages.conftest import serving, wait_until_served
from tests.app.pages.html import read_page
from tests.robustness.versions import copy_version, read_metadata, update_hash, write_metadata
from tests.support import MODEL_NAME

CARD = "model_card.md"
SERVED_CARD = f"/models/{MODEL_NAME}/card"
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def card_url(version: int) -> str:
    return f"/models/{MODEL_NAME}/versions/{version}/card"


def file_url(version: int, name: str) -> str:
    return f"/models/{MODEL_NAME}/versions/{version}/files/{name}"


def plots_of(version: Path) -> list[str]:
    """The images the card of a version shows, as its markdown names them."""
    return _IMAGE.findall((version / CARD).read_text())


def publish_with_card(root: Path, version: int, card: str) -> Path:
    """A valid copy of version 1 as ``version``, with ``card`` as its (hashed) model card."""
    directory = copy_version(root, 1, version)
    (directory / CARD).write_text(card)
    update_hash(directory, CARD)
    return directory


def test_the_served_card_shows_the_markdown_as_html_with_every_plot(
    client: TestClient, trained_version: Path
) -> None:
    response = client.get(SERVED_CARD)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]
    page = read_page(response.text)
    markdown = (trained_version / CARD).read_text()
    assert len(page.all("h1")) == 1
    assert "Model card: multilabel" in page.text
    assert len(page.all("table")) == markdown.count("\n| --- |")
    plots = plots_of(trained_version)
    assert len(plots) >= 4  # the default model is counted, not trained: no loss curve
    assert [img.attributes["src"] for img in page.all("img")] == [file_url(1, p) for p in plots]
    for plot in plots:
        image = client.get(file_url(1, plot))
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        assert image.headers["x-content-type-options"] == "nosniff"
        assert image.content == (trained_version / plot).read_bytes()


def test_the_served_card_follows_hot_reload_and_each_version_keeps_its_own(
    repository: Path,
) -> None:
    original = (version_path(repository, MODEL_NAME, 1) / CARD).read_text()
    with serving(repository, poll_interval=0.1) as client:
        publish_with_card(repository, 2, original + "\nRetrained for version two.\n")
        wait_until_served(client, 2)
        served = client.get(SERVED_CARD)
        second = client.get(card_url(2))
        first = client.get(card_url(1))
    assert "Retrained for version two." in served.text
    assert {img.attributes["src"] for img in read_page(served.text).all("img")} == {
        file_url(2, plot) for plot in plots_of(version_path(repository, MODEL_NAME, 2))
    }
    assert second.text == served.text
    assert first.status_code == 200
    assert "Retrained for version two." not in first.text
    assert "loaded, but not the newest" in read_page(first.text).text


def test_a_version_published_without_a_card_gets_a_clear_404_page(repository: Path) -> None:
    directory = copy_version(repository, 1, 2)
    (directory / CARD).unlink()
    metadata = read_metadata(directory)
    del metadata["files"][CARD]
    write_metadata(directory, metadata)
    with serving(repository) as client:
        response = client.get(SERVED_CARD)
        first = client.get(card_url(1))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Version 2 of 'multilabel' was published without a model card." in (
        read_page(response.text).text
    )
    assert first.status_code == 200


NOT_SERVED = [
    pytest.param(file_url(1, "model.onnx"), "has no image named", id="the-network"),
    pytest.param(file_url(1, "metadata.json"), "has no image named", id="the-metadata"),
    pytest.param(file_url(1, CARD), "has no image named", id="the-card-source"),
    pytest.param(file_url(1, "nothing.png"), "has no image named", id="an-unlisted-name"),
    pytest.param(file_url(1, "..%2F1%2Froc_curves.png"), "has no image named", id="dot-dot"),
    pytest.param(file_url(1, "%2Fetc%2Fpasswd"), "has no image named", id="absolute-path"),
    pytest.param(file_url(7, "roc_curves.png"), "no loaded version '7'", id="unknown-version"),
    pytest.param(file_url(1, "x").replace("/1/", "/one/"), "no loaded version 'one'", id="word"),
    pytest.param(card_url(3), "no loaded version '3' (loaded: 1)", id="card-of-unknown-version"),
    pytest.param("/models/other/card", "serves 'multilabel' only", id="another-model"),
]


@pytest.mark.parametrize(("path", "message"), NOT_SERVED)
def test_only_the_images_a_loaded_version_lists_are_served(
    client: TestClient, path: str, message: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert message in read_page(response.text).text


def test_an_image_added_to_the_version_directory_later_is_not_served(repository: Path) -> None:
    with serving(repository) as client:
        directory = version_path(repository, MODEL_NAME, 1)
        (directory / "added.png").write_bytes((directory / "roc_curves.png").read_bytes())
        response = client.get(file_url(1, "added.png"))
    assert response.status_code == 404


@pytest.mark.parametrize("changed", ["roc_curves.png", CARD])
def test_a_file_changed_since_publishing_is_not_shown(repository: Path, changed: str) -> None:
    url = file_url(1, changed) if changed.endswith(".png") else card_url(1)
    with serving(repository) as client:
        path = version_path(repository, MODEL_NAME, 1) / changed
        path.write_bytes(path.read_bytes() + b"\n")
        response = client.get(url)
    assert response.status_code == 404
    assert f"{changed} of version 1 is no longer as published" in read_page(response.text).text


def test_without_a_loaded_model_the_card_says_the_service_is_not_ready_and_why(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as client:
        response = client.get(SERVED_CARD)
    assert response.status_code == 503
    assert "no version of model 'multilabel' in the repository" in read_page(response.text).text


HOSTILE_CARDS = [
    pytest.param("<script>alert(1)</script>", id="script-element"),
    pytest.param('<img src="x" onerror="alert(1)">', id="inline-html-handler"),
    pytest.param("[click](javascript:alert(1))", id="javascript-link"),
    pytest.param("![plot](https://elsewhere.example/p.png)", id="image-from-another-host"),
    pytest.param("![plot](//elsewhere.example/p.png)", id="scheme-relative-image"),
    pytest.param("<https://elsewhere.example/>", id="autolink-to-another-host"),
    pytest.param("![plot](../1/roc_curves.png)", id="image-of-another-version"),
    pytest.param("![plot](/etc/passwd)", id="absolute-path-image"),
    pytest.param("![plot](data:image/png;base64,iVBORw0KGgo=)", id="data-url-image"),
    pytest.param("[data](metadata.json)", id="link-to-a-file-that-is-not-served"),
    pytest.param("![x](roc_curves.png 'a title\" onload=\"alert(1)')", id="attribute-injection"),
]


@pytest.mark.parametrize("hostile", HOSTILE_CARDS)
def test_a_card_can_neither_run_script_nor_reference_anything_but_its_own_plots(
    repository: Path, hostile: str
) -> None:
    publish_with_card(repository, 2, f"# Card\n\n{hostile}\n\n![ok](roc_curves.png)\n")
    with serving(repository) as client:
        page = read_page(client.get(card_url(2)).text)
    assert page.all("script") == []
    assert not any(
        name.startswith("on") for element in page.elements for name in element.attributes
    )
    references = [url for url in page.urls() if not url.startswith("#")]
    assert all(url.startswith("/") and not url.startswith("//") for url in references)
    images = [img.attributes["src"] for img in page.all("img")]
    assert file_url(2, "roc_curves.png") in images
    assert set(images) <= {file_url(2, "roc_curves.png")}


def test_raw_html_in_a_card_is_shown_as_text(repository: Path) -> None:
    publish_with_card(repository, 2, "Before <script>alert(1)</script> after\n")
    with serving(repository) as client:
        page = read_page(client.get(card_url(2)).text)
    assert "Before <script>alert(1)</script> after" in page.text


def test_links_to_sections_and_to_the_versions_plots_are_kept(repository: Path) -> None:
    card = "## Plots\n\nSee [the ROC curves](roc_curves.png) and [above](#plots).\n"
    publish_with_card(repository, 2, card)
    with serving(repository) as client:
        page = read_page(client.get(card_url(2)).text)
    links = [a.attributes["href"] for a in page.all("a")]
    assert file_url(2, "roc_curves.png") in links
    assert "#plots" in links
