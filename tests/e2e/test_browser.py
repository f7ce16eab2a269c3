"""The pages in a real browser (headless Chromium) against a real server on the committed
default model (``models/``, what a user of the repository gets; the server only reads it).

Each test loads a page, waits until the page's own script has rendered it, checks what a
person would see, and checks that the browser sent no request to any other host. With
``SCREENSHOTS_DIR=docs/screenshots`` the same run saves the screenshots of docs/pages.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.browser import (
    INSTALL_HINT,
    Traffic,
    missing_executables,
    origin_of,
    save_screenshot,
    start_browser,
    take_traffic,
)
from tests.support import MODEL_NAME, REPO_ROOT, ServerProcess, running_server

DEFAULT_MODELS = REPO_ROOT / "models"
API_KEY = "browser-test-key"

# Waits are generous (a busy 2-core CI machine), and every test is bounded as a whole (its
# fixtures are not: the first to need the session model trains it).
WAIT_SECONDS = 30
pytestmark = pytest.mark.timeout(120, func_only=True)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    missing = missing_executables()
    if missing:
        message = (
            f"NO BROWSER: the real-browser tests of the pages need {' and '.join(missing)}, "
            f"which are not installed ({INSTALL_HINT})"
        )
        if os.environ.get("CI"):  # CI installs them (scripts/test.sh): missing there is a bug
            pytest.fail(message)
        pytest.skip(message)
    driver = start_browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


def serve_default_model(
    tmp_path_factory: pytest.TempPathFactory, **settings: str
) -> Iterator[ServerProcess]:
    """``python -m app`` on the committed default model, which it only reads."""
    env = {
        "MULTILABEL_MODEL_DIR": str(DEFAULT_MODELS),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_POLL_INTERVAL": "0",
        "MULTILABEL_LOG_LEVEL": "warning",
        **settings,
    }
    log = tmp_path_factory.mktemp("browser-server") / "server.log"
    with running_server(env, log, ready_path="/health/ready") as process:
        yield process


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_default_model(tmp_path_factory)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The same with API keys on (started only for the tests that need it)."""
    yield from serve_default_model(tmp_path_factory, MULTILABEL_API_KEYS=API_KEY)


@pytest.fixture(scope="module")
def default_version() -> Path:
    """The version directory the server serves: the newest committed one."""
    versions = (DEFAULT_MODELS / MODEL_NAME).iterdir()
    return max((path for path in versions if path.name.isdecimal()), key=lambda p: int(p.name))


@pytest.fixture(scope="module")
def openapi(server: ServerProcess) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(server.base_url + "/openapi.json").json()
    return document


def visit(browser: WebDriver, url: str) -> None:
    take_traffic(browser)  # forget what earlier pages did
    browser.get(url)


def wait(browser: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(browser, WAIT_SECONDS)


def assert_only_the_service_was_contacted(browser: WebDriver, server: ServerProcess) -> Traffic:
    traffic = take_traffic(browser)
    assert traffic.sent, "the browser made no request at all"
    assert traffic.other_origins(origin_of(server.base_url)) == []
    return traffic


def test_docs_renders_every_operation_of_the_openapi_document(
    browser: WebDriver, server: ServerProcess, openapi: dict[str, Any]
) -> None:
    operations = {
        (method.upper(), path) for path, item in openapi["paths"].items() for method in item
    }
    visit(browser, server.base_url + "/docs")
    wait(browser).until(
        lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) >= len(operations)
    )
    shown = {
        (
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"),
        )
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    }
    assert shown == operations
    save_screenshot(browser, "docs")
    traffic = assert_only_the_service_was_contacted(browser, server)
    assert traffic.blocked == []
    assert traffic.console_errors == []


def test_try_it_out_on_predict_sends_the_documented_example_and_shows_the_answer(
    browser: WebDriver, server: ServerProcess, openapi: dict[str, Any]
) -> None:
    operation = openapi["paths"]["/predict"]["post"]
    first_example = documented_examples(operation["requestBody"]["content"]["application/json"])[0]
    visit(browser, server.base_url + "/docs")
    block = wait(browser).until(lambda driver: find_operation(driver, "post", "/predict"))
    click(browser, within(block, ".opblock-summary-control"))
    click(browser, within(block, ".try-out__btn"))
    sent = json.loads(within(block, "textarea.body-param__text").get_attribute("value") or "")
    assert sent == first_example

    click(browser, within(block, ".execute"))
    status = within(block, ".live-responses-table tbody .response-col_status")
    answer = json.loads(
        within(block, ".live-responses-table tbody .response-col_description pre").text
    )
    assert status.text.strip() == "200"
    # The documented shape, with the served model's values: what /predict answers the body.
    response_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    Draft202012Validator({**response_schema, "components": openapi["components"]}).validate(answer)
    assert answer == httpx.post(server.base_url + "/predict", json=sent).json()
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", status)
    save_screenshot(browser, "docs-try-it-out")
    assert_only_the_service_was_contacted(browser, server)


def documented_examples(media: dict[str, Any]) -> list[Any]:
    """A request body's examples, in the order Swagger UI offers them (media type first)."""
    if "examples" in media:
        return [example["value"] for example in media["examples"].values()]
    if "example" in media:
        return [media["example"]]
    examples: list[Any] = media["schema"]["examples"]
    return examples


def find_operation(browser: WebDriver, method: str, path: str) -> WebElement | None:
    """Swagger UI's block for one operation, found by what it shows (not by its DOM id)."""
    for block in browser.find_elements(By.CSS_SELECTOR, f".opblock-{method}"):
        if block.find_elements(By.CSS_SELECTOR, f".opblock-summary-path[data-path='{path}']"):
            return block
    return None


