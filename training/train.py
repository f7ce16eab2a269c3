"""Command line: ``python -m training.train``; see ``--help``."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.artifact import MODEL_NAME_PATTERN, list_versions
from training.csv_data import LABEL_PREFIX, DataError, load_csv
from training.data import Dataset, are_counts, synthetic_dataset
from training.label_sets import MAX_LABEL_SETS, LabelSets

if TYPE_CHECKING:
    from app.artifact import (
        BayesLimit,
        CrossValidation,
        ExpectedAccuracy,
        PairedComparison,
        PostHocCalibration,
        Selection,
    )
    from training.calibration import Reliability
    from training.evaluate import Evaluation, Folds, SplitRunner, ThresholdEvaluation
    from training.label_sets import FoldPrediction
    from training.model import FittedNetwork
    from training.options import NetworkOptions
    from training.thresholds import Objective

EXIT_BAD_DATA = 2
"""Exit status of a run refused before training: bad data or an unusable signing key."""
BeforeRename = Callable[[Path], None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Cross-validate the multi-label network (and simple baselines on "
        "the same splits), tune its thresholds, fit it on all the data and publish the next "
        "model version under OUTPUT/NAME/ with a model card and plots.",
    )
    data = parser.add_argument_group("your data (CSV)")
    data.add_argument(
        "--data",
        type=Path,
        help=f"CSV file with a header line; columns named {LABEL_PREFIX}* are the labels (0/1), "
        "all others numeric features, unless --labels/--features say otherwise",
    )
    data.add_argument("--labels", type=_names, help="comma-separated label columns of --data")
    data.add_argument(
        "--features",
        type=_names,
        help="comma-separated feature columns of --data (default: "
        "every column that is not a label)",
    )

    synthetic = parser.add_argument_group(
        "synthetic data, when there is no --data (make_multilabel_classification)"
    )
    synthetic.add_argument("--n-samples", type=_positive, default=1000, help="(default: 1000)")
    synthetic.add_argument("--n-features", type=_positive, default=10, help="(default: 10)")
    synthetic.add_argument("--n-classes", type=_positive, default=3, help="labels (default: 3)")
    synthetic.add_argument(
        "--n-labels", type=_positive, default=2, help="average labels per sample (default: 2)"
    )
    synthetic.add_argument("--data-seed", type=int, default=1, help="random_state (default: 1)")

    network = parser.add_argument_group(
        "network: a preset, and options that override it",
        "preset 'reference' is the reference experiment's network exactly; 'default' is a "
        "softmax over label sets with no hidden layer, its weights found in closed form as a "
        "multinomial naive Bayes on count features, or by Adam on standardized inputs for "
        "other data (chosen on selection folds: training/selection.json)",
    )
    network.add_argument(
        "--preset", choices=["default", "reference"], default="default", help="(default: default)"
    )
    network.add_argument("--epochs", type=_positive, help="training epochs (presets: 100)")
    network.add_argument("--batch-size", type=_positive, help="minibatch size (presets: 32)")
    network.add_argument(
        "--hidden-units",
        type=_non_negative,
        help="hidden layer width; 0 for no hidden layer (reference: 20; default: 0)",
    )
    network.add_argument(
        "--head",
        choices=["sigmoid", "label_sets"],
        help="'sigmoid': one independent output per label; 'label_sets': a softmax over the "
        "label sets seen in the fit data, whose marginals are the per-label probabilities (the "
        "served model's input and output stay the same); falls back to sigmoid above "
        "--max-label-sets sets (reference: sigmoid; default: label_sets)",
    )
    network.add_argument(
        "--max-label-sets",
        type=_positive,
        help=f"cap of the label-set head (default: {MAX_LABEL_SETS})",
    )
    network.add_argument(
        "--learning-rate", type=float, help="Adam learning rate (reference: 0.001; default: 0.01)"
    )
    network.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        help="standardize inputs inside the model graph with the mean and std of the data each "
        "network is fitted on (the training part of a split, in cross-validation); the served "
        "model still takes raw features (default: on; reference: off)",
    )
    network.add_argument(
        "--early-stopping",
        type=_non_negative,
        metavar="PATIENCE",
        help="stop when the loss on a seeded 10%% validation part has not improved for "
        "PATIENCE epochs, keeping the best weights; --epochs is then the maximum (default: off)",
    )
    network.add_argument(
        "--estimator",
        choices=["gradient", "naive_bayes"],
        help="how the weights are found: 'gradient': Adam on the loss; 'naive_bayes' (label-set "
        "head, no hidden layer): in closed form, a multinomial naive Bayes over label sets "
        "(exported as the same softmax graph) whose set priors and feature distributions are "
        "fitted in the shape of make_multilabel_classification's process, unless 5-fold "
        "cross-validation on the data finds scikit-learn's MultinomialNB (each set counted on "
        "its own) better beyond noise; it needs count features (non-negative integers) and "
        "falls back to 'gradient' on other data (reference: gradient; default: naive_bayes)",
    )
    network.add_argument(
        "--ensemble",
        type=_positive,
        metavar="N",
        help="average the probabilities of N networks seeded apart, exported as one graph "
        "(presets: 1)",
    )

    evaluation = parser.add_argument_group("evaluation (RepeatedKFold) and thresholds")
    evaluation.add_argument("--folds", type=_at_least_two, default=10, help="(default: 10)")
    evaluation.add_argument("--repeats", type=_positive, default=3, help="(default: 3)")
    evaluation.add_argument(
        "--no-cv", action="store_true", help="skip cross-validation (thresholds stay 0.5)"
    )
    evaluation.add_argument(
        "--seed", type=int, default=1, help="seed of the folds and of every network (default: 1)"
    )
    evaluation.add_argument(
        "--threshold-objective",
        choices=["subset_accuracy", "f1"],
        default="subset_accuracy",
        help="what per-label threshold tuning maximizes on the out-of-fold probabilities; "
        "tuned thresholds are served only if they beat 0.5 cross-fitted (default: "
        "subset_accuracy)",
    )
    evaluation.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="try temperature scaling of the label-set logits, fitted on out-of-fold "
        "predictions and judged cross-fitted; served (inside the graph) only if it lowers the "
        "label-set log loss beyond noise without lowering subset accuracy beyond noise "
        "(default: on)",
    )
    evaluation.add_argument(
        "--baselines",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also evaluate scikit-learn baselines on the same splits, for the report "
        "(about 2.5 minutes of CPU on the reference data)",
    )
    evaluation.add_argument(
        "--jobs",
        type=_positive,
        default=_default_jobs(),
        help="worker processes for the splits; results are identical for any value "
        "(default: 2, or 1 on a single core)",
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--name", type=_model_name, default="multilabel", help="model name (default: multilabel)"
    )
    output.add_argument(
        "--output", type=Path, default=Path("models"), help="model repository (default: models)"
    )
    output.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when the model already has a published version",
    )
    output.add_argument(
        "--quiet", action="store_true", help="no progress bar (there is none outside a terminal)"
    )
    output.add_argument(
        "--signing-key",
        type=Path,
        metavar="PATH",
        help="sign the published version (OpenSSF model signing) with this EC private key "
        "(PEM), so that a service with MULTILABEL_TRUSTED_KEYS serves it; checked before "
        "training starts",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    if args.if_missing and list_versions(args.output, args.name):
        print(f"{args.output / args.name} already has a version; nothing to do (--if-missing)")
        return 0
    try:
        options_from(args)
        before_rename = signer(args.signing_key)
        dataset = load_dataset(args)
    except (DataError, SigningKeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_DATA
    started = time.monotonic()
    command = shlex.join(["python", "-m", "training.train", *arguments])
    path = run(args, dataset, command=command, before_rename=before_rename)
    print(f"published {path} in {time.monotonic() - started:.0f} s")
    return 0


class SigningKeyError(Exception):
    """The --signing-key file cannot sign; the message is one line saying why."""


def signer(key_path: Path | None) -> BeforeRename | None:
    """What signs the staged version before it is published, if a key is given; the key is
    read now, so that a bad one stops the run before any training."""
    if key_path is None:
        return None
    # Deferred: only signing runs need the signing module (and model-signing).
    from app.signing import KeyFileError, load_private_key, sign_version

    try:
        key = load_private_key(key_path)
    except KeyFileError as error:
        raise SigningKeyError(str(error)) from error
    return lambda version_dir: sign_version(version_dir, key)


def load_dataset(args: argparse.Namespace) -> Dataset:
    """The CSV given with --data (validated), or the synthetic reference data."""
    if args.data is not None:
        return load_csv(
            args.data,
            features=args.features,
            labels=args.labels,
            min_rows=2 if args.no_cv else args.folds,
        )
    if args.features or args.labels:
        raise DataError("--features and --labels select columns of --data; give --data too")
    return synthetic_dataset(
        n_samples=args.n_samples,
        n_features=args.n_features,
        n_classes=args.n_classes,
        n_labels=args.n_labels,
        random_state=args.data_seed,
    )


def options_from(args: argparse.Namespace) -> NetworkOptions:
    """The preset's options with those given on the command line; ValueError names a
    combination that cannot be fitted."""
    from training.options import preset_options

    return preset_options(
        args.preset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        hidden_units=args.hidden_units,
        learning_rate=args.learning_rate,
        head=args.head,
        max_label_sets=args.max_label_sets,
        normalize=args.normalize,
        early_stopping=args.early_stopping,
        ensemble=args.ensemble,
        estimator=args.estimator,
    )


def run(
    args: argparse.Namespace,
    dataset: Dataset,
    *,
    command: str,
    before_rename: BeforeRename | None = None,
) -> Path:
    """Evaluate, fit, report and publish; returns the published version's directory."""
    # Deferred: importing TensorFlow takes seconds, and --help should not wait for it.
    from training.model import fit_model, with_temperature

    options = options_from(args)
    seconds: dict[str, float] = {}
    results = _cross_validate(args, dataset, options, seconds) if not args.no_cv else None
    started = time.monotonic()
    fitted = fit_model(dataset.features, dataset.labels, options, seed=args.seed)
    if results is not None and results.calibration.applied:
        fitted = with_temperature(fitted, results.calibration.temperature)
    seconds["final fit"] = time.monotonic() - started
    _say_fallbacks(dataset, options, fitted)
    expected, fresh_curves = _expected_accuracy(args, dataset, fitted, results, seconds)
    return _publish(
        args,
        dataset,
        options,
        fitted,
        results,
        command=command,
        seconds=seconds,
        selection=_selection_for(args, options, dataset),
        expected=expected,
        fresh_curves=fresh_curves,
        before_rename=before_rename,
    )


