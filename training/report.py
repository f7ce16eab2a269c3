"""The model card (``model_card.md``) and its plots, written into the version being published."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.artifact import (
    BayesLimit,
    CalibrationScores,
    CrossValidation,
    ExpectedAccuracy,
    MetricSummary,
    PairedComparison,
    PostHocCalibration,
    Selection,
)
from training import plots
from training.calibration import (
    Reliability,
    SetDistribution,
    calibration_scores,
    reliability_curves,
)
from training.compare import NOISE_MULTIPLE
from training.data import Dataset
from training.evaluate import Evaluation, ThresholdEvaluation
from training.label_sets import LabelSets
from training.metrics import METRIC_DESCRIPTIONS, PER_LABEL_METRICS, per_label_key
from training.naive_bayes import NAIVE_BAYES_FOLDS, NAIVE_BAYES_NOISE, ShapeChoice
from training.options import PRESETS, Estimator, Head, NetworkOptions, PresetName
from training.thresholds import OBJECTIVE_METRIC
from training.thresholds import describe as describe_thresholds

CARD_FILE = "model_card.md"
SUBSET_ACCURACY_PLOT = "subset_accuracy.png"
ROC_PLOT = "roc_curves.png"
PRECISION_RECALL_PLOT = "precision_recall.png"
CALIBRATION_PLOT = "calibration.png"
LOSS_PLOT = "loss_curve.png"
TABLE_METRICS = (*METRIC_DESCRIPTIONS,)
LIMIT_JOINT = "limit: Bayes rule, most probable label set (ours: the same decision)"
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
    estimator: Estimator = "gradient"
    """How the served weights were found (``naive_bayes`` falls back on non-count data)."""
    naive_bayes_choice: ShapeChoice | None = None
    """With the naive Bayes estimator: the shape fitted and the cross-validation behind it."""
    calibration: PostHocCalibration | None = None
    uncalibrated: Evaluation | None = None
    """The network's own out-of-fold evaluation, when the served one is calibrated."""
    expected: ExpectedAccuracy | None = None
    fresh_curves: dict[str, dict[str, Reliability]] = field(default_factory=dict)
    """Reliability curves on the fresh draws: per series, per panel."""

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
    losses = []
    if summary.histories:  # a closed-form fit has no epochs
        plots.loss_plot(
            directory / LOSS_PLOT,
            summary.histories,
            loss="categorical cross-entropy"
            if summary.label_sets is not None
            else "binary cross-entropy",
        )
        losses.append(LOSS_PLOT)
    evaluation = summary.evaluation
    if evaluation is None:
        return losses
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
        # The limit of the decision the plot shows for every model: thresholds at 0.5.
        limit=limit.subset_accuracies if limit else None,
        show_reference=summary.on_reference_data,
    )
    plots.roc_plot(directory / ROC_PLOT, truth, scores, labels)
    plots.precision_recall_plot(
        directory / PRECISION_RECALL_PLOT, truth, scores, labels, summary.thresholds
    )
    plots.reliability_plot(directory / CALIBRATION_PLOT, _reliability_series(summary))
    return [SUBSET_ACCURACY_PLOT, ROC_PLOT, PRECISION_RECALL_PLOT, CALIBRATION_PLOT, *losses]


def _reliability_series(summary: TrainingSummary) -> dict[str, dict[str, Reliability]]:
    """What the reliability plot draws: fresh draws (synthetic data), then out-of-fold."""
    assert summary.evaluation is not None
    labels = np.tile(summary.dataset.labels, (summary.evaluation.folds.n_repeats, 1))
    series = dict(summary.fresh_curves)
    served = (
        "served model, out-of-fold"
        if summary.uncalibrated is None
        else ("served model (calibrated), out-of-fold")
    )
    series[served] = reliability_curves(
        _distribution(summary.evaluation), labels, summary.dataset.label_names
    )
    if summary.uncalibrated is not None:
        series["without calibration, out-of-fold"] = reliability_curves(
            _distribution(summary.uncalibrated), labels, summary.dataset.label_names
        )
    return series


def _distribution(evaluation: Evaluation) -> SetDistribution:
    """An evaluation's out-of-fold probabilities, every repeat pooled."""
    sets = evaluation.set_probabilities
    return SetDistribution(
        _pooled(evaluation.probabilities),
        evaluation.label_sets,
        None if sets is None else sets.reshape(-1, sets.shape[-1]),
    )


def _pooled(probabilities: NDArray[np.float32]) -> NDArray[np.float32]:
    """Every repeat's out-of-fold probabilities stacked: [repeats * samples, labels]."""
    return probabilities.reshape(-1, probabilities.shape[-1])


