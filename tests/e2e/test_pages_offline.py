"""No served page references another host, directly or through its assets, with or without a
path prefix in front of the service (uvicorn ``--root-path``, behind a prefix-stripping proxy).

A crawler starts from every page and follows what the HTML references (``src``, ``href``, the
URLs in inline start-up scripts) and what the CSS references (``url()``, ``@import``), each
resolved as a browser would against the page's public URL. Every reference must stay on the
service's origin and answer 200. JavaScript bundles are fetched but not read: what they do
at run time is what the real-browser tests watch (tests/e2e/test_browser.py).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from app.artifact import version_path
from tests.app.pages.html import read_page
from tests.support import MODEL_NAME, ServerProcess, running_server

# The origin clients see; any other in a reference is another host.
PUBLIC_ORIGIN = "http://service.test"
START_PAGES = [
    "/",
    "/docs",
    "/redoc",
    f"/models/{MODEL_NAME}/card",
    f"/models/{MODEL_NAME}/versions/1/card",
]
# 404 pages (a version not loaded; a URL that serves nothing): their links must work too.
PROBLEM_PAGES = [f"/models/{MODEL_NAME}/versions/99/card", "/no-such-page"]
# The crawler fetches as a browser navigates, asking for HTML first.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+?)["']?\s*\)|@import\s+["']([^"']+)["']""")


@dataclass
class Crawl:
    prefix: str
    server: ServerProcess
    fetched: dict[str, httpx.Response] = field(default_factory=dict)
    external: list[tuple[str, str]] = field(default_factory=list)  # (page, reference)
    outside_prefix: list[tuple[str, str]] = field(default_factory=list)  # (page, reference)

    def run(self, paths: list[str]) -> None:
        queue = [self.prefix + path for path in paths]
        while queue:
            public_path = queue.pop()
            if public_path in self.fetched:
                continue
            response = self.fetch(public_path)
            self.fetched[public_path] = response
            for reference in references(response):
                absolute = urljoin(PUBLIC_ORIGIN + public_path, reference)
                parts = urlsplit(absolute)
                if parts.scheme == "data":
                    continue
                if f"{parts.scheme}://{parts.netloc}" != PUBLIC_ORIGIN:
                    self.external.append((public_path, reference))
                elif not parts.path.startswith(self.prefix + "/"):
                    self.outside_prefix.append((public_path, reference))
                else:
                    queue.append(parts.path)

    def fetch(self, public_path: str) -> httpx.Response:
        """As through the proxy: the prefix is stripped before the request reaches us."""
        url = self.server.base_url + public_path[len(self.prefix) :]
        return httpx.get(url, headers={"accept": BROWSER_ACCEPT}, timeout=10)


def references(response: httpx.Response) -> list[str]:
    media_type = response.headers.get("content-type", "")
    if media_type.startswith("text/html"):
        return read_page(response.text).urls()
    if media_type.startswith("text/css"):
        return [url or imported for url, imported in _CSS_URL.findall(response.text)]
    return []


def server_command(prefix: str) -> list[str] | None:
    """The main command; behind a prefix, uvicorn's own CLI with ``--root-path``."""
    if not prefix:
        return None
    return [
        "sh",
        "-c",
        'exec "$0" -m uvicorn app.main:app --host 127.0.0.1 --port "$MULTILABEL_PORT" '
        '--root-path "$1"',
        sys.executable,
        prefix,
    ]


@pytest.fixture(scope="module", params=["", "/prefix"], ids=["no-prefix", "behind-a-prefix"])
def crawl(
    request: pytest.FixtureRequest,
    trained_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Crawl]:
    """The crawl of a real server (``python -m app``, or uvicorn behind ``/prefix``)."""
    prefix: str = request.param
    env = {
        "MULTILABEL_MODEL_DIR": str(trained_repository),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_POLL_INTERVAL": "0",
        "MULTILABEL_LOG_LEVEL": "warning",
    }
    log = tmp_path_factory.mktemp("pages-offline") / "server.log"
    command = server_command(prefix)
    with running_server(env, log, command=command, ready_path="/health/ready") as server:
        result = Crawl(prefix, server)
        result.run([*START_PAGES, *PROBLEM_PAGES])
        yield result


def test_no_page_or_stylesheet_references_another_host(crawl: Crawl) -> None:
    assert len(crawl.fetched) > len(START_PAGES)
    assert crawl.external == []


def test_every_reference_stays_under_the_services_path_prefix(crawl: Crawl) -> None:
    assert crawl.outside_prefix == []


def test_every_reference_answers(crawl: Crawl) -> None:
    problems = [crawl.prefix + page for page in PROBLEM_PAGES]
    failed = {
        path: response.status_code
        for path, response in crawl.fetched.items()
        if response.status_code != 200 and path not in problems
    }
    assert failed == {}
    for problem in problems:
        assert crawl.fetched[problem].status_code == 404
        assert crawl.fetched[problem].headers["content-type"].startswith("text/html")


def test_the_pages_reach_the_docs_assets_the_plots_and_every_endpoint_they_name(
    crawl: Crawl, trained_repository: Path
) -> None:
    reached = {path.removeprefix(crawl.prefix) for path in crawl.fetched}
    version = version_path(trained_repository, MODEL_NAME, 1)
    plots = {f"/models/{MODEL_NAME}/versions/1/files/{plot.name}" for plot in version.glob("*.png")}
    assert len(plots) >= 4  # a model fitted by counting has no loss curve
    assets = {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "pages.css"}
    endpoints = {"/openapi.json", "/metadata", "/metrics", "/health", "/health/live"}
    assert reached >= {*(f"/static/{asset}" for asset in assets), *plots, *endpoints}


def test_try_it_out_sends_requests_through_the_prefix(crawl: Crawl) -> None:
    document = crawl.fetched[crawl.prefix + "/openapi.json"].json()
    expected = [{"url": crawl.prefix}] if crawl.prefix else []
    assert document.get("servers", []) == expected
