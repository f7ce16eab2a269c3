"""The committed default model is what the training CLI makes: retrained here from scratch.

``models/multilabel/1/`` is committed so that a fresh clone serves at once. This retrains the
default preset with the real CLI, exactly as the committed version records it was made except
for the scikit-learn baselines (which the served model does not depend on), and checks that the
result is the same model (both outputs, on every training row), with the same calibration
step, the same evaluation and the same figures on the fresh draws. The baselines are then
checked on their own: each one refitted on the first splits, and on all the training rows for
the fresh draws, must give the committed figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from pydantic import BaseModel

from app.artifact import ONNX_FILE, CrossValidation, Metadata, read_artifact, version_path
from tests.support import MODEL_NAME, REPO_ROOT
from training.baselines import BaselineFitter
from training.data import synthetic_dataset
from training.evaluate import Folds, cross_validate
from training.fresh import fresh_draws, score_fresh_draws
from training.report import CARD_FILE
from training.train import main as train_main

COMMITTED = version_path(REPO_ROOT / "models", MODEL_NAME, 1)
COMMAND = "python -m training.train"
OUTPUT_TOLERANCE = 1e-5
"""Largest difference allowed between the committed and the retrained outputs (both the labels'
and the label sets'). The default network's weights are counted, not trained: the same data
gives the same float64 counts on any machine, and only float32 rounding in the last steps can
differ across CPUs. On the same libraries and CPU the outputs are identical (measured: 0.0)."""
ACCURACY_TOLERANCE = 0.005
"""Largest difference allowed in a mean subset accuracy over the 30 splits: 15 of the 3000
out-of-fold decisions, below the figure's own uncertainty (std over the splits / sqrt(30),
about 0.007); an identical stack gives exactly 0."""
SPLIT_TOLERANCE = 0.02
"""Largest difference allowed in one split's subset accuracy (2 of its 100 rows) when a
baseline is refitted: rounding in another BLAS may move a row at a decision boundary, a change
of the baseline moves far more."""
SPOT_SPLITS = 1
"""Splits on which each baseline is refitted, beside its fit for the fresh draws: a change of a
baseline moves its figures on any split, and each split costs a full fit of every baseline."""


@pytest.fixture(scope="module")
def committed() -> Metadata:
    return read_artifact(COMMITTED)  # every file checked against its SHA-256


@pytest.fixture(scope="module")
def retrained_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    card = (COMMITTED / CARD_FILE).read_text(encoding="utf-8")
    assert f"by `{COMMAND}`" in card, "the committed version was not made by the default command"
    root = tmp_path_factory.mktemp("retrained")
    # One process (results are identical for any --jobs), no baselines: checked below.
    arguments = ["--output", str(root), "--quiet", "--jobs", "1", "--no-baselines"]
    assert train_main(arguments) == 0
    return version_path(root, MODEL_NAME, 1)


@pytest.fixture(scope="module")
def retrained(retrained_version: Path) -> Metadata:
    return read_artifact(retrained_version)


def onnx_outputs(version: Path, features: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(version / ONNX_FILE), providers=["CPUExecutionProvider"])
    return list(session.run(None, {session.get_inputs()[0].name: features.astype(np.float32)}))


def test_the_committed_version_is_the_default_preset_on_the_reference_data(
    committed: Metadata,
) -> None:
    assert committed.training["preset"] == "default"
    assert committed.data.fingerprint == synthetic_dataset().fingerprint()
    assert committed.evaluation is not None
    assert (committed.evaluation.n_splits, committed.evaluation.n_repeats) == (10, 3)
    assert committed.evaluation.random_state == 1
    assert committed.selection is not None
    assert committed.selection.random_state != committed.evaluation.random_state
    assert committed.baselines is not None
    assert "label-powerset MultinomialNB" in committed.baselines


def test_retraining_gives_the_same_network(
    retrained_version: Path, retrained: Metadata, committed: Metadata
) -> None:
    assert retrained.data.fingerprint == committed.data.fingerprint
    settings = {key: value for key, value in retrained.training.items() if key != "seconds"}
    assert settings == {k: v for k, v in committed.training.items() if k != "seconds"}
    assert retrained.label_sets == committed.label_sets
    assert retrained.thresholds == committed.thresholds
    # Figures computed in float32 by TensorFlow may differ in their last bits with oneDNN's
    # custom operations on (TF_ENABLE_ONEDNN_OPTS=1); everything else must be equal.
    for field in ("label_set_distribution", "calibration"):
        assert_equal_but_rounding(getattr(retrained, field), getattr(committed, field), field)
    rows = np.vstack([synthetic_dataset().features, np.array(committed.parity.inputs)])
    again = onnx_outputs(retrained_version, rows)
    for ours, theirs in zip(again, onnx_outputs(COMMITTED, rows), strict=True):
        assert np.abs(ours - theirs).max() <= OUTPUT_TOLERANCE


def assert_equal_but_rounding(actual: Any, expected: Any, where: str) -> None:
    """Equal all the way down (pydantic models as their fields), floats to 1e-6: a relative
    1e-6, or an absolute one for differences of losses, whose cancellation loses digits."""
    if isinstance(expected, BaseModel):
        assert type(actual) is type(expected), where
        actual, expected = dict(actual), dict(expected)
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert actual.keys() == expected.keys(), where
        for key in expected:
            assert_equal_but_rounding(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(actual, list | tuple), where
        assert len(actual) == len(expected), where
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            assert_equal_but_rounding(left, right, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-6, abs=1e-6), where
    else:
        assert actual == expected, where


def evaluations(metadata: Metadata) -> dict[str, CrossValidation]:
    assert metadata.evaluation is not None
    assert metadata.limit is not None
    assert metadata.limit.evaluation is not None
    return {"ours": metadata.evaluation, "limit": metadata.limit.evaluation}


def test_retraining_gives_the_same_evaluation_and_fresh_draw_figures(
    retrained: Metadata, committed: Metadata
) -> None:
    expected, actual = evaluations(committed), evaluations(retrained)
    for name, result in expected.items():
        for metric in ("subset_accuracy", "joint_subset_accuracy"):
            change = actual[name].summary[metric].mean - result.summary[metric].mean
            assert abs(change) <= ACCURACY_TOLERANCE, (name, metric, change)
    # The limit needs no training: it must come out exactly the same.
    assert actual["limit"] == expected["limit"]
    assert committed.expected_accuracy is not None
    assert retrained.expected_accuracy is not None
    ours, theirs = retrained.expected_accuracy.fresh_draws, committed.expected_accuracy.fresh_draws
    assert ours is not None
    assert theirs is not None
    assert (ours.first_row, ours.n_rows, ours.generator_call) == (
        theirs.first_row,
        theirs.n_rows,
        theirs.generator_call,
    )
    for again, before in zip(ours.decisions, theirs.decisions, strict=True):
        assert again.limit == before.limit
        assert abs(again.subset_accuracy - before.subset_accuracy) <= 1e-3
    assert ours.limit == theirs.limit


def test_each_baseline_refitted_gives_the_committed_figures(committed: Metadata) -> None:
    dataset = synthetic_dataset()
    assert committed.baselines is not None
    assert committed.expected_accuracy is not None
    assert committed.expected_accuracy.fresh_draws is not None
    evaluation = committed.evaluation
    assert evaluation is not None
    every = Folds.of(dataset.n_samples, n_splits=10, n_repeats=3, seed=evaluation.random_state)
    folds = Folds(every.n_splits, every.n_repeats, every.seed, every.splits[:SPOT_SPLITS])
    fresh = fresh_draws(dataset)
    assert fresh is not None
    on_fresh = {}
    for name, recorded in committed.baselines.items():
        fitter = BaselineFitter(name)
        again = cross_validate(dataset, fitter, folds).cross_validation.splits
        for split, before in zip(again, recorded.splits[:SPOT_SPLITS], strict=True):
            change = split["subset_accuracy"] - before["subset_accuracy"]
            assert abs(change) <= SPLIT_TOLERANCE, (name, change)
        on_fresh[name] = fitter(dataset.features, dataset.labels, fresh.features, 1)
    committed_fresh = committed.expected_accuracy.fresh_draws.baselines
    assert committed_fresh is not None
    # Scored as training scores them: the baselines' part of the fresh-draw record.
    record = score_fresh_draws(fresh, next(iter(on_fresh.values())), [0.5] * 3, on_fresh).record
    assert record.baselines is not None
    for name, scores in record.baselines.items():
        for again, before in zip(scores, committed_fresh[name], strict=True):
            assert abs(again.subset_accuracy - before.subset_accuracy) <= 2e-3, name
