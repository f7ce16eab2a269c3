"""The scikit-learn baselines, fitted on the same splits as the network."""

from __future__ import annotations

import numpy as np
import pytest

from training.baselines import BASELINES, BaselineFitter, bag_name, baseline_names
from training.data import synthetic_dataset
from training.evaluate import Folds, cross_validate
from training.label_sets import MAX_LABEL_SETS, LabelSets


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
    probabilities = fitter(features, labels, features[:3], 0).probabilities
    assert probabilities.shape == (3, 2)
    assert probabilities[:, 1].tolist() == [0.0, 0.0, 0.0]


def test_the_dummy_always_answers_the_most_frequent_label_set_of_the_training_part() -> None:
    dataset = synthetic_dataset(n_samples=200)
    prediction = BaselineFitter("most frequent label set (dummy)")(
        dataset.features[:150], dataset.labels[:150], dataset.features[150:], 0
    )
    sets, counts = np.unique(dataset.labels[:150], axis=0, return_counts=True)
    assert prediction.joint is not None
    assert {tuple(row) for row in prediction.joint.tolist()} == {tuple(sets[counts.argmax()])}
    # Its marginals are the labels' shares in the training part, whatever the features.
    np.testing.assert_allclose(
        prediction.probabilities, np.tile(dataset.labels[:150].mean(axis=0), (50, 1)), atol=1e-6
    )


def test_label_powerset_logistic_regression_decides_among_the_sets_seen_in_training() -> None:
    dataset = synthetic_dataset(n_samples=300)
    prediction = BaselineFitter("label-powerset LogisticRegression")(
        dataset.features[:200], dataset.labels[:200], dataset.features[200:], 0
    )
    assert prediction.joint is not None
    seen = {tuple(row) for row in dataset.labels[:200].tolist()}
    assert {tuple(row) for row in prediction.joint.tolist()} <= seen
    assert (prediction.joint == dataset.labels[200:]).all(axis=1).mean() > 0.7


def test_the_bag_of_mlps_averages_members_seeded_apart() -> None:
    dataset = synthetic_dataset(n_samples=120, n_features=4)
    train, test = slice(0, 90), slice(90, 120)
    bag = BaselineFitter(bag_name(3), bag_size=3)
    single = BaselineFitter("MLPClassifier(20), standardized")
    arguments = (dataset.features[train], dataset.labels[train], dataset.features[test], 0)
    bagged = bag(*arguments).probabilities
    assert bagged.shape == (30, 3)
    assert not np.allclose(bagged, single(*arguments).probabilities)
    np.testing.assert_array_equal(bagged, bag(*arguments).probabilities)


@pytest.mark.parametrize(
    ("ensemble", "n_label_sets", "counts", "present", "absent"),
    [
        pytest.param(1, 5, True, "label-powerset LogisticRegression", bag_name(1), id="single"),
        pytest.param(1, 5, True, "label-powerset MultinomialNB", None, id="counts-get-nb"),
        pytest.param(3, 5, True, bag_name(3), None, id="ensemble-gets-a-bag"),
        pytest.param(
            1, MAX_LABEL_SETS + 1, True, None, "label-powerset MultinomialNB", id="many-sets"
        ),
        pytest.param(
            1,
            5,
            False,
            "label-powerset LogisticRegression",
            "label-powerset MultinomialNB",
            id="not-counts",
        ),
    ],
)
def test_the_baselines_follow_the_served_network_and_the_data(
    ensemble: int, n_label_sets: int, counts: bool, present: str | None, absent: str | None
) -> None:
    names = baseline_names(ensemble=ensemble, n_label_sets=n_label_sets, counts=counts)
    assert present is None or present in names
    assert absent is None or absent not in names
    assert "MLPClassifier(20), standardized" in names


def test_the_naive_bayes_baseline_gives_a_distribution_over_the_training_label_sets() -> None:
    dataset = synthetic_dataset(n_samples=200)
    fitter = BaselineFitter("label-powerset MultinomialNB")
    prediction = fitter(dataset.features[:150], dataset.labels[:150], dataset.features[150:], 0)
    assert prediction.sets is not None
    assert prediction.set_probabilities is not None
    assert prediction.sets.count == LabelSets.seen_in(dataset.labels[:150]).count
    np.testing.assert_allclose(prediction.set_probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert prediction.joint is not None
    assert (prediction.joint == dataset.labels[150:]).all(axis=1).mean() > 0.7
