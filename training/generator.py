"""scikit-learn's ``make_multilabel_classification``, drawn fast and bit for bit the same.

scikit-learn draws a row's classes in a loop, a few uniforms at a time, until the label set is
complete. The reference data's third class has a prior of 1e-4, so each of its three-label rows
takes some 10,000 passes of that loop (each a few numpy calls): 27 s of CPU for the 1000
reference rows, about ten minutes for the 21,000 rows of the fresh draws. This makes the very
same calls on the very same ``RandomState`` in the same order, except that the class loop reads
a block of uniforms at once, finds with array operations where scikit-learn's loop would stop,
rewinds the state and consumes exactly as many. ``tests/training/test_generator.py`` checks
it against scikit-learn's function.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_DIRECT_PASSES = 8
"""Passes of scikit-learn's loop made as it makes them, before the last class is searched
for in blocks (most rows need fewer)."""
_BLOCK = 1024


def make_multilabel_classification(
    *,
    n_samples: int,
    n_features: int,
    n_classes: int,
    n_labels: int,
    length: int = 50,
    allow_unlabeled: bool = True,
    random_state: int,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """``sklearn.datasets.make_multilabel_classification(..., return_distributions=True)`` with
    dense outputs: features ``[rows, features]``, labels ``[rows, classes]``, ``p_c``,
    ``p_w_c``."""
    generator = np.random.RandomState(random_state)
    class_prior = generator.uniform(size=n_classes)
    class_prior /= class_prior.sum()
    cumulative_class_prior = np.cumsum(class_prior)
    word_distributions = generator.uniform(size=(n_features, n_classes))
    word_distributions /= np.sum(word_distributions, axis=0)

    features = np.zeros((n_samples, n_features), dtype=np.float64)
    labels = np.zeros((n_samples, n_classes), dtype=np.int64)
    for row in range(n_samples):
        size = n_classes + 1
        while (not allow_unlabeled and size == 0) or size > n_classes:
            size = generator.poisson(n_labels)
        classes = _draw_classes(generator, cumulative_class_prior, size)
        n_words = 0
        while n_words == 0:
            n_words = generator.poisson(length)
        if not classes:
            words = generator.randint(n_features, size=n_words)
        else:
            # The same column order and float sums as scikit-learn: list() of the same set.
            cumulative = word_distributions.take(classes, axis=1).sum(axis=1).cumsum()
            cumulative /= cumulative[-1]
            words = np.searchsorted(cumulative, generator.uniform(size=n_words))
        features[row] = np.bincount(words, minlength=n_features)
        labels[row, classes] = 1
    return features, labels, class_prior, word_distributions


def _draw_classes(
    generator: np.random.RandomState, cumulative_prior: NDArray[np.float64], size: int
) -> list[np.int64]:
    """scikit-learn's loop ``while len(y) != size: y.update(classes of uniform(size - len(y)))``,
    leaving ``generator`` exactly where that loop leaves it."""
    chosen: set[np.int64] = set()
    passes = 0
    while len(chosen) != size:
        missing = size - len(chosen)
        if missing == 1 and passes >= _DIRECT_PASSES:
            _draw_last_class(generator, cumulative_prior, chosen)
            break
        chosen.update(np.searchsorted(cumulative_prior, generator.uniform(size=missing)))
        passes += 1
    return list(chosen)


def _draw_last_class(
    generator: np.random.RandomState, cumulative_prior: NDArray[np.float64], chosen: set[np.int64]
) -> None:
    """Passes of one draw each until a class not in ``chosen`` comes up: found in blocks of
    draws, then the state rewound and exactly the draws scikit-learn makes consumed."""
    state = generator.get_state()
    is_new = np.ones(len(cumulative_prior) + 1, dtype=bool)  # +1: searchsorted's past-the-end
    is_new[list(chosen)] = False
    left = 1.0 - float(np.sum(np.diff(cumulative_prior, prepend=0.0)[list(chosen)]))
    block = max(_BLOCK, int(2 / max(left, 1e-9)))  # most often one block holds the answer
    drawn = np.zeros(0, dtype=np.intp)
    new = np.zeros(0, dtype=np.intp)
    while new.size == 0:
        searched = len(drawn)
        more = np.searchsorted(cumulative_prior, generator.uniform(size=max(block, searched)))
        drawn = np.concatenate([drawn, more])
        new = searched + np.flatnonzero(is_new[more])
    used = int(new[0]) + 1
    chosen.add(drawn[used - 1])
    generator.set_state(state)
    generator.uniform(size=used)
