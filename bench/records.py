"""What one run records: a measurement per server and workload, and each server's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK = "ok"
NOT_APPLICABLE = "not applicable"


@dataclass
class Measurement:
    workload: str  # the workload's key
    status: str  # OK, NOT_APPLICABLE, or "not measured: <why>"
    requests_per_s: float | None = None
    rows_per_s: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    non_2xx: int | None = None
    socket_errors: int | None = None
    requests: int | None = None
    answer_bytes: int | None = None  # size of the checked first answer's body

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass
class ServerResult:
    key: str
    label: str
    workers: int
    ready_s: float | None = None
    idle_rss_mb: float | None = None
    loaded_rss_mb: float | None = None
    tensorflow_loaded: bool | None = None
    onnxruntime_loaded: bool | None = None
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    measurements: list[Measurement] = field(default_factory=list)
    # Health probes idle and under a flood (bench/probes.py), as a dict; ours only.
    probes: dict[str, Any] | None = None
    # /health/ready beside four clients sending 8 MiB hostile bodies (bench/probes.py); ours only.
    hostile: dict[str, Any] | None = None

    def get(self, workload: str) -> Measurement | None:
        """The measurement of ``workload`` (a key) if it was measured correctly, else None."""
        for measurement in self.measurements:
            if measurement.workload == workload and measurement.ok:
                return measurement
        return None

    def answer_bytes(self, workload: str) -> int | None:
        """Size of the first answer checked for ``workload``, even if the run then failed."""
        for measurement in self.measurements:
            if measurement.workload == workload and measurement.answer_bytes is not None:
                return measurement.answer_bytes
        return None
