"""Hostile requests, each against every operation that takes a body: a clear 4xx every time,
the server's memory stays bounded, and it is still ready afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.robustness.conftest import ReportFigure
from tests.robustness.contract import MESSAGE_ENVELOPES, assert_client_error, protocol_of
from tests.robustness.operations import BODY_OPERATIONS, fill_path, operation_id
from tests.robustness.servers import HeldRequest, process_status, serving
from tests.support import ServerProcess

MiB = 1024 * 1024
MAX_BODY_BYTES = 8 * MiB  # the server's default limit
FEATURES = 10
ROW = [3, 3, 6, 7, 8, 2, 11, 11, 1, 3]
LONG = 1_000_000  # characters in a "very long" string
MAX_ERROR_BYTES = 4096  # an error explains the problem; it does not echo the input back
# Peak resident memory the server may reach over the whole table; a 1 GB body must not fit.
MAX_PEAK_MEMORY = 768 * MiB


def request_body(path: str, rows: Any) -> dict[str, Any]:
    """The prediction request of the protocol at ``path`` for ``rows``."""
    if path.startswith("/v2/"):
        shape = [len(rows), FEATURES] if isinstance(rows, list) else [1, FEATURES]
        return {"inputs": [{"name": "features", "shape": shape, "datatype": "FP32", "data": rows}]}
    return {"instances": rows}


@dataclass(frozen=True)
class Hostile:
    """A request body and the status that answers it clearly, natively and on /v1 and /v2.

    The standard protocols answer 400 where the native API says 422; every protocol refuses a
    declared media type other than JSON (V2 also takes binary tensors) and reads a body without
    one as JSON.
    """

    name: str
    body: Callable[[str], bytes | Iterator[bytes]]
    native: int
    standard: int | None = None  # None: the same as native
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    declared_length: int | None = None  # announce this many bytes, send only the first ones

    def expected_status(self, path: str) -> int:
        if protocol_of(path) in MESSAGE_ENVELOPES and self.standard is not None:
            return self.standard
        return self.native


def rows_with(value: bytes) -> Callable[[str], bytes]:
    """A one-row request whose first value is ``value`` (inserted as raw JSON text)."""
    marker = 123456789

    def build(path: str) -> bytes:
        row = [marker, *ROW[1:]]
        return orjson.dumps(request_body(path, [row])).replace(str(marker).encode(), value, 1)

    return build


def json_of(document: Callable[[str], Any]) -> Callable[[str], bytes]:
    return lambda path: orjson.dumps(document(path))


def streamed(total: int, chunk: int = MiB) -> Callable[[str], Iterator[bytes]]:
    """A body streamed without a declared length: an opening, then rows, never closing."""

    def build(path: str) -> Iterator[bytes]:
        yield b'{"instances": ['
        for _ in range(total // chunk):
            yield b"[1,1,1,1,1,1,1,1,1,1]," * (chunk // 22)

    return build


def nested(depth: int) -> Callable[[str], bytes]:
    """The one-row request with its row buried ``depth`` arrays deep."""
    return lambda path: (
        orjson.dumps(request_body(path, [ROW]))
        .replace(b"[3,", b"[" * depth + b"[3,", 1)
        .replace(b"3]", b"3]" + b"]" * depth, 1)
    )


def valid(path: str) -> bytes:
    return orjson.dumps(request_body(path, [ROW]))


HOSTILE = [
    Hostile(
        "declared 1 GB body",
        lambda path: b'{"instances": [',
        413,
        declared_length=1024 * MiB,
    ),
    Hostile("64 MB streamed body", streamed(64 * MiB), 413),
    Hostile(
        "body just over the 8 MiB limit",
        lambda path: b'{"instances": [[1]], "x": "' + b"a" * MAX_BODY_BYTES + b'"}',
        413,
    ),
    Hostile("10,000-level nested arrays", nested(10_000), 400),
    Hostile(
        "10,000-level nested objects", lambda path: b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400
    ),
    Hostile("100,000 rows", json_of(lambda path: request_body(path, [ROW] * 100_000)), 413),
    Hostile("1e309", rows_with(b"1e309"), 400),
    Hostile("-1e309", rows_with(b"-1e309"), 400),
    Hostile("integer of 400 digits", rows_with(b"1" + b"0" * 400), 400),
    Hostile("beyond float32 (1e39)", rows_with(b"1e39"), 422, 400),
    Hostile("NaN", rows_with(b"NaN"), 400),
    Hostile("Infinity", rows_with(b"Infinity"), 400),
    Hostile("1 MB string as a value", rows_with(orjson.dumps("a" * LONG)), 422, 400),
    Hostile(
        "1 MB feature name",
        json_of(lambda path: request_body(path, [{"k" * LONG: 1}])),
        422,
        400,
    ),
    Hostile(
        "1 MB unknown field name",
        json_of(lambda path: {**request_body(path, [ROW]), "k" * LONG: 1}),
        422,
        200,  # the standard protocols ignore fields they do not know
    ),
    Hostile(
        "1 MB threshold string",
        json_of(lambda path: {**request_body(path, [ROW]), "threshold": "a" * LONG}),
        422,
        200,  # no such field in the standard protocols
    ),
    Hostile(
        "1 MB string as a row", json_of(lambda path: request_body(path, ["a" * LONG])), 422, 400
    ),
    Hostile("1 MB string as the body", lambda path: orjson.dumps("a" * LONG), 422, 400),
    Hostile("invalid UTF-8", lambda path: valid(path).replace(b"3", b"\xff\xfe", 1), 400),
    Hostile("invalid UTF-8 in a string", rows_with(b'"\xc3\x28"'), 400),
    Hostile("empty body", lambda path: b"", 400),
    Hostile("NUL bytes", lambda path: b"\x00" * 1000, 400),
    Hostile("JSON null", lambda path: b"null", 422, 400),
    Hostile("JSON array", lambda path: b"[1, 2, 3]", 422, 400),
    Hostile("truncated JSON", lambda path: valid(path)[:-3], 400),
    Hostile("text/plain", valid, 415, 415, {"content-type": "text/plain"}),
    Hostile(
        "form-encoded",
        lambda path: b"instances=1&instances=2",
        415,
        415,
        {"content-type": "application/x-www-form-urlencoded"},
    ),
    Hostile(
        "multipart",
        lambda path: b"--x\r\n\r\n" + valid(path) + b"\r\n--x--",
        415,
        415,
        {"content-type": "multipart/form-data; boundary=x"},
    ),
    Hostile("no content type", valid, 200, 200, {}),
]

# Model names and versions that try to leave the repository or overflow a number.
HOSTILE_PATHS = [
    ("POST", "/v2/models/..%2F..%2Fetc/infer"),
    ("POST", "/v2/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd/infer"),
    ("POST", "/v2/models/..%5C..%5Cwindows/infer"),
    ("POST", "/v2/models/multilabel%00/infer"),
    ("GET", "/v2/models/..%2F..%2Fetc%2Fpasswd"),
    ("GET", "/v2/models/..%2Fmultilabel/ready"),
    ("POST", "/v2/models/multilabel/versions/..%2F1/infer"),
    ("POST", "/v2/models/multilabel/versions/99999999999999999999999999/infer"),
    ("GET", "/v2/models/multilabel/versions/-1"),
    ("GET", "/v2/models/multilabel/versions/1e3/ready"),
    ("POST", "/v1/models/..%2F..%2Fetc:predict"),
    ("POST", "/v1/models/multilabel/versions/..%2F2:predict"),
    ("GET", "/v1/models/..%2F..%2Fetc%2Fpasswd/metadata"),
    ("GET", "/v1/models/%2Fetc%2Fpasswd"),
    ("GET", "/metadata/..%2F..%2Fetc%2Fpasswd"),
]


def send(
    hostile: Hostile, method: str, path: str, server: ServerProcess, client: httpx.Client
) -> httpx.Response:
    """The hostile request to ``path``: whole, streamed, or its start under a larger length."""
    if hostile.declared_length is None:
        return client.request(method, path, content=hostile.body(path), headers=hostile.headers)
    start = hostile.body(path)
    assert isinstance(start, bytes)
    held = HeldRequest(server, path, start, declared=hostile.declared_length)
    return held.finish(send_rest=False)


def assert_still_ready(server: ServerProcess, http_client: httpx.Client) -> None:
    assert server.process.poll() is None, server.log()
    assert http_client.get("/health/ready").status_code == 200


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=operation_id)
@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda hostile: hostile.name)
def test_hostile_body_gets_a_clear_client_error(
    hostile: Hostile,
    operation: tuple[str, str],
    server: ServerProcess,
    http_client: httpx.Client,
    trained_repository: Path,
) -> None:
    method, template = operation
    path = fill_path(template, 1)
    response = send(hostile, method, path, server, http_client)
    assert response.status_code == hostile.expected_status(path), response.text[:500]
    if response.status_code >= 400:
        assert_client_error(path, response, trained_repository)
        assert len(response.content) <= MAX_ERROR_BYTES, response.content[:300]
    assert_still_ready(server, http_client)


@pytest.mark.parametrize(("method", "path"), HOSTILE_PATHS, ids=lambda item: str(item)[:60])
def test_hostile_model_names_and_versions_get_a_clear_client_error(
    method: str,
    path: str,
    server: ServerProcess,
    http_client: httpx.Client,
    trained_repository: Path,
) -> None:
    body = orjson.dumps(request_body(path, [ROW])) if method == "POST" else None
    response = http_client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    assert_client_error(path, response, trained_repository)
    assert response.status_code in (400, 404, 422), response.text[:500]
    assert len(response.content) <= MAX_ERROR_BYTES, response.content[:300]
    assert_still_ready(server, http_client)


def test_a_request_line_past_the_header_limit_gets_431_from_the_edge(
    server: ServerProcess, http_client: httpx.Client, trained_repository: Path
) -> None:
    """A 60,000-character model name: refused while the head is parsed, before any codec
    sees it, so in the service's own (native) error shape."""
    response = http_client.get("/v2/models/" + "n" * 60_000)
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "headers_too_large"
    assert len(response.content) <= MAX_ERROR_BYTES
    assert_still_ready(server, http_client)


