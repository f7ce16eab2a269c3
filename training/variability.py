"""How much a model fitted on 1000 rows of the reference generator varies with its sample.

``python -m training.variability`` fits the default preset (naive Bayes over label sets) and
its gradient fallback (the same linear softmax over label sets, fitted by Adam on standardized
inputs: the former default) on ``--samples`` other training samples of 1000 rows from the same
generator call (rows 41000 onwards), and scores each on development rows 21000 to 40999.
Neither range touches the training rows (0 to 999) or the rows the model card reports
(1000 to 20999). It answers: which figures of the served model are luck of its sample, and
which are its estimator's?
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from training.calibration import SetDistribution, label_scores, set_scores
from training.data import synthetic_dataset
from training.generator import make_multilabel_classification
from training.limits import bayes_distribution
from training.options import PRESETS, NetworkOptions

DEVELOPMENT_ROWS = (21_000, 41_000)
FIRST_SAMPLE_ROW = 41_000
SAMPLE_ROWS = 1000
ESTIMATORS: dict[str, NetworkOptions] = {
    "naive Bayes (the default preset)": PRESETS["default"],
    "gradient (its fallback, the former default)": replace(
        PRESETS["default"], estimator="gradient"
    ),
}
FIGURES = (
    "largest per-label ECE",
    "label-set log loss / Bayes - 1",
    "subset accuracy ratio, per-label decision",
    "subset accuracy ratio, most probable set",
)


def figures(
    options: NetworkOptions,
    train: tuple[NDArray[np.float64], NDArray[np.int64]],
    development: tuple[NDArray[np.float64], NDArray[np.int64]],
    limit: SetDistribution,
) -> list[float]:
    """One fitted model's figures on the development rows, as ``FIGURES`` lists them."""
    from training.model import fit_model

    features, labels = development
    prediction = fit_model(*train, options, seed=1).predict(features)
    model = SetDistribution(prediction.probabilities, prediction.sets, prediction.set_probabilities)
    names = [f"label_{j}" for j in range(labels.shape[1])]
    _, inside = model.true_set(labels)
    _, model_set = model.top(labels)
    _, limit_set = limit.top(labels)
    model_labels = ((model.marginals >= 0.5) == (labels == 1)).all(axis=1)
    limit_labels = ((limit.marginals >= 0.5) == (labels == 1)).all(axis=1)
    return [
        max(scores.ece for scores in label_scores(labels, model.marginals, names).values()),
        set_scores(model, labels).log_loss / set_scores(limit, labels, inside).log_loss - 1,
        float(model_labels.mean() / limit_labels.mean()),
        float(model_set.mean() / limit_set.mean()),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.variability",
        description="Fit the default preset and its gradient fallback on other 1000-row samples "
        "of the reference generator; score each on development rows 21000-40999.",
    )
    parser.add_argument("--samples", type=int, default=20, help="training samples (default: 20)")
    args = parser.parse_args(argv)
    reference = synthetic_dataset()
    assert reference.generator is not None
    features, labels, _, _ = make_multilabel_classification(
        n_samples=FIRST_SAMPLE_ROW + args.samples * SAMPLE_ROWS,
        n_features=10,
        n_classes=3,
        n_labels=2,
        random_state=1,
    )
    assert np.array_equal(features[:SAMPLE_ROWS], reference.features)
    start, end = DEVELOPMENT_ROWS
    development = (features[start:end], labels[start:end])
    limit = bayes_distribution(development[0], reference.generator)
    print(
        f"{args.samples} samples of {SAMPLE_ROWS} rows; mean [min, max] on rows {start}-{end - 1}"
    )
    for name, options in ESTIMATORS.items():
        results = np.array(
            [
                figures(
                    options,
                    (features[row : row + SAMPLE_ROWS], labels[row : row + SAMPLE_ROWS]),
                    development,
                    limit,
                )
                for row in range(FIRST_SAMPLE_ROW, len(features), SAMPLE_ROWS)
            ]
        )
        print(f"{name}:")
        for column, figure in enumerate(FIGURES):
            values = results[:, column]
            print(
                f"  {figure}: {values.mean():.4f} [{values.min():.4f}, {values.max():.4f}]"
                + (f"; at most 0.01 in {(values <= 0.01).sum()}" if column == 0 else "")
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
