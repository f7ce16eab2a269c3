"""Choosing one decision threshold per label from out-of-fold probabilities.

Two objectives: ``f1`` maximizes each label's F1 on its own (so the macro F1), and
``subset_accuracy`` maximizes the share of samples whose whole label set is right, by
coordinate ascent over the labels. Candidates are 0.05, 0.06, ..., 0.95. Ties, and gains of
nothing, keep the threshold nearest 0.5: a tuned threshold must earn its place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Objective = Literal["f1", "subset_accuracy"]
OBJECTIVE_METRIC: dict[Objective, str] = {"f1": "f1_macro", "subset_accuracy": "subset_accuracy"}
DEFAULT_THRESHOLD = 0.5
CANDIDATES = np.round(np.arange(0.05, 0.955, 0.01), 2)
_MAX_ROUNDS = 10


def tune_thresholds(
    labels: NDArray[np.int64], probabilities: NDArray[np.floating], objective: Objective
) -> NDArray[np.float64]:
    """Thresholds, one per label, that maximize ``objective`` on these samples."""
    if objective == "f1":
        return np.array(
            [
                _best_candidate(_f1_by_candidate(labels[:, j], probabilities[:, j]))
                for j in range(labels.shape[1])
            ]
        )
    return _tune_subset_accuracy(labels, probabilities)


def _f1_by_candidate(
    truth: NDArray[np.int64], probability: NDArray[np.floating]
) -> NDArray[np.float64]:
    """F1 of one label at every candidate threshold (0 where it is undefined)."""
    predicted = probability[np.newaxis, :] >= CANDIDATES[:, np.newaxis]
    positive = truth.astype(bool)[np.newaxis, :]
    true_positives = (predicted & positive).sum(axis=1)
    denominator = predicted.sum(axis=1) + positive.sum()
    f1: NDArray[np.float64] = np.divide(
        2.0 * true_positives,
        denominator,
        out=np.zeros(len(CANDIDATES)),
        where=denominator > 0,
    )
    return f1


def _tune_subset_accuracy(
    labels: NDArray[np.int64], probabilities: NDArray[np.floating]
) -> NDArray[np.float64]:
    thresholds = np.full(labels.shape[1], DEFAULT_THRESHOLD)
    truth = labels.astype(bool)
    for _ in range(_MAX_ROUNDS):
        changed = False
        for j in range(labels.shape[1]):
            others = np.delete(np.arange(labels.shape[1]), j)
            others_right = (
                (probabilities[:, others] >= thresholds[others]) == truth[:, others]
            ).all(axis=1)
            this_right = (probabilities[np.newaxis, :, j] >= CANDIDATES[:, np.newaxis]) == truth[
                np.newaxis, :, j
            ]
            accuracy = (this_right & others_right[np.newaxis, :]).mean(axis=1)
            best = _best_candidate(accuracy, keep=float(thresholds[j]))
            changed |= best != thresholds[j]
            thresholds[j] = best
        if not changed:
            break
    return thresholds


def _best_candidate(scores: NDArray[np.float64], keep: float = DEFAULT_THRESHOLD) -> float:
    """The best-scoring candidate; ``keep`` when it scores as well; else the one nearest 0.5."""
    best = scores.max()
    at_keep = scores[np.isclose(CANDIDATES, keep)]
    if at_keep.size and at_keep[0] >= best:
        return keep
    winners = CANDIDATES[scores >= best]
    return float(winners[np.argmin(np.abs(winners - DEFAULT_THRESHOLD))])


def describe(labels: Sequence[str], thresholds: Sequence[float]) -> str:
    """``label_0 0.50, label_1 0.43``: thresholds by label, as the CLI and the card show them."""
    return ", ".join(
        f"{label} {value:.2f}" for label, value in zip(labels, thresholds, strict=True)
    )
