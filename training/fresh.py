"""What to expect of the served model on new data.

For the synthetic data the generator itself can be asked for more: the same call with
``n_samples`` raised by ``FRESH_ROWS`` draws the training rows first (checked equal) and then
rows no model has seen. The served model, the Bayes rule and each baseline (fitted on the
training rows) are scored there. Those rows are a test set: nothing is chosen on them.

For other data there is no generator, and the cross-validated figure is the estimate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.artifact import CrossValidation, DecisionScore, ExpectedAccuracy, FreshDraws, decide
from training.calibration import (
    Reliability,
    SetDistribution,
    calibration_scores,
    reliability_curves,
)
from training.compare import NOISE_MULTIPLE
from training.data import Dataset
from training.generator import make_multilabel_classification
from training.label_sets import FoldPrediction
from training.limits import bayes_distribution

FRESH_ROWS = 20_000
SYNTHETIC_SOURCE = "make_multilabel_classification"


class FreshDrawError(Exception):
    """The generator's first rows are not the training data: the fresh rows would not be new."""


def generator_call(parameters: Mapping[str, object], n_samples: int) -> str:
    arguments = {**parameters, "n_samples": n_samples}
    listed = ", ".join(f"{key}={value}" for key, value in arguments.items())
    return f"make_multilabel_classification({listed}, allow_unlabeled=True)"


def fresh_draws(dataset: Dataset, n_rows: int = FRESH_ROWS) -> Dataset | None:
    """``n_rows`` new rows of the training data's generator, or ``None`` for data without one."""
    if dataset.source != SYNTHETIC_SOURCE or dataset.generator is None:
        return None
    parameters = dataset.parameters
    features, labels = _drawn(
        dataset.n_samples + n_rows,
        int(parameters["n_features"]),
        int(parameters["n_classes"]),
        int(parameters["n_labels"]),
        int(parameters["random_state"]),
    )
    seen = dataset.n_samples
    if not (
        np.array_equal(features[:seen], dataset.features)
        and np.array_equal(labels[:seen], dataset.labels)
    ):
        raise FreshDrawError(
            f"the first {seen} rows of {generator_call(parameters, seen + n_rows)} differ from "
            "the training data"
        )
    return Dataset(
        features=features[seen:],
        labels=labels[seen:],
        feature_names=dataset.feature_names,
        label_names=dataset.label_names,
        source=dataset.source,
        parameters={**parameters, "n_samples": seen + n_rows, "first_row": seen},
        generator=dataset.generator,
    )


@functools.lru_cache(maxsize=2)
def _drawn(
    n_samples: int, n_features: int, n_classes: int, n_labels: int, random_state: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The generator's rows (seconds of CPU for 21,000), kept for the next run in this process."""
    features, labels, _, _ = make_multilabel_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_classes=n_classes,
        n_labels=n_labels,
        random_state=random_state,
    )
    features.flags.writeable = False
    labels.flags.writeable = False
    return features, labels


def decision_score(
    decision: str, right: NDArray[np.bool_], limit_right: NDArray[np.bool_]
) -> DecisionScore:
    """Subset accuracy against the limit's on the same rows, with the ratio's standard error
    (delta method over the paired rows: var(mean(a - r b)) / mean(b)²)."""
    a, b = right.astype(np.float64), limit_right.astype(np.float64)
    ratio = float(a.mean() / b.mean())
    residual = a - ratio * b
    standard_error = float(residual.std(ddof=1) / math.sqrt(len(a)) / b.mean())
    return DecisionScore(
        decision="set" if decision == "set" else "labels",
        subset_accuracy=float(a.mean()),
        limit=float(b.mean()),
        ratio=ratio,
        ratio_standard_error=standard_error,
    )


def _right(decided: NDArray[np.integer] | NDArray[np.bool_], labels: NDArray[np.int64]) -> Any:
    return (decided.astype(np.int64) == labels).all(axis=1)


def _decisions(
    distribution: SetDistribution,
    thresholds: NDArray[np.float32],
    fresh: Dataset,
    limit: SetDistribution,
) -> list[DecisionScore]:
    labels = fresh.labels
    limit_labels = _right(decide(limit.marginals, np.full(fresh.n_labels, 0.5)), labels)
    _, limit_set = limit.top(labels)
    _, model_set = distribution.top(labels)
    return [
        decision_score(
            "labels", _right(decide(distribution.marginals, thresholds), labels), limit_labels
        ),
        decision_score("set", model_set, limit_set),
    ]


@dataclass(frozen=True)
class FreshScores:
    """The record for the artifact, and the reliability curves the model card draws."""

    record: FreshDraws
    curves: dict[str, dict[str, Reliability]]
    """Per series (the served model, the Bayes posterior), per panel (label, set)."""


