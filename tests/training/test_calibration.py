"""Calibration scores: hand-checked values, scikit-learn's definitions, and the exact posterior."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from training.calibration import (
    SetDistribution,
    label_scores,
    reliability,
    set_scores,
)
from training.data import synthetic_dataset
from training.fresh import fresh_draws
from training.label_sets import LabelSets
from training.limits import bayes_distribution


def test_reliability_bins_probabilities_and_weighs_each_bins_gap_by_its_rows() -> None:
    curve = reliability(np.array([0.05, 0.15, 0.95, 0.95]), np.array([0, 1, 1, 0]))
    np.testing.assert_allclose(curve.predicted, [0.05, 0.15, 0.95])
    np.testing.assert_allclose(curve.observed, [0.0, 1.0, 0.5])
    assert curve.counts.tolist() == [1, 1, 2]
    assert curve.expected_calibration_error == pytest.approx(0.05 / 4 + 0.85 / 4 + 0.45 / 2)


def test_per_label_brier_and_log_loss_are_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.uniform(size=(500, 2)).astype(np.float32)
    labels = (rng.uniform(size=(500, 2)) < probabilities).astype(np.int64)
    scores = label_scores(labels, probabilities, ["a", "b"])
    for j, name in enumerate(["a", "b"]):
        assert scores[name].brier_loss == pytest.approx(
            brier_score_loss(labels[:, j], probabilities[:, j]), rel=1e-6
        )
        assert scores[name].log_loss == pytest.approx(
            log_loss(labels[:, j], probabilities[:, j]), rel=1e-6
        )


def test_a_set_head_is_scored_on_the_rows_whose_set_it_has() -> None:
    sets = LabelSets(np.array([[0, 0], [1, 0], [1, 1]]))
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.25, 0.25]])
    labels = np.array([[0, 0], [1, 1], [0, 1]])  # the last set is not among the head's
    scores = set_scores(SetDistribution(sets.marginals(probabilities), sets, probabilities), labels)
    assert (scores.rows_scored, scores.rows_outside) == (2, 1)
    assert scores.log_loss == pytest.approx(-(np.log(0.7) + np.log(0.6)) / 2)
    brier = ((0.3**2 + 0.2**2 + 0.1**2) + (0.1**2 + 0.3**2 + 0.4**2)) / 2
    assert scores.brier_loss == pytest.approx(brier)
    # Both rows' most probable set is right: top-label gaps 0.3 and 0.4, one row per bin.
    assert scores.ece == pytest.approx((0.3 + 0.4) / 2)


def test_the_product_of_marginals_is_scored_in_closed_form_as_if_every_set_were_listed() -> None:
    rng = np.random.default_rng(1)
    marginals = rng.uniform(size=(300, 3)).astype(np.float32)
    labels = (rng.uniform(size=(300, 3)) < 0.5).astype(np.int64)
    every = LabelSets(np.array(list(itertools.product((0, 1), repeat=3))))
    p = marginals.astype(np.float64)[:, np.newaxis, :]
    listed = np.where(every.matrix[np.newaxis] == 1, p, 1 - p).prod(axis=2)
    closed = set_scores(SetDistribution(marginals), labels)
    enumerated = set_scores(SetDistribution(marginals, every, listed), labels)
    assert closed.log_loss == pytest.approx(enumerated.log_loss, rel=1e-6)
    assert closed.brier_loss == pytest.approx(enumerated.brier_loss, rel=1e-6)
    assert closed.ece == pytest.approx(enumerated.ece, rel=1e-6)


def test_the_exact_posterior_is_calibrated_on_fresh_draws() -> None:
    dataset = synthetic_dataset(n_samples=100)
    fresh = fresh_draws(dataset, n_rows=5000)
    assert fresh is not None
    assert fresh.generator is not None
    distribution = bayes_distribution(fresh.features, fresh.generator)
    for scores in label_scores(fresh.labels, distribution.marginals, fresh.label_names).values():
        assert scores.ece < 0.02
    assert set_scores(distribution, fresh.labels).ece < 0.02
