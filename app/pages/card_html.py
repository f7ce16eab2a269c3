"""A model card's markdown as HTML that is safe to serve from the service's origin.

Rendered by markdown-it-py (CommonMark, plus tables). Raw HTML in the markdown is not passed
through but shown as text, and every image and link must point at a file of the version
itself (its plots): those are rewritten to the URL that serves the file, in-page anchors are
kept, and anything else (another host, a file the version does not list) is dropped, leaving
the image's alt text or the link's text. A version directory is data, even one our training
wrote: it must not make our pages run script or load from elsewhere.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

# A link target in the card, as written there → the URL serving that file, or None.
FileUrl = Callable[[str], str | None]

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def card_html(markdown: str, file_url: FileUrl) -> str:
    """Render the card; ``file_url`` maps a servable file's name to its URL (else None)."""
    tokens = _MARKDOWN.parse(markdown)
    for token in tokens:
        if token.children:
            token.children = _local_references_only(token.children, file_url)
    html: str = _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {})
    return html


def referenced_file(reference: str) -> str | None:
    """The version-relative file name a link or image source means, or None when it points
    elsewhere (another host, an absolute path, a URL scheme)."""
    parts = urlsplit(reference)
    if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
        return None
    return posixpath.normpath(unquote(parts.path))


def _local_references_only(children: list[Token], file_url: FileUrl) -> list[Token]:
    kept: list[Token] = []
    open_links: list[bool] = []  # for each link being inside: whether its tags are kept
    for token in children:
        if token.type == "image":
            kept.append(_served_image(token, file_url))
        elif token.type == "link_open":
            target = _link_target(str(token.attrGet("href") or ""), file_url)
            open_links.append(target is not None)
            if target is not None:
                token.attrSet("href", target)
                kept.append(token)
        elif token.type == "link_close":
            if open_links.pop():
                kept.append(token)
        else:
            kept.append(token)
    return kept


def _served_image(image: Token, file_url: FileUrl) -> Token:
    """The image pointed at its served copy, or its alt text when it is not servable."""
    name = referenced_file(str(image.attrGet("src") or ""))
    url = file_url(name) if name is not None else None
    if url is None:
        return Token("text", "", 0, content=image.content)
    image.attrSet("src", url)
    return image


def _link_target(href: str, file_url: FileUrl) -> str | None:
    if href.startswith("#"):
        return href
    name = referenced_file(href)
    return file_url(name) if name is not None else None
