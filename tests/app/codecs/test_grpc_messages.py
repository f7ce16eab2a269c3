"""The vendored gRPC spec is the published one, and the committed messages are what
``grpcio-tools`` generates from it (``python -m tests.app.codecs.test_grpc_messages`` writes
them anew)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from grpc_tools import protoc

from app.codecs import oip_grpc
from tests.support import REPO_ROOT

PACKAGE = Path(oip_grpc.__file__).parent
PROTO = PACKAGE / "open_inference_grpc.proto"
PROTO_SHA256 = "0f715460d60b014a23e06ac8e768cfa3d8336221cdb66bd7aeeab6dc27620b0f"
GENERATED = ("open_inference_grpc_pb2.py", "open_inference_grpc_pb2.pyi")
DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
OWN_POOL = (
    "# A pool of its own: Triton's and KServe's clients register the same names in the\n"
    "# default one (app/codecs/oip_grpc/SOURCE.md).\n"
    "POOL = _descriptor_pool.DescriptorPool()\n"
    "DESCRIPTOR = POOL.AddSerializedFile("
)


def generated() -> dict[str, str]:
    """The messages as grpcio-tools writes them from the vendored spec, in a pool of their own."""
    with tempfile.TemporaryDirectory() as output:
        code = protoc.main(
            ["", f"-I{PACKAGE}", f"--python_out={output}", f"--pyi_out={output}", PROTO.name]
        )
        assert code == 0
        files = {name: (Path(output) / name).read_text() for name in GENERATED}
    assert files[GENERATED[0]].count(DEFAULT_POOL) == 1
    files[GENERATED[0]] = files[GENERATED[0]].replace(DEFAULT_POOL, OWN_POOL)
    return files


def test_the_vendored_spec_is_the_published_one() -> None:
    assert hashlib.sha256(PROTO.read_bytes()).hexdigest() == PROTO_SHA256
    shared = REPO_ROOT.parent / "shared" / "specs" / PROTO.name
    if shared.exists():  # beside a checkout on the team's machines: the same bytes
        assert shared.read_bytes() == PROTO.read_bytes()


def test_the_committed_messages_are_generated_from_the_spec() -> None:
    for name, text in generated().items():
        assert (PACKAGE / name).read_text() == text, (
            f"{name} differs from what grpcio-tools generates: "
            "run python -m tests.app.codecs.test_grpc_messages"
        )


def test_the_messages_live_in_their_own_descriptor_pool() -> None:
    from google.protobuf import descriptor_pool

    from app.codecs.oip_grpc import open_inference_grpc_pb2 as messages

    assert messages.DESCRIPTOR.pool is messages.POOL
    assert messages.POOL is not descriptor_pool.Default()
    request = messages.ModelInferRequest(model_name="multilabel", raw_input_contents=[b"\0"])
    assert messages.ModelInferRequest.FromString(request.SerializeToString()) == request


if __name__ == "__main__":
    for name, text in generated().items():
        (PACKAGE / name).write_text(text)
        print(f"wrote {PACKAGE.relative_to(REPO_ROOT) / name}")
