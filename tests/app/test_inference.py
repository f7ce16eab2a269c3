"""The inference core: loading with verification, both backends, thresholds, range checks,
and the label sets ranked from the label-set head or the product of the marginals, against
distributions computed by hand (``tests/app/label_set_reference.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.artifact import METADATA_FILE, ArtifactError, version_path
from app.config import Settings
from app.dataplane import thresholds_for
from app.inference import (
    COMPARED_BLOCK_ROWS,
    SMALL_BATCH_ROWS,
    load_model,
    product_of_marginals,
)
from app.main import create_app
from tests.app.label_set_reference import assert_ranked_as, reference_for
from tests.support import MODEL_NAME, REFERENCE_INPUTS

LABELS = ["label_0", "label_1", "label_2"]


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


@pytest.mark.parametrize(
    "rows", [SMALL_BATCH_ROWS + 1, COMPARED_BLOCK_ROWS, COMPARED_BLOCK_ROWS + 1]
)
def test_range_checks_and_decisions_are_the_same_on_both_sides_of_the_compared_block(
    trained_version: Path, rows: int
) -> None:
    """Up to COMPARED_BLOCK_ROWS rows, batches are compared with per-column values repeated
    over a block of rows; past it, by broadcasting one row of them: the same answers."""
    model = load_model(trained_version)
    features = random_rows(rows, seed=rows)  # from -5 to 25: some values outside training
    ranges = model.metadata.feature_ranges
    low = np.array([r.min for r in ranges], dtype=np.float32)
    high = np.array([r.max for r in ranges], dtype=np.float32)
    expected_rows, expected_columns = np.nonzero((features < low) | (features > high))
    found = model.out_of_range(features)
    assert len(expected_rows) > 0
    assert found.rows.tolist() == expected_rows.tolist()
    assert found.columns.tolist() == expected_columns.tolist()
    prediction = model.predict(features)
    assert prediction.thresholds is model.default_thresholds
    assert np.array_equal(
        prediction.positives, prediction.probabilities >= model.default_thresholds
    )


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


def ranked_rows(count: int, seed: int) -> np.ndarray:
    """Rows like the training data (word counts), and the reference rows."""
    counts = np.random.default_rng(seed).integers(0, 15, size=(count, 10))
    return np.vstack([np.asarray(REFERENCE_INPUTS), counts]).astype(np.float32)


@pytest.mark.parametrize("backend", ["onnx", "keras"])
def test_the_label_set_head_ranks_the_sets_as_its_onnx_weights_say(
    trained_version: Path, backend: str
) -> None:
    model = load_model(trained_version, backend=backend)  # type: ignore[arg-type]
    rows = ranked_rows(200, seed=5)
    reference = reference_for(trained_version, rows)
    assert model.label_set_source == reference.source == "label_set_head"
    assert model.label_set_count == len(reference.sets) == 5  # the sets seen in training
    for k in (1, 2, model.label_set_count):
        prediction, ranking = model.rank_label_sets(rows, k)
        assert ranking.source == "label_set_head"
        assert_ranked_as(ranking.sets, ranking.probabilities, reference, k)
        np.testing.assert_array_equal(prediction.positives, ranking.sets[:, 0, :])
        np.testing.assert_array_equal(prediction.probabilities, model.predict(rows).probabilities)


def test_sigmoid_heads_rank_the_product_of_their_marginals_over_every_set(
    sigmoid_version: Path,
) -> None:
    model = load_model(sigmoid_version)
    rows = ranked_rows(200, seed=6)
    reference = reference_for(sigmoid_version, rows)
    assert model.label_set_source == reference.source == "product_of_marginals"
    assert model.label_set_count == len(reference.sets) == 2**3
    for k in (1, 3, 8):
        _, ranking = model.rank_label_sets(rows, k)
        assert ranking.source == "product_of_marginals"
        assert_ranked_as(ranking.sets, ranking.probabilities, reference, k)
    _, everything = model.rank_label_sets(rows, 8)
    np.testing.assert_allclose(everything.probabilities.sum(axis=1), 1.0, atol=1e-6)
    # Independent labels: the most probable set has each label on where p >= 0.5.
    best = model.rank_label_sets(rows, 1)[1].best
    np.testing.assert_array_equal(best, model.predict(rows).probabilities >= 0.5)


def test_the_product_of_marginals_takes_certain_labels_as_they_are() -> None:
    certain = np.asarray([[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]], dtype=np.float32)
    joint = product_of_marginals(certain)
    # Set c holds label i when bit i of c is set: {label_0} is 1, {label_0, label_2} is 5.
    assert joint[0].tolist() == [0.0, 0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0]
    assert joint[1].tolist() == [1.0, 0, 0, 0, 0, 0, 0, 0]


def test_a_version_whose_label_set_reference_differs_is_rejected(repository: Path) -> None:
    version = version_path(repository, MODEL_NAME, 1)
    stored = json.loads((version / METADATA_FILE).read_text())
    shifted = [[p + 0.01 for p in row] for row in stored["parity"]["set_outputs"]]
    rewrite_metadata(version, {"parity": {**stored["parity"], "set_outputs": shifted}})
    with pytest.raises(ArtifactError, match="differs from the reference label-set outputs"):
        load_model(version)


def test_a_version_that_names_another_output_for_its_label_sets_is_rejected(
    repository: Path,
) -> None:
    version = version_path(repository, MODEL_NAME, 1)
    stored = json.loads((version / METADATA_FILE).read_text())
    head = {**stored["label_set_distribution"], "output": "Identity:0", "output_index": 0}
    rewrite_metadata(version, {"label_set_distribution": head})
    with pytest.raises(ArtifactError, match="label-set outputs of shape"):
        load_model(version)


def test_a_version_whose_label_sets_name_an_unknown_label_is_rejected(repository: Path) -> None:
    version = version_path(repository, MODEL_NAME, 1)
    stored = json.loads((version / METADATA_FILE).read_text())
    rewrite_metadata(version, {"label_sets": [*stored["label_sets"][:-1], ["label_9"]]})
    with pytest.raises(ArtifactError, match="label_sets may name only the model's labels"):
        load_model(version)