def _say_fallbacks(dataset: Dataset, options: NetworkOptions, fitted: FittedNetwork) -> None:
    if options.head == "label_sets" and fitted.head == "sigmoid":
        print(
            f"{LabelSets.seen_in(dataset.labels).count} label sets exceed --max-label-sets "
            f"{options.max_label_sets}: the model has one sigmoid output per label instead"
        )
    elif options.estimator == "naive_bayes" and fitted.estimator == "gradient":
        print(
            "the features are not counts (non-negative integers): the weights are fitted by "
            "gradient descent instead of naive Bayes"
        )


def _expected_accuracy(
    args: argparse.Namespace,
    dataset: Dataset,
    fitted: FittedNetwork,
    results: _Results | None,
    seconds: dict[str, float],
) -> tuple[ExpectedAccuracy | None, dict[str, dict[str, Reliability]]]:
    """Fresh draws for synthetic data (the served model, the limit and the baselines scored
    there, with their reliability curves), else the cross-validated figure; ``None`` without
    cross-validation or draws."""
    from training.fresh import (
        fresh_draws,
        from_cross_validation,
        from_fresh_draws,
        score_fresh_draws,
    )

    started = time.monotonic()
    fresh = fresh_draws(dataset)
    if fresh is None:
        expected = from_cross_validation(results.served, dataset.n_samples) if results else None
        return expected, {}
    baselines = (
        _baselines_on(fresh, dataset, args.seed, results.baselines) if results is not None else {}
    )
    thresholds = results.tuning.served if results else [0.5] * dataset.n_labels
    scores = score_fresh_draws(fresh, fitted.predict(fresh.features), thresholds, baselines)
    seconds["fresh draws"] = time.monotonic() - started
    expected = from_fresh_draws(scores.record)
    print(expected.summary, flush=True)
    return expected, scores.curves