def within(block: WebElement, selector: str) -> WebElement:
    """The element of ``block`` matching ``selector``, once Swagger UI has rendered it."""
    found: WebElement = WebDriverWait(block, WAIT_SECONDS).until(
        lambda element: element.find_element(By.CSS_SELECTOR, selector)
    )
    return found


def click(browser: WebDriver, element: WebElement) -> None:
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    WebDriverWait(browser, WAIT_SECONDS).until(lambda _: element.is_enabled())
    element.click()


def test_redoc_renders_every_operation(
    browser: WebDriver, server: ServerProcess, openapi: dict[str, Any]
) -> None:
    operation_ids = {
        operation["operationId"]
        for item in openapi["paths"].values()
        for operation in item.values()
    }
    visit(browser, server.base_url + "/redoc")
    script = (
        "return Array.from(document.querySelectorAll('[data-section-id^=\"operation/\"]'))"
        ".map(element => element.getAttribute('data-section-id').slice('operation/'.length))"
    )
    wait(browser).until(lambda driver: len(driver.execute_script(script)) >= len(operation_ids))
    assert set(browser.execute_script(script)) == operation_ids
    save_screenshot(browser, "redoc")
    traffic = assert_only_the_service_was_contacted(browser, server)
    # ReDoc's bundle shows a "by Redocly" logo from its makers' host: the page's policy stops
    # the browser before it asks, and nothing else is refused.
    assert all(origin_of(url) != origin_of(server.base_url) for url in traffic.blocked)
    assert all("Content Security Policy" in error for error in traffic.console_errors)


def test_the_card_page_shows_every_plot(
    browser: WebDriver, server: ServerProcess, default_version: Path
) -> None:
    plots = sorted(path.name for path in default_version.glob("*.png"))
    assert len(plots) >= 4  # a model fitted by counting has no loss curve
    visit(browser, f"{server.base_url}/models/{MODEL_NAME}/card")
    loaded = "return Array.from(document.images).every(image => image.complete)"
    wait(browser).until(lambda driver: driver.execute_script(loaded))
    images = browser.execute_script(
        "return Array.from(document.images).map(image => "
        "[image.getAttribute('src'), image.naturalWidth, image.naturalHeight])"
    )
    assert sorted(src.rsplit("/", 1)[-1] for src, _, _ in images) == plots
    assert all(width > 0 and height > 0 for _, width, height in images), images
    assert "Model card: multilabel" in browser.find_element(By.TAG_NAME, "h1").text
    save_screenshot(browser, "card")
    plots_heading = browser.find_element(By.XPATH, "//h2[normalize-space()='Plots']")
    browser.execute_script("arguments[0].scrollIntoView()", plots_heading)
    save_screenshot(browser, "card-plots")
    traffic = assert_only_the_service_was_contacted(browser, server)
    assert (traffic.blocked, traffic.console_errors) == ([], [])


def test_every_link_of_the_landing_page_resolves(
    browser: WebDriver, server: ServerProcess, default_version: Path
) -> None:
    visit(browser, server.base_url + "/")
    heading = browser.find_element(By.TAG_NAME, "h1").text
    assert heading == httpx.get(server.base_url + "/openapi.json").json()["info"]["title"]
    status = browser.find_element(By.CSS_SELECTOR, ".status").text
    assert f"serving multilabel version {default_version.name}" in status
    # As the browser resolved them (absolute URLs), not as the HTML spells them.
    links = [a.get_property("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href]")]
    assert len(links) >= 9
    save_screenshot(browser, "landing")
    traffic = assert_only_the_service_was_contacted(browser, server)
    assert (traffic.blocked, traffic.console_errors) == ([], [])
    for link in links:
        assert origin_of(str(link)) == origin_of(server.base_url), link
        assert httpx.get(str(link)).status_code == 200, link


def test_with_api_keys_a_page_that_needs_one_explains_how_to_send_it(
    browser: WebDriver, keyed_server: ServerProcess
) -> None:
    visit(browser, keyed_server.base_url + "/")
    card_link = browser.find_element(By.PARTIAL_LINK_TEXT, "Model card")
    marked = card_link.find_element(By.XPATH, "..").text
    assert "(API key)" in marked
    card_link.click()
    wait(browser).until(lambda driver: driver.find_elements(By.TAG_NAME, "h1"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "API key needed"
    command = browser.find_element(By.CSS_SELECTOR, "pre code").text
    card_url = f"{keyed_server.base_url}/models/{MODEL_NAME}/card"
    assert command == f"curl -H 'Authorization: Bearer <your key>' '{card_url}'"
    assert API_KEY not in browser.page_source
    save_screenshot(browser, "api-key-needed")
    traffic = assert_only_the_service_was_contacted(browser, keyed_server)
    assert traffic.blocked == []
    # The 401 itself is the only thing the console reports.
    assert all("401" in error for error in traffic.console_errors), traffic.console_errors
    # The key opens the page: the same URL, with the header a client would send.
    answer = httpx.get(
        browser.current_url, headers={"authorization": f"Bearer {API_KEY}", "accept": "text/html"}
    )
    assert answer.status_code == 200


def test_a_mistyped_url_gets_a_page_that_leads_back(
    browser: WebDriver, server: ServerProcess
) -> None:
    visit(browser, server.base_url + "/model-card")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Page not found"
    browser.find_element(By.LINK_TEXT, "Back to the service's home page").click()
    wait(browser).until(lambda driver: driver.current_url == server.base_url + "/")
    assert browser.find_elements(By.CSS_SELECTOR, ".status")
    traffic = assert_only_the_service_was_contacted(browser, server)
    assert traffic.blocked == []
