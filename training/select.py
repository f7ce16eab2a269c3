"""Choosing the default preset honestly: candidates cross-validated on selection folds.

``python -m training.select`` fits every candidate on ``RepeatedKFold(10, 1, random_state=2)``
of the reference data, prints their scores, and writes the record the default preset cites
(``training/selection.json``). Training then reports the chosen options on the seed's own
folds (``random_state=1``), which took no part in choosing them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from app.artifact import CandidateScore, Selection
from training.data import synthetic_dataset
from training.options import PRESETS, NetworkOptions

SELECTION_FILE = Path(__file__).with_name("selection.json")
SELECTION_SEED = 2
SELECTION_SPLITS = 10
SELECTION_REPEATS = 1
"""One repeat: a third of the reporting folds' cost, enough to tell candidates apart."""
LINEAR_LABEL_SETS = NetworkOptions(
    normalize=True, head="label_sets", hidden_units=0, learning_rate=0.01
)
CANDIDATES: dict[str, NetworkOptions] = {
    "reference: sigmoid heads, hidden 20, raw inputs": PRESETS["reference"],
    "sigmoid heads, hidden 20, standardized": NetworkOptions(normalize=True),
    "sigmoid heads, hidden 20, standardized, 3 networks (the former default)": NetworkOptions(
        normalize=True, ensemble=3
    ),
    "label sets, hidden 20, standardized, lr 0.01": NetworkOptions(
        normalize=True, head="label_sets", learning_rate=0.01
    ),
    "label sets, linear, standardized, lr 0.01": LINEAR_LABEL_SETS,
    "label sets, linear, standardized, lr 0.01, 50 epochs": replace(LINEAR_LABEL_SETS, epochs=50),
    "label sets, naive Bayes on the counts (closed form)": replace(
        LINEAR_LABEL_SETS, estimator="naive_bayes"
    ),
}
RULE = (
    "highest mean subset accuracy at threshold 0.5 on the selection folds; a candidate within "
    "0.002 of the best that needs fewer network fits wins instead (the cheaper of near-equals)"
)
NEAR_EQUAL = 0.002


def choose(candidates: dict[str, CandidateScore]) -> str:
    """Apply ``RULE``: the best mean, unless a cheaper candidate is within ``NEAR_EQUAL``."""
    best = max(candidate.subset_accuracy.mean for candidate in candidates.values())
    near = [
        name
        for name, candidate in candidates.items()
        if candidate.subset_accuracy.mean >= best - NEAR_EQUAL
    ]
    return min(
        near,
        key=lambda name: (
            _fits(candidates[name].options),
            -candidates[name].subset_accuracy.mean,
        ),
    )


def _fits(options: dict[str, object]) -> int:
    """Epochs of gradient descent over all member networks (none for a closed form)."""
    if options.get("estimator") == "naive_bayes":
        return 0
    ensemble = options.get("ensemble", 1)
    epochs = options.get("epochs", 100)
    return int(str(ensemble)) * int(str(epochs))


def run_selection(*, jobs: int, command: str, seed: int = SELECTION_SEED) -> Selection:
    from training.evaluate import Folds, SplitRunner, cross_validate
    from training.model import NetworkFitter

    dataset = synthetic_dataset()
    folds = Folds.of(
        dataset.n_samples, n_splits=SELECTION_SPLITS, n_repeats=SELECTION_REPEATS, seed=seed
    )
    scores: dict[str, CandidateScore] = {}
    with SplitRunner(jobs) as runner:
        for name, options in CANDIDATES.items():
            started = time.monotonic()
            summary = cross_validate(
                dataset, NetworkFitter(options), folds, runner=runner
            ).cross_validation.summary
            scores[name] = CandidateScore(
                options=options.as_dict(),
                subset_accuracy=summary["subset_accuracy"],
                joint_subset_accuracy=summary.get("joint_subset_accuracy"),
            )
            accuracy = summary["subset_accuracy"]
            print(
                f"{name}: subset accuracy {accuracy.mean:.3f} ± {accuracy.std:.3f} "
                f"({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    return Selection(
        n_splits=folds.n_splits,
        n_repeats=folds.n_repeats,
        random_state=folds.seed,
        data_fingerprint=dataset.fingerprint(),
        command=command,
        rule=RULE,
        candidates=scores,
        chosen=choose(scores),
    )


def load_selection(path: Path = SELECTION_FILE) -> Selection:
    return Selection.model_validate_json(path.read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m training.select",
        description="Cross-validate the candidate network options on the selection folds "
        f"(RepeatedKFold {SELECTION_SPLITS} x {SELECTION_REPEATS}, random_state={SELECTION_SEED})"
        " and record the choice.",
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument(
        "--output", type=Path, default=SELECTION_FILE, help="(default: training/selection.json)"
    )
    args = parser.parse_args(arguments)
    command = shlex.join(["python", "-m", "training.select", *arguments])
    selection = run_selection(jobs=args.jobs, command=command)
    args.output.write_text(selection.model_dump_json(indent=2) + "\n", encoding="utf-8")
    print(f"chosen: {selection.chosen}; written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
