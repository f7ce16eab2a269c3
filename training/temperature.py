"""The post-hoc calibration step: temperature scaling of the label-set logits.

P(set | x) ∝ exp(z_set / T): one number T, fitted by minimizing the log loss of out-of-fold
predictions. T > 1 softens an over-confident model, T < 1 sharpens a timid one; the most
probable set never changes. Like the thresholds, it is judged cross-fitted: each split is
scored at a T fitted only on the other folds of its repeat. It is kept only when it lowers the
label-set log loss beyond noise without lowering subset accuracy beyond noise (paired over the
splits, Nadeau and Bengio's corrected standard error, as in training/compare.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar

from app.artifact import CalibrationScores, PostHocCalibration
from training.calibration import SetDistribution, calibration_scores
from training.compare import paired_comparison
from training.data import Dataset
from training.evaluate import Evaluation, evaluation_of_sets
from training.label_sets import LabelSets

BOUNDS = (0.05, 20.0)
"""The temperatures searched."""
_INFORMATIVE = 1e-15
"""Rows whose true set has a smaller probability (a set absent from a split's training part,
or a float32 underflow) carry no information about T: left out of the fit."""


def log_probabilities(set_probabilities: NDArray[np.floating]) -> NDArray[np.float64]:
    """The logits up to a per-row constant, which the softmax ignores."""
    return np.log(np.clip(np.asarray(set_probabilities, dtype=np.float64), 1e-300, 1.0))


def scaled(set_probabilities: NDArray[np.floating], temperature: float) -> NDArray[np.float32]:
    """softmax(logits / temperature), from the probabilities at temperature 1."""
    z = log_probabilities(set_probabilities) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return np.asarray(p / p.sum(axis=1, keepdims=True), dtype=np.float32)


def fit_temperature(set_probabilities: NDArray[np.floating], truth: NDArray[np.intp]) -> float:
    """The T in ``BOUNDS`` that minimizes the mean log loss of the true sets (``truth``: each
    row's index among the sets)."""
    p = np.asarray(set_probabilities, dtype=np.float64)
    rows = p[np.arange(len(truth)), truth] >= _INFORMATIVE
    logits, true = log_probabilities(p[rows]), truth[rows]

    def loss(log_temperature: float) -> float:
        z = logits / math.exp(log_temperature)
        top = z.max(axis=1)
        normalizer = top + np.log(np.exp(z - top[:, np.newaxis]).sum(axis=1))
        return float(np.mean(normalizer - z[np.arange(len(true)), true]))

    result = minimize_scalar(
        loss,
        bounds=(math.log(BOUNDS[0]), math.log(BOUNDS[1])),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return math.exp(float(result.x))


@dataclass(frozen=True)
class TemperatureChoice:
    """The step's record for the artifact, and the cross-validation of what is served."""

    calibration: PostHocCalibration
    served: Evaluation
    """The evaluation of the served model: cross-fitted at each split's T when applied, else
    the uncalibrated one."""


def choose_temperature(dataset: Dataset, evaluation: Evaluation) -> TemperatureChoice:
    """Fit, judge cross-fitted, and decide; needs the out-of-fold set probabilities."""
    sets, oof = evaluation.label_sets, evaluation.set_probabilities
    if sets is None or oof is None:
        return TemperatureChoice(_not_tried("the model has no label-set head"), evaluation)
    folds = evaluation.folds
    inside = sets.contains(dataset.labels)
    truth = np.zeros(dataset.n_samples, dtype=np.intp)
    truth[inside] = sets.index_of(dataset.labels[inside])
    calibrated = np.zeros_like(oof)
    for index, (_, test) in enumerate(folds.splits):
        repeat = folds.repeat_of(index)
        fit_rows = np.setdiff1d(np.flatnonzero(inside), test)
        temperature = fit_temperature(oof[repeat, fit_rows], truth[fit_rows])
        calibrated[repeat, test] = scaled(oof[repeat, test], temperature)
    after = evaluation_of_sets(dataset, folds, sets, calibrated)
    before_loss = _split_set_log_loss(dataset, evaluation, sets, oof, inside)
    after_loss = _split_set_log_loss(dataset, evaluation, sets, calibrated, inside)
    ratio = 1 / (folds.n_splits - 1)
    log_loss_change = paired_comparison(before_loss, after_loss, test_to_train=ratio)
    accuracy_change = paired_comparison(
        after.subset_accuracies, evaluation.subset_accuracies, test_to_train=ratio
    )
    every_inside = np.tile(inside, folds.n_repeats)
    served_temperature = fit_temperature(
        oof.reshape(-1, sets.count)[every_inside], np.tile(truth, folds.n_repeats)[every_inside]
    )
    applied = log_loss_change.verdict == "better" and accuracy_change.verdict != "worse"
    rows = (
        f"out-of-fold, {folds.n_repeats} repeats pooled ({folds.n_repeats * dataset.n_samples} "
        "predictions)"
    )
    calibration = PostHocCalibration(
        method="temperature",
        applied=applied,
        temperature=served_temperature if applied else 1.0,
        reason=_reason(applied, served_temperature, log_loss_change.verdict),
        log_loss_change=log_loss_change,
        subset_accuracy_change=accuracy_change,
        before=_pooled_scores(dataset, evaluation.probabilities, sets, oof, rows),
        after=_pooled_scores(
            dataset,
            after.probabilities,
            sets,
            calibrated,
            rows + ", each split at a T fitted on the other folds of its repeat",
        ),
    )
    return TemperatureChoice(calibration, after if applied else evaluation)


def _not_tried(why: str) -> PostHocCalibration:
    return PostHocCalibration(method="none", applied=False, reason=f"not tried: {why}")


def _reason(applied: bool, temperature: float, loss_verdict: str) -> str:
    fitted = f"T = {temperature:.3f} fitted on every out-of-fold prediction"
    if applied:
        return (
            f"applied ({fitted}): cross-fitted, it lowered the label-set log loss beyond noise "
            "and did not lower subset accuracy beyond noise"
        )
    if loss_verdict != "better":
        return (
            f"not applied ({fitted} would be served): cross-fitted, it did not lower the "
            "label-set log loss beyond noise"
        )
    return f"not applied ({fitted}): cross-fitted, it lowered subset accuracy beyond noise"


def _split_set_log_loss(
    dataset: Dataset,
    evaluation: Evaluation,
    sets: LabelSets,
    set_probabilities: NDArray[np.float32],
    inside: NDArray[np.bool_],
) -> list[float]:
    """Each split's mean -log P(true set) over its rows whose set is among ``sets``."""
    losses = []
    for index, (_, test) in enumerate(evaluation.folds.splits):
        rows = test[inside[test]]
        p = set_probabilities[evaluation.folds.repeat_of(index), rows]
        chosen = p[np.arange(len(rows)), sets.index_of(dataset.labels[rows])]
        losses.append(float(-np.mean(np.log(np.clip(chosen.astype(np.float64), 1e-15, 1.0)))))
    return losses


def _pooled_scores(
    dataset: Dataset,
    marginals: NDArray[np.float32],
    sets: LabelSets,
    set_probabilities: NDArray[np.float32],
    rows: str,
) -> CalibrationScores:
    repeats = marginals.shape[0]
    return calibration_scores(
        SetDistribution(
            marginals.reshape(-1, marginals.shape[-1]),
            sets,
            set_probabilities.reshape(-1, sets.count),
        ),
        np.tile(dataset.labels, (repeats, 1)),
        dataset.label_names,
        rows_description=rows,
    )
