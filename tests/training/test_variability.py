"""The variability study's figures, for one small sample: the served estimator against the limit."""

from __future__ import annotations

import pytest

from training.data import synthetic_dataset
from training.fresh import fresh_draws
from training.limits import bayes_distribution
from training.options import PRESETS
from training.variability import FIGURES, figures


def test_a_sample_is_scored_against_the_limit_on_other_rows() -> None:
    dataset = synthetic_dataset(n_samples=300)
    development = fresh_draws(dataset, n_rows=3000)
    assert development is not None
    assert development.generator is not None
    limit = bayes_distribution(development.features, development.generator)
    ece, excess, labels_ratio, set_ratio = figures(
        PRESETS["default"],
        (dataset.features, dataset.labels),
        (development.features, development.labels),
        limit,
    )
    assert len(FIGURES) == 4
    assert 0 < ece < 0.1
    assert 0 < excess < 0.2  # no model beats the posterior's log loss by much on 3000 rows
    for ratio in (labels_ratio, set_ratio):
        assert ratio == pytest.approx(1.0, abs=0.05)
