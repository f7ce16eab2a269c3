"""Whether probabilities can be read as frequencies: Brier score, log loss and expected
calibration error, per label and for the distribution over whole label sets.

- Per label: each label's marginal probability against whether the label is on.
- Label sets: the probability given to the row's true label set (log loss), the squared error
  of the whole distribution (Brier, summed over every set), and the top-label calibration of
  the most probable set (ECE: its probability against whether it is the true set). A model
  without a label-set head is scored as serving will use it: labels taken as independent, a
  set's probability the product over labels of p or 1 - p (in closed form, no enumeration).

ECE bins the probabilities into ``BINS`` equal-width bins over [0, 1] and averages, weighted
by the bins' shares of rows, the gap between the mean probability and the observed frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.artifact import CalibrationScores, ProbabilityScores, SetProbabilityScores
from training.label_sets import LabelSets

BINS = 10
PROBABILITY_FLOOR = 1e-15
"""Probabilities are clipped to [floor, 1 - floor] inside logarithms, as scikit-learn does."""


@dataclass(frozen=True)
class Reliability:
    """One probability's reliability curve: per non-empty bin, its mean probability, the
    observed frequency and the number of rows."""

    predicted: NDArray[np.float64]
    observed: NDArray[np.float64]
    counts: NDArray[np.int64]

    @property
    def expected_calibration_error(self) -> float:
        weights = self.counts / self.counts.sum()
        return float(np.sum(weights * np.abs(self.predicted - self.observed)))


def reliability(probability: NDArray[np.floating], outcome: NDArray[np.integer]) -> Reliability:
    """The reliability curve of ``probability`` (of an event) against ``outcome`` (0/1)."""
    probability = np.asarray(probability, dtype=np.float64)
    bins = np.minimum((probability * BINS).astype(np.int64), BINS - 1)
    counts = np.bincount(bins, minlength=BINS)
    used = counts > 0
    predicted = np.bincount(bins, weights=probability, minlength=BINS)[used] / counts[used]
    observed = np.bincount(bins, weights=outcome.astype(np.float64), minlength=BINS)[used]
    return Reliability(predicted, observed / counts[used], counts[used].astype(np.int64))


def _log(probability: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.log(np.clip(probability, PROBABILITY_FLOOR, 1.0))


def label_scores(
    labels: NDArray[np.int64], marginals: NDArray[np.floating], label_names: list[str]
) -> dict[str, ProbabilityScores]:
    """Brier, log loss and ECE of each label's marginal probability."""
    result = {}
    for j, name in enumerate(label_names):
        p = np.asarray(marginals[:, j], dtype=np.float64)
        on = labels[:, j] == 1
        result[name] = ProbabilityScores(
            brier_loss=float(np.mean((p - on) ** 2)),
            log_loss=float(-np.mean(np.where(on, _log(p), _log(1.0 - p)))),
            ece=reliability(p, labels[:, j]).expected_calibration_error,
        )
    return result


@dataclass(frozen=True)
class SetDistribution:
    """A model's probabilities of whole label sets on some rows: from its label-set head
    (``sets`` and ``probabilities``), or the product of its ``marginals``."""

    marginals: NDArray[np.float32]
    sets: LabelSets | None = None
    probabilities: NDArray[np.floating] | None = None

    @property
    def source(self) -> str:
        return "product_of_marginals" if self.sets is None else "label_set_head"

    def true_set(self, labels: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Each row's probability of its true label set, and whether the model ranges over
        that set (a label-set head gives sets absent from its training data probability 0)."""
        if self.sets is None or self.probabilities is None:
            p = np.asarray(self.marginals, dtype=np.float64)
            chosen = np.where(labels == 1, p, 1.0 - p).prod(axis=1)
            return chosen, np.ones(len(labels), dtype=bool)
        inside = self.sets.contains(labels)
        chosen = np.zeros(len(labels), dtype=np.float64)
        rows = np.flatnonzero(inside)
        columns = self.sets.index_of(labels[inside])
        chosen[rows] = np.asarray(self.probabilities, dtype=np.float64)[rows, columns]
        return chosen, inside

    def top(self, labels: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """The most probable set's probability, and whether it is the true set, per row."""
        if self.sets is None or self.probabilities is None:
            p = np.asarray(self.marginals, dtype=np.float64)
            decided = p >= 0.5
            return np.maximum(p, 1.0 - p).prod(axis=1), (decided == (labels == 1)).all(axis=1)
        probabilities = np.asarray(self.probabilities, dtype=np.float64)
        right = (self.sets.most_probable(probabilities) == labels).all(axis=1)
        return probabilities.max(axis=1), right

    def sum_of_squares(self) -> NDArray[np.float64]:
        """Σ over every set of P(set)², per row."""
        if self.sets is None or self.probabilities is None:
            p = np.asarray(self.marginals, dtype=np.float64)
            squares: NDArray[np.float64] = (p**2 + (1.0 - p) ** 2).prod(axis=1)
            return squares
        summed: NDArray[np.float64] = (np.asarray(self.probabilities, dtype=np.float64) ** 2).sum(
            axis=1
        )
        return summed


def set_scores(
    distribution: SetDistribution,
    labels: NDArray[np.int64],
    rows: NDArray[np.bool_] | None = None,
) -> SetProbabilityScores:
    """Score ``distribution`` on the true ``labels``, on the rows it ranges over (and only
    ``rows``, when given: e.g. those another model can be scored on too)."""
    chosen, inside = distribution.true_set(labels)
    scored = inside if rows is None else inside & rows
    top_probability, top_right = distribution.top(labels)
    # Brier over every set: Σ P(s)² - 2 P(true) + 1.
    brier = distribution.sum_of_squares() - 2.0 * chosen + 1.0
    return SetProbabilityScores(
        log_loss=float(-np.mean(_log(chosen[scored]))),
        brier_loss=float(np.mean(brier[scored])),
        ece=reliability(
            top_probability[scored], top_right[scored].astype(np.int64)
        ).expected_calibration_error,
        rows_scored=int(scored.sum()),
        rows_outside=int((~inside).sum()),
    )


def calibration_scores(
    distribution: SetDistribution,
    labels: NDArray[np.int64],
    label_names: list[str],
    *,
    rows_description: str,
    set_rows: NDArray[np.bool_] | None = None,
) -> CalibrationScores:
    """Every probability score of one model on these rows (``set_rows``: see ``set_scores``)."""
    return CalibrationScores(
        rows=rows_description,
        per_label=label_scores(labels, distribution.marginals, label_names),
        label_sets=set_scores(distribution, labels, set_rows),
        label_sets_source="product_of_marginals" if distribution.sets is None else "label_set_head",
    )


def reliability_curves(
    distribution: SetDistribution, labels: NDArray[np.int64], label_names: list[str]
) -> dict[str, Reliability]:
    """Per label, and for the most probable label set: what the reliability plot draws."""
    curves = {
        name: reliability(distribution.marginals[:, j], labels[:, j])
        for j, name in enumerate(label_names)
    }
    probability, right = distribution.top(labels)
    curves["most probable label set"] = reliability(probability, right.astype(np.int64))
    return curves