# The bodies that would cost the most memory if a server held them whole.
HEAVIEST = [hostile for hostile in HOSTILE if hostile.native == 413]


def test_memory_stays_bounded_under_the_largest_hostile_bodies(
    trained_repository: Path, tmp_path: Path, report_figure: ReportFigure
) -> None:
    """On a server of its own, so that it measures its own traffic however it is run: the
    refused bodies (1 GB declared, 64 MB streamed, just over 8 MiB, 100,000 rows) sent to every
    operation that takes a body, then the server's peak resident memory."""
    with serving(trained_repository, tmp_path / "server.log") as server:
        before = process_status(server.process.pid, "VmHWM")
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            for operation in BODY_OPERATIONS:
                path = fill_path(operation[1], 1)
                for hostile in HEAVIEST:
                    assert send(hostile, operation[0], path, server, client).status_code == 413
            assert client.get("/health/ready").status_code == 200
        peak = process_status(server.process.pid, "VmHWM")
        now = process_status(server.process.pid, "VmRSS")
    sent = len(BODY_OPERATIONS) * len(HEAVIEST)
    report_figure(
        "memory under hostile inputs",
        f"{sent} oversized requests: peak RSS {before / MiB:.0f} MiB before, {peak / MiB:.0f} MiB "
        f"after, RSS now {now / MiB:.0f} MiB (bound {MAX_PEAK_MEMORY / MiB:.0f} MiB)",
    )
    assert len(HEAVIEST) == 4
    assert peak <= MAX_PEAK_MEMORY