def _baselines_on(
    fresh: Dataset, dataset: Dataset, seed: int, evaluated: dict[str, Evaluation]
) -> dict[str, FoldPrediction]:
    """Each baseline that was cross-validated, fitted on all the training rows, on ``fresh``."""
    from training.baselines import BaselineFitter

    return {
        name: BaselineFitter(name)(dataset.features, dataset.labels, fresh.features, seed)
        for name in evaluated
        if not name.startswith("bag of")
    }


@dataclass(frozen=True)
class _Results:
    """What cross-validation measured: the network, its thresholds, baselines and the limit."""

    evaluation: Evaluation
    """The served model's: cross-fitted at its calibration step when that is served."""
    tuning: ThresholdEvaluation
    baselines: dict[str, Evaluation]
    limit: BayesLimit
    limit_evaluation: Evaluation | None
    calibration: PostHocCalibration
    uncalibrated: Evaluation | None
    """The network's own evaluation, when the served one is calibrated."""

    @property
    def served(self) -> CrossValidation:
        """The served decisions' figures: at the tuned thresholds if served, else at 0.5."""
        if self.tuning.applied:
            return self.tuning.cross_fitted
        return self.evaluation.cross_validation


def _publish(
    args: argparse.Namespace,
    dataset: Dataset,
    options: NetworkOptions,
    fitted: FittedNetwork,
    results: _Results | None,
    *,
    command: str,
    seconds: dict[str, float],
    selection: Selection | None,
    expected: ExpectedAccuracy | None,
    fresh_curves: dict[str, dict[str, Reliability]],
    before_rename: BeforeRename | None,
) -> Path:
    from app.artifact import ThresholdTuning
    from training.export import export_artifact
    from training.report import TrainingSummary, write_report
    from training.thresholds import DEFAULT_THRESHOLD

    thresholds = results.tuning.served if results else [DEFAULT_THRESHOLD] * dataset.n_labels
    comparisons = _comparisons(results) if results else None
    summary = TrainingSummary(
        name=args.name,
        command=command,
        dataset=dataset,
        preset=args.preset,
        options=options,
        head=fitted.head,
        label_sets=fitted.label_sets,
        seed=args.seed,
        thresholds=thresholds,
        histories=fitted.histories,
        evaluation=results.evaluation if results else None,
        threshold_evaluation=results.tuning if results else None,
        baselines=results.baselines if results else {},
        limit=results.limit if results else None,
        limit_evaluation=results.limit_evaluation if results else None,
        comparisons=comparisons or {},
        selection=selection,
        seconds=seconds,
        estimator=fitted.estimator,
        naive_bayes_choice=fitted.naive_bayes_choice,
        calibration=results.calibration if results else None,
        uncalibrated=results.uncalibrated if results else None,
        expected=expected,
        fresh_curves=fresh_curves,
    )
    training: dict[str, Any] = {
        "preset": args.preset,
        **options.as_dict(),
        "head_fitted": fitted.head,
        "estimator_fitted": fitted.estimator,
        **(
            {"naive_bayes_shape": fitted.naive_bayes_choice.as_dict()}
            if fitted.naive_bayes_choice is not None
            else {}
        ),
        "temperature": fitted.temperature,
        "seed": args.seed,
        "final_loss": fitted.final_loss,
        "epochs_run": [len(history["loss"]) for history in fitted.histories],
        "seconds": {stage: round(value, 1) for stage, value in seconds.items()},
    }
    return export_artifact(
        fitted.model,
        dataset,
        repository=args.output,
        name=args.name,
        thresholds=thresholds,
        training=training,
        evaluation=results.evaluation.cross_validation if results else None,
        threshold_tuning=ThresholdTuning(
            objective=results.tuning.objective,
            tuned=[float(value) for value in results.tuning.tuned],
            applied=results.tuning.applied,
            evaluation=results.tuning.cross_fitted,
        )
        if results
        else None,
        baselines={name: result.cross_validation for name, result in results.baselines.items()}
        if results and results.baselines
        else None,
        label_sets=fitted.label_sets.describe(dataset.label_names) if fitted.label_sets else None,
        limit=results.limit if results else None,
        comparisons=comparisons,
        selection=selection,
        calibration=results.calibration if results else None,
        expected_accuracy=expected,
        write_extras=lambda directory: write_report(summary, directory),
        before_rename=before_rename,
    )


