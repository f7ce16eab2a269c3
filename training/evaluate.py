"""Repeated k-fold cross-validation of the network, as in the reference experiment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import accuracy_score
from sklearn.model_selection import RepeatedKFold

from app.artifact import CrossValidation, MetricSummary, decide
from training.data import Dataset
from training.model import NetworkOptions, fit_model, predict_probabilities


@dataclass(frozen=True)
class SplitResult:
    index: int
    total: int
    metrics: dict[str, float]


def split_metrics(
    labels: NDArray[np.int64], probabilities: NDArray[np.float32], thresholds: NDArray[np.float64]
) -> dict[str, float]:
    """Metrics of one split. ``subset_accuracy`` is multi-label ``accuracy_score``: a sample
    counts only when every one of its labels is right."""
    predicted = decide(probabilities, thresholds).astype(np.int64)
    return {"subset_accuracy": float(accuracy_score(labels, predicted))}


def summarize(splits: list[dict[str, float]]) -> dict[str, MetricSummary]:
    summary = {}
    for metric in splits[0]:
        values = np.array([split[metric] for split in splits])
        summary[metric] = MetricSummary(
            mean=float(values.mean()),
            std=float(values.std()),
            min=float(values.min()),
            max=float(values.max()),
        )
    return summary


def cross_validate(
    dataset: Dataset,
    options: NetworkOptions,
    *,
    n_splits: int,
    n_repeats: int,
    seed: int,
    on_split: Callable[[SplitResult], None] = lambda result: None,
) -> CrossValidation:
    """Fit one network per split of ``RepeatedKFold`` and score it on the held-out fold.

    Each split's network is seeded with ``seed + split index``, so results do not depend on
    the order in which splits run.
    """
    folds = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    total = n_splits * n_repeats
    thresholds = np.full(len(dataset.label_names), 0.5)
    splits: list[dict[str, float]] = []
    for index, (train, test) in enumerate(folds.split(dataset.features)):
        model, _ = fit_model(
            dataset.features[train], dataset.labels[train], options, seed=seed + index
        )
        probabilities = predict_probabilities(model, dataset.features[test])
        metrics = split_metrics(dataset.labels[test], probabilities, thresholds)
        splits.append(metrics)
        on_split(SplitResult(index=index + 1, total=total, metrics=metrics))
    return CrossValidation(
        n_splits=n_splits,
        n_repeats=n_repeats,
        random_state=seed,
        splits=splits,
        summary=summarize(splits),
    )
