"""The edge's contract with uvicorn's and httptools' internals (``app.edge.contract``): it
holds for the pinned versions, it names every attribute ``EdgeProtocol`` touches (read from
the protocol's own source), and it breaks, falling back to stock uvicorn with a warning, when
what it names changes. The behaviours themselves are tested on real server processes in
``tests/robustness/test_hostile_sockets.py``."""

from __future__ import annotations

import ast
import logging
import re
import shutil
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httptools
import pytest
import uvicorn
from uvicorn.protocols.http import flow_control, httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.edge import contract, protocol
from app.edge.contract import (
    CLAUSES,
    CYCLE_ATTRIBUTES,
    FLOW_ATTRIBUTES,
    HTTPTOOLS_VERSION,
    MODULES,
    PARSER_METHODS,
    PROTOCOL_ATTRIBUTES,
    SERVER_STATE_ATTRIBUTES,
    SOURCES,
    UVICORN_VERSION,
    broken_clauses,
    module_digest,
    select_protocol,
    source_digest,
)
from app.edge.protocol import EdgeProtocol
from tests.support import REPO_ROOT


@pytest.mark.parametrize("clause", CLAUSES, ids=[clause.__name__ for clause in CLAUSES])
def test_every_clause_holds_for_the_installed_versions(
    clause: Callable[[], Iterator[str]],
) -> None:
    """Among them, ``callback_error_context``: a parser callback's exception is the
    ``__context__`` of httptools' ``HttpParserCallbackError`` (how a Refusal is told apart)."""
    assert list(clause()) == []
    assert broken_clauses() == []


def test_the_contract_selects_the_edge_protocol_here() -> None:
    assert select_protocol() is EdgeProtocol


@pytest.mark.parametrize("name", SOURCES, ids=SOURCES)
def test_the_uvicorn_code_the_edge_builds_on_is_unchanged(name: str) -> None:
    digest, why = SOURCES[name]
    assert source_digest(name) == digest, f"uvicorn's {name} changed ({why}): re-read EdgeProtocol"


@pytest.mark.parametrize("name", MODULES)
def test_the_uvicorn_modules_are_the_ones_covered(name: str) -> None:
    assert module_digest(name) == MODULES[name]


def test_pyproject_pins_exactly_the_versions_the_contract_covers() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert f"uvicorn=={UVICORN_VERSION}" in project["dependencies"]
    assert f"httptools=={HTTPTOOLS_VERSION}" in project["dependencies"]


@pytest.mark.parametrize("lock", ["serve.txt", "train.txt", "dev.txt"])
def test_the_locks_hold_the_versions_the_contract_covers(lock: str) -> None:
    text = (REPO_ROOT / "requirements" / lock).read_text()
    assert re.search(rf"^uvicorn=={re.escape(UVICORN_VERSION)} ", text, re.MULTILINE)
    assert re.search(rf"^httptools=={re.escape(HTTPTOOLS_VERSION)} ", text, re.MULTILINE)


# What EdgeProtocol's own source touches, read from it


def _edge_protocol_class() -> ast.ClassDef:
    tree = ast.parse(Path(protocol.__file__).read_text())
    return next(
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == EdgeProtocol.__name__
    )


def _touched() -> dict[str, set[str]]:
    """Attribute names EdgeProtocol's methods use, by what they are read from: ``self``,
    ``self.cycle`` (or a local ``cycle``), ``self.flow``, ``self.server_state``,
    ``self.parser``, and ``super()``."""
    touched: dict[str, set[str]] = {
        owner: set() for owner in ("self", "cycle", "flow", "server_state", "parser", "super")
    }
    for node in ast.walk(_edge_protocol_class()):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        if isinstance(base, ast.Name) and base.id in ("self", "cycle"):
            touched[base.id].add(node.attr)
        elif (
            isinstance(base, ast.Attribute)
            and isinstance(base.value, ast.Name)
            and base.value.id == "self"
            and base.attr in touched
        ):
            touched[base.attr].add(node.attr)
        elif (
            isinstance(base, ast.Call)
            and isinstance(base.func, ast.Name)
            and base.func.id == "super"
        ):
            touched["super"].add(node.attr)
    return touched


