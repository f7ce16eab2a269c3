"""TensorFlow and Keras, imported once, without TensorFlow's start-up chatter.

Loading TensorFlow's C++ library can print, straight to file descriptor 2 and before TensorFlow
reads ``TF_CPP_MIN_LOG_LEVEL``, an INFO line (``oneDNN custom operations are on...``, on CPUs
where oneDNN is on by default, or with ``TF_ENABLE_ONEDNN_OPTS=1``) and absl's warning that it
logged before ``absl::InitializeLog()``. Python cannot redirect that output, so during the
import file descriptor 2 is a pipe: a thread forwards every line to the real stderr except
those two, and only while the log level hides INFO lines (``TF_CPP_MIN_LOG_LEVEL`` ≥ 1, which
``training/__init__.py`` sets unless you set it yourself). Errors and warnings get through.

Every module of ``training`` that needs TensorFlow imports it from here, so the CLI's main
process and every worker process (which imports ``training.model`` to unpickle its task) load
it the same quiet way.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Sequence

START_UP_CHATTER = (
    b"All log messages before absl::InitializeLog() is called are written to STDERR",
    b"oneDNN custom operations are on",
)
"""Substrings of the lines dropped: what TensorFlow prints at load time at level INFO."""
_FORWARDER_GRACE_SECONDS = 5.0


def info_hidden() -> bool:
    """Whether TensorFlow's log level hides INFO lines (``TF_CPP_MIN_LOG_LEVEL`` ≥ 1)."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip()
    return level.isdigit() and int(level) >= 1


@contextlib.contextmanager
def stderr_without(chatter: Sequence[bytes]) -> Iterator[None]:
    """Within the block, lines written to file descriptor 2 (by C++ or Python) that contain
    any of ``chatter`` are dropped; every other line reaches the real stderr, in order."""
    sys.stderr.flush()
    real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(
        target=_forward, args=(read_end, real_stderr, tuple(chatter)), daemon=True
    )
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real_stderr, 2)  # closes the pipe's write end: the forwarder reads to the end
        forwarder.join(_FORWARDER_GRACE_SECONDS)
        if not forwarder.is_alive():
            os.close(real_stderr)


def _forward(source: int, target: int, chatter: tuple[bytes, ...]) -> None:
    pending = b""
    with os.fdopen(source, "rb", buffering=0) as stream:
        while chunk := stream.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            _write_kept(target, lines, chatter, ending=b"\n")
    if pending:
        _write_kept(target, [pending], chatter, ending=b"")


def _write_kept(target: int, lines: list[bytes], chatter: tuple[bytes, ...], ending: bytes) -> None:
    kept = [line for line in lines if not any(noise in line for noise in chatter)]
    if not kept:
        return
    data = memoryview(ending.join(kept) + ending)
    while data:
        data = data[os.write(target, data) :]


with stderr_without(START_UP_CHATTER) if info_hidden() else contextlib.nullcontext():
    import keras
    import tensorflow as tf

__all__ = ["keras", "tf"]
