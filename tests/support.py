"""Helpers for tests: training the session's small model, running a real server process."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from filelock import FileLock

from training.train import main as train_main

MODEL_NAME = "multilabel"
REPO_ROOT = Path(__file__).resolve().parent.parent
# The default preset (its network's weights counted from the data: a label-set softmax with two
# ONNX outputs, as served by default) on few folds, no baselines: really trained and
# cross-validated in seconds, in this process (workers would each import TensorFlow first).
# --epochs and --ensemble bound the run should a test ask for a gradient fit (--estimator).
SMALL_TRAINING_ARGS = (
    *("--epochs", "40", "--folds", "2", "--repeats", "1"),
    *("--ensemble", "1", "--jobs", "1", "--no-baselines"),
)
# A model with sigmoid heads (no label-set head), fitted in seconds: its marginals are real,
# its accuracy is not the point.
SIGMOID_TRAINING_ARGS = ("--head", "sigmoid", "--epochs", "3", "--no-cv")
# The user property under which a test reports a figure it measured (printed at the end).
FIGURE_PROPERTY = "reliability figure"
REFERENCE_INPUTS = [[3, 3, 6, 7, 8, 2, 11, 11, 1, 3], [1, 1, 2, 4, 8, 10, 8, 8, 5, 6]]


def train_small_model(repository: Path, *extra_args: str) -> None:
    """Publish the next version of a small model into ``repository`` with the real CLI."""
    code = train_main([*SMALL_TRAINING_ARGS, "--output", str(repository), *extra_args])
    assert code == 0


def trained_once(tmp_path_factory: pytest.TempPathFactory, name: str, *extra_args: str) -> Path:
    """A repository holding version 1 of a small model, trained by the real CLI once per test
    run, however many pytest-xdist workers share the run: the first to ask trains it, under a
    file lock; the others wait for it, then read the same files. Read-only for tests."""
    base = tmp_path_factory.getbasetemp()
    # Each xdist worker has its own base directory; their common parent belongs to the run.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root, done = shared / name, shared / f"{name}.trained"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            train_small_model(root, *extra_args)
            done.touch()
    return root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(
    env: Mapping[str, str],
    log_path: Path,
    *,
    command: list[str] | None = None,
    ready_path: str = "/health/live",
    timeout: float = 30.0,
    port: int | None = None,
) -> Iterator[ServerProcess]:
    """Start ``python -m app`` (or ``command``) on 127.0.0.1; stop it after.

    The port is a free one, or ``port`` (for a ``command`` that must name it itself).
    """
    port = port or free_port()
    full_env = {
        **os.environ,
        "MULTILABEL_HOST": "127.0.0.1",
        "MULTILABEL_PORT": str(port),
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command or [sys.executable, "-m", "app"],
            env=full_env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_until_answering(server, ready_path, timeout)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _status(base_url: str, path: str) -> int | None:
    """The status of ``GET path``, or None when nothing answers. Plain http.client: httpx
    builds a TLS context for every call, which costs a tenth of a second on a busy machine."""
    address = httpx.URL(base_url)
    connection = http.client.HTTPConnection(address.host, address.port, timeout=1.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _wait_until_answering(server: ServerProcess, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        if _status(server.base_url, path) in range(200, 500):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not answer {path} within {timeout} s:\n{server.log()}")
