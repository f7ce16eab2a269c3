"""All service configuration: environment variables prefixed ``MULTILABEL_``, with safe defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.artifact import MODEL_NAME_PATTERN

ENV_PREFIX = "MULTILABEL_"


class Settings(BaseSettings):
    """Read once at start-up; every field is the lower-case form of ``MULTILABEL_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", use_attribute_docstrings=True
    )

    model_dir: Path = Field(
        default=Path("models"),
        validation_alias=AliasChoices("MULTILABEL_MODEL_DIR", "MODEL_DIR"),
    )
    """Model repository: versions live in ``<model_dir>/<model_name>/<version>/``.
    ``MODEL_DIR`` is read too, as TensorFlow Serving's image does."""

    model_name: str = Field(
        default="multilabel",
        pattern=MODEL_NAME_PATTERN,
        validation_alias=AliasChoices("MULTILABEL_MODEL_NAME", "MODEL_NAME"),
    )
    """Name of the served model (``MODEL_NAME`` is read too)."""

    backend: Literal["onnx", "keras"] = "onnx"
    """Inference runtime: ONNX Runtime, or Keras for reference (imports TensorFlow; slow)."""

    onnx_threads: int = Field(default=1, ge=1, le=64)
    """ONNX Runtime intra-op threads per worker; 1 is best for small batches."""

    host: str = "127.0.0.1"
    """Address to bind; the container sets 0.0.0.0."""

    port: int = Field(default=8000, ge=1, le=65535)
    """TCP port to listen on."""

    grpc_port: int = Field(default=8001, ge=0, le=65535)
    """TCP port of the Open Inference Protocol over gRPC, on ``host`` (0 turns gRPC off). With
    several workers, each binds it with ``SO_REUSEPORT`` and the kernel shares connections."""

    root_path: str = Field(default="", pattern=r"^(/[A-Za-z0-9._~-]+)*$")
    """The path prefix the service is mounted under behind a proxy (e.g. ``/multilabel``), as
    uvicorn's ``--root-path``; routes answer with and without it."""

    workers: int = Field(default=1, ge=1, le=64)
    """Worker processes (``python -m app`` only; each loads its own copy of the model)."""

    graceful_timeout: int = Field(default=20, ge=0)
    """Seconds in-flight requests get to finish after SIGTERM before the process exits."""

    max_rows: int = Field(default=10_000, ge=1)
    """Most rows (instances) accepted in one request; more is a 413."""

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Largest request body accepted; larger is a 413, refused before it is read whole. Also
    the largest gRPC message (RESOURCE_EXHAUSTED past it)."""

    poll_interval: float = Field(default=10.0, ge=0)
    """Seconds between scans of the repository for new versions; 0 disables hot reload."""

    max_versions: int = Field(default=2, ge=1)
    """How many of the newest valid versions stay loaded (older ones answer 404)."""

    max_inflight_rows: int = Field(default=65_536, ge=1)
    """Most rows being processed at once per worker (admission control); a request that would
    go past it gets a 503 with ``Retry-After`` in its protocol's error shape."""

    offload_rows: int = Field(default=256, ge=1)
    """From this many rows on, inference runs in a bounded thread pool and rendering on a
    thread of its own instead of on the event loop, so that large batches never delay health
    probes (unless ``offload_array_rows`` lets them run inline)."""

    offload_array_rows: int = Field(default=8192, ge=1)
    """The same threshold for array work, counted over a turn of the event loop: the inference
    of requests whose values arrive as arrays (binary tensors, raw or typed gRPC contents,
    large JSON bodies read into arrays) and the rendering of answers, which cost less than the
    thread hop. Such work runs inline while the turn's inline rows stay under it; later work
    takes the thread hop. Unbounded, 64 connections of 1000-row batches took /health/live's p99 from
    about 60 ms to 0.55 to 1.2 s in two runs (docs/performance.md)."""

    offload_threads: int = Field(default=1, ge=1, le=64)
    """Threads of that pool, per worker. One keeps the event loop's share of the interpreter
    lock (and so health probes) largest; inference itself runs in ONNX Runtime's threads."""

    retry_after: int = Field(default=1, ge=0)
    """Seconds a client refused by admission control is told to wait (``Retry-After``)."""

    header_timeout: float = Field(default=10.0, gt=0)
    """Seconds a client has to send the request line and all headers; later gets a 408."""

    body_timeout: float = Field(default=30.0, gt=0)
    """Seconds a client has to send a declared request body once its headers arrived."""

    keep_alive_timeout: float = Field(default=5.0, gt=0)
    """Seconds an idle keep-alive connection stays open between requests."""

    write_timeout: float = Field(default=30.0, gt=0)
    """Seconds a client may go without taking any of its answer while the server's send buffer
    for it is full; then the connection is dropped."""

    max_header_bytes: int = Field(default=16_384, ge=1024)
    """Largest request line plus headers accepted; larger gets a 431 before it is kept."""

    max_header_count: int = Field(default=100, ge=8)
    """Most header fields in one request; more gets a 431."""

    max_connections: int = Field(default=1000, ge=1)
    """Open connections per worker; past it new connections are answered 503 (health probes
    excepted)."""

    grpc_max_concurrent_streams: int = Field(default=100, ge=1)
    """Most gRPC calls (HTTP/2 streams) open at once on one connection; more wait their turn."""

    grpc_deadline: float = Field(default=30.0, gt=0)
    """Seconds a gRPC call may take at most, whatever deadline its client sets (or none);
    past it, DEADLINE_EXCEEDED."""

    grpc_keepalive_time: float = Field(default=60.0, gt=0)
    """Seconds of silence on a gRPC connection before the server pings it (a peer that does
    not answer within 20 s is dropped)."""

    grpc_min_ping_interval: float = Field(default=10.0, gt=0)
    """Least seconds between a gRPC client's keepalive pings; a client that pings more often
    is sent GOAWAY (``too_many_pings``)."""

    grpc_max_connection_idle: float = Field(default=300.0, gt=0)
    """Seconds a gRPC connection may stay without calls before the server closes it."""

    api_keys: SecretStr | None = None
    """Comma-separated API keys; when set (or ``api_keys_file`` is), every request but the
    health probes needs ``Authorization: Bearer <key>``; set without a usable key, the service
    does not start. Off by default."""

    api_keys_file: Path | None = None
    """A file of API keys, one per line (a line starting with ``#`` is a comment; a ``#``
    elsewhere is part of the key); read at start-up."""

    metrics_require_key: bool = True
    """Whether ``/metrics`` also needs an API key when keys are configured."""

    trusted_keys: Path | None = None
    """An EC public key (PEM), or a directory of ``*.pem`` files: public keys, and certificates
    of PKI roots. When set, a version is served only if its OpenSSF signature verifies."""

    allow_schema_change: bool = False
    """Whether hot reload may serve a version whose features or labels (names, order, count)
    differ from the served version's; by default such a version is refused."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Threshold of the service's logs."""

    log_format: Literal["auto", "json", "text"] = "auto"
    """``json`` one object per line, ``text`` for people; ``auto`` picks text on a terminal."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
