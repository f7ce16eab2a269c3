"""The model card (``model_card.md``) and its plots, written into the version being published."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.artifact import CrossValidation, MetricSummary
from training import plots
from training.data import Dataset
from training.evaluate import Evaluation, ThresholdEvaluation
from training.metrics import METRIC_DESCRIPTIONS, PER_LABEL_METRICS, per_label_key
from training.model import NetworkOptions
from training.thresholds import OBJECTIVE_METRIC
from training.thresholds import describe as describe_thresholds

CARD_FILE = "model_card.md"
SUBSET_ACCURACY_PLOT = "subset_accuracy.png"
ROC_PLOT = "roc_curves.png"
PRECISION_RECALL_PLOT = "precision_recall.png"
CALIBRATION_PLOT = "calibration.png"
LOSS_PLOT = "loss_curve.png"
TABLE_METRICS = (*METRIC_DESCRIPTIONS,)
REFERENCE_DATA = {
    "n_samples": 1000,
    "n_features": 10,
    "n_classes": 3,
    "n_labels": 2,
    "random_state": 1,
}


@dataclass(frozen=True)
class TrainingSummary:
    """Everything one training run learned, as the card tells it."""

    name: str
    command: str
    dataset: Dataset
    preset: str
    options: NetworkOptions
    seed: int
    thresholds: list[float]
    histories: list[dict[str, list[float]]]
    evaluation: Evaluation | None = None
    threshold_evaluation: ThresholdEvaluation | None = None
    baselines: dict[str, Evaluation] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock time of each stage, in order: e.g. cross-validation, baselines, final fit."""

    @property
    def on_reference_data(self) -> bool:
        return (
            self.dataset.source == "make_multilabel_classification"
            and self.dataset.parameters == REFERENCE_DATA
        )


def write_report(summary: TrainingSummary, directory: Path) -> list[str]:
    """Draw the plots and write the card into ``directory``; return the files written."""
    written = [*_write_plots(summary, directory), CARD_FILE]
    (directory / CARD_FILE).write_text(model_card(summary), encoding="utf-8")
    return written


def _write_plots(summary: TrainingSummary, directory: Path) -> list[str]:
    plots.loss_plot(directory / LOSS_PLOT, summary.histories)
    evaluation = summary.evaluation
    if evaluation is None:
        return [LOSS_PLOT]
    truth = np.tile(summary.dataset.labels, (evaluation.folds.n_repeats, 1))
    scores = _pooled(evaluation.probabilities)
    labels = summary.dataset.label_names
    plots.subset_accuracy_plot(
        directory / SUBSET_ACCURACY_PLOT,
        evaluation.subset_accuracies,
        models={
            "ours": evaluation.subset_accuracies,
            **{name: baseline.subset_accuracies for name, baseline in summary.baselines.items()},
        },
        show_reference=summary.on_reference_data,
    )
    plots.roc_plot(directory / ROC_PLOT, truth, scores, labels)
    plots.precision_recall_plot(
        directory / PRECISION_RECALL_PLOT, truth, scores, labels, summary.thresholds
    )
    plots.calibration_plot(directory / CALIBRATION_PLOT, truth, scores, labels)
    return [SUBSET_ACCURACY_PLOT, ROC_PLOT, PRECISION_RECALL_PLOT, CALIBRATION_PLOT, LOSS_PLOT]


def _pooled(probabilities: NDArray[np.float32]) -> NDArray[np.float32]:
    """Every repeat's out-of-fold probabilities stacked: [repeats * samples, labels]."""
    return probabilities.reshape(-1, probabilities.shape[-1])


def model_card(summary: TrainingSummary) -> str:
    sections = [
        _header(summary),
        _data_section(summary),
        _model_section(summary),
        _evaluation_section(summary),
        _plots_section(summary),
    ]
    return "\n\n".join(section.strip() for section in sections if section) + "\n"


def _header(summary: TrainingSummary) -> str:
    stages = ", ".join(
        f"{stage} {_duration(seconds)}" for stage, seconds in summary.seconds.items()
    )
    total = _duration(sum(summary.seconds.values()))
    return f"""
# Model card: {summary.name}

Multi-label classifier: for each sample, a probability per label and the set of labels whose
probability reaches its threshold. Written by the training run itself, next to the model it
describes (the version's `metadata.json` holds every figure below, and more).

- Trained: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, by `{summary.command}`
- Elapsed: {total} ({stages})
"""