def model_card(summary: TrainingSummary) -> str:
    sections = [
        _header(summary),
        _data_section(summary),
        _model_section(summary),
        _expected_section(summary),
        _calibration_section(summary),
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
probability reaches its threshold (or, on request, the most probable label set and its
probability). Written by the training run itself, next to the model it describes (the
version's `metadata.json` holds every figure below, and more).

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
    naive_bayes = summary.estimator == "naive_bayes"
    if summary.label_sets is not None:
        count = summary.label_sets.count
        marginals = (
            f"fixed (non-trainable) {count} x {n_labels} 0/1 matrix: per-label probabilities "
            "are the marginals"
        )
        if naive_bayes:
            head = (
                f"Dense({count}, softmax) over the label sets seen in training, on the raw "
                "counts, its kernel log P(feature | set) and its bias log P(set) (each centred "
                "over the sets, which the softmax ignores): a multinomial naive Bayes over label "
                "sets → " + marginals
            )
        else:
            head = f"Dense({count}, softmax) over the label sets seen in training → {marginals}"
        loss = "categorical cross-entropy over the label sets"
    else:
        head = f"Dense({n_labels}, sigmoid)"
        loss = "binary cross-entropy"
    layers = [
        "standardization ((x - mean) / std of the training data, inside the graph)"
        if options.normalize and not naive_bayes
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
    if naive_bayes:
        fitting = (
            "in closed form (maximum likelihood), no gradient steps and no randomness: the same "
            "data gives the same weights. The posterior of a multinomial per label set is a "
            "softmax of a linear function of the counts, so this is the graph of a linear "
            "softmax over label sets with its weights estimated generatively"
            + _naive_bayes_note(summary)
        )
    else:
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
{_label_sets_note(summary)}{_calibration_note(summary)}- Seed: {summary.seed}. The served model
  is this network fitted on all {summary.dataset.n_samples} samples; it takes raw feature values
  (any scaling is in the graph).
- Outputs: {_outputs_note(summary)}
- Thresholds served: {describe_thresholds(summary.dataset.label_names, summary.thresholds)}
"""


def _outputs_note(summary: TrainingSummary) -> str:
    if summary.label_sets is None:
        return (
            "per-label probabilities. There is no label-set head: the probability of a whole "
            "label set is the product of the marginals (labels taken as independent)."
        )
    return (
        "per-label probabilities (first), and the probability of each label set above "
        "(second, in that order), for the most-probable-set decision."
    )


def _naive_bayes_note(summary: TrainingSummary) -> str:
    choice = summary.naive_bayes_choice
    if choice is None:
        return ""
    assumption = (
        ".\n- Naive Bayes shape: the default estimator assumes the data come from a process "
        "shaped like scikit-learn's `make_multilabel_classification` (a set size drawn from a "
        "truncated Poisson, its labels drawn from a label prior, each label set's words drawn "
        "from the mean of its labels' word distributions, uniform for the empty set), and fits "
        "those parameters by maximum likelihood (the `generator` shape). A "
        f"{NAIVE_BAYES_FOLDS}-fold cross-validation on the training rows falls back to "
        "scikit-learn's `MultinomialNB` over label sets (each set's prior and word distribution "
        "counted on its own, add-one smoothed: the `counted` shape) when that has the lower "
        f"label-set log loss by more than {NAIVE_BAYES_NOISE:g} standard errors."
    )
    if choice.log_loss_excess is None or choice.standard_error is None:
        return (
            f"{assumption} Chosen: **{choice.shape}** (the generator shape was not tried: too "
            "many labels or too few rows)"
        )
    return (
        f"{assumption} Chosen: **{choice.shape}**: over {choice.rows} held-out rows the "
        f"generator shape's label-set log loss minus the counted one's is "
        f"{choice.log_loss_excess:+.4f} ± {choice.standard_error:.4f} (s.e.) per row"
    )


def _calibration_note(summary: TrainingSummary) -> str:
    calibration = summary.calibration
    if calibration is None:
        return ""
    if calibration.applied:
        return (
            f"- Calibration: label-set logits divided by T = {calibration.temperature:.3f} "
            "(temperature scaling, folded into the last layer's weights; see Calibration)\n"
        )
    return "- Calibration: none served (see Calibration)\n"


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


def _expected_section(summary: TrainingSummary) -> str:
    expected = summary.expected
    if expected is None:
        return ""
    draws = expected.fresh_draws
    if draws is None:
        return f"## What to expect on new data\n\n{expected.summary}"
    names = {
        "labels": "per-label thresholds (the default decision)",
        "set": "most probable label set",
    }
    rows = "\n".join(
        f"| {names[score.decision]} | **{score.subset_accuracy:.4f}** | {score.limit:.4f} | "
        f"{score.ratio:.4f} ± {score.ratio_standard_error:.4f} |"
        for score in draws.decisions
    )
    baselines = ""
    if draws.baselines:
        lines = "\n".join(
            f"| {name} | {labels.subset_accuracy:.4f} ({labels.ratio:.4f}) | "
            f"{joint.subset_accuracy:.4f} ({joint.ratio:.4f}) |"
            for name, (labels, joint) in draws.baselines.items()
        )
        ours_labels, ours_joint = draws.decisions
        baselines = f"""
Each baseline fitted on the same {summary.dataset.n_samples} training rows and scored on the
same fresh rows (subset accuracy, and in brackets its ratio to the Bayes rule's same decision;
a model without label sets decides its most probable set by thresholding at 0.5):

| model | per-label decision at 0.5 (ratio) | most probable label set (ratio) |
| --- | --- | --- |
| **served model** | {ours_labels.subset_accuracy:.4f} ({ours_labels.ratio:.4f}) | \
{ours_joint.subset_accuracy:.4f} ({ours_joint.ratio:.4f}) |
{lines}
"""
    return f"""
## What to expect on new data

{expected.summary}

| decision | served model | Bayes rule, same decision | ratio ± s.e. |
| --- | --- | --- | --- |
{rows}

The ratio's standard error is over the {draws.n_rows} rows, paired (the delta method). Nothing
was chosen on these rows: not the preset, not the calibration step, not the thresholds.
{baselines}"""


def _calibration_section(summary: TrainingSummary) -> str:
    calibration = summary.calibration
    if calibration is None:
        return ""
    columns = _calibration_columns(summary)
    labels = [*summary.dataset.label_names, "label sets"]
    header = "| probability | score | " + " | ".join(columns) + " |"
    lines = [header, "|" + " --- |" * (len(columns) + 2)]
    for label in labels:
        for score in ("brier_loss", "log_loss", "ece"):
            cells = [_score_cell(scores, label, score) for scores in columns.values()]
            lines.append(f"| {label} | {score.replace('_', ' ')} | " + " | ".join(cells) + " |")
    decision = f"Calibration step: {calibration.reason}."
    if calibration.method == "temperature":
        step = "temperature scaling of the label-set logits"
        decision = f"Calibration step, {step}: {calibration.reason}."
    evidence = ""
    if calibration.log_loss_change and calibration.subset_accuracy_change:
        loss, accuracy = calibration.log_loss_change, calibration.subset_accuracy_change
        evidence = (
            f" Per split, the label-set log loss without it minus with it: {loss.mean:+.4f} "
            f"(corrected s.e. {loss.standard_error:.4f}: {loss.verdict}); subset accuracy with "
            f"it minus without: {accuracy.mean:+.4f} (s.e. {accuracy.standard_error:.4f}: "
            f"{accuracy.verdict})."
        )
    return f"""
## Calibration

Can the probabilities be read as frequencies? Brier score, log loss and ECE (expected
calibration error: 10 equal-width bins, the mean gap between predicted and observed, weighted
by the bins' rows), lower is better for all three. Per label, of its marginal probability; for
label sets, of the distribution over whole sets (log loss of the true set, Brier summed over
the sets, ECE of the most probable set's probability: top-label calibration).{_targets(summary)}

{chr(10).join(lines)}

{_calibration_notes(summary)}

{decision}{evidence}
"""


def _calibration_columns(summary: TrainingSummary) -> dict[str, CalibrationScores]:
    columns: dict[str, CalibrationScores] = {}
    expected = summary.expected
    if expected is not None and expected.fresh_draws is not None:
        columns["served model, fresh draws"] = expected.fresh_draws.model
        columns["Bayes posterior, fresh draws"] = expected.fresh_draws.limit
    calibration = summary.calibration
    assert calibration is not None
    if calibration.before is not None and calibration.after is not None:
        columns["out-of-fold, no step"] = calibration.before
        columns["out-of-fold, with the step (cross-fitted)"] = calibration.after
    limit = summary.limit_evaluation
    if limit is not None:
        columns["Bayes posterior, training rows"] = calibration_scores(
            _distribution(limit),
            np.tile(summary.dataset.labels, (limit.folds.n_repeats, 1)),
            summary.dataset.label_names,
            rows_description="the training rows",
        )
    return columns


def _score_cell(scores: CalibrationScores, label: str, score: str) -> str:
    found = scores.label_sets if label == "label sets" else scores.per_label.get(label)
    return "n/a" if found is None else f"{getattr(found, score):.4f}"


def _calibration_notes(summary: TrainingSummary) -> str:
    notes = []
    expected = summary.expected
    if expected is not None and expected.fresh_draws is not None:
        sets = expected.fresh_draws.model.label_sets
        if sets is not None and sets.rows_outside:
            notes.append(
                f"Label-set scores on the fresh draws leave out the {sets.rows_outside} rows "
                "whose label set never occurs in the training data: the model gives them "
                "probability 0 (a label-powerset model cannot name a set it has not seen); the "
                "Bayes posterior's label-set scores are on the same rows."
            )
    if summary.limit_evaluation is not None:
        notes.append(
            "Out-of-fold scores come from the training rows, and on those rows even the exact "
            "posterior shows an ECE of about 0.02: at this sample size the ECE measures "
            "mostly noise, and the rows happen to be easier than the generator's average (a "
            "lower log loss). The fresh draws are the test that can tell 0.01 apart."
        )
    else:
        notes.append(
            "Out-of-fold scores pool every repeat's predictions; with few rows an ECE is noisy "
            "(a perfectly calibrated model still shows gaps of order 1 / sqrt(rows per bin))."
        )
    return "\n\n".join(notes)


def _targets(summary: TrainingSummary) -> str:
    expected = summary.expected
    if expected is None or expected.fresh_draws is None:
        return ""
    draws = expected.fresh_draws
    worst = max(scores.ece for scores in draws.model.per_label.values())
    model_sets, limit_sets = draws.model.label_sets, draws.limit.label_sets
    assert model_sets is not None
    assert limit_sets is not None
    excess = model_sets.log_loss / limit_sets.log_loss - 1
    ratios = ", ".join(f"{score.decision} {score.ratio:.4f}" for score in draws.decisions)

    def verdict(met: bool) -> str:
        return "met" if met else "**missed**"

    return f"""

Against the targets set for this model, on the {draws.n_rows} fresh draws:

- ECE at most 0.01 for every label: {verdict(worst <= 0.01)} (largest {worst:.4f});
- label-set log loss within 3% of the Bayes posterior's: {verdict(excess <= 0.03)} \
({model_sets.log_loss:.4f} against {limit_sets.log_loss:.4f}, {excess:+.1%});
- subset accuracy at least 0.995 of the Bayes rule's, same decision: \
{verdict(all(score.ratio >= 0.995 for score in draws.decisions))} ({ratios})."""


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
{folds.total} splits. On each, a fresh network (seeded with seed + split number, where its fit
is random) is fitted on the training part and predicts the held-out fold; the metrics are
scikit-learn's, computed on those out-of-fold probabilities. Every baseline is fitted on the
very same splits. Figures are mean ± standard deviation over the splits.

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
    fresh = ""
    if summary.expected is not None and summary.expected.fresh_draws is not None:
        labels, sets = summary.expected.fresh_draws.decisions
        fresh = (
            f" On fresh draws of the generator the same rule scores {labels.limit:.3f} and "
            f"{sets.limit:.3f}: these 1000 rows happen to be easier than its average, and every "
            "model's cross-validated figure here reads high by about as much (see What to "
            "expect on new data)."
        )
    return f"""
### The limit of this data

{limit.description} On the same splits, its subset accuracy is
**{marginals.mean:.3f} ± {marginals.std:.3f}** with its marginals thresholded at 0.5: the limit of
the decision served by default (per-label thresholds), against which the paired table below
sets the served model. Deciding the most probable label set (the decision that maximizes
expected subset accuracy, and the one a request can ask for) it scores
{joint.mean:.3f} ± {joint.std:.3f}.{fresh} The subset accuracy plot shows each model against
it, split by split.
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
the very same split (the other at 0.5); against the limit, each decision against the limit of
the same decision: the per-label thresholds against the Bayes rule's marginals at 0.5, the most
probable label set against the Bayes rule's. Then mean ± standard deviation of those
differences, and the splits the served model won, lost and tied. Splits of repeated k-fold
share most training rows, so the standard error of the mean difference uses Nadeau and Bengio's
correction (1 / splits + test rows / training rows); a difference beyond {NOISE_MULTIPLE:g}
standard errors is called better or worse, anything less is within noise.

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
    figures = (
        []
        if not summary.histories
        else [
            (
                LOSS_PLOT,
                f"Final fit: training loss ({loss}) per epoch"
                + (" (dashed: validation loss)" if summary.options.early_stopping else "")
                + ". A curve that flattens is a fit that converged.",
            )
        ]
    )
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
                    ", and the limit of the same decision on this data (the Bayes-optimal "
                    "rule's marginals at 0.5) on the same splits"
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
                "Reliability: per label, and for the most probable label set, the observed "
                "frequency against the mean predicted probability in 10 bins"
                + (
                    ", on the fresh draws (the served model and the Bayes posterior) and "
                    if summary.fresh_curves
                    else ", "
                )
                + f"on the {pooled}. Points on the diagonal mean the probabilities can be "
                "read as frequencies; the legend gives each curve's ECE.",
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
