"""The Bayes limit of synthetic data, from scikit-learn's own generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_multilabel_classification

from training.csv_data import load_csv
from training.data import GeneratorDistributions, synthetic_dataset
from training.evaluate import Folds, cross_validate
from training.label_sets import LabelSets
from training.limits import bayes_posterior, bayes_rule, label_set_prior, no_limit_reason


def test_the_bayes_rule_on_the_seed_data_reaches_the_known_limit() -> None:
    dataset = synthetic_dataset()
    rule = bayes_rule(dataset)
    assert rule is not None
    folds = Folds.of(dataset.n_samples, n_splits=10, n_repeats=3, seed=1)
    summary = cross_validate(dataset, rule, folds).cross_validation.summary
    assert summary["joint_subset_accuracy"].mean == pytest.approx(0.868, abs=0.001)
    assert summary["subset_accuracy"].mean == pytest.approx(0.872, abs=0.001)


GENERATORS = [
    pytest.param(3, 2, True, id="reference-shape"),
    pytest.param(4, 1, True, id="small-sets"),
    pytest.param(4, 3, False, id="no-empty-sets"),
    pytest.param(5, 4, True, id="sizes-truncated-often"),
]


def generated(
    n_samples: int, n_classes: int, n_labels: int, allow_unlabeled: bool, seed: int
) -> tuple[np.ndarray, np.ndarray, GeneratorDistributions]:
    features, labels, class_prior, word_distributions = make_multilabel_classification(
        n_samples=n_samples,
        n_features=6,
        n_classes=n_classes,
        n_labels=n_labels,
        allow_unlabeled=allow_unlabeled,
        random_state=seed,
        return_distributions=True,
    )
    return (
        features,
        labels,
        GeneratorDistributions(
            class_prior=class_prior,
            word_distributions=word_distributions,
            mean_label_count=float(n_labels),
            allow_unlabeled=allow_unlabeled,
        ),
    )


@pytest.mark.parametrize(("n_classes", "n_labels", "allow_unlabeled"), GENERATORS)
def test_the_label_set_prior_matches_what_the_generator_draws(
    n_classes: int, n_labels: int, allow_unlabeled: bool
) -> None:
    _, labels, generator = generated(20_000, n_classes, n_labels, allow_unlabeled, seed=5)
    sets, prior = label_set_prior(generator)
    assert prior.sum() == pytest.approx(1.0)
    observed = np.zeros(sets.count)
    seen = LabelSets.seen_in(labels)
    positions = {tuple(row): i for i, row in enumerate(sets.matrix.tolist())}
    counts = np.bincount(seen.index_of(labels), minlength=seen.count)
    for row, count in zip(seen.matrix.tolist(), counts, strict=True):
        observed[positions[tuple(row)]] = count / len(labels)
    # Binomial standard error of each share, with a floor for sets that are almost never drawn.
    tolerance = 4 * np.sqrt(prior * (1 - prior) / len(labels)) + 1e-3
    assert np.all(np.abs(observed - prior) <= tolerance), (observed, prior)
    if not allow_unlabeled:
        assert not (sets.matrix.sum(axis=1) == 0).any()


@pytest.mark.parametrize(("n_classes", "n_labels", "allow_unlabeled"), GENERATORS)
def test_the_posterior_beats_every_other_decision_on_fresh_data(
    n_classes: int, n_labels: int, allow_unlabeled: bool
) -> None:
    features, labels, generator = generated(3000, n_classes, n_labels, allow_unlabeled, seed=9)
    sets, posterior = bayes_posterior(features, generator)
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0)
    bayes = (sets.most_probable(posterior) == labels).all(axis=1).mean()
    # The most frequent set and the prior's most probable set ignore the features: worse.
    prior_choice = sets.matrix[np.argmax(label_set_prior(generator)[1])]
    assert bayes > (labels == prior_choice).all(axis=1).mean() + 0.1


def test_csv_data_has_no_known_limit(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("x0,label_a,label_b\n1,1,0\n2,0,1\n3,1,1\n", encoding="utf-8")
    dataset = load_csv(path)
    assert bayes_rule(dataset) is None
    assert no_limit_reason(dataset).startswith("no limit is known for this data")


def test_too_many_classes_to_enumerate_are_said_so() -> None:
    dataset = synthetic_dataset(n_samples=50, n_classes=13)
    assert bayes_rule(dataset) is None
    assert "13 classes have too many label sets" in no_limit_reason(dataset)
