"""Multi-label metrics on small cases checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.artifact import MetricSummary
from training.metrics import multilabel_metrics, summarize

LABELS = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
PROBABILITIES = np.array([[0.9, 0.2], [0.4, 0.6], [0.7, 0.3], [0.1, 0.8]])
HALF = np.array([0.5, 0.5])
# At 0.5 the decisions are [[1, 0], [0, 1], [1, 0], [0, 1]]: rows 3 and 4 each miss label b.
EXPECTED_AT_HALF = {
    "subset_accuracy": 2 / 4,
    "hamming_loss": 2 / 8,
    "f1_micro": 2 * 3 / (2 * 3 + 1 + 1),  # TP 3, FP 1, FN 1
    "f1_macro": (1.0 + 0.5) / 2,
    "f1_samples": (1 + 1 + 2 / 3 + 0) / 4,
    "precision[a]": 1.0,
    "recall[a]": 1.0,
    "f1[a]": 1.0,
    "precision[b]": 0.5,
    "recall[b]": 0.5,
    "f1[b]": 0.5,
    "roc_auc[a]": 1.0,
    "roc_auc[b]": 2 / 4,  # of 4 positive-negative pairs, 2 are ordered right
    "average_precision[a]": 1.0,
    "average_precision[b]": 0.5 * (1 / 2) + 0.5 * (2 / 3),
    "log_loss": (
        -(math.log(0.9) + math.log(0.6) + math.log(0.7) + math.log(0.9)) / 4
        - (math.log(0.8) + math.log(0.6) + math.log(0.3) + math.log(0.2)) / 4
    )
    / 2,
}


@pytest.mark.parametrize(("metric", "expected"), EXPECTED_AT_HALF.items())
def test_each_metric_matches_the_hand_computed_value(metric: str, expected: float) -> None:
    metrics = multilabel_metrics(LABELS, PROBABILITIES, HALF, ["a", "b"])
    assert metrics[metric] == pytest.approx(expected)


def test_a_label_is_on_at_its_threshold_exactly() -> None:
    # Label b's threshold 0.3 turns row 3 (0.3) on and row 1 (0.2) off: only row 4 stays wrong.
    metrics = multilabel_metrics(LABELS, PROBABILITIES, np.array([0.5, 0.3]), ["a", "b"])
    assert metrics["subset_accuracy"] == pytest.approx(3 / 4)


def test_a_sample_with_nothing_to_find_and_nothing_claimed_scores_full_sample_f1() -> None:
    labels = np.array([[0, 0], [1, 0], [0, 1]])
    probabilities = np.array([[0.1, 0.1], [0.9, 0.1], [0.1, 0.9]])
    metrics = multilabel_metrics(labels, probabilities, HALF, ["a", "b"])
    assert metrics["f1_samples"] == 1.0


def test_ranking_metrics_are_left_out_where_a_split_holds_one_class() -> None:
    labels = np.array([[1, 1], [0, 1]])
    metrics = multilabel_metrics(labels, np.array([[0.8, 0.7], [0.3, 0.6]]), HALF, ["a", "b"])
    assert "roc_auc[a]" in metrics
    assert "roc_auc[b]" not in metrics
    assert "average_precision[b]" not in metrics


def test_summary_is_mean_population_std_and_range_over_the_splits_defining_each_metric() -> None:
    splits = [{"x": 1.0, "y": 5.0}, {"x": 3.0}]
    assert summarize(splits) == {
        "x": MetricSummary(mean=2.0, std=1.0, min=1.0, max=3.0),
        "y": MetricSummary(mean=5.0, std=0.0, min=5.0, max=5.0),
    }


def test_a_single_label_is_scored_as_one_label_not_as_two_classes() -> None:
    labels = np.array([[1], [0], [1], [0]])
    metrics = multilabel_metrics(labels, np.array([[0.9], [0.6], [0.2], [0.1]]), HALF[:1], ["a"])
    # Decisions [1, 1, 0, 0]: TP 1, FP 1, FN 1.
    assert metrics["f1[a]"] == metrics["f1_macro"] == metrics["f1_micro"] == pytest.approx(0.5)
    assert metrics["f1_samples"] == metrics["subset_accuracy"] == pytest.approx(0.5)
