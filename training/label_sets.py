"""The label-set (powerset) view of multi-label data, and what a model predicts for one fold.

A model with a distribution over whole label sets (the network's label-set head, label-powerset
baselines, the Bayes rule) gives two decisions: each label's marginal probability against its
threshold, and the single most probable label set (the joint decision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
from numpy.typing import NDArray

MAX_LABEL_SETS = 64
"""Most distinct label sets a softmax head ranges over; above it the network keeps one sigmoid
per label. 64 is every set of 6 labels, and far more than the 1000-row reference data holds
(5); a CSV with many labels can hold thousands, most seen once, which a softmax cannot learn."""


@dataclass(frozen=True)
class LabelSets:
    """Distinct label sets, as rows of a 0/1 matrix ``[sets, labels]`` in lexicographic order."""

    matrix: NDArray[np.int64]

    @classmethod
    def seen_in(cls, labels: NDArray[np.int64]) -> Self:
        return cls(np.unique(labels.astype(np.int64), axis=0))

    def union(self, other: LabelSets) -> LabelSets:
        return LabelSets.seen_in(np.vstack([self.matrix, other.matrix]))

    def contains(self, labels: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each row of ``labels`` is one of the sets."""
        known = {tuple(row) for row in self.matrix.tolist()}
        return np.array([tuple(row) in known for row in labels.tolist()], dtype=bool)

    @property
    def count(self) -> int:
        return int(self.matrix.shape[0])

    def index_of(self, labels: NDArray[np.int64]) -> NDArray[np.intp]:
        """Each row's position among the sets; every row must be one of them."""
        sets = {tuple(row): index for index, row in enumerate(self.matrix.tolist())}
        return np.array([sets[tuple(row)] for row in labels.tolist()], dtype=np.intp)

    def marginals(self, set_probabilities: NDArray[np.floating]) -> NDArray[np.float32]:
        """P(label on) = the summed probability of the sets that contain the label.

        Clipped to [0, 1] as the served graph does: float32 sums of a softmax can come out a
        rounding step above 1.
        """
        summed = np.asarray(set_probabilities @ self.matrix, dtype=np.float32)
        return np.clip(summed, 0.0, 1.0)

    def most_probable(self, set_probabilities: NDArray[np.floating]) -> NDArray[np.int64]:
        """The joint decision: each row's most probable label set, as a 0/1 label matrix."""
        decided: NDArray[np.int64] = self.matrix[np.argmax(set_probabilities, axis=1)]
        return decided

    def describe(self, label_names: list[str]) -> list[list[str]]:
        """Each set as the names of its labels (``[]`` for the empty set)."""
        return [
            [name for name, on in zip(label_names, row, strict=True) if on]
            for row in self.matrix.tolist()
        ]


@dataclass(frozen=True)
class FoldPrediction:
    """A model's answer for the held-out rows of one split."""

    probabilities: NDArray[np.float32]
    """Per-label probabilities (marginals), ``[rows, labels]``."""
    joint: NDArray[np.int64] | None = None
    """The most probable label set of each row, ``[rows, labels]``; ``None`` for models that
    give no distribution over label sets (independent per-label outputs)."""
    sets: LabelSets | None = None
    """The label sets ``set_probabilities`` ranges over (with ``joint``)."""
    set_probabilities: NDArray[np.float32] | None = None
    """The probability of each of ``sets``, ``[rows, sets]``."""

    @classmethod
    def from_label_sets(cls, sets: LabelSets, set_probabilities: NDArray[np.floating]) -> Self:
        probabilities = np.asarray(set_probabilities, dtype=np.float32)
        return cls(
            sets.marginals(probabilities), sets.most_probable(probabilities), sets, probabilities
        )

    def over(self, sets: LabelSets) -> NDArray[np.float32]:
        """``set_probabilities`` over ``sets``, a superset of this prediction's own: 0 for the
        sets this model does not range over."""
        assert self.sets is not None
        assert self.set_probabilities is not None
        spread = np.zeros((len(self.probabilities), sets.count), dtype=np.float32)
        spread[:, sets.index_of(self.sets.matrix)] = self.set_probabilities
        return spread
