"""The model card (``model_card.md``) and its plots, written into the version being published."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.artifact import BayesLimit, CrossValidation, MetricSummary, PairedComparison, Selection
from training import plots
from training.compare import NOISE_MULTIPLE
from training.data import Dataset
from training.evaluate import Evaluation, ThresholdEvaluation
from training.label_sets import LabelSets
from training.metrics import METRIC_DESCRIPTIONS, PER_LABEL_METRICS, per_label_key
from training.options import PRESETS, Head, NetworkOptions, PresetName
from training.thresholds import OBJECTIVE_METRIC
from training.thresholds import describe as describe_thresholds

CARD_FILE = "model_card.md"
SUBSET_ACCURACY_PLOT = "subset_accuracy.png"
ROC_PLOT = "roc_curves.png"
PRECISION_RECALL_PLOT = "precision_recall.png"
CALIBRATION_PLOT = "calibration.png"
LOSS_PLOT = "loss_curve.png"
TABLE_METRICS = (*METRIC_DESCRIPTIONS,)
LIMIT_JOINT = "limit: Bayes rule, most probable label set"
LIMIT_MARGINALS = "limit: Bayes rule, marginals at 0.5"
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
    preset: PresetName
    options: NetworkOptions
    head: Head
    """The head fitted: ``label_sets`` falls back to ``sigmoid`` above the cap."""
    label_sets: LabelSets | None
    seed: int
    thresholds: list[float]
    histories: list[dict[str, list[float]]]
    evaluation: Evaluation | None = None
    threshold_evaluation: ThresholdEvaluation | None = None
    baselines: dict[str, Evaluation] = field(default_factory=dict)
    limit: BayesLimit | None = None
    limit_evaluation: Evaluation | None = None
    comparisons: dict[str, PairedComparison] = field(default_factory=dict)
    selection: Selection | None = None
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
    plots.loss_plot(
        directory / LOSS_PLOT,
        summary.histories,
        loss="categorical cross-entropy"
        if summary.label_sets is not None
        else "binary cross-entropy",
    )
    evaluation = summary.evaluation
    if evaluation is None:
        return [LOSS_PLOT]
    truth = np.tile(summary.dataset.labels, (evaluation.folds.n_repeats, 1))
    scores = _pooled(evaluation.probabilities)
    labels = summary.dataset.label_names
    limit = summary.limit_evaluation
    plots.subset_accuracy_plot(
        directory / SUBSET_ACCURACY_PLOT,
        evaluation.subset_accuracies,
        models={
            "ours": evaluation.subset_accuracies,
            **{name: baseline.subset_accuracies for name, baseline in summary.baselines.items()},
        },
        limit=_joint_accuracies(limit) if limit else None,
        show_reference=summary.on_reference_data,
    )
    plots.roc_plot(directory / ROC_PLOT, truth, scores, labels)
    plots.precision_recall_plot(
        directory / PRECISION_RECALL_PLOT, truth, scores, labels, summary.thresholds
    )
    plots.calibration_plot(directory / CALIBRATION_PLOT, truth, scores, labels)
    return [SUBSET_ACCURACY_PLOT, ROC_PLOT, PRECISION_RECALL_PLOT, CALIBRATION_PLOT, LOSS_PLOT]


def _joint_accuracies(evaluation: Evaluation) -> list[float]:
    return [split["joint_subset_accuracy"] for split in evaluation.cross_validation.splits]


def _pooled(probabilities: NDArray[np.float32]) -> NDArray[np.float32]:
    """Every repeat's out-of-fold probabilities stacked: [repeats * samples, labels]."""
    return probabilities.reshape(-1, probabilities.shape[-1])


def model_card(summary: TrainingSummary) -> str:
    sections = [
        _header(summary),
        _data_section(summary),
        _model_section(summary),
        _selection_section(summary),
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
    n_labels = len(summary.dataset.label_names)
    if summary.label_sets is not None:
        head = (
            f"Dense({summary.label_sets.count}, softmax) over the label sets seen in training → "
            f"fixed (non-trainable) {summary.label_sets.count} x {n_labels} 0/1 matrix: per-label "
            "probabilities are the marginals"
        )
        loss = "categorical cross-entropy over the label sets"
    else:
        head = f"Dense({n_labels}, sigmoid)"
        loss = "binary cross-entropy"
    layers = [
        "standardization ((x - mean) / std of the training data, inside the graph)"
        if options.normalize
        else None,
        f"Dense({options.hidden_units}, relu, he_uniform)" if options.hidden_units else None,
        head,
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
            f"{loss}, Adam (learning rate {options.learning_rate})",
            f"{options.epochs} epochs of batch {options.batch_size}",
            *extras,
        ]
    )
    return f"""
## Model

- Preset: `{summary.preset}`{_preset_note(summary)}
- Network: {architecture}
- Fitting: {fitting}
{_label_sets_note(summary)}- Seed: {summary.seed}. The served model is this network fitted on all
  {summary.dataset.n_samples} samples; it takes raw feature values (scaling is in the graph).
- Thresholds served: {describe_thresholds(summary.dataset.label_names, summary.thresholds)}
"""


def _preset_note(summary: TrainingSummary) -> str:
    if summary.preset == "reference" and summary.options == NetworkOptions():
        return " (the reference network exactly)"
    if summary.options != PRESETS[summary.preset]:
        return " with options changed on the command line"
    return ""


