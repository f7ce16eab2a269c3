"""The lock (requirements/*.txt, written by requirements/lock.sh): every dependency pyproject.toml
declares is pinned with its hashes, the three sets share one resolution, and the check that CI
runs catches a pyproject.toml that moved on without the lock."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.manifests import LOCKED_SETS, lock_file, read_lock
from tests.support import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
# Where the lock applies (requirements/lock.sh resolves for it): CPython 3.11 on Linux x86-64.
LOCK_ENVIRONMENT = {"python_version": "3.11", "sys_platform": "linux", "platform_machine": "x86_64"}
TRAINING_STACK = {"tensorflow", "tensorflow-cpu", "keras", "scikit-learn", "tf2onnx", "onnx"}


def declared(set_name: str) -> list[Requirement]:
    """What pyproject.toml asks for in a locked set: the base, plus that set's extras."""
    extras = LOCKED_SETS[set_name]
    optional: dict[str, list[str]] = PYPROJECT["optional-dependencies"]
    chosen = optional if extras is None else {name: optional[name] for name in extras}
    lines = [*PYPROJECT["dependencies"], *(line for group in chosen.values() for line in group)]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("set_name", list(LOCKED_SETS))
def test_each_set_pins_every_dependency_it_declares_within_its_bounds(set_name: str) -> None:
    pins = read_lock(lock_file(set_name))
    for requirement in declared(set_name):
        if requirement.marker and not requirement.marker.evaluate(LOCK_ENVIRONMENT):
            continue
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{set_name}.txt does not pin {requirement.name}"
        assert requirement.specifier.contains(pin.version), f"{requirement} but {pin.version}"


@pytest.mark.parametrize("set_name", [*LOCKED_SETS, "uv"])
def test_every_pin_carries_sha256_hashes(set_name: str) -> None:
    for name, pin in read_lock(lock_file(set_name)).items():
        assert pin.hashes, f"{name} has no hash"
        assert all(digest.startswith("sha256:") for digest in pin.hashes)


@pytest.mark.parametrize(("smaller", "larger"), [("serve", "train"), ("train", "dev")])
def test_the_sets_share_one_resolution(smaller: str, larger: str) -> None:
    """Every package of a smaller set is in the larger one, same version, same files."""
    small, large = read_lock(lock_file(smaller)), read_lock(lock_file(larger))
    assert set(small) < set(large)
    differing = {
        name
        for name, pin in small.items()
        if (pin.version, pin.hashes) != (large[name].version, large[name].hashes)
    }
    assert differing == set()


def test_the_serving_set_holds_no_training_stack() -> None:
    assert TRAINING_STACK & set(read_lock(lock_file("serve"))) == set()
    assert "tensorflow-cpu" in read_lock(lock_file("train"))


def test_uv_is_the_one_the_dev_set_pins() -> None:
    assert read_lock(lock_file("uv")) == {"uv": read_lock(lock_file("dev"))["uv"]}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """What requirements/lock.sh reads, copied: pyproject.toml and requirements/ (the real
    .venv linked in, for its uv)."""
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(REPO_ROOT / "requirements", tmp_path / "requirements")
    (tmp_path / ".venv").symlink_to(REPO_ROOT / ".venv")
    return tmp_path


@pytest.mark.parametrize(
    ("change", "stale"),
    [
        (None, []),
        (("dependencies", '"tomli-w>=1"'), ["serve.txt", "train.txt", "dev.txt"]),
        (("dev", '"tomli-w>=1"'), ["dev.txt"]),
    ],
    ids=["unchanged", "base-dependency-added", "dev-dependency-added"],
)
def test_the_lock_check_names_the_sets_pyproject_moved_away_from(
    checkout: Path, change: tuple[str, str] | None, stale: list[str]
) -> None:
    if change is not None:
        _add_dependency(checkout / "pyproject.toml", *change)
    result = subprocess.run(
        ["bash", "requirements/lock.sh", "--check"],
        cwd=checkout,
        env={**os.environ, "CI": "true"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == (1 if stale else 0), result.stdout + result.stderr
    verdicts = [line for line in result.stderr.splitlines() if line.startswith("FAIL: the lock")]
    named = verdicts[0].rsplit(": ", 1)[1].split() if verdicts else []
    assert named == [f"requirements/{name}" for name in stale]
    assert ("+tomli-w==" in result.stdout) == bool(stale)  # the diff shows what moved


def _add_dependency(pyproject: Path, group: str, requirement: str) -> None:
    """Add a requirement to the base list (``dependencies``) or to an extra."""
    text = pyproject.read_text()
    opening = "dependencies = [\n" if group == "dependencies" else f"{group} = [\n"
    assert text.count(opening) == 1
    pyproject.write_text(text.replace(opening, f"{opening}    {requirement},\n"))
