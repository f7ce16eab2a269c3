"""The README stays true: its commands are the ones CI runs, its settings table is complete."""

from __future__ import annotations

import re

import pytest

from app.config import ENV_PREFIX, Settings
from tests.support import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    main_job, tests = re.findall(r"^bash (scripts/\S+)", README, re.MULTILINE)[:2]
    assert (main_job, tests) == ("scripts/serve.sh", "scripts/test.sh")
    assert f"bash {tests}" in ci


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_documented_with_its_default(name: str) -> None:
    default = Settings.model_fields[name].default
    row = f"| `{ENV_PREFIX}{name.upper()}` | `{default}` |"
    assert row in README
