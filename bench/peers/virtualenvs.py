"""Each peer's own virtualenv under bench/.work/peers/<name>, built by the bench when missing.

The virtualenv is made from the interpreter that runs the bench (``python -m venv``) and filled
by its own pip with the pins of bench/peers/pins.py. That pip reads this machine's pip
configuration (global files and ``PIP_*`` variables) as any pip does, so a package index or
mirror configured here is used without the bench naming it. A stamp holding the pins is written
last: a virtualenv whose build was cut short, or whose pins changed, is rebuilt from scratch.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

from bench.peers.pins import PeerPins

INSTALL_TIMEOUT_S = 900.0  # a first install downloads about 0.5 GB per peer
STAMP = "bench-pins.txt"
FREEZE = "bench-freeze.txt"


class PeerUnavailable(RuntimeError):
    """A peer's virtualenv could not be built; the message says which step failed and why."""


def ensure_virtualenv(peer: PeerPins, root: Path, *, timeout: float = INSTALL_TIMEOUT_S) -> Path:
    """The Python of ``peer``'s virtualenv under ``root``, built first if missing or stale."""
    venv = root / peer.name
    python = venv / "bin" / "python"
    stamp = venv / STAMP
    wanted = "\n".join(peer.requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"   building {venv} ({', '.join(peer.requirements)})", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    log = root / f"{peer.name}-install.log"
    started = time.monotonic()
    deadline = started + timeout
    with log.open("wb") as output:
        create = [sys.executable, "-m", "venv", str(venv)]
        _step("creating the virtualenv", create, output, log, deadline)
        install = [str(python), "-m", "pip", "install", "--no-input", *peer.requirements]
        _step("pip install", install, output, log, deadline)
    freeze = subprocess.run(
        [str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
    )
    (venv / FREEZE).write_text(freeze.stdout)
    stamp.write_text(wanted)
    print(f"   built in {time.monotonic() - started:.0f} s", flush=True)
    return python


def installed_versions(python: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Versions of ``names`` in the virtualenv of ``python``, from the freeze taken at build."""
    freeze = python.parent.parent / FREEZE
    wanted = {name.lower() for name in names}
    versions = {}
    for line in freeze.read_text().splitlines() if freeze.exists() else []:
        name, _, version = line.partition("==")
        if name.lower() in wanted and version:
            versions[name.lower()] = version
    return versions


def _step(what: str, command: list[str], output: BinaryIO, log: Path, deadline: float) -> None:
    """Run one step of the build, its output into ``log``; PeerUnavailable if it fails."""
    remaining = max(deadline - time.monotonic(), 1.0)
    try:
        completed = subprocess.run(
            command, stdout=output, stderr=subprocess.STDOUT, timeout=remaining
        )
    except subprocess.TimeoutExpired as error:
        raise PeerUnavailable(f"{what} did not finish in time (log: {log})") from error
    if completed.returncode != 0:
        output.flush()
        raise PeerUnavailable(
            f"{what} failed with exit code {completed.returncode}: {_last_error(log)}"
        )


def _last_error(log: Path) -> str:
    """The lines of pip's log that say what went wrong, else its last line; and where it is."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line.strip() for line in lines if line.startswith("ERROR")]
    summary = " / ".join(errors[-3:] or lines[-1:])
    return f"{summary[:400]} (full log: {log})"