def _label_sets_note(summary: TrainingSummary) -> str:
    if summary.options.head != "label_sets":
        return ""
    if summary.label_sets is None:
        return (
            f"- Label-set head asked for, but the data holds more than "
            f"{summary.options.max_label_sets} label sets: one sigmoid output per label instead\n"
        )
    sets = summary.label_sets.describe(summary.dataset.label_names)
    listed = ", ".join("{" + ", ".join(names) + "}" for names in sets)
    return f"- Label sets of the softmax ({len(sets)}): {listed}\n"


def _selection_section(summary: TrainingSummary) -> str:
    reported = (
        f"`RepeatedKFold(n_splits={summary.evaluation.folds.n_splits}, "
        f"n_repeats={summary.evaluation.folds.n_repeats}, "
        f"random_state={summary.evaluation.folds.seed})`"
        if summary.evaluation
        else "nothing (no cross-validation)"
    )
    selection = summary.selection
    if selection is None:
        how = (
            "the reference experiment's, fixed by definition"
            if summary.preset == "reference" and summary.options == NetworkOptions()
            else "given for this run; no selection run chose them"
        )
        return f"""
## How the options were chosen

Options: {how}. Every figure under Evaluation comes from {reported}.
"""
    rows = "\n".join(
        f"| {'**' + name + '**' if name == selection.chosen else name} | "
        f"{_mean_std(score.subset_accuracy)} | {_mean_std(score.joint_subset_accuracy)} |"
        for name, score in sorted(
            selection.candidates.items(), key=lambda item: -item[1].subset_accuracy.mean
        )
    )
    return f"""
## How the options were chosen

- **Chose**: `RepeatedKFold(n_splits={selection.n_splits}, n_repeats={selection.n_repeats},
  random_state={selection.random_state})`, the selection folds, by `{selection.command}`.
- **Reported**: {reported}: every figure under Evaluation. Those folds took no part in the
  choice (the rows are the same data, split differently).
- Rule: {selection.rule}.

| candidate (selection folds) | subset accuracy | most probable label set |
| --- | --- | --- |
{rows}
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

{_limit_section(summary)}

### Ours against the baselines (threshold 0.5)

{_comparison_table(summary)}

{_paired_section(summary)}

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
    if summary.limit is not None and summary.limit.evaluation is not None:
        rows["*limit of this data: Bayes-optimal rule*"] = summary.limit.evaluation
    header = "| model | " + " | ".join(name.replace("_", " ") for name in TABLE_METRICS) + " |"
    lines = [header, "|" + " --- |" * (len(TABLE_METRICS) + 1)]
    for name, result in rows.items():
        cells = [_mean_std(result.summary.get(metric)) for metric in TABLE_METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    accuracies = {
        name: result.summary["subset_accuracy"].mean
        for name, result in rows.items()
        if not name.startswith("*limit")
    }
    best = max(accuracies, key=lambda name: accuracies[name])
    verdict = (
        f"Highest mean subset accuracy of the models: {best} ({accuracies[best]:.3f}). "
        "The most probable label set column is empty for models that give no distribution "
        "over label sets."
    )
    if not summary.baselines:
        verdict += " Baselines were not run (`--no-baselines`)."
    return "\n".join(lines) + "\n\n" + verdict


def _limit_section(summary: TrainingSummary) -> str:
    limit = summary.limit
    if limit is None:
        return ""
    if limit.evaluation is None:
        return (
            f"### The limit of this data\n\n{limit.description[0].upper()}{limit.description[1:]}."
        )
    joint = limit.evaluation.summary["joint_subset_accuracy"]
    marginals = limit.evaluation.summary["subset_accuracy"]
    return f"""
### The limit of this data

{limit.description} On the same splits, its subset accuracy is
**{joint.mean:.3f} ± {joint.std:.3f}** deciding the most probable label set (the decision
that maximizes expected subset accuracy), and {marginals.mean:.3f} ± {marginals.std:.3f}
with its marginals thresholded at 0.5. The subset accuracy plot shows each model against it,
split by split.
"""


def _paired_section(summary: TrainingSummary) -> str:
    if not summary.comparisons:
        return ""
    rows = "\n".join(
        f"| {name} | {result.mean:+.3f} ± {result.std:.3f} | {result.won} / {result.lost} / "
        f"{result.tied} | {result.standard_error:.3f} | {result.verdict} |"
        for name, result in summary.comparisons.items()
    )
    return f"""
### Paired differences: the served model minus each other model, split by split

Per split, the served model's subset accuracy (at the served thresholds) minus the other's on
the very same split; then mean ± standard deviation of those differences, and the splits the
served model won, lost and tied. Splits of repeated k-fold share most training rows, so the
standard error of the mean difference uses Nadeau and Bengio's correction
(1 / splits + test rows / training rows); a difference beyond {NOISE_MULTIPLE:g} standard
errors is called better or worse, anything less is within noise.

| other model | difference (mean ± std) | won / lost / tied | corrected s.e. | served model is |
| --- | --- | --- | --- | --- |
{rows}
"""


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
    loss = (
        "categorical cross-entropy over label sets"
        if summary.label_sets is not None
        else "binary cross-entropy"
    )
    figures = [
        (
            LOSS_PLOT,
            f"Final fit: training loss ({loss}) per epoch"
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
                f"splits{spread}"
                + (
                    ", and the limit of this data (the Bayes-optimal rule's most probable "
                    "label set) on the same splits"
                    if summary.limit_evaluation
                    else ""
                )
                + ". Right: the spread of every model over the same splits "
                "(box: quartiles, line: median, triangle: mean)"
                + (", the limit's mean as a red line" if summary.limit_evaluation else "")
                + ".",
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
