"""docs/ holds the reference: every page is reachable from the README or the table of contents
(docs/README.md), every relative link and image of the README and of docs/ resolves, and the
configuration page lists every setting with its default."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from app.config import ENV_PREFIX, Settings
from tests.support import REPO_ROOT

DOCS = REPO_ROOT / "docs"
README = REPO_ROOT / "README.md"
CONTENTS = DOCS / "README.md"
PAGES = sorted(DOCS.glob("*.md"))
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def links(page: Path) -> list[str]:
    """The targets of a page's markdown links and images, outside code blocks."""
    return _LINK.findall(_CODE_BLOCK.sub("", page.read_text()))


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, as GitHub writes them."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", _CODE_BLOCK.sub("", page.read_text()), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug)
    return found


def relative_targets(page: Path) -> list[tuple[Path, str]]:
    """(file, anchor) of every link of ``page`` that stays in the repository."""
    targets = []
    for link in links(page):
        parts = urlsplit(link)
        if parts.scheme or link.startswith("//"):
            continue
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        targets.append((target, parts.fragment))
    return targets


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_doc_page_is_linked_from_the_readme_or_the_contents(page: Path) -> None:
    if page == CONTENTS:
        assert CONTENTS in {target for target, _ in relative_targets(README)}
        return
    linked = {target for source in (README, CONTENTS) for target, _ in relative_targets(source)}
    assert page in linked


@pytest.mark.parametrize(
    "page", [README, *PAGES], ids=lambda page: str(page.relative_to(REPO_ROOT))
)
def test_every_relative_link_and_image_resolves(page: Path) -> None:
    for target, anchor in relative_targets(page):
        assert target.exists(), f"{page.name} links {target}"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target), f"{page.name} links #{anchor} of {target.name}"


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_documented_with_its_default(name: str) -> None:
    default = Settings.model_fields[name].default
    row = f"| `{ENV_PREFIX}{name.upper()}` | `{default}` |"
    assert row in (DOCS / "configuration.md").read_text()
