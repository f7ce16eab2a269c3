"""The peer servers' pinned versions: the one place to change them.

Each peer's virtualenv (``bench/.work/peers/<name>``) is built with exactly these requirements;
pip resolves the rest, and the bench records what it installed (``pip freeze``) next to the
results. Changing a pin here makes the bench rebuild that virtualenv on its next run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    requirement: str
    reason: str


@dataclass(frozen=True)
class PeerPins:
    name: str
    pins: tuple[Pin, ...]

    @property
    def requirements(self) -> list[str]:
        return [pin.requirement for pin in self.pins]

    @property
    def version(self) -> str:
        """The peer's own pinned version (its first pin)."""
        return self.pins[0].requirement.partition("==")[2]


# Shared by every peer: the same inference and server stack as ours, so that the comparison
# measures the serving framework, not a different runtime or HTTP parser.
ONNXRUNTIME = Pin(
    "onnxruntime==1.32.0", "the ONNX Runtime our service runs: the same kernels on the same file"
)
NUMPY = Pin("numpy==2.4.6", "the numpy our service runs: the same tensor decoding and encoding")
UVLOOP = Pin("uvloop==0.23.0", "the event loop our service runs (uvicorn picks it when installed)")
HTTPTOOLS = Pin(
    "httptools==0.9.0",
    "uvicorn's C HTTP parser, as ours runs; MLServer does not require it, and uvicorn then "
    "falls back to the slower h11",
)

KSERVE = PeerPins(
    "kserve",
    (
        Pin("kserve==0.21.0", "the newest KServe release: its ModelServer, V1 and V2 REST"),
        ONNXRUNTIME,
        NUMPY,
        UVLOOP,
        HTTPTOOLS,
    ),
)
MLSERVER = PeerPins(
    "mlserver",
    (
        Pin("mlserver==1.7.1", "the newest MLServer release: V2 REST, custom runtimes"),
        ONNXRUNTIME,
        NUMPY,
        UVLOOP,
        HTTPTOOLS,
    ),
)
PEERS = (KSERVE, MLSERVER)
