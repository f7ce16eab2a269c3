"""Helpers around real server processes: starting, probing, measuring, holding requests open."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support import MODEL_NAME, ServerProcess, running_server


@contextmanager
def serving(
    repository: Path,
    log_path: Path,
    *,
    poll_interval: float = 0,
    command: list[str] | None = None,
    **settings: str,
) -> Iterator[ServerProcess]:
    """``python -m app`` (or ``command``) serving ``repository``; yields once it is ready (a
    model loaded).

    ``settings`` are more ``MULTILABEL_*`` variables, by lower-case field name.
    """
    env = {
        "MULTILABEL_MODEL_DIR": str(repository),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_POLL_INTERVAL": str(poll_interval),
        **{f"MULTILABEL_{name.upper()}": value for name, value in settings.items()},
    }
    with running_server(env, log_path, command=command, ready_path="/health/ready") as server:
        yield server


def served_version(server: ServerProcess) -> int:
    version: int = httpx.get(server.base_url + "/health", timeout=5).json()["model"]["version"]
    return version


def wait_for(condition: Any, what: str, server: ServerProcess, timeout: float = 30.0) -> None:
    """Poll ``condition()`` until it holds; fail with the server's log after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s\n{server.log()}"
        time.sleep(0.05)


def accepts_connections(server: ServerProcess) -> bool:
    address = httpx.URL(server.base_url)
    try:
        socket.create_connection((address.host, address.port or 80), timeout=1).close()
    except OSError:
        return False
    return True


def process_status(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status (``VmRSS``, ``VmHWM``...), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for process {pid}")


def reset_peak_memory(pid: int) -> None:
    """Restart the process's VmHWM (its peak resident memory) from its current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class HeldRequest:
    """A POST whose body is sent but for its last bytes: in flight until ``finish()``."""

    def __init__(self, server: ServerProcess, path: str, body: bytes, *, declared: int = 0):
        address = httpx.URL(server.base_url)
        self.url = address.join(path)
        self.connection = HTTPConnection(address.host, address.port, timeout=30)
        self.rest = body[len(body) // 2 :]
        self.connection.putrequest("POST", path)
        self.connection.putheader("content-type", "application/json")
        self.connection.putheader("content-length", str(declared or len(body)))
        self.connection.endheaders(body[: len(body) // 2])

    def finish(self, *, send_rest: bool = True) -> httpx.Response:
        """Send the rest of the body (unless the answer comes without it) and read the answer."""
        try:
            if send_rest:
                self.connection.send(self.rest)
            answer = self.connection.getresponse()
            return httpx.Response(
                answer.status,
                headers=answer.getheaders(),
                content=answer.read(),
                request=httpx.Request("POST", self.url),
            )
        finally:
            self.connection.close()


def predict_body(rows: Sequence[Sequence[float]]) -> bytes:
    return orjson.dumps({"instances": rows})
