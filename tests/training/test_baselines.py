"""The scikit-learn baselines, fitted on the same splits as the network."""

from __future__ import annotations

import numpy as np
import pytest

from training.baselines import BASELINES, BaselineFitter
from training.data import synthetic_dataset
from training.evaluate import Folds, cross_validate


@pytest.mark.parametrize("name", list(BASELINES))
def test_each_baseline_gives_a_probability_per_label_on_every_split(name: str) -> None:
    dataset = synthetic_dataset(n_samples=120, n_features=4, n_classes=3)
    folds = Folds.of(dataset.n_samples, n_splits=3, n_repeats=1, seed=1)
    evaluation = cross_validate(dataset, BaselineFitter(name), folds)
    assert evaluation.probabilities.shape == (1, 120, 3)
    assert ((evaluation.probabilities >= 0) & (evaluation.probabilities <= 1)).all()
    assert len(evaluation.cross_validation.splits) == 3
    # Better than always predicting the most common label set would be a low bar; chance is 1/8.
    assert evaluation.cross_validation.summary["subset_accuracy"].mean > 1 / 8


def test_a_label_constant_in_the_training_part_gets_probability_zero_or_one() -> None:
    features = np.arange(40, dtype=np.float64).reshape(20, 2)
    labels = np.array([[1, 0], [0, 0]] * 10)
    fitter = BaselineFitter("RandomForestClassifier(300)")
    probabilities = fitter(features, labels, features[:3], 0)
    assert probabilities.shape == (3, 2)
    assert probabilities[:, 1].tolist() == [0.0, 0.0, 0.0]
