"""Server processes: start on free ports, wait until ready, stop; memory and loaded libraries
read from /proc, from outside the server."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.answers import send

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
# Placeholders a server's command and environment may hold: its HTTP port, then ports for
# whatever else it listens on (a peer's gRPC and metrics servers).
PORT_PLACEHOLDERS = ("{port}", "{port2}", "{port3}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    ready_s: float


@contextmanager
def running(
    command: Sequence[str],
    env: Mapping[str, str],
    ready_path: str,
    log_path: Path,
    cwd: Path,
) -> Iterator[Running]:
    """The server started with its placeholders filled in, once it answers 200 on
    ``ready_path``; stopped (SIGTERM, then SIGKILL) on exit."""
    ports = {placeholder: str(free_port()) for placeholder in PORT_PLACEHOLDERS}
    full_env = {key: _fill(value, ports) for key, value in {**os.environ, **env}.items()}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            [_fill(part, ports) for part in command],
            env=full_env,
            cwd=cwd,
            stdout=log,
            stderr=log,
        )
    base_url = f"http://127.0.0.1:{ports['{port}']}"
    try:
        ready_s = _wait_ready(process, base_url + ready_path, started, log_path)
        yield Running(process, base_url, ready_s)
    finally:
        _stop(process)


def _fill(text: str, ports: Mapping[str, str]) -> str:
    for placeholder, port in ports.items():
        text = text.replace(placeholder, port)
    return text


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, started: float, log_path: Path
) -> float:
    while time.monotonic() - started < READY_TIMEOUT_S:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"exited with code {process.returncode}:\n{tail}")
        try:
            if send("GET", url, timeout=1).status == 200:
                return time.monotonic() - started
        except (OSError, TimeoutError):
            pass  # not listening yet
        time.sleep(0.01)
    raise RuntimeError(f"not ready within {READY_TIMEOUT_S:.0f} s (log: {log_path})")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def rss_mb(pid: int) -> float:
    """Resident memory of the process and its descendants, in MB."""
    total_kb = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def library_loaded(pid: int, needle: str) -> bool:
    """Whether any process of the tree has a file whose path contains ``needle`` mapped:
    the proof, from outside, that a library was (or was not) imported."""
    for member in process_tree(pid):
        try:
            maps = Path(f"/proc/{member}/maps").read_text()
        except OSError:
            continue
        if needle in maps:
            return True
    return False


class PeakRss:
    """Samples the resident memory of a process tree in the background; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(self.interval)
