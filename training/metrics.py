"""Multi-label metrics of one evaluation split, and their summary over splits (scikit-learn).

Names follow scikit-learn: ``*_score``-like metrics (accuracy, F1, AUC...) are better when
higher, ``*_loss`` metrics when lower. Per-label metrics are keyed ``metric[label]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from app.artifact import MetricSummary, decide

OVERALL_METRICS = ("subset_accuracy", "hamming_loss", "f1_micro", "f1_macro", "f1_samples")
PER_LABEL_METRICS = ("precision", "recall", "f1", "roc_auc", "average_precision")
METRIC_DESCRIPTIONS = {
    "subset_accuracy": "share of samples whose whole label set is right "
    "(multi-label `accuracy_score`)",
    "hamming_loss": "share of individual label decisions that are wrong",
    "f1_micro": "F1 over all label decisions pooled",
    "f1_macro": "mean of the per-label F1 scores",
    "f1_samples": "mean over samples of the F1 of each sample's label set",
    "log_loss": "mean over labels of the binary log loss of the probabilities "
    "(the binary cross-entropy a network with sigmoid heads minimizes)",
    "joint_subset_accuracy": "subset accuracy of the joint decision, the single most probable "
    "label set (models with a distribution over label sets only)",
}


def per_label_key(metric: str, label: str) -> str:
    return f"{metric}[{label}]"


def multilabel_metrics(
    labels: NDArray[np.int64],
    probabilities: NDArray[np.floating],
    thresholds: NDArray[np.float64],
    label_names: Sequence[str],
    *,
    joint: NDArray[np.int64] | None = None,
) -> dict[str, float]:
    """Every metric of one split, from its true labels and predicted probabilities (and the
    most probable label sets, ``joint``, of a model that has them).

    Label decisions use ``probability >= threshold``. A sample with no true and no predicted
    label scores F1 1 in ``f1_samples`` (nothing to find, nothing claimed); elsewhere an
    undefined precision, recall or F1 (no positives) counts 0. ROC AUC and average precision
    are left out for a label whose split holds only one class, where they are undefined.
    """
    probabilities = probabilities.astype(np.float64)
    predicted = decide(probabilities, thresholds).astype(np.int64)
    metrics = {
        "subset_accuracy": float(accuracy_score(labels, predicted)),
        "hamming_loss": float(hamming_loss(labels, predicted)),
        **_pooled_f1(labels, predicted),
        "log_loss": float(
            np.mean(
                [
                    log_loss(labels[:, j], probabilities[:, j], labels=[0, 1])
                    for j in range(labels.shape[1])
                ]
            )
        ),
    }
    if joint is not None:
        metrics["joint_subset_accuracy"] = float(accuracy_score(labels, joint))
    for j, label in enumerate(label_names):
        truth, decided, scores = labels[:, j], predicted[:, j], probabilities[:, j]
        per_label = {
            "precision": precision_score(truth, decided, zero_division=0.0),
            "recall": recall_score(truth, decided, zero_division=0.0),
            "f1": f1_score(truth, decided, zero_division=0.0),
        }
        if 0 < truth.sum() < len(truth):
            per_label["roc_auc"] = roc_auc_score(truth, scores)
            per_label["average_precision"] = average_precision_score(truth, scores)
        metrics.update({per_label_key(name, label): float(v) for name, v in per_label.items()})
    return metrics


def _pooled_f1(labels: NDArray[np.int64], predicted: NDArray[np.int64]) -> dict[str, float]:
    if labels.shape[1] == 1:
        # scikit-learn reads a single column as binary, not multi-label; with one label, micro
        # and macro F1 are that label's F1, and samples F1 is accuracy (an empty set is right).
        f1 = float(f1_score(labels[:, 0], predicted[:, 0], zero_division=0.0))
        return {
            "f1_micro": f1,
            "f1_macro": f1,
            "f1_samples": float(accuracy_score(labels, predicted)),
        }
    return {
        "f1_micro": float(f1_score(labels, predicted, average="micro", zero_division=0.0)),
        "f1_macro": float(f1_score(labels, predicted, average="macro", zero_division=0.0)),
        "f1_samples": float(f1_score(labels, predicted, average="samples", zero_division=1.0)),
    }


def summarize(splits: Sequence[dict[str, float]]) -> dict[str, MetricSummary]:
    """Mean, (population) standard deviation, min and max of each metric over the splits
    that define it, in first-seen order."""
    names = list(dict.fromkeys(name for split in splits for name in split))
    summary = {}
    for name in names:
        values = np.array([split[name] for split in splits if name in split])
        summary[name] = MetricSummary(
            mean=float(values.mean()),
            std=float(values.std()),
            min=float(values.min()),
            max=float(values.max()),
        )
    return summary
