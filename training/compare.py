"""Paired comparison of two models cross-validated on the same splits.

The splits of repeated k-fold share most of their training rows, so per-split scores are not
independent and the naive standard error of a mean difference is too small. Nadeau and Bengio
(2003, "Inference for the generalization error") correct its variance by the test-to-training
size ratio: var = (1 / n_splits + n_test / n_train) * s^2, with s^2 the sample variance of the
per-split differences. A difference counts as real when it exceeds twice that standard error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from app.artifact import CrossValidation, PairedComparison

METRIC = "subset_accuracy"
NOISE_MULTIPLE = 2.0


def paired_comparison(
    served: Sequence[float], other: Sequence[float], *, test_to_train: float
) -> PairedComparison:
    """Served minus other, split by split; ``test_to_train`` is n_test / n_train of a split."""
    differences = np.asarray(served, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    mean = float(differences.mean())
    sample_variance = float(differences.var(ddof=1)) if len(differences) > 1 else 0.0
    standard_error = math.sqrt((1 / len(differences) + test_to_train) * sample_variance)
    if abs(mean) > NOISE_MULTIPLE * standard_error:
        verdict = "better" if mean > 0 else "worse"
    else:
        verdict = "within noise"
    return PairedComparison(
        mean=mean,
        std=float(differences.std()),
        won=int((differences > 0).sum()),
        lost=int((differences < 0).sum()),
        tied=int((differences == 0).sum()),
        standard_error=standard_error,
        verdict=verdict,
    )


def compare_all(
    served: CrossValidation, others: dict[str, CrossValidation], metric_of: dict[str, str]
) -> dict[str, PairedComparison]:
    """The served model's subset accuracy against each of ``others`` on the same splits;
    ``metric_of`` names the metric to take from each other (default: subset accuracy)."""
    ratio = 1 / (served.n_splits - 1)  # k-fold: one fold tests, the other k - 1 train
    ours = [split[METRIC] for split in served.splits]
    return {
        name: paired_comparison(
            ours,
            [split[metric_of.get(name, METRIC)] for split in result.splits],
            test_to_train=ratio,
        )
        for name, result in others.items()
    }
