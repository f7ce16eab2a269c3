"""Reading served HTML in tests: its elements, their attributes, its inline scripts and text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

# Attributes through which a page makes the browser load or open another URL.
URL_ATTRIBUTES = ("src", "href", "spec-url", "action", "poster", "data")
# A string literal in an inline script that is a URL or an absolute path.
_SCRIPT_URL = re.compile(r"""["'`]((?:[a-z][a-z0-9+.-]*:)?//[^"'`\s]+|/[^"'`\s]*)["'`]""")


@dataclass
class Element:
    tag: str
    attributes: dict[str, str]


@dataclass
class Page:
    elements: list[Element] = field(default_factory=list)
    inline_scripts: list[str] = field(default_factory=list)
    text: str = ""

    def all(self, tag: str) -> list[Element]:
        return [element for element in self.elements if element.tag == tag]

    def urls(self) -> list[str]:
        """Every URL the page references: in attributes and in its inline scripts."""
        found = [
            element.attributes[name]
            for element in self.elements
            for name in URL_ATTRIBUTES
            if element.attributes.get(name)
        ]
        for script in self.inline_scripts:
            found += _SCRIPT_URL.findall(script)
        return found


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self._in_script: bool = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.page.elements.append(Element(tag, attributes))
        self._in_script = tag == "script" and "src" not in attributes
        if self._in_script:
            self.page.inline_scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.page.inline_scripts[-1] += data
        else:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self.page.text = " ".join(" ".join(self._text).split())


def read_page(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page
