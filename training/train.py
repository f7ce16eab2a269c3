"""Command line: ``python -m training.train`` or ``multilabel-train``; see ``--help``."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.artifact import MODEL_NAME_PATTERN, list_versions
from training.data import Dataset, synthetic_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multilabel-train",
        description="Cross-validate the multi-label network, fit it on all the data and "
        "publish the next model version under OUTPUT/NAME/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("synthetic data (make_multilabel_classification)")
    data.add_argument("--n-samples", type=_positive, default=1000, help="number of samples")
    data.add_argument("--n-features", type=_positive, default=10, help="number of features")
    data.add_argument("--n-classes", type=_positive, default=3, help="number of labels")
    data.add_argument("--n-labels", type=_positive, default=2, help="average labels per sample")
    data.add_argument("--data-seed", type=int, default=1, help="random_state of the generator")

    network = parser.add_argument_group("network")
    network.add_argument("--epochs", type=_positive, default=100, help="training epochs")
    network.add_argument("--batch-size", type=_positive, default=32, help="minibatch size")
    network.add_argument("--hidden-units", type=_positive, default=20, help="hidden layer width")
    network.add_argument("--learning-rate", type=float, default=0.001, help="Adam learning rate")

    evaluation = parser.add_argument_group("evaluation (RepeatedKFold)")
    evaluation.add_argument("--folds", type=_at_least_two, default=10, help="splits per repeat")
    evaluation.add_argument("--repeats", type=_positive, default=3, help="repeats of k-fold")
    evaluation.add_argument("--no-cv", action="store_true", help="skip cross-validation")
    evaluation.add_argument(
        "--seed", type=int, default=1, help="seed of the folds and of every network's weights"
    )

    output = parser.add_argument_group("output")
    output.add_argument("--name", type=_model_name, default="multilabel", help="model name")
    output.add_argument(
        "--output", type=Path, default=Path("models"), help="model repository directory"
    )
    output.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when the model already has a published version",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.if_missing and list_versions(args.output, args.name):
        print(f"{args.output / args.name} already has a version; nothing to do (--if-missing)")
        return 0
    started = time.monotonic()
    dataset = synthetic_dataset(
        n_samples=args.n_samples,
        n_features=args.n_features,
        n_classes=args.n_classes,
        n_labels=args.n_labels,
        random_state=args.data_seed,
    )
    path = run(args, dataset)
    print(f"published {path} in {time.monotonic() - started:.0f} s")
    return 0


def run(args: argparse.Namespace, dataset: Dataset) -> Path:
    # Deferred: importing TensorFlow takes seconds, and --help should not wait for it.
    from training.evaluate import SplitResult, cross_validate
    from training.export import export_artifact
    from training.model import NetworkOptions, fit_model

    options = NetworkOptions(
        epochs=args.epochs,
        batch_size=args.batch_size,
        hidden_units=args.hidden_units,
        learning_rate=args.learning_rate,
    )

    def report(result: SplitResult) -> None:
        accuracy = result.metrics["subset_accuracy"]
        print(f"split {result.index}/{result.total}  subset accuracy {accuracy:.3f}", flush=True)

    evaluation = None
    if not args.no_cv:
        evaluation = cross_validate(
            dataset,
            options,
            n_splits=args.folds,
            n_repeats=args.repeats,
            seed=args.seed,
            on_split=report,
        )
        accuracy = evaluation.summary["subset_accuracy"]
        print(
            f"subset accuracy over {len(evaluation.splits)} splits: "
            f"{accuracy.mean:.3f} ± {accuracy.std:.3f} (min {accuracy.min:.3f}, "
            f"max {accuracy.max:.3f})"
        )
    model, losses = fit_model(dataset.features, dataset.labels, options, seed=args.seed)
    training: dict[str, Any] = {**options.as_dict(), "seed": args.seed, "final_loss": losses[-1]}
    return export_artifact(
        model,
        dataset,
        repository=args.output,
        name=args.name,
        thresholds=[0.5] * len(dataset.label_names),
        training=training,
        evaluation=evaluation,
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _at_least_two(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"k-fold needs at least 2 splits, got {text}")
    return value


def _model_name(text: str) -> str:
    if not re.match(MODEL_NAME_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use letters, digits, '.', '_' or '-' (at most 64, not starting with '.')"
        )
    return text


if __name__ == "__main__":
    sys.exit(main())