def _comparisons(results: _Results) -> dict[str, PairedComparison]:
    """The served model against each baseline, and against the limit of the same decision,
    split by split: its per-label decision against the Bayes rule's marginals at 0.5, and (with
    a label-set head) its most probable set against the Bayes rule's."""
    from training.compare import compare_all, paired_comparison
    from training.report import LIMIT_JOINT, LIMIT_MARGINALS

    others = {name: result.cross_validation for name, result in results.baselines.items()}
    limit = results.limit.evaluation
    if limit is not None:
        others[LIMIT_MARGINALS] = limit
    comparisons = compare_all(results.served, others, {})
    ours = results.evaluation.cross_validation
    if limit is not None and "joint_subset_accuracy" in ours.summary:
        comparisons[LIMIT_JOINT] = paired_comparison(
            [split["joint_subset_accuracy"] for split in ours.splits],
            [split["joint_subset_accuracy"] for split in limit.splits],
            test_to_train=1 / (ours.n_splits - 1),
        )
    return comparisons


def _selection_for(
    args: argparse.Namespace, options: NetworkOptions, dataset: Dataset
) -> Selection | None:
    """The selection run that chose these options, if they are its choice on its data."""
    from training.select import SELECTION_FILE, load_selection

    if args.preset != "default" or not SELECTION_FILE.is_file():
        return None
    selection = load_selection()
    chosen = selection.candidates[selection.chosen].options
    if chosen != options.as_dict() or selection.data_fingerprint != dataset.fingerprint():
        return None
    return selection