def _data_section(summary: TrainingSummary) -> str:
    data = summary.dataset
    parameters = ", ".join(f"{key}={value}" for key, value in data.parameters.items())
    rows = "\n".join(
        f"| {name} | {share:.3f} |"
        for name, share in zip(data.label_names, data.label_frequencies(), strict=True)
    )
    return f"""
## Data

- Source: `{data.source}` ({parameters})
- {data.n_samples} samples, {len(data.feature_names)} features ({_names(data.feature_names)}),
  {len(data.label_names)} labels
- Fingerprint (SHA-256 of the feature and label matrices): `{data.fingerprint()}`

| label | share of samples with it on |
| --- | --- |
{rows}
"""


def _model_section(summary: TrainingSummary) -> str:
    options = summary.options
    layers = [
        "standardization ((x - mean) / std of the training data, inside the graph)"
        if options.normalize
        else None,
        f"Dense({options.hidden_units}, relu, he_uniform)",
        f"Dense({len(summary.dataset.label_names)}, sigmoid)",
    ]
    architecture = " → ".join(layer for layer in layers if layer)
    extras = []
    if options.early_stopping:
        extras.append(
            f"early stopping: patience {options.early_stopping} epochs on a seeded "
            f"{options.validation_fraction:.0%} validation part, best weights restored"
        )
    if options.ensemble > 1:
        extras.append(f"ensemble: mean probability of {options.ensemble} networks seeded apart")
    fitting = "; ".join(
        [
            f"binary cross-entropy, Adam (learning rate {options.learning_rate})",
            f"{options.epochs} epochs of batch {options.batch_size}",
            *extras,
        ]
    )
    return f"""
## Model

- Preset: `{summary.preset}`{
        " (the reference network exactly)"
        if summary.preset == "reference" and options == NetworkOptions()
        else ""
    }
- Network: {architecture}
- Fitting: {fitting}
- Seed: {summary.seed}. The served model is this network fitted on all {summary.dataset.n_samples}
  samples; it takes raw feature values (any scaling is part of the graph).
- Thresholds served: {describe_thresholds(summary.dataset.label_names, summary.thresholds)}
"""


def _evaluation_section(summary: TrainingSummary) -> str:
    evaluation = summary.evaluation
    if evaluation is None:
        return "## Evaluation\n\nNone: this run skipped cross-validation (`--no-cv`)."
    folds = evaluation.folds
    descriptions = "\n".join(
        f"- **{name.replace('_', ' ')}**: {text}" for name, text in METRIC_DESCRIPTIONS.items()
    )
    return f"""
## Evaluation

`RepeatedKFold(n_splits={folds.n_splits}, n_repeats={folds.n_repeats}, random_state={folds.seed})`:
{folds.total} splits. On each, a fresh network (seeded with seed + split number) is fitted on
the training part and predicts the held-out fold; the metrics are scikit-learn's, computed on
those out-of-fold probabilities. Every baseline is fitted on the very same splits. Figures are
mean ± standard deviation over the splits.

{descriptions}

### Ours against the baselines (threshold 0.5)

{_comparison_table(summary)}

{_thresholds_section(summary)}

### Per label (ours)

{_per_label_table(summary)}
"""


