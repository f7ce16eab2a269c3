"""Honest selection: the rule that picks the default preset, and the record it cites."""

from __future__ import annotations

import pytest

from app.artifact import CandidateScore, MetricSummary
from training.data import synthetic_dataset
from training.options import PRESETS, NetworkOptions
from training.select import NEAR_EQUAL, SELECTION_SEED, choose, load_selection


def score(mean: float, **options: object) -> CandidateScore:
    return CandidateScore(
        options=NetworkOptions(**options).as_dict(),  # type: ignore[arg-type]
        subset_accuracy=MetricSummary(mean=mean, std=0.03, min=mean - 0.05, max=mean + 0.05),
    )


@pytest.mark.parametrize(
    ("scores", "chosen"),
    [
        pytest.param({"a": score(0.85), "b": score(0.83)}, "a", id="best-mean"),
        pytest.param(
            {"big": score(0.851, ensemble=3), "small": score(0.851 - NEAR_EQUAL / 2)},
            "small",
            id="cheaper-near-equal",
        ),
        pytest.param(
            {"big": score(0.86, ensemble=3), "small": score(0.86 - 2 * NEAR_EQUAL)},
            "big",
            id="cheaper-but-worse",
        ),
        pytest.param(
            {"long": score(0.85), "short": score(0.8495, epochs=50)}, "short", id="fewer-epochs"
        ),
    ],
)
def test_the_rule_takes_the_best_mean_unless_a_cheaper_candidate_is_as_good(
    scores: dict[str, CandidateScore], chosen: str
) -> None:
    assert choose(scores) == chosen


def test_the_default_preset_is_what_the_recorded_selection_chose_on_other_folds() -> None:
    selection = load_selection()
    assert selection.candidates[selection.chosen].options == PRESETS["default"].as_dict()
    assert selection.chosen == choose(selection.candidates)
    assert selection.random_state == SELECTION_SEED != 1  # the reporting folds use seed 1
    assert selection.data_fingerprint == synthetic_dataset().fingerprint()