def _cross_validate(
    args: argparse.Namespace, dataset: Dataset, options: NetworkOptions, seconds: dict[str, float]
) -> _Results:
    """The network's cross-validation and thresholds, then (if asked) the baselines' on the
    same splits, and the data's limit."""
    from training.evaluate import Folds, SplitRunner, cross_validate
    from training.model import NetworkFitter
    from training.progress import SplitProgress, show_bar

    folds = Folds.of(dataset.n_samples, n_splits=args.folds, n_repeats=args.repeats, seed=args.seed)
    baselines: dict[str, Evaluation] = {}
    with SplitRunner(min(args.jobs, folds.total)) as runner:
        started = time.monotonic()
        with SplitProgress(folds.total, bar=show_bar(quiet=args.quiet)) as progress:
            evaluation = cross_validate(
                dataset, NetworkFitter(options), folds, runner=runner, on_split=progress
            )
        seconds["cross-validation"] = time.monotonic() - started
        _print_summary("subset accuracy", evaluation)
        calibration, served = _calibrate(args, dataset, options, evaluation)
        uncalibrated = evaluation if calibration.applied else None
        evaluation = served
        tuning = _choose_thresholds(dataset, evaluation, args.threshold_objective)
        if args.baselines:
            started = time.monotonic()
            baselines = _evaluate_baselines(dataset, folds, runner, options)
            seconds["baselines"] = time.monotonic() - started
    limit, limit_evaluation = _limit(dataset, folds)
    return _Results(
        evaluation, tuning, baselines, limit, limit_evaluation, calibration, uncalibrated
    )


def _calibrate(
    args: argparse.Namespace, dataset: Dataset, options: NetworkOptions, evaluation: Evaluation
) -> tuple[PostHocCalibration, Evaluation]:
    """Judge the calibration step on the out-of-fold predictions; return its record and the
    evaluation of what will be served."""
    from app.artifact import PostHocCalibration
    from training.temperature import choose_temperature

    if not args.calibrate:
        why = "not tried (--no-calibrate)"
    elif options.ensemble > 1:
        why = "not tried: an ensemble averages probabilities, so it has no logits to scale"
    else:
        choice = choose_temperature(dataset, evaluation)
        print(f"calibration (temperature scaling): {choice.calibration.reason}", flush=True)
        return choice.calibration, choice.served
    return PostHocCalibration(method="none", applied=False, reason=why), evaluation


