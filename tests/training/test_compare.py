"""Paired per-split comparison of the served model against another model."""

from __future__ import annotations

import math

import pytest

from training.compare import paired_comparison


def test_differences_count_wins_losses_and_ties_split_by_split() -> None:
    result = paired_comparison([0.8, 0.9, 0.7, 0.6], [0.7, 0.9, 0.8, 0.5], test_to_train=1 / 9)
    differences = [0.1, 0.0, -0.1, 0.1]
    mean = sum(differences) / 4
    assert result.mean == pytest.approx(mean)
    assert result.std == pytest.approx(math.sqrt(sum((d - mean) ** 2 for d in differences) / 4))
    assert (result.won, result.lost, result.tied) == (2, 1, 1)
    sample_variance = sum((d - mean) ** 2 for d in differences) / 3
    assert result.standard_error == pytest.approx(math.sqrt((1 / 4 + 1 / 9) * sample_variance))


@pytest.mark.parametrize(
    ("served", "other", "verdict"),
    [
        pytest.param([0.90, 0.91, 0.92, 0.90], [0.80, 0.80, 0.81, 0.80], "better", id="better"),
        pytest.param([0.80, 0.80, 0.81, 0.80], [0.90, 0.91, 0.92, 0.90], "worse", id="worse"),
        pytest.param(
            [0.80, 0.90, 0.70, 0.85], [0.85, 0.80, 0.75, 0.80], "within noise", id="noise"
        ),
    ],
)
def test_a_difference_is_real_only_beyond_twice_its_corrected_standard_error(
    served: list[float], other: list[float], verdict: str
) -> None:
    assert paired_comparison(served, other, test_to_train=1 / 9).verdict == verdict
