"""A fourth protocol needs its own module and one registration line, nothing else: the
table-driven tests (the HTTP behaviour every codec shares, the OpenAPI document) cover it
with no edit. Run in a pytest of its own, with the throwaway codec of ``fourth_codec.py``
loaded as a plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO_ROOT

# Not imported from fourth_codec.py: importing it registers the codec in this process too.
TRAINED_REPOSITORY_ENV = "FOURTH_CODEC_TRAINED_REPOSITORY"
TABLE_DRIVEN = [
    "tests/app/codecs/test_endpoint.py",
    "tests/app/test_openapi.py",
    "tests/app/edge/test_server.py",
]


def test_the_table_driven_tests_cover_a_fourth_codec_with_no_edit(
    trained_repository: Path,
) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.app.codecs.fourth_codec",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            *TABLE_DRIVEN,
        ],
        cwd=REPO_ROOT,
        env={**os.environ, TRAINED_REPOSITORY_ENV: str(trained_repository)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    covered = [line for line in run.stdout.splitlines() if "rows" in line and "PASSED" in line]
    # 405 at both paths, the probe, the key, every inference-body test, and the edge's probe
    # paths (test_server.py): 13.
    assert len(covered) >= 13, run.stdout[-4000:]
    assert "rows /rows/{model}/predict" in run.stdout