def score_fresh_draws(
    fresh: Dataset,
    model: FoldPrediction,
    thresholds: list[float],
    baselines: Mapping[str, FoldPrediction],
) -> FreshScores:
    """The served model (its predictions on ``fresh``), the Bayes rule and the baselines."""
    assert fresh.generator is not None
    limit = bayes_distribution(fresh.features, fresh.generator)
    served = _distribution(model)
    served_thresholds = np.asarray(thresholds, dtype=np.float32)
    description = f"{fresh.n_samples} fresh draws"
    _, modelled = served.true_set(fresh.labels)
    half = np.full(fresh.n_labels, 0.5, dtype=np.float32)
    record = FreshDraws(
        generator_call=generator_call(
            {k: v for k, v in fresh.parameters.items() if k != "first_row"},
            int(fresh.parameters["n_samples"]),
        ),
        first_row=int(fresh.parameters["first_row"]),
        n_rows=fresh.n_samples,
        decisions=_decisions(served, served_thresholds, fresh, limit),
        baselines={
            name: _decisions(_distribution(prediction), half, fresh, limit)
            for name, prediction in baselines.items()
        }
        or None,
        model=calibration_scores(
            served, fresh.labels, fresh.label_names, rows_description=description
        ),
        limit=calibration_scores(
            limit,
            fresh.labels,
            fresh.label_names,
            rows_description=description + " (label sets: the rows the served model can score)",
            set_rows=modelled,
        ),
    )
    curves = {
        f"served model, {description}": reliability_curves(served, fresh.labels, fresh.label_names),
        f"Bayes posterior, {description}": reliability_curves(
            limit, fresh.labels, fresh.label_names
        ),
    }
    return FreshScores(record, curves)


def _distribution(prediction: FoldPrediction) -> SetDistribution:
    return SetDistribution(prediction.probabilities, prediction.sets, prediction.set_probabilities)


def from_fresh_draws(draws: FreshDraws) -> ExpectedAccuracy:
    """The expectation for synthetic data, in words, from the fresh draws."""
    labels, joint = draws.decisions
    margin = NOISE_MULTIPLE * math.sqrt(
        labels.subset_accuracy * (1 - labels.subset_accuracy) / draws.n_rows
    )
    summary = (
        f"On {draws.n_rows} fresh draws of the generator (rows {draws.first_row} to "
        f"{draws.first_row + draws.n_rows - 1} of {draws.generator_call}; the rows before are "
        f"the training data, checked equal), the served decision (per-label thresholds) reaches "
        f"subset accuracy {labels.subset_accuracy:.4f} (± {margin:.4f}, two standard errors), "
        f"against {labels.limit:.4f} for the Bayes rule's same decision (marginals at 0.5): a "
        f"ratio of {labels.ratio:.4f} ± {labels.ratio_standard_error:.4f}. The most probable "
        f"label set: {joint.subset_accuracy:.4f} against {joint.limit:.4f}, ratio "
        f"{joint.ratio:.4f} ± {joint.ratio_standard_error:.4f}. Expect the first figure on new "
        "data from this generator; the cross-validated figures, on the 1000 training rows, "
        "read higher because those rows happen to be easier than the generator's average "
        "(the Bayes rule itself scores higher on them)."
    )
    return ExpectedAccuracy(source="fresh_draws", summary=summary, fresh_draws=draws)


def from_cross_validation(served: CrossValidation, n_samples: int) -> ExpectedAccuracy:
    """The expectation for data without a generator: the cross-validated figure, and what it
    estimates."""
    accuracies = np.array([split["subset_accuracy"] for split in served.splits])
    ratio = 1 / (served.n_splits - 1)
    standard_error = math.sqrt(
        (1 / len(accuracies) + ratio) * float(accuracies.var(ddof=1) if len(accuracies) > 1 else 0)
    )
    fit_rows = round(n_samples * (served.n_splits - 1) / served.n_splits)
    summary = (
        "No generator is known for this data, so the cross-validated figure is the estimate: "
        f"subset accuracy {accuracies.mean():.3f} ± {standard_error:.3f} (mean over "
        f"{len(accuracies)} splits of RepeatedKFold(n_splits={served.n_splits}, "
        f"n_repeats={served.n_repeats}, random_state={served.random_state}) ± its corrected "
        "standard error, Nadeau and Bengio). It estimates the subset accuracy that these "
        f"options, fitted on {fit_rows} rows like these, reach on new rows drawn from the same "
        f"distribution as the data; the served model is fitted on all {n_samples} rows, so it "
        "should do about as well. It says nothing of data that differs from these rows."
    )
    return ExpectedAccuracy(source="cross_validation", summary=summary)
