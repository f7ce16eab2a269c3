"""Every example the docs show is what the committed default model answers, byte for byte.

In the pages listed below, each ```console block holds commands (``$ ...``, continued over
lines while a quote is open) against ``127.0.0.1:8000``, each followed by its output; each
```python block that a ```text block follows is a program and what it prints (gRPC programs
call ``127.0.0.1:8001``). The test runs
them all against one real server on the committed default model (``models/``) and compares.
``.venv/bin/python -m tests.docs.test_examples`` rewrites the outputs in those pages from the
same runs (after the model, or the service, changed what it answers).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import MODEL_NAME, REPO_ROOT, ServerProcess, free_port, running_server

# The pages whose examples are runs of the default model (the others show commands only, or
# set-ups these runs cannot make: API keys, other model repositories, containers).
CHECKED_PAGES = ["README.md", "docs/api.md", "docs/protocols.md", "docs/grpc.md"]
DOCUMENTED_ADDRESS = "127.0.0.1:8000"
DOCUMENTED_GRPC_ADDRESS = "127.0.0.1:8001"
COMMAND_TIMEOUT_SECONDS = 60
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


@dataclass
class Example:
    """One thing to run and the output the page shows for it."""

    page: str
    language: str  # "console": a shell command; "python": a program
    code: str
    output: str
    start: int  # where the output sits in the page's text
    end: int

    @property
    def name(self) -> str:
        first = self.code.strip().splitlines()[0]
        return f"{self.page}: {first[:80]}"

    def run(self, server: DocumentedServer) -> str:
        code = self.code.replace(DOCUMENTED_ADDRESS, server.address).replace(
            DOCUMENTED_GRPC_ADDRESS, server.grpc_address
        )
        command = (
            ["bash", "-c", code] if self.language == "console" else [sys.executable, "-c", code]
        )
        finished = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        assert not finished.stderr.strip() or finished.stdout, finished.stderr  # e.g. jq missing
        return finished.stdout.rstrip("\n")


def examples(page: str) -> list[Example]:
    """The examples of one page, in order."""
    text = (REPO_ROOT / page).read_text()
    blocks = list(_BLOCK.finditer(text))
    found: list[Example] = []
    for index, block in enumerate(blocks):
        language, body = block.group(1), block.group(2)
        if language == "console":
            found += _console_examples(page, body, block.start(2))
        elif language == "python" and index + 1 < len(blocks):
            following = blocks[index + 1]
            between = text[block.end() : following.start()]
            if following.group(1) == "text" and not between.strip():
                output = following.group(2).rstrip("\n")
                start = following.start(2)
                found.append(Example(page, "python", body, output, start, start + len(output)))
    return found


def _console_examples(page: str, body: str, offset: int) -> list[Example]:
    lines = body.splitlines(keepends=True)
    found: list[Example] = []
    position = offset
    index = 0
    while index < len(lines):
        assert lines[index].startswith("$ "), (
            f"{page}: console line without a command: {lines[index]!r}"
        )
        command = lines[index][2:]
        position += len(lines[index])
        index += 1
        while not _complete(command):
            command += lines[index]
            position += len(lines[index])
            index += 1
        start = position
        output_lines = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output_lines.append(lines[index])
            position += len(lines[index])
            index += 1
        output = "".join(output_lines).rstrip("\n")
        found.append(Example(page, "console", command, output, start, start + len(output)))
    return found


def _complete(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:  # a quote still open: the command goes on on the next line
        return False
    return True


ALL_EXAMPLES = [example for page in CHECKED_PAGES for example in examples(page)]


@dataclass
class DocumentedServer:
    """The server the examples run against: its HTTP and gRPC addresses."""

    process: ServerProcess
    grpc_port: int

    @property
    def address(self) -> str:
        return self.process.base_url.removeprefix("http://")

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


@contextmanager
def default_model_server(log_path: Path) -> Iterator[DocumentedServer]:
    """``python -m app`` on the committed default model, with the default settings."""
    grpc_port = free_port()
    env = {
        "MULTILABEL_MODEL_DIR": str(REPO_ROOT / "models"),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_POLL_INTERVAL": "0",
        "MULTILABEL_LOG_LEVEL": "warning",
        "MULTILABEL_GRPC_PORT": str(grpc_port),
    }
    with running_server(env, log_path, ready_path="/health/ready") as server:
        yield DocumentedServer(server, grpc_port)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocumentedServer]:
    with default_model_server(tmp_path_factory.mktemp("examples") / "server.log") as process:
        yield process


def test_the_pages_show_examples_of_every_protocol() -> None:
    commands = " ".join(example.code for example in ALL_EXAMPLES)
    for path in ("/predict", "/v2/models/multilabel/infer", "/v1/models/multilabel:predict"):
        assert path in commands
    assert DOCUMENTED_GRPC_ADDRESS in commands  # the Open Inference Protocol over gRPC
    readme = [example for example in ALL_EXAMPLES if example.page == "README.md"]
    assert len(readme) >= 3


@pytest.mark.parametrize("example", ALL_EXAMPLES, ids=[e.name for e in ALL_EXAMPLES])
def test_each_example_shows_what_the_default_model_answers(
    server: DocumentedServer, example: Example
) -> None:
    if example.language == "console":
        assert DOCUMENTED_ADDRESS in example.code, "a command these runs cannot check"
    assert example.run(server) == example.output


def rewrite_outputs(server: DocumentedServer) -> list[str]:
    """Write each example's real output into its page; the pages that changed."""
    changed = []
    for page in CHECKED_PAGES:
        path = REPO_ROOT / page
        text = path.read_text()
        # From the end, so that earlier positions stay valid.
        for example in reversed(examples(page)):
            text = (
                text[: example.start]
                + _with_newline(example.run(server), example)
                + text[example.end :]
            )
        if text != path.read_text():
            path.write_text(text)
            changed.append(page)
    return changed


def _with_newline(output: str, example: Example) -> str:
    """An example that showed no output yet gets its line."""
    if example.output or not output:
        return output
    return output + "\n"


if __name__ == "__main__":
    import tempfile

    with (
        tempfile.TemporaryDirectory() as scratch,
        default_model_server(Path(scratch) / "server.log") as running,
    ):
        for name in rewrite_outputs(running):
            print(f"rewrote {name}")
