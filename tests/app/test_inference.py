"""The inference core: loading with verification, both backends, thresholds, range checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.artifact import METADATA_FILE, ArtifactError, version_path
from app.config import Settings
from app.dataplane import thresholds_for
from app.inference import load_model
from app.main import create_app
from tests.support import MODEL_NAME, REFERENCE_INPUTS


def random_rows(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-5, 25, size=(count, 10)).astype(np.float32)


def test_keras_and_onnx_backends_agree_within_1e_5(trained_version: Path) -> None:
    onnx = load_model(trained_version, backend="onnx")
    keras = load_model(trained_version, backend="keras")
    rows = np.vstack([np.asarray(REFERENCE_INPUTS, dtype=np.float32), random_rows(500)])
    difference = np.abs(onnx.backend(rows) - keras.backend(rows)).max()
    assert difference <= 1e-5


def test_keras_backend_serves_the_same_answers(settings: Settings, client: TestClient) -> None:
    body = {"instances": [*REFERENCE_INPUTS, *random_rows(20).tolist()]}
    onnx_rows = client.post("/predict", json=body).json()["predictions"]
    with TestClient(create_app(settings.model_copy(update={"backend": "keras"}))) as keras_app:
        assert keras_app.get("/metadata").json()["backend"] == "keras"
        keras_rows = keras_app.post("/predict", json=body).json()["predictions"]
    for ours, reference in zip(onnx_rows, keras_rows, strict=True):
        assert ours["labels"] == reference["labels"]
        for label, probability in ours["probabilities"].items():
            assert probability == pytest.approx(reference["probabilities"][label], abs=1e-5)


def test_predictions_follow_the_thresholds(trained_version: Path) -> None:
    model = load_model(trained_version)
    rows = random_rows(200, seed=3)
    probabilities = model.predict(rows).probabilities
    for threshold in (0.0, 0.3, 0.5, 0.9, 1.0):
        prediction = model.predict(rows, thresholds_for(model, threshold, field="threshold"))
        assert np.array_equal(prediction.positives, probabilities >= np.float32(threshold))
    by_label = thresholds_for(model, {"label_1": 0.2}, field="threshold")
    prediction = model.predict(rows, by_label)
    assert np.array_equal(prediction.positives[:, 1], probabilities[:, 1] >= np.float32(0.2))
    assert np.array_equal(
        prediction.positives[:, [0, 2]],
        probabilities[:, [0, 2]] >= model.default_thresholds[[0, 2]],
    )


def test_without_thresholds_the_models_own_decide(trained_version: Path) -> None:
    model = load_model(trained_version)
    rows = random_rows(50, seed=4)
    prediction = model.predict(rows)
    assert prediction.thresholds.dtype == np.float32
    assert np.array_equal(
        prediction.positives, prediction.probabilities >= model.default_thresholds
    )


def test_out_of_range_lists_each_value_outside_training(trained_version: Path) -> None:
    model = load_model(trained_version)
    ranges = model.metadata.feature_ranges
    rows = np.array([[r.min for r in ranges], [r.max for r in ranges]], dtype=np.float32)
    assert len(model.out_of_range(rows)) == 0
    rows[1, 4] = ranges[4].max + 1
    rows[0, 0] = ranges[0].min - 1
    found = model.out_of_range(rows)
    located = [
        (int(row), model.metadata.features[column])
        for row, column in zip(found.rows, found.columns, strict=True)
    ]
    assert located == [(0, "x0"), (1, "x4")]
    assert found.values.tolist() == [ranges[0].min - 1, ranges[4].max + 1]


def rewrite_metadata(version: Path, change: dict[str, object]) -> None:
    path = version / METADATA_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))


@pytest.mark.parametrize("backend", ["onnx", "keras"])
def test_a_version_that_misses_its_parity_reference_is_rejected(
    repository: Path, backend: str
) -> None:
    version = version_path(repository, MODEL_NAME, 1)
    stored = json.loads((version / METADATA_FILE).read_text())
    shifted = [[p + 0.01 for p in row] for row in stored["parity"]["outputs"]]
    rewrite_metadata(version, {"parity": {**stored["parity"], "outputs": shifted}})
    with pytest.raises(ArtifactError, match="differs from the reference outputs"):
        load_model(version, backend=backend)  # type: ignore[arg-type]


def test_a_version_whose_network_takes_other_features_is_rejected(repository: Path) -> None:
    version = version_path(repository, MODEL_NAME, 1)
    stored = json.loads((version / METADATA_FILE).read_text())
    rewrite_metadata(
        version,
        {
            "features": [*stored["features"], "extra"],
            "feature_ranges": [*stored["feature_ranges"], {"min": 0, "max": 1}],
            "parity": {
                **stored["parity"],
                "inputs": [[*row, 0.0] for row in stored["parity"]["inputs"]],
            },
        },
    )
    with pytest.raises(ArtifactError, match="fails on the parity inputs"):
        load_model(version)
