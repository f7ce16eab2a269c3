"""TensorFlow loads without its start-up chatter, and nothing else written to stderr is lost."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import REPO_ROOT
from training.runtime import START_UP_CHATTER, stderr_without

ONEDNN_LINE = "oneDNN custom operations are on"


def test_lines_written_to_the_file_descriptor_pass_unless_they_are_chatter(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with stderr_without((b"noise",)):
        os.write(2, b"keep 1\nsome noise here\n")
        os.write(2, b"keep 2\nno newline at the end")
    os.write(2, b" and after the block\n")
    assert capfd.readouterr().err == "keep 1\nkeep 2\nno newline at the end and after the block\n"


@pytest.mark.parametrize(
    ("log_level", "chatter_shown"),
    [
        pytest.param(None, False, id="training-default-level"),
        pytest.param("0", True, id="info-asked-for"),
    ],
)
def test_importing_the_network_with_onednn_forced_on_prints_its_lines_only_when_info_is_asked_for(
    log_level: str | None, chatter_shown: bool
) -> None:
    # TF_ENABLE_ONEDNN_OPTS=1 makes TensorFlow print its oneDNN line on any CPU (on some it is
    # the default); training sets TF_CPP_MIN_LOG_LEVEL=2 unless the caller chose a level.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    if log_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = log_level
    script = "import sys, training.model; sys.stderr.write('a real error\\n')"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "a real error" in result.stderr
    assert (ONEDNN_LINE in result.stderr) is chatter_shown
    if not chatter_shown:
        for line in START_UP_CHATTER:
            assert line.decode() not in result.stderr + result.stdout
