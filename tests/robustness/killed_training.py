"""Run the real training CLI and SIGKILL it at a chosen point of writing its version.

``python -m tests.robustness.killed_training POINT [training arguments...]``

An audit hook (``sys.addaudithook``) sees every file operation Python makes. When the
operation named by POINT is about to happen in the run's staging directory, the process kills
itself with SIGKILL: nothing is cleaned up, exactly as when a machine loses the process. So the
point is hit every time, whatever the machine's speed, rather than raced by a watching test.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.artifact import METADATA_FILE, ONNX_FILE

STAGING_MARK = f"{os.sep}.staging-"


def _in_staging(path: Any) -> Path | None:
    """The staging directory ``path`` lies in (or is), if any."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    text = os.fsdecode(path)
    if STAGING_MARK not in text:
        return None
    start = text.index(STAGING_MARK) + 1
    end = text.find(os.sep, start)
    return Path(text if end < 0 else text[:end])


def _staging_exists(event: str, args: tuple[Any, ...]) -> bool:
    # tempfile.mkdtemp has made the directory when the trainer sets its mode.
    return event == "os.chmod" and _in_staging(args[0]) is not None


def _onnx_exported(event: str, args: tuple[Any, ...]) -> bool:
    # The next file written after the export (the model card and its plots).
    if event != "open" or not isinstance(args[1], str) or "w" not in args[1]:
        return False
    staging = _in_staging(args[0])
    return (
        staging is not None
        and Path(os.fsdecode(args[0])).name != ONNX_FILE
        and (staging / ONNX_FILE).exists()
    )


def _about_to_publish(event: str, args: tuple[Any, ...]) -> bool:
    # metadata.json is final and synced; the rename into place is next.
    staging = _in_staging(args[0]) if event == "os.rename" else None
    return staging is not None and (staging / METADATA_FILE).exists()


KILL_POINTS: dict[str, Callable[[str, tuple[Any, ...]], bool]] = {
    "staging": _staging_exists,
    "onnx": _onnx_exported,
    "publish": _about_to_publish,
}


def main() -> None:
    point = KILL_POINTS[sys.argv[1]]

    def kill_at_point(event: str, args: tuple[Any, ...]) -> None:
        if point(event, args):
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(kill_at_point)
    sys.argv = ["training.train", *sys.argv[2:]]
    runpy.run_module("training.train", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