def _limit(dataset: Dataset, folds: Folds) -> tuple[BayesLimit, Evaluation | None]:
    """The Bayes-optimal rule on the same splits (synthetic data), or why there is none."""
    from app.artifact import BayesLimit
    from training.evaluate import cross_validate
    from training.limits import bayes_rule, no_limit_reason

    rule = bayes_rule(dataset)
    if rule is None:
        reason = no_limit_reason(dataset)
        print(reason[0].upper() + reason[1:])
        return BayesLimit(known=False, description=reason), None
    evaluation = cross_validate(dataset, rule, folds)
    summary = evaluation.cross_validation.summary
    joint, marginals = summary["joint_subset_accuracy"], summary["subset_accuracy"]
    print(
        "the limit of this data (the Bayes-optimal rule of its generator, same splits): "
        f"subset accuracy {joint.mean:.3f} ± {joint.std:.3f} deciding the most probable label "
        f"set, {marginals.mean:.3f} ± {marginals.std:.3f} with its marginals at 0.5",
        flush=True,
    )
    description = (
        "The exact posterior P(label set | features) of make_multilabel_classification's "
        "generator, from the class prior and word distributions it drew the data with "
        "(training/limits.py). No model can be expected to beat it."
    )
    return BayesLimit(
        known=True, description=description, evaluation=evaluation.cross_validation
    ), evaluation


def _choose_thresholds(
    dataset: Dataset, evaluation: Evaluation, objective: Objective
) -> ThresholdEvaluation:
    """Tune the thresholds, measure them cross-fitted, and say which ones will be served."""
    from training.evaluate import evaluate_thresholds
    from training.thresholds import OBJECTIVE_METRIC
    from training.thresholds import describe as describe_thresholds

    tuning = evaluate_thresholds(dataset, evaluation, objective)
    metric = OBJECTIVE_METRIC[objective]
    at_half = evaluation.cross_validation.summary[metric].mean
    tuned = tuning.cross_fitted.summary[metric].mean
    print(
        f"thresholds {'tuned' if tuning.applied else 'kept at 0.5'} for {metric}: {at_half:.3f} "
        f"at 0.5, {tuned:.3f} tuned (cross-fitted); serving "
        + describe_thresholds(dataset.label_names, tuning.served)
    )
    return tuning


def _evaluate_baselines(
    dataset: Dataset, folds: Folds, runner: SplitRunner, options: NetworkOptions
) -> dict[str, Evaluation]:
    from training.baselines import BaselineFitter, baseline_names
    from training.evaluate import cross_validate

    names = baseline_names(
        ensemble=options.ensemble,
        n_label_sets=LabelSets.seen_in(dataset.labels).count,
        counts=are_counts(dataset.features),
    )
    results = {}
    for name in names:
        fitter = BaselineFitter(name, bag_size=options.ensemble)
        results[name] = cross_validate(dataset, fitter, folds, runner=runner)
        _print_summary(f"baseline {name}: subset accuracy", results[name])
    return results


def _print_summary(what: str, evaluation: Evaluation) -> None:
    accuracy = evaluation.cross_validation.summary["subset_accuracy"]
    print(
        f"{what} over {len(evaluation.cross_validation.splits)} splits: "
        f"{accuracy.mean:.3f} ± {accuracy.std:.3f} (min {accuracy.min:.3f}, "
        f"max {accuracy.max:.3f})",
        flush=True,
    )


def _default_jobs() -> int:
    return min(2, len(os.sched_getaffinity(0)))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _at_least_two(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"k-fold needs at least 2 splits, got {text}")
    return value


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names


def _model_name(text: str) -> str:
    if not re.match(MODEL_NAME_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use letters, digits, '.', '_' or '-' (at most 64, not starting with '.')"
        )
    return text


if __name__ == "__main__":
    sys.exit(main())
