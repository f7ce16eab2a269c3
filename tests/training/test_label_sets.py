"""Label sets: the vocabulary of a label-set head, marginals and the joint decision."""

from __future__ import annotations

import numpy as np

from training.label_sets import FoldPrediction, LabelSets

LABELS = np.array([[1, 0], [0, 0], [1, 1], [1, 0], [1, 1]])
# Two rows of probabilities over the sets [0 0], [1 0], [1 1] (lexicographic order).
SET_PROBABILITIES = np.array([[0.5, 0.3, 0.2], [0.1, 0.4, 0.5]])


def test_the_sets_seen_are_the_distinct_rows_in_lexicographic_order() -> None:
    sets = LabelSets.seen_in(LABELS)
    assert sets.matrix.tolist() == [[0, 0], [1, 0], [1, 1]]
    assert sets.index_of(LABELS).tolist() == [1, 0, 2, 1, 2]
    assert sets.describe(["a", "b"]) == [[], ["a"], ["a", "b"]]


def test_a_marginal_sums_the_sets_that_hold_the_label() -> None:
    sets = LabelSets.seen_in(LABELS)
    np.testing.assert_allclose(sets.marginals(SET_PROBABILITIES), [[0.5, 0.2], [0.9, 0.5]])


def test_the_joint_decision_can_differ_from_thresholded_marginals() -> None:
    prediction = FoldPrediction.from_label_sets(LabelSets.seen_in(LABELS), SET_PROBABILITIES)
    # Row 0: the empty set is the most probable (0.5), yet label a's marginal is 0.5 too.
    assert prediction.joint is not None
    assert prediction.joint.tolist() == [[0, 0], [1, 1]]
    assert (prediction.probabilities >= 0.5).astype(int).tolist() == [[1, 0], [1, 1]]


def test_a_marginal_never_exceeds_one_when_float32_sums_round_up() -> None:
    sets = LabelSets(np.array([[1, 0], [1, 1]]))
    probabilities = np.array([[0.5, 0.5000001]], dtype=np.float32)
    assert (probabilities @ sets.matrix)[0, 0] > 1.0
    marginals = sets.marginals(probabilities)
    assert marginals[0, 0] == 1.0
    assert marginals[0, 1] == probabilities[0, 1]
