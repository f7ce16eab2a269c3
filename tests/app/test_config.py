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
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_safe() -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert (settings.model_dir, settings.model_name) == (Path("models"), "multilabel")
    assert settings.backend == "onnx"


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
    ],
)
def test_unsafe_or_impossible_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()
