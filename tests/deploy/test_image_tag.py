"""One image name everywhere: the tag the docs build is the tag compose builds and the
Kubernetes and KServe manifests run (``multilabel-service:<project version>``)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from app.version import SERVICE_NAME
from tests.deploy.manifests import COMPOSE_FILE, DOCKERFILE, K8S_DIR, KSERVE_DIR, load_documents
from tests.support import REPO_ROOT

VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"{SERVICE_NAME}:{VERSION}"
TRAINER_IMAGE = f"multilabel-trainer:{VERSION}"
# Where people read how to build and run the image.
DOCS = [REPO_ROOT / "README.md", DOCKERFILE, *sorted((REPO_ROOT / "docs").glob("*.md"))]
_BUILD_TAG = re.compile(r"docker build\b[^\n]*?\s-t\s+(\S+)")
_RUN_IMAGE = re.compile(r"docker run\b[^\n]*?\s(multilabel-\S+)")


def _images(node: Any) -> list[str]:
    """Every ``image:`` value in a manifest, at any depth."""
    if isinstance(node, dict):
        own = [node["image"]] if isinstance(node.get("image"), str) else []
        return own + [image for value in node.values() for image in _images(value)]
    if isinstance(node, list):
        return [image for item in node for image in _images(item)]
    return []


def test_compose_builds_the_tag_the_manifests_run() -> None:
    (compose,) = load_documents(COMPOSE_FILE)
    assert compose["services"]["api"]["image"] == IMAGE
    assert compose["services"]["trainer"]["image"] == TRAINER_IMAGE
    manifests = [
        document for path in sorted(K8S_DIR.glob("*.yaml")) for document in load_documents(path)
    ]
    kserve = [
        document for path in sorted(KSERVE_DIR.glob("*.yaml")) for document in load_documents(path)
    ]
    assert set(_images(manifests)) == {IMAGE}
    assert set(_images(kserve)) == {IMAGE}


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_documented_build_and_run_names_that_tag(path: Path) -> None:
    text = path.read_text()
    built = _BUILD_TAG.findall(text)
    run = _RUN_IMAGE.findall(text)
    expected = {IMAGE, TRAINER_IMAGE}
    assert set(built) <= expected, built
    assert set(run) <= expected, run


def test_the_deployment_docs_build_that_tag() -> None:
    built = _BUILD_TAG.findall((REPO_ROOT / "docs" / "deployment.md").read_text())
    assert IMAGE in built
