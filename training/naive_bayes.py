"""Multinomial naive Bayes over label sets, in closed form (no Keras): the default estimator's
weights, log P(feature | set) and log P(set), and the choice of the shape they are fitted in.
``training.model.naive_bayes_network`` puts them into the served network."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from training.label_sets import LabelSets
from training.limits import first_distinct_draws, mixed_word_distributions

NAIVE_BAYES_SMOOTHING = 1.0
"""Added to every feature's count in every label set (Laplace smoothing, scikit-learn's
default): no feature gets probability 0 in a set for being unseen in it. The generator shape
adds it to every label's counts instead."""

NaiveBayesShape = Literal["counted", "generator"]

NAIVE_BAYES_SHAPES: tuple[NaiveBayesShape, ...] = ("counted", "generator")
"""The shapes the naive Bayes fit chooses between (``naive_bayes_shape``): the generator shape,
which has fewer parameters, unless the counted one has a lower ``NAIVE_BAYES_FOLDS``-fold
cross-validated label-set log loss on the fit rows beyond noise.

- ``counted``: every set's prior and word distribution counted on its own (scikit-learn's
  ``MultinomialNB`` over label sets): a frequency and a word distribution per seen set.
- ``generator``: the shape of ``make_multilabel_classification``'s process
  (``training/limits.py``), its parameters fitted by maximum likelihood: the prior of a set of
  k labels is Poisson(λ)(k), truncated to the sizes 0..labels (1..labels when no row has an
  empty set), times the probability that the first k distinct iid draws from a label prior
  ``p`` are its labels; its word distribution is the mean of its labels' own word
  distributions (uniform for the empty set), fitted by EM on each set's word counts. One
  Poisson mean, one label prior and one word distribution per label, where ``counted`` has
  one frequency and one word distribution per set.

Why (issue 22): at 1000 rows the counted estimate's own sampling noise is what keeps its
per-label ECE near 0.01. On the 20 samples of ``python -m training.variability`` (rows 41000
onwards, scored on rows 21000-40999), putting the generator's own prior in place of the counted
frequencies lowers the mean largest per-label ECE from 0.0109 to 0.0074, its own word
distributions in place of the counted ones to 0.0075: both halves are noise. The generator
shape, fitted with fewer parameters (and chosen on all 20 samples), lowers it to 0.0086 (at
most 0.01 in 13 samples, not 9), the label-set log loss from 1.6% to 0.8% above the Bayes
posterior's, and raises both subset accuracy ratios (0.9957 to 0.9979 per label, 0.9961 to
0.9979 for the most probable set). Cross-validation keeps ``counted`` for data the shape does
not fit (a CSV from another process), where it is scikit-learn's ``MultinomialNB`` exactly."""


@dataclass(frozen=True)
class ShapeChoice:
    """The naive Bayes shape chosen, and the cross-validation behind the choice."""

    shape: NaiveBayesShape
    log_loss_excess: float | None = None
    """Mean over the held-out rows of the generator shape's label-set log loss minus the
    counted one's (negative: the generator shape was better); ``None`` when not tried."""
    standard_error: float | None = None
    """Standard error of ``log_loss_excess`` (per-row differences, paired)."""
    rows: int = 0
    """Held-out rows scored (rows whose set their fold's fit rows lack are left out)."""

    def as_dict(self) -> dict[str, Any]:
        """For the artifact's ``training`` record (``naive_bayes_shape``)."""
        return {
            "chosen": self.shape,
            "log_loss_excess": self.log_loss_excess,
            "standard_error": self.standard_error,
            "rows": self.rows,
            "folds": NAIVE_BAYES_FOLDS,
            "noise": NAIVE_BAYES_NOISE,
        }


NAIVE_BAYES_FOLDS = 5
"""Folds of the cross-validation that chooses the naive Bayes shape (a fixed permutation of the
rows: the closed-form fit stays independent of the seed)."""

NAIVE_BAYES_NOISE = 2.0
"""How many standard errors (of the mean per-row difference of the cross-validated label-set
log losses) the counted shape must win by to be chosen over the generator shape: the same
"beyond noise" as the calibration step's rule."""

_GENERATOR_SHAPE_MAX_LABELS = 12
"""Above this many labels the generator shape is not tried (its prior enumerates each seen set's
subsets)."""
_EM_ITERATIONS = 2000
_EM_TOLERANCE = 1e-10