def _comparison_table(summary: TrainingSummary) -> str:
    assert summary.evaluation is not None
    rows: dict[str, CrossValidation] = {
        f"**ours** (preset `{summary.preset}`)": summary.evaluation.cross_validation
    }
    if summary.threshold_evaluation is not None:
        rows["ours, tuned thresholds (cross-fitted)"] = summary.threshold_evaluation.cross_fitted
    rows.update({name: baseline.cross_validation for name, baseline in summary.baselines.items()})
    header = "| model | " + " | ".join(name.replace("_", " ") for name in TABLE_METRICS) + " |"
    lines = [header, "|" + " --- |" * (len(TABLE_METRICS) + 1)]
    for name, result in rows.items():
        cells = [_mean_std(result.summary.get(metric)) for metric in TABLE_METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    accuracies = {name: result.summary["subset_accuracy"].mean for name, result in rows.items()}
    best = max(accuracies, key=lambda name: accuracies[name])
    verdict = f"Highest mean subset accuracy: {best} ({accuracies[best]:.3f})."
    if not summary.baselines:
        verdict += " Baselines were not run (`--no-baselines`)."
    return "\n".join(lines) + "\n\n" + verdict


def _thresholds_section(summary: TrainingSummary) -> str:
    tuning = summary.threshold_evaluation
    if tuning is None:
        return ""
    metric = OBJECTIVE_METRIC[tuning.objective]
    labels = summary.dataset.label_names
    at_half = summary.evaluation.cross_validation.summary if summary.evaluation else {}
    crossed = tuning.cross_fitted.summary
    rows = "\n".join(
        f"| {label} | {tuned:.2f} | {_mean_std(crossed[per_label_key('threshold', label)])} | "
        f"{_mean_std(at_half[per_label_key('f1', label)])} | "
        f"{_mean_std(crossed[per_label_key('f1', label)])} |"
        for label, tuned in zip(labels, tuning.tuned, strict=True)
    )
    if tuning.applied:
        decision = (
            f"Tuning raised the cross-fitted {metric.replace('_', ' ')} from "
            f"{at_half[metric].mean:.3f} to {crossed[metric].mean:.3f}, so the model serves the "
            "tuned thresholds."
        )
    else:
        decision = (
            f"Tuning did not raise the cross-fitted {metric.replace('_', ' ')} "
            f"({at_half[metric].mean:.3f} at 0.5, {crossed[metric].mean:.3f} tuned), so the "
            "model keeps 0.5 for every label."
        )
    return f"""
### Thresholds: 0.5 against tuned

Objective: `{tuning.objective}` (maximize {metric.replace("_", " ")}). Candidates 0.05 to 0.95
in steps of 0.01; ties keep the value nearest 0.5.

Tuning thresholds and scoring them on the same out-of-fold probabilities would flatter
them. So the "tuned" figures here are **cross-fitted**: each split is scored at thresholds tuned
only on the other folds of its repeat, never on the fold being scored. The served thresholds
are then tuned once on all out-of-fold probabilities; they are still chosen after seeing the
data, so expect new data to score closer to the cross-fitted figures than to anything better.

{decision}

| label | tuned on all folds | tuned per split | F1 at 0.5 | F1 tuned (cross-fitted) |
| --- | --- | --- | --- | --- |
{rows}
"""


def _per_label_table(summary: TrainingSummary) -> str:
    assert summary.evaluation is not None
    columns = {"at 0.5": summary.evaluation.cross_validation.summary}
    if summary.threshold_evaluation is not None:
        columns["tuned"] = summary.threshold_evaluation.cross_fitted.summary
    header = ["label", "thresholds"] + [metric.replace("_", " ") for metric in PER_LABEL_METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for label in summary.dataset.label_names:
        for column, results in columns.items():
            cells = [_mean_std(results.get(per_label_key(m, label))) for m in PER_LABEL_METRICS]
            lines.append(f"| {label} | {column} | " + " | ".join(cells) + " |")
    note = (
        "ROC AUC and average precision do not depend on the threshold. Precision, recall and "
        "F1 count 0 where undefined (no predicted or no true positives in a split)."
    )
    return "\n".join(lines) + "\n\n" + note


def _plots_section(summary: TrainingSummary) -> str:
    figures = [
        (
            LOSS_PLOT,
            "Final fit: training loss per epoch"
            + (" (dashed: validation loss)" if summary.options.early_stopping else "")
            + ". A curve that flattens is a fit that converged.",
        )
    ]
    evaluation = summary.evaluation
    if evaluation is not None:
        pooled = (
            "out-of-fold probabilities"
            if evaluation.folds.n_repeats == 1
            else f"out-of-fold probabilities of all {evaluation.folds.n_repeats} repeats pooled"
        )
        spread = (
            " beside the reference experiment's published spread (grey: mean ± std 0.822 ± "
            "0.029, range 0.77 to 0.88)"
            if summary.on_reference_data
            else ""
        )
        figures = [
            (
                SUBSET_ACCURACY_PLOT,
                f"Left: our subset accuracy on each of the {evaluation.folds.total} "
                f"splits{spread}. Right: the spread of every model over the same splits "
                "(box: quartiles, line: median, triangle: mean).",
            ),
            (
                ROC_PLOT,
                f"ROC curve per label, {pooled}; the legend gives each area under the curve.",
            ),
            (
                PRECISION_RECALL_PLOT,
                f"Precision-recall curve per label, {pooled}; the legend "
                "gives average precision, the dot where the served threshold operates.",
            ),
            (
                CALIBRATION_PLOT,
                f"Calibration per label, {pooled}: mean predicted probability "
                "against the observed share of positives in 10 bins. Points on the diagonal mean "
                "the probabilities can be read as frequencies; the legend gives the Brier score.",
            ),
            *figures,
        ]
    body = "\n\n".join(f"{text}\n\n![{name}]({name})" for name, text in figures)
    return f"## Plots\n\n{body}"


def _mean_std(summary: MetricSummary | None) -> str:
    return "n/a" if summary is None else f"{summary.mean:.3f} ± {summary.std:.3f}"


def _names(names: Sequence[str], shown: int = 12) -> str:
    if len(names) <= shown:
        return ", ".join(names)
    return ", ".join(names[:shown]) + f", … ({len(names) - shown} more)"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
