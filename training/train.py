"""Command line: ``python -m training.train`` or ``multilabel-train``; see ``--help``."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.artifact import MODEL_NAME_PATTERN, list_versions
from training.csv_data import LABEL_PREFIX, DataError, load_csv
from training.data import Dataset, synthetic_dataset

if TYPE_CHECKING:
    from training.evaluate import Evaluation, Folds, SplitRunner, ThresholdEvaluation
    from training.model import NetworkOptions
    from training.thresholds import Objective

EXIT_BAD_DATA = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multilabel-train",
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
        "preset 'reference' is the reference experiment's network exactly; 'default' "
        "standardizes the inputs inside the graph and averages 3 networks seeded apart "
        "(measured better: see the README's Training section)",
    )
    network.add_argument(
        "--preset", choices=["default", "reference"], default="default", help="(default: default)"
    )
    network.add_argument("--epochs", type=_positive, help="training epochs (presets: 100)")
    network.add_argument("--batch-size", type=_positive, help="minibatch size (presets: 32)")
    network.add_argument("--hidden-units", type=_positive, help="hidden layer width (presets: 20)")
    network.add_argument("--learning-rate", type=float, help="Adam learning rate (presets: 0.001)")
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
        "--ensemble",
        type=_positive,
        metavar="N",
        help="average the probabilities of N networks seeded apart, exported as one graph "
        "(default: 3; reference: 1)",
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
        "--baselines",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also evaluate scikit-learn baselines on the same splits, for the report "
        "(about a minute)",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    if args.if_missing and list_versions(args.output, args.name):
        print(f"{args.output / args.name} already has a version; nothing to do (--if-missing)")
        return 0
    try:
        dataset = load_dataset(args)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_DATA
    started = time.monotonic()
    command = shlex.join(["python", "-m", "training.train", *arguments])
    path = run(args, dataset, command=command)
    print(f"published {path} in {time.monotonic() - started:.0f} s")
    return 0


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


def run(args: argparse.Namespace, dataset: Dataset, *, command: str) -> Path:
    """Evaluate, fit, report and publish; returns the published version's directory."""
    # Deferred: importing TensorFlow takes seconds, and --help should not wait for it.
    from app.artifact import ThresholdTuning
    from training.export import export_artifact
    from training.model import fit_model, preset_options
    from training.report import TrainingSummary, write_report
    from training.thresholds import DEFAULT_THRESHOLD

    options = preset_options(
        args.preset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        hidden_units=args.hidden_units,
        learning_rate=args.learning_rate,
        normalize=args.normalize,
        early_stopping=args.early_stopping,
        ensemble=args.ensemble,
    )
    seconds: dict[str, float] = {}
    evaluation: Evaluation | None = None
    baselines: dict[str, Evaluation] = {}
    tuning: ThresholdEvaluation | None = None
    thresholds = [DEFAULT_THRESHOLD] * len(dataset.label_names)
    if not args.no_cv:
        evaluation, baselines = _cross_validate(args, dataset, options, seconds)
        tuning = _choose_thresholds(dataset, evaluation, args.threshold_objective)
        thresholds = tuning.served
    started = time.monotonic()
    fitted = fit_model(dataset.features, dataset.labels, options, seed=args.seed)
    seconds["final fit"] = time.monotonic() - started
    summary = TrainingSummary(
        name=args.name,
        command=command,
        dataset=dataset,
        preset=args.preset,
        options=options,
        seed=args.seed,
        thresholds=thresholds,
        histories=fitted.histories,
        evaluation=evaluation,
        threshold_evaluation=tuning,
        baselines=baselines,
        seconds=seconds,
    )
    training: dict[str, Any] = {
        "preset": args.preset,
        **options.as_dict(),
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
        evaluation=evaluation.cross_validation if evaluation else None,
        threshold_tuning=ThresholdTuning(
            objective=tuning.objective,
            tuned=[float(value) for value in tuning.tuned],
            applied=tuning.applied,
            evaluation=tuning.cross_fitted,
        )
        if tuning
        else None,
        baselines={name: result.cross_validation for name, result in baselines.items()} or None,
        write_extras=lambda directory: write_report(summary, directory),
    )


def _cross_validate(
    args: argparse.Namespace, dataset: Dataset, options: NetworkOptions, seconds: dict[str, float]
) -> tuple[Evaluation, dict[str, Evaluation]]:
    """The network's cross-validation, then (if asked) the baselines' on the same splits."""
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
        if args.baselines:
            started = time.monotonic()
            baselines = _evaluate_baselines(dataset, folds, runner)
            seconds["baselines"] = time.monotonic() - started
    return evaluation, baselines


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
    dataset: Dataset, folds: Folds, runner: SplitRunner
) -> dict[str, Evaluation]:
    from training.baselines import BASELINES, BaselineFitter
    from training.evaluate import cross_validate

    results = {}
    for name in BASELINES:
        results[name] = cross_validate(dataset, BaselineFitter(name), folds, runner=runner)
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
