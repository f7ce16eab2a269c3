"""Per-label threshold tuning, and its honest (cross-fitted) evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import Dataset
from training.evaluate import Evaluation, Folds, cross_validation_of, evaluate_thresholds
from training.metrics import multilabel_metrics
from training.thresholds import OBJECTIVE_METRIC, Objective, tune_thresholds

OBJECTIVES: list[Objective] = ["f1", "subset_accuracy"]
# Label a separates only below 0.5 (positives 0.35-0.45, negatives up to 0.25); label b at 0.5.
LABELS = np.array([[1, 1], [1, 0], [1, 1], [0, 0], [0, 1], [0, 0]])
PROBABILITIES = np.array(
    [[0.35, 0.9], [0.40, 0.1], [0.45, 0.8], [0.10, 0.2], [0.20, 0.7], [0.25, 0.3]]
)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_tuning_finds_the_separating_threshold_nearest_one_half(objective: Objective) -> None:
    # Every threshold in (0.25, 0.35] separates label a; 0.35 is the one nearest 0.5.
    assert tune_thresholds(LABELS, PROBABILITIES, objective).tolist() == [0.35, 0.5]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_tuning_keeps_one_half_when_nothing_scores_better(objective: Objective) -> None:
    probabilities = np.where(LABELS == 1, 0.9, 0.1)
    assert tune_thresholds(LABELS, probabilities, objective).tolist() == [0.5, 0.5]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_tuned_thresholds_never_score_below_one_half_on_the_tuning_data(
    objective: Objective,
) -> None:
    random = np.random.default_rng(7)
    labels = random.integers(0, 2, size=(300, 3))
    probabilities = np.clip(labels * 0.3 + random.uniform(0.0, 0.7, size=labels.shape), 0, 1)
    metric = OBJECTIVE_METRIC[objective]
    names = ["a", "b", "c"]
    tuned = tune_thresholds(labels, probabilities, objective)
    at_half = multilabel_metrics(labels, probabilities, np.full(3, 0.5), names)[metric]
    assert multilabel_metrics(labels, probabilities, tuned, names)[metric] > at_half


def test_cross_fitted_scores_never_use_the_fold_being_scored() -> None:
    # One fold's positives sit at 0.3, everyone else's at 0.7; negatives are at 0.2 throughout.
    labels = np.array([[1], [0]] * 10)
    folds = Folds.of(len(labels), n_splits=2, n_repeats=1, seed=0)
    odd_fold = folds.splits[0][1]
    probabilities = np.where(labels == 1, 0.7, 0.2)
    probabilities[odd_fold] = np.where(labels[odd_fold] == 1, 0.3, 0.2)
    dataset = Dataset(
        features=np.zeros((len(labels), 1)),
        labels=labels,
        feature_names=["x"],
        label_names=["a"],
        source="test",
    )
    splits = [
        multilabel_metrics(labels[test], probabilities[test], np.array([0.5]), ["a"])
        for _, test in folds.splits
    ]
    evaluation = Evaluation(
        folds=folds,
        probabilities=probabilities[np.newaxis].astype(np.float32),
        cross_validation=cross_validation_of(folds, splits),
    )
    tuning = evaluate_thresholds(dataset, evaluation, "subset_accuracy")
    # Tuned on everything, 0.3 catches every positive; tuned without the odd fold, 0.5 does
    # not catch the odd fold's positives, and its cross-fitted score shows it.
    assert tuning.tuned.tolist() == [0.3]
    scored = tuning.cross_fitted.splits
    assert scored[0]["threshold[a]"] == 0.5
    assert scored[0]["subset_accuracy"] < 1.0
    assert scored[1]["subset_accuracy"] == 1.0