def naive_bayes_weights(
    features: NDArray[np.floating],
    set_index: NDArray[np.intp],
    sets: LabelSets,
    shape: NaiveBayesShape,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """log P(feature | set) ``[sets, features]`` and log P(set) ``[sets]`` (normalized over
    ``sets``), in the given shape (``NAIVE_BAYES_SHAPES``)."""
    counts = np.zeros((sets.count, features.shape[1]), dtype=np.float64)
    np.add.at(counts, set_index, features.astype(np.float64))
    frequencies = np.bincount(set_index, minlength=sets.count).astype(np.float64)
    if shape == "counted":
        smoothed = counts + NAIVE_BAYES_SMOOTHING
        log_feature = np.log(smoothed) - np.log(smoothed.sum(axis=1, keepdims=True))
        return log_feature, np.log(frequencies / frequencies.sum())
    return _generator_word_distributions(counts, sets.matrix), _generator_prior(
        frequencies, sets.matrix
    )


def naive_bayes_shape(
    features: NDArray[np.floating], set_index: NDArray[np.intp], sets: LabelSets
) -> ShapeChoice:
    """``generator`` unless ``counted`` has the lower label-set log loss beyond noise,
    cross-validated on these rows: by more than ``NAIVE_BAYES_NOISE`` standard errors of the
    mean of the rows' paired differences (``NAIVE_BAYES_FOLDS`` folds; a held-out row whose set
    its fold's fit rows lack is left out, as both shapes give it probability 0)."""
    if sets.matrix.shape[1] > _GENERATOR_SHAPE_MAX_LABELS or len(set_index) < NAIVE_BAYES_FOLDS:
        return ShapeChoice("counted")
    order = np.random.default_rng(0).permutation(len(set_index))
    losses: dict[NaiveBayesShape, list[NDArray[np.float64]]] = {
        shape: [] for shape in NAIVE_BAYES_SHAPES
    }
    for held_out in np.array_split(order, NAIVE_BAYES_FOLDS):
        fit = np.ones(len(set_index), dtype=bool)
        fit[held_out] = False
        seen = np.unique(set_index[fit])
        fold_sets = LabelSets(sets.matrix[seen])
        position = np.full(sets.count, -1, dtype=np.intp)
        position[seen] = np.arange(len(seen))
        fit_index = position[set_index[fit]]
        test_index = position[set_index[held_out]]
        scored = test_index >= 0
        test_features = features[held_out][scored].astype(np.float64)
        for shape in NAIVE_BAYES_SHAPES:
            log_feature, log_prior = naive_bayes_weights(features[fit], fit_index, fold_sets, shape)
            logits = test_features @ log_feature.T + log_prior
            logits -= logits.max(axis=1, keepdims=True)
            log_posterior = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            losses[shape].append(-log_posterior[np.arange(len(logits)), test_index[scored]])
    # Per row: how much more the generator shape loses than the counted one.
    excess = np.concatenate(losses["generator"]) - np.concatenate(losses["counted"])
    standard_error = float(excess.std(ddof=1)) / math.sqrt(len(excess))
    mean = float(excess.mean())
    noisy = mean <= NAIVE_BAYES_NOISE * standard_error
    chosen: NaiveBayesShape = "generator" if noisy else "counted"
    return ShapeChoice(chosen, mean, standard_error, len(excess))


def _generator_word_distributions(
    counts: NDArray[np.float64], matrix: NDArray[np.int64]
) -> NDArray[np.float64]:
    """log q_set ``[sets, features]``: each set's word distribution the mean of its labels'
    ``phi`` (uniform for the empty set), ``phi`` fitted by EM on each set's word ``counts``:
    each word of a set is shared among the set's labels in proportion to their ``phi`` (E), and
    each label's ``phi`` is its shared counts, Laplace smoothed, normalized (M)."""
    n_labels, n_features = matrix.shape[1], counts.shape[1]
    members = [np.flatnonzero(row) for row in matrix]
    phi = np.full((n_labels, n_features), 1.0 / n_features)
    for _ in range(_EM_ITERATIONS):
        shared = np.zeros_like(phi)
        for labels, set_counts in zip(members, counts, strict=True):
            if labels.size:
                shared[labels] += set_counts * phi[labels] / phi[labels].sum(axis=0)
        updated = shared + NAIVE_BAYES_SMOOTHING
        updated /= updated.sum(axis=1, keepdims=True)
        converged = float(np.abs(updated - phi).max()) < _EM_TOLERANCE
        phi = updated
        if converged:
            break
    log_distributions: NDArray[np.float64] = np.log(mixed_word_distributions(phi.T, matrix))
    return log_distributions


def _generator_prior(
    frequencies: NDArray[np.float64], matrix: NDArray[np.int64]
) -> NDArray[np.float64]:
    """log P(set) ``[sets]``: the generator's prior (``training/limits.py``) at the maximum
    likelihood Poisson mean and label prior, normalized over the sets given. The likelihood
    splits into the sizes' (the Poisson mean alone) and the sets' given their sizes (the label
    prior alone), fitted one after the other."""
    from scipy.optimize import minimize, minimize_scalar

    n_labels = matrix.shape[1]
    sizes = matrix.sum(axis=1)
    smallest = 0 if (sizes == 0).any() else 1
    possible = np.arange(smallest, n_labels + 1)
    log_factorial = np.array([math.lgamma(k + 1.0) for k in possible])

    def log_size_probability(log_mean: float) -> NDArray[np.float64]:
        log_weight: NDArray[np.float64] = possible * log_mean - log_factorial
        log_weight -= np.logaddexp.reduce(log_weight)
        chosen: NDArray[np.float64] = log_weight[sizes - smallest]
        return chosen

    sizes_fit = minimize_scalar(
        lambda log_mean: -float(frequencies @ log_size_probability(log_mean)),
        bounds=(-10.0, 10.0),
        method="bounded",
        options={"xatol": 1e-9},
    )
    members = [frozenset(np.flatnonzero(row).tolist()) for row in matrix]

    def log_draw_probability(free: NDArray[np.float64]) -> NDArray[np.float64]:
        logits = np.concatenate([[0.0], free])
        prior = np.exp(logits - logits.max())
        return np.log(np.maximum(first_distinct_draws(prior / prior.sum(), members), 1e-300))

    draws_fit = minimize(
        lambda free: -float(frequencies @ log_draw_probability(free)),
        np.zeros(n_labels - 1),
        method="L-BFGS-B",
        bounds=[(-30.0, 30.0)] * (n_labels - 1),
    )
    log_prior = log_size_probability(float(sizes_fit.x)) + log_draw_probability(draws_fit.x)
    normalized: NDArray[np.float64] = log_prior - np.logaddexp.reduce(log_prior)
    return normalized
