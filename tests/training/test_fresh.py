"""Expected accuracy on new data: fresh draws of the generator, scored against the limit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from app.artifact import CrossValidation
from training.data import synthetic_dataset
from training.fresh import (
    FreshDrawError,
    decision_score,
    fresh_draws,
    from_cross_validation,
    from_fresh_draws,
    score_fresh_draws,
)
from training.generator import make_multilabel_classification
from training.limits import BayesRule


def test_fresh_draws_are_the_rows_after_the_training_data_in_the_same_call() -> None:
    dataset = synthetic_dataset(n_samples=150)
    fresh = fresh_draws(dataset, n_rows=400)
    assert fresh is not None
    features, labels, _, _ = make_multilabel_classification(
        n_samples=550, n_features=10, n_classes=3, n_labels=2, random_state=1
    )
    np.testing.assert_array_equal(fresh.features, features[150:])
    np.testing.assert_array_equal(fresh.labels, labels[150:])
    assert fresh.parameters["first_row"] == 150
    assert fresh.generator is dataset.generator


def test_training_rows_that_are_not_the_generators_first_rows_are_refused() -> None:
    dataset = synthetic_dataset(n_samples=150)
    changed = dataset.features.copy()
    changed[7, 2] += 1
    with pytest.raises(FreshDrawError, match="first 150 rows"):
        fresh_draws(replace(dataset, features=changed), n_rows=100)


def test_data_without_a_generator_has_no_fresh_draws() -> None:
    dataset = synthetic_dataset(n_samples=50)
    assert fresh_draws(replace(dataset, source="news.csv", generator=None)) is None


def test_the_ratio_and_its_standard_error_come_from_the_paired_rows() -> None:
    score = decision_score("set", np.array([1, 1, 0, 1], bool), np.array([1, 1, 1, 1], bool))
    assert (score.subset_accuracy, score.limit, score.ratio) == (0.75, 1.0, 0.75)
    # Residuals a - 0.75 b: 0.25, 0.25, -0.75, 0.25; sample std 0.5, over sqrt(4) rows.
    assert score.ratio_standard_error == pytest.approx(0.25)


def test_the_bayes_rule_scored_as_a_model_matches_its_own_limit() -> None:
    dataset = synthetic_dataset(n_samples=100)
    fresh = fresh_draws(dataset, n_rows=2000)
    assert fresh is not None
    assert dataset.generator is not None
    rule = BayesRule(dataset.generator)
    prediction = rule(dataset.features, dataset.labels, fresh.features, 0)
    scores = score_fresh_draws(fresh, prediction, [0.5, 0.5, 0.5], {"itself": prediction})
    record = scores.record
    assert (record.first_row, record.n_rows) == (100, 2000)
    assert [score.decision for score in record.decisions] == ["labels", "set"]
    for score in [*record.decisions, *(record.baselines or {})["itself"]]:
        assert score.ratio == 1.0
        assert score.ratio_standard_error == 0.0
    # The same posterior, once in float32 (as a model's) and once in float64 (the limit).
    for name, label in record.model.per_label.items():
        assert label.model_dump() == pytest.approx(record.limit.per_label[name].model_dump())
    assert record.model.label_sets is not None
    assert record.limit.label_sets is not None
    assert record.model.label_sets.model_dump() == pytest.approx(
        record.limit.label_sets.model_dump()
    )
    expected = from_fresh_draws(record)
    assert expected.source == "fresh_draws"
    assert f"rows 100 to 2099 of {record.generator_call}" in expected.summary
    assert set(scores.curves) == {
        "served model, 2000 fresh draws",
        "Bayes posterior, 2000 fresh draws",
    }


def test_without_a_generator_the_estimate_is_the_cross_validated_figure_and_says_of_what() -> None:
    splits = [{"subset_accuracy": value} for value in (0.8, 0.9, 0.7, 0.8)]
    served = CrossValidation(n_splits=2, n_repeats=2, random_state=1, splits=splits, summary={})
    expected = from_cross_validation(served, n_samples=200)
    assert expected.source == "cross_validation"
    assert expected.fresh_draws is None
    # var 0.00667 * (1/4 + 1/1) -> s.e. 0.091
    assert "subset accuracy 0.800 ± 0.091" in expected.summary
    assert "fitted on 100 rows like these" in expected.summary
