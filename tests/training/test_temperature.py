"""Temperature scaling: it finds a known temperature, and the rule keeps it only when it helps."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import synthetic_dataset
from training.evaluate import Folds, cross_validate, evaluation_of_sets
from training.limits import bayes_rule
from training.temperature import choose_temperature, fit_temperature, scaled


def test_scaling_at_one_changes_nothing_and_keeps_the_most_probable_set() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]], dtype=np.float32)
    np.testing.assert_allclose(scaled(probabilities, 1.0), probabilities, rtol=1e-6)
    for temperature in (0.3, 3.0):
        assert (scaled(probabilities, temperature).argmax(axis=1) == [0, 2]).all()


def test_the_fit_recovers_the_temperature_the_outcomes_were_drawn_at() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=3.0, size=(20_000, 4))
    truth_probabilities = scaled(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 2.0)
    truth = np.array([rng.choice(4, p=row / row.sum()) for row in truth_probabilities])
    over_confident = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert fit_temperature(over_confident, truth) == pytest.approx(2.0, rel=0.05)


@pytest.fixture(scope="module")
def bayes_evaluation() -> tuple[object, object]:
    dataset = synthetic_dataset(n_samples=600)
    rule = bayes_rule(dataset)
    assert rule is not None
    folds = Folds.of(dataset.n_samples, n_splits=5, n_repeats=2, seed=1)
    return dataset, cross_validate(dataset, rule, folds)


def test_the_exact_posterior_needs_no_temperature(bayes_evaluation: tuple) -> None:  # type: ignore[type-arg]
    dataset, evaluation = bayes_evaluation
    choice = choose_temperature(dataset, evaluation)
    assert choice.calibration.method == "temperature"
    assert not choice.calibration.applied
    assert choice.calibration.temperature == 1.0
    assert choice.served is evaluation
    assert "did not lower the label-set log loss beyond noise" in choice.calibration.reason


def test_an_over_confident_model_is_softened_and_its_evaluation_is_the_cross_fitted_one(
    bayes_evaluation: tuple,  # type: ignore[type-arg]
) -> None:
    dataset, evaluation = bayes_evaluation
    sharpened = np.stack([scaled(repeat, 0.4) for repeat in evaluation.set_probabilities])
    over_confident = evaluation_of_sets(dataset, evaluation.folds, evaluation.label_sets, sharpened)
    choice = choose_temperature(dataset, over_confident)
    calibration = choice.calibration
    assert calibration.applied
    # Sharpened by 1 / 0.4 = 2.5; these rows favour confidence a little (the posterior itself
    # fits a temperature of about 0.85 on them), so the fit lands lower, but far above 1.
    assert 1.8 < calibration.temperature < 2.6
    assert calibration.log_loss_change is not None
    assert calibration.log_loss_change.verdict == "better"
    assert calibration.before is not None
    assert calibration.after is not None
    assert calibration.before.label_sets is not None
    assert calibration.after.label_sets is not None
    assert calibration.after.label_sets.log_loss < calibration.before.label_sets.log_loss
    # The most probable set never changes; the served evaluation is the calibrated one.
    served = choice.served.cross_validation.summary
    assert (
        served["joint_subset_accuracy"]
        == over_confident.cross_validation.summary["joint_subset_accuracy"]
    )
    assert choice.served is not over_confident
