"""Settings: safe defaults, the documented prefix, and TensorFlow Serving's variable names."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MODEL_DIR",
        "MODEL_NAME",
        "MULTILABEL_MODEL_DIR",
        "MULTILABEL_MODEL_NAME",
        "MULTILABEL_HOST",
        "MULTILABEL_MAX_ROWS",
        "MULTILABEL_MAX_INFLIGHT_ROWS",
        "MULTILABEL_OFFLOAD_ROWS",
        "MULTILABEL_API_KEYS",
        "MULTILABEL_API_KEYS_FILE",
        "MULTILABEL_METRICS_REQUIRE_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_safe() -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert (settings.model_dir, settings.model_name) == (Path("models"), "multilabel")
    assert settings.backend == "onnx"


def test_access_control_is_off_and_admission_on_by_default() -> None:
    settings = Settings()
    assert (settings.api_keys, settings.api_keys_file) == (None, None)
    assert settings.metrics_require_key is True
    assert settings.offload_rows <= settings.max_rows <= settings.max_inflight_rows


def test_admission_and_keys_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MULTILABEL_MAX_INFLIGHT_ROWS", "2000")
    monkeypatch.setenv("MULTILABEL_OFFLOAD_ROWS", "64")
    monkeypatch.setenv("MULTILABEL_API_KEYS", "first,second")
    monkeypatch.setenv("MULTILABEL_METRICS_REQUIRE_KEY", "false")
    settings = Settings()
    assert (settings.max_inflight_rows, settings.offload_rows) == (2000, 64)
    assert settings.api_keys is not None
    assert settings.api_keys.get_secret_value() == "first,second"
    assert settings.metrics_require_key is False
    assert "first" not in repr(settings)
    assert "first" not in str(settings.model_dump())


def test_tensorflow_serving_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", "/srv/models")
    monkeypatch.setenv("MODEL_NAME", "tags")
    assert (Settings().model_dir, Settings().model_name) == (Path("/srv/models"), "tags")


def test_prefixed_names_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", "/srv/models")
    monkeypatch.setenv("MULTILABEL_MODEL_DIR", "/opt/models")
    monkeypatch.setenv("MULTILABEL_MAX_ROWS", "12")
    assert Settings().model_dir == Path("/opt/models")
    assert Settings().max_rows == 12


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MULTILABEL_MODEL_NAME", "../etc"),
        ("MULTILABEL_MAX_ROWS", "0"),
        ("MULTILABEL_BACKEND", "torch"),
        ("MULTILABEL_PORT", "70000"),
        ("MULTILABEL_MAX_INFLIGHT_ROWS", "0"),
        ("MULTILABEL_OFFLOAD_THREADS", "0"),
        ("MULTILABEL_BODY_TIMEOUT", "0"),
        ("MULTILABEL_RETRY_AFTER", "-1"),
    ],
)
def test_unsafe_or_impossible_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()
