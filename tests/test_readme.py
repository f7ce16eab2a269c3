"""The README stays a front door: its commands are the ones CI runs, and a newcomer finds the
two commands, how to change the port and a first request on its first screen."""

from __future__ import annotations

import re

from tests.support import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
MOST_LINES = 220
FIRST_SCREEN_LINES = 60


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    main_job, tests = re.findall(r"^bash (scripts/\S+)", README, re.MULTILINE)[:2]
    assert (main_job, tests) == ("scripts/serve.sh", "scripts/test.sh")
    assert f"bash {tests}" in ci


def test_the_readme_fits_on_a_few_screens() -> None:
    assert len(README.splitlines()) <= MOST_LINES


def test_the_first_screen_has_the_two_commands_the_port_and_a_first_request() -> None:
    first_screen = "\n".join(README.splitlines()[:FIRST_SCREEN_LINES])
    for needed in ("bash scripts/serve.sh", "bash scripts/test.sh", "MULTILABEL_PORT=", "$ curl"):
        assert needed in first_screen, needed
