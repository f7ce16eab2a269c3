"""All service configuration: environment variables prefixed ``MULTILABEL_``, with safe defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
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

    workers: int = Field(default=1, ge=1, le=64)
    """Worker processes (``python -m app`` only; each loads its own copy of the model)."""

    graceful_timeout: int = Field(default=20, ge=0)
    """Seconds in-flight requests get to finish after SIGTERM before the process exits."""

    max_rows: int = Field(default=10_000, ge=1)
    """Most rows (instances) accepted in one request; more is a 413."""

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Largest request body accepted; larger is a 413, refused before it is read whole."""

    poll_interval: float = Field(default=10.0, ge=0)
    """Seconds between scans of the repository for new versions; 0 disables hot reload."""

    max_versions: int = Field(default=2, ge=1)
    """How many of the newest valid versions stay loaded (older ones answer 404)."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Threshold of the service's logs."""

    log_format: Literal["auto", "json", "text"] = "auto"
    """``json`` one object per line, ``text`` for people; ``auto`` picks text on a terminal."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
