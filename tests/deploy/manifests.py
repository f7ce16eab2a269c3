"""Reading the deployment files (Dockerfile, compose, manifests) and checking them against the
code they deploy: settings names and values, stages, routes."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.config import ENV_PREFIX, Settings
from tests.support import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
KSERVE_DIR = REPO_ROOT / "deploy" / "kserve"
LOCK_DIR = REPO_ROOT / "requirements"
# The locked sets, smallest first, each with the extras of pyproject.toml it covers (None: all).
LOCKED_SETS: dict[str, list[str] | None] = {"serve": [], "train": ["train"], "dev": None}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every YAML document of a file (``---`` separated), empty ones left out."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests(directory: Path) -> dict[str, dict[str, Any]]:
    """The Kubernetes objects of a directory, by kind."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for document in load_documents(path):
            assert document["kind"] not in objects, f"two {document['kind']} objects"
            objects[document["kind"]] = document
    return objects


def settings_from_env(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a process started with ``env`` gets; fails on unknown MULTILABEL_ names
    (Settings itself ignores them, so a typo would silently fall back to a default)."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    ours = {name: str(value) for name, value in env.items() if name.startswith(ENV_PREFIX)}
    unknown = sorted(set(ours) - known)
    assert not unknown, f"not settings of app/config.py: {unknown}"
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) or name in ("MODEL_DIR", "MODEL_NAME"):
            monkeypatch.delenv(name)
    for name, value in ours.items():
        monkeypatch.setenv(name, value)
    return Settings()


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [argument for name, argument in self.instructions if name == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for argument in self.arguments("ENV"):
            for pair in shlex.split(argument):
                name, _, value = pair.partition("=")
                values[name] = value
        return values


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The build stages of a Dockerfile, each with its instructions (continuations joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        keyword, argument = keyword.upper(), argument.strip()
        if keyword == "ARG" and not stages:
            name, _, default = argument.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = argument.split()
            base = re.sub(r"\$\{(\w+)\}", lambda match: args[match.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name=name, base=base))
        else:
            stages[-1].instructions.append((keyword, argument))
    return stages


def copy_sources(argument: str) -> tuple[str | None, list[str]]:
    """``COPY [--from=stage] [--chown=..] src... dest`` → (stage or None, sources)."""
    words = shlex.split(argument)
    options = [word for word in words if word.startswith("--")]
    paths = [word for word in words if not word.startswith("--")]
    stage = next((o.split("=", 1)[1] for o in options if o.startswith("--from=")), None)
    return stage, paths[:-1]


def dockerignore_excludes(relative: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``relative`` out: the path or one of its parent
    directories matches a pattern (Docker's rules, without ``!`` exceptions)."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    return any(_matches(candidate, pattern) for candidate in candidates for pattern in patterns)


def read_dockerignore(path: Path = DOCKERIGNORE) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    patterns = [line.strip("/") for line in lines if line and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not supported here"
    return patterns


def _matches(path: str, pattern: str) -> bool:
    regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
    return re.fullmatch(regex.replace(r"\?", "[^/]"), path) is not None


def healthcheck_command(argument: str) -> list[str]:
    """The exec form of ``HEALTHCHECK [options] CMD [...]`` as a list."""
    command: list[str] = json.loads(argument.split(" CMD ", 1)[1])
    return command


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: frozenset[str]
    marker: str


def lock_file(name: str) -> Path:
    return LOCK_DIR / f"{name}.txt"


def read_lock(path: Path) -> dict[str, Pin]:
    """A hash-pinned requirements file (``name==version ; marker --hash=...``), by package name."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pins: dict[str, Pin] = {}
    for line in text.splitlines():
        requirement_text, *hashes = line.split("#", 1)[0].split(" --hash=")
        if not requirement_text.strip():
            continue
        requirement = Requirement(requirement_text)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {requirement_text} is not an exact pin"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{path.name}: {name} pinned twice"
        pins[name] = Pin(
            specifier.version, frozenset(h.strip() for h in hashes), str(requirement.marker or "")
        )
    return pins
