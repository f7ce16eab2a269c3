"""The fast generator draws exactly what scikit-learn's make_multilabel_classification draws."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_multilabel_classification as scikit_learns

from training.generator import make_multilabel_classification

SETTINGS = [
    pytest.param(
        {"n_samples": 60, "n_features": 10, "n_classes": 3, "n_labels": 2, "random_state": 1},
        id="reference-data-with-its-rare-class",
    ),
    pytest.param(
        {"n_samples": 300, "n_features": 10, "n_classes": 3, "n_labels": 2, "random_state": 0},
        id="other-seed",
    ),
    pytest.param(
        {
            "n_samples": 200,
            "n_features": 7,
            "n_classes": 5,
            "n_labels": 3,
            "random_state": 5,
            "allow_unlabeled": False,
        },
        id="no-empty-sets",
    ),
    pytest.param(
        {
            "n_samples": 200,
            "n_features": 4,
            "n_classes": 2,
            "n_labels": 1,
            "length": 5,
            "random_state": 3,
        },
        id="short-documents",
    ),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_the_same_call_draws_the_same_rows_and_distributions(settings: dict[str, int]) -> None:
    expected = scikit_learns(**{"allow_unlabeled": True, **settings}, return_distributions=True)
    actual = make_multilabel_classification(**settings)  # type: ignore[arg-type]
    for ours, theirs in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_more_rows_of_the_same_call_begin_with_the_same_rows() -> None:
    short = make_multilabel_classification(
        n_samples=100, n_features=10, n_classes=3, n_labels=2, random_state=1
    )
    long = make_multilabel_classification(
        n_samples=250, n_features=10, n_classes=3, n_labels=2, random_state=1
    )
    np.testing.assert_array_equal(long[0][:100], short[0])
    np.testing.assert_array_equal(long[1][:100], short[1])