def _own_members() -> set[str]:
    defined = {
        node.name for node in _edge_protocol_class().body if isinstance(node, ast.FunctionDef)
    }
    return defined | set(EdgeProtocol.__slots__)


def test_the_contract_names_every_attribute_of_uvicorns_protocol_the_edge_touches() -> None:
    assert _touched()["self"] - _own_members() == PROTOCOL_ATTRIBUTES


@pytest.mark.parametrize(
    ("owner", "named"),
    [
        ("cycle", CYCLE_ATTRIBUTES),
        ("flow", FLOW_ATTRIBUTES),
        ("server_state", SERVER_STATE_ATTRIBUTES),
        ("parser", PARSER_METHODS),
    ],
)
def test_the_contract_names_every_attribute_of_uvicorns_objects_the_edge_touches(
    owner: str, named: frozenset[str]
) -> None:
    assert _touched()[owner] == named


def test_every_uvicorn_method_the_edge_overrides_or_calls_is_digested() -> None:
    overridden = _own_members() & set(vars(HttpToolsProtocol))
    called = _touched()["super"]
    digested = {name.split(".")[1] for name in SOURCES if name.startswith("HttpToolsProtocol.")}
    assert overridden | called <= digested


def test_the_edge_imports_from_uvicorn_only_what_the_contract_covers() -> None:
    tree = ast.parse(Path(protocol.__file__).read_text())
    imported = {
        (node.module, alias.name)
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("uvicorn")
        for alias in node.names
    }
    assert imported == {
        ("uvicorn.protocols.http.httptools_impl", "STATUS_LINE"),
        ("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol"),
        ("uvicorn.server", "ServerState"),
    }


# A broken clause is found, and stock uvicorn serves instead


def _without_attribute(name: str) -> Callable[..., None]:
    original = HttpToolsProtocol.__init__

    def init(self: HttpToolsProtocol, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        delattr(self, name)

    return init


def _changed_copy(module: Any, tmp_path: Path) -> str:
    copy = tmp_path / Path(module.__file__).name
    shutil.copy(module.__file__, copy)
    copy.write_text(copy.read_text() + "\n# patched\n")
    return str(copy)


BREAKAGES: dict[str, tuple[Callable[[pytest.MonkeyPatch, Path], None], str]] = {
    "another uvicorn": (
        lambda patch, _: patch.setattr(uvicorn, "__version__", "0.55.0"),
        f"uvicorn is 0.55.0, not {UVICORN_VERSION}",
    ),
    "another httptools": (
        lambda patch, _: patch.setattr(httptools, "__version__", "0.10.0"),
        f"httptools is 0.10.0, not {HTTPTOOLS_VERSION}",
    ),
    "a patched protocol module": (
        lambda patch, tmp: patch.setattr(
            httptools_impl, "__file__", _changed_copy(httptools_impl, tmp)
        ),
        "uvicorn.protocols.http.httptools_impl is not the code the contract tests covered",
    ),
    "a patched flow control module": (
        lambda patch, tmp: patch.setattr(
            flow_control, "__file__", _changed_copy(flow_control, tmp)
        ),
        "uvicorn.protocols.http.flow_control is not the code the contract tests covered",
    ),
    "a protocol attribute gone": (
        lambda patch, _: patch.setattr(
            HttpToolsProtocol, "__init__", _without_attribute("timeout_keep_alive_task")
        ),
        "uvicorn's protocol has no timeout_keep_alive_task",
    ),
    "a status line gone": (
        lambda patch, _: patch.setattr(httptools_impl, "STATUS_LINE", {}),
        "uvicorn's STATUS_LINE lacks a status the edge answers",
    ),
}


@pytest.mark.parametrize(("breakage", "reason"), BREAKAGES.values(), ids=BREAKAGES)
def test_a_broken_clause_selects_stock_uvicorn_with_a_warning_that_says_why(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    breakage: Callable[[pytest.MonkeyPatch, Path], None],
    reason: str,
) -> None:
    breakage(monkeypatch, tmp_path)
    with caplog.at_level(logging.WARNING, logger=contract.__name__):
        selected = select_protocol()

    assert selected is HttpToolsProtocol
    assert reason in broken_clauses()
    [record] = caplog.records
    assert reason in record.getMessage()
    assert "serving with stock uvicorn, without the header deadline" in record.getMessage()
