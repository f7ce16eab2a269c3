"""Prometheus metrics of the service: what is counted, and how it is exposed at ``/metrics``.

With several worker processes each one counts in files that prometheus-client shares through
``PROMETHEUS_MULTIPROC_DIR``; ``python -m app`` gives each run a fresh directory, and a scrape
of any worker then reports the sum over all of them.

The per-request counts (requests, rows, label positives, warnings) are first tallied in plain
integers on the event loop's thread, which costs a fraction of a locked (and, with several
workers, memory-mapped) prometheus-client increment; ``flush`` adds the tallies to the
prometheus-client counters. It runs before every scrape of this worker and, with several
workers, every ``FLUSH_SECONDS`` (``app.main``), so another worker's scrape is at most that old.
The latency histogram is observed directly.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from app.inference import SMALL_BATCH_ROWS, Model
from app.repository import LoadEvent

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Requests take well under a millisecond to a few seconds (large batches).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

FLUSH_SECONDS = 1.0
# [count not yet flushed], and the latency histogram's observe (value, optional exemplar)
RequestSeries = tuple[list[int], Callable[..., None]]


class ServiceMetrics:
    """The service's metrics, in a registry of their own (one per application)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._multiprocess_dir = os.environ.get(MULTIPROCESS_ENV)
        self.requests = Counter(
            "multilabel_http_requests",
            "Requests answered, by protocol (a codec's name, control, grpc), method, route "
            "template (a gRPC method's path) and status (HTTP, or a gRPC status code's name).",
            ["protocol", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "multilabel_http_request_duration_seconds",
            "Time from receiving a request to sending its last byte.",
            ["protocol", "method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "multilabel_predicted_rows",
            "Rows (instances) predicted, by model and version.",
            ["model", "version"],
            registry=self.registry,
        )
        self.positives = Counter(
            "multilabel_label_positives",
            "Predicted rows with the label on, by model and label.",
            ["model", "label"],
            registry=self.registry,
        )
        self.out_of_range = Counter(
            "multilabel_out_of_range_warnings",
            "Feature values outside the range seen in training (one warning each).",
            ["model"],
            registry=self.registry,
        )
        self.model_events = Counter(
            "multilabel_model_events",
            "Model versions loaded, rejected (failed a check: files, signature, parity), "
            "incompatible (features or labels differ from the served version) and unloaded.",
            ["model", "event"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "multilabel_model_info",
            "1 for each model version being served, 0 once unloaded.",
            ["model", "version"],
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        self.overloads = Counter(
            "multilabel_overload_refusals",
            "Requests refused with 503 because the worker held its limit of rows in flight.",
            registry=self.registry,
        )
        self.connection_events = Counter(
            "multilabel_http_connection_events",
            "Connections ended or refused by the HTTP edge before a request reached the "
            "application, by reason (header_timeout, body_timeout, idle_timeout, "
            "headers_too_large, too_many_headers, over_connection_limit).",
            ["event"],
            registry=self.registry,
        )
        # Labelled children, looked up once (`.labels()` validates and locks on every call),
        # with the counts tallied since the last flush.
        self._request_series: dict[tuple[str, str, str, int | str], RequestSeries] = {}
        self._prediction_tallies: dict[Model, PredictionTally] = {}

    def observe_request(
        self, protocol: str, method: str, route: str, status: int | str, seconds: float
    ) -> None:
        """Count a request and observe its latency (on the event loop's thread)."""
        key = (protocol, method, route, status)
        series = self._request_series.get(key)
        if series is None:
            observe = self.latency.labels(protocol, method, route, str(status)).observe
            series = self._request_series[key] = ([0], observe)
        unflushed, observe = series
        unflushed[0] += 1
        observe(seconds)

    def observe_prediction(self, model: Model, positives: NDArray[np.bool_], warnings: int) -> None:
        """Tally the rows a model predicted, the labels it turned on, the warnings it gave (on
        the event loop's thread)."""
        tally = self._prediction_tallies.get(model)
        if tally is None:
            tally = self._prediction_tallies[model] = PredictionTally(model)
        if len(positives) <= SMALL_BATCH_ROWS:  # summed in Python: numpy's call costs more
            per_label = [sum(column) for column in zip(*positives.tolist(), strict=True)]
        else:  # a product with ones: a quarter of sum(axis=0)'s cost on a 1000-row batch
            per_label = (np.ones(len(positives), dtype=np.intp) @ positives.view(np.uint8)).tolist()
        tally.add(len(positives), per_label, warnings)

    def flush(self) -> None:
        """Add the tallies to the prometheus-client counters (on the event loop's thread)."""
        for (protocol, method, route, status), (unflushed, _) in self._request_series.items():
            if unflushed[0]:
                self.requests.labels(protocol, method, route, str(status)).inc(unflushed[0])
                unflushed[0] = 0
        for tally in self._prediction_tallies.values():
            tally.flush_into(self)

    def observe_overload(self) -> None:
        """Count a request refused by admission control."""
        self.overloads.inc()

    def observe_connection_event(self, event: str) -> None:
        """Count what the HTTP edge did to a connection (the server layer calls this)."""
        self.connection_events.labels(event).inc()

    def model_listener(self, name: str) -> Callable[[LoadEvent, int], None]:
        """A repository ``on_event`` callback that counts events and keeps the info gauge."""

        def on_event(event: LoadEvent, version: int) -> None:
            self.model_events.labels(name, event).inc()
            if event == "loaded":
                self.model_info.labels(name, str(version)).set(1)
            elif event == "unloaded":
                self.model_info.labels(name, str(version)).set(0)

        return on_event

    @property
    def shared_between_workers(self) -> bool:
        """Whether other worker processes report these metrics too (multiprocess mode)."""
        return self._multiprocess_dir is not None

    def render(self) -> bytes:
        """The text exposition format; summed over all workers in multiprocess mode. Call
        ``flush`` first, on the event loop's thread."""
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


class PredictionTally:
    """What one model version predicted since the last flush."""

    def __init__(self, model: Model):
        self.model = model
        self.rows = 0
        self.positives = [0] * len(model.metadata.labels)
        self.warnings = 0

    def add(self, rows: int, positives: list[int], warnings: int) -> None:
        self.rows += rows
        for index, count in enumerate(positives):
            self.positives[index] += count
        self.warnings += warnings

    def flush_into(self, metrics: ServiceMetrics) -> None:
        name, version = self.model.name, str(self.model.version)
        if self.rows:
            metrics.rows.labels(name, version).inc(self.rows)
        for label, count in zip(self.model.metadata.labels, self.positives, strict=True):
            if count:
                metrics.positives.labels(name, label).inc(count)
        if self.warnings:
            metrics.out_of_range.labels(name).inc(self.warnings)
        self.rows, self.warnings = 0, 0
        self.positives = [0] * len(self.positives)


@contextmanager
def multiprocess_directory(workers: int) -> Iterator[None]:
    """With several workers, a fresh directory for their shared metrics, removed at exit.

    Counts left by an earlier run would otherwise be added to this one's.
    """
    if workers == 1:
        yield
        return
    previous = os.environ.get(MULTIPROCESS_ENV)
    path = tempfile.mkdtemp(prefix="multilabel-metrics-")
    os.environ[MULTIPROCESS_ENV] = path  # read by prometheus-client in each worker at import
    try:
        yield
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous


async def flush_periodically(metrics: ServiceMetrics) -> None:
    """Flush the tallies every ``FLUSH_SECONDS``, for the scrapes other workers answer."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        metrics.flush()
