"""The limit of the data: the Bayes-optimal rule of synthetic data's known generator.

``make_multilabel_classification`` (scikit-learn's ``_samples_generator.py``) draws each row so:

1. the size k of the label set ~ Poisson(n_labels), redrawn while k > n_classes (and while
   k == 0 unless ``allow_unlabeled``);
2. its classes: iid draws from the class prior ``p_c`` until k distinct classes are in the set,
   i.e. k draws without replacement, each in proportion to ``p_c`` among the classes left;
3. the document length n ~ Poisson(length), redrawn while 0: it does not depend on the labels,
   so it cancels out of the posterior;
4. n words iid from ``q_Y``, the normalized sum of the set's word distributions ``p_w_c[:, c]``
   (uniform over the words when the set is empty); the features are the word counts.

So ``P(Y | x) ∝ P(Y) · Π_w q_Y[w] ** x_w`` exactly (the multinomial coefficient and P(n) are
the same for every Y). No model can do better on average than deciding from this posterior.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from training.calibration import SetDistribution
from training.data import Dataset, GeneratorDistributions
from training.label_sets import FoldPrediction, LabelSets

MAX_CLASSES = 12
"""Largest class count whose 2**n label sets are enumerated (4096 sets)."""


def label_set_prior(generator: GeneratorDistributions) -> tuple[LabelSets, NDArray[np.float64]]:
    """Every label set the generator can draw, with the probability that it draws it."""
    n_classes = len(generator.class_prior)
    sets = np.array(list(itertools.product((0, 1), repeat=n_classes)), dtype=np.int64)
    sizes = sets.sum(axis=1)
    size_weight = np.array(
        [_poisson(k, generator.mean_label_count) for k in range(n_classes + 1)], dtype=np.float64
    )
    if not generator.allow_unlabeled:
        size_weight[0] = 0.0
    size_probability = size_weight / size_weight.sum()
    members = [frozenset(np.flatnonzero(row).tolist()) for row in sets]
    prior = size_probability[sizes] * first_distinct_draws(generator.class_prior, members)
    keep = prior > 0
    return LabelSets(sets[keep]), prior[keep]


def _poisson(k: int, mean: float) -> float:
    return math.exp(-mean) * mean**k / math.factorial(k)


def first_distinct_draws(
    class_prior: NDArray[np.float64], members: list[frozenset[int]]
) -> NDArray[np.float64]:
    """P(the first |S| distinct classes of an iid stream from ``class_prior`` are S), for each
    S in ``members``.

    S is reached from S - {c} when the next new class is c, which happens with probability
    p_c / (1 - p(S - {c})). That denominator is summed over the classes outside S - {c}, not
    subtracted from 1: a class prior near 0 (one is 1e-4 in the reference data, and a fit may
    go lower) would otherwise leave a rounding error for a denominator.
    """
    known: dict[frozenset[int], float] = {frozenset(): 1.0}
    everyone = frozenset(range(len(class_prior)))

    def probability(subset: frozenset[int]) -> float:
        if subset not in known:
            known[subset] = sum(
                probability(subset - {c})
                * float(class_prior[c])
                / float(class_prior[sorted(everyone - (subset - {c}))].sum())
                for c in subset
            )
        return known[subset]

    return np.array([probability(subset) for subset in members])


def set_word_distributions(
    generator: GeneratorDistributions, sets: LabelSets
) -> NDArray[np.float64]:
    """``q_Y`` of each set: its classes' word distributions summed and normalized, ``[sets,
    words]``; uniform for the empty set."""
    return mixed_word_distributions(generator.word_distributions, sets.matrix)


def mixed_word_distributions(
    word_distributions: NDArray[np.float64], sets: NDArray[np.int64]
) -> NDArray[np.float64]:
    """The generator's word distribution of each 0/1 row of ``sets``: the normalized sum of its
    classes' columns of ``word_distributions`` (``[words, classes]``), uniform for no class."""
    summed = sets @ word_distributions.T
    n_words = word_distributions.shape[0]
    totals = summed.sum(axis=1, keepdims=True)
    empty = totals[:, 0] == 0
    summed[empty] = 1.0 / n_words
    totals[empty] = 1.0
    distributions: NDArray[np.float64] = summed / totals
    return distributions


def bayes_posterior(
    features: NDArray[np.floating], generator: GeneratorDistributions
) -> tuple[LabelSets, NDArray[np.float64]]:
    """The exact posterior P(Y | x) over every label set, ``[rows, sets]``."""
    sets, prior = label_set_prior(generator)
    log_joint = (
        np.log(prior)
        + features.astype(np.float64) @ np.log(set_word_distributions(generator, sets)).T
    )
    # Normalized in log space: the likelihoods of 50-word documents underflow as plain products.
    posterior: NDArray[np.float64] = np.exp(log_joint - log_joint.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    return sets, posterior


def bayes_distribution(
    features: NDArray[np.floating], generator: GeneratorDistributions
) -> SetDistribution:
    """The exact posterior as a distribution over label sets, with its marginals."""
    sets, posterior = bayes_posterior(features, generator)
    return SetDistribution(sets.marginals(posterior), sets, posterior)


@dataclass(frozen=True)
class BayesRule:
    """A cross-validation "fitter" that needs no fitting: the generator's own posterior."""

    generator: GeneratorDistributions

    def __call__(
        self,
        train_features: NDArray[np.float64],
        train_labels: NDArray[np.int64],
        test_features: NDArray[np.float64],
        seed: int,
    ) -> FoldPrediction:
        sets, posterior = bayes_posterior(test_features, self.generator)
        return FoldPrediction.from_label_sets(sets, posterior)


def bayes_rule(dataset: Dataset) -> BayesRule | None:
    """The data's Bayes-optimal rule, when its generator is known and small enough to enumerate."""
    generator = dataset.generator
    if generator is None or len(generator.class_prior) > MAX_CLASSES:
        return None
    return BayesRule(generator)


def no_limit_reason(dataset: Dataset) -> str:
    """Why ``bayes_rule`` gives nothing for this data, in words for the card and the console."""
    if dataset.generator is None:
        return "no limit is known for this data (its generating distribution is unknown)"
    return (
        f"the limit is not computed: {len(dataset.generator.class_prior)} classes have too many "
        f"label sets to enumerate (at most {MAX_CLASSES} classes)"
    )
