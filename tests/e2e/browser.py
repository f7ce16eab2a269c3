"""Headless Chromium from Debian's packages, driven by Selenium through the system chromedriver.

Selenium Manager is never asked for anything (it would try to download a driver): the driver's
path is given. The flags keep Chromium from reaching out on its own (updates, sync, QUIC,
background requests), which a machine without internet access would otherwise refuse noisily.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "apt-get install -y chromium chromium-driver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
PAGE_LOAD_SECONDS = 30
# Where the page tests save their screenshots, when asked (README pictures): not in CI, which
# must not rewrite tracked files.
SCREENSHOTS_VARIABLE = "SCREENSHOTS_DIR"


def missing_executables() -> list[str]:
    return [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]


def start_browser(profile: Path) -> WebDriver:
    """A new headless Chromium on an empty profile, recording its console and network."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
    return driver


@dataclass
class Traffic:
    """What the browser did since the last look: requests, and console errors."""

    sent: list[str]  # URLs of http(s) requests that left the browser
    blocked: list[str]  # URLs the page asked for but the Content-Security-Policy refused
    console_errors: list[str]

    def other_origins(self, origin: str) -> list[str]:
        return [url for url in self.sent if _origin(url) != origin]


def take_traffic(driver: WebDriver) -> Traffic:
    """Drain the browser's logs (so the next call sees only what happens after this one)."""
    requested: dict[str, str] = {}
    blocked_ids: set[str] = set()
    for entry in driver.get_log("performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        parameters = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            requested[parameters["requestId"]] = parameters["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and parameters.get("blockedReason"):
            blocked_ids.add(parameters["requestId"])
    web = {rid: url for rid, url in requested.items() if url.startswith(("http:", "https:"))}
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return Traffic(
        sent=[url for rid, url in web.items() if rid not in blocked_ids],
        blocked=[url for rid, url in web.items() if rid in blocked_ids],
        console_errors=errors,
    )


def origin_of(base_url: str) -> str:
    return _origin(base_url)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def save_screenshot(driver: WebDriver, name: str) -> Path | None:
    """Save what the browser shows as ``<SCREENSHOTS_DIR>/<name>.png``, if screenshots are on."""
    directory = os.environ.get(SCREENSHOTS_VARIABLE)
    if not directory:
        return None
    path = Path(directory) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path))
    return path
