"""Repeated k-fold cross-validation: out-of-fold probabilities, metrics per split, and the
cross-fitted evaluation of tuned thresholds.

Every model (our network, each baseline) is fitted on the very same splits. Split ``i`` is
seeded with ``seed + i``, so results do not depend on the order or the process splits run in.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import RepeatedKFold

from app.artifact import CrossValidation
from training.data import Dataset
from training.label_sets import FoldPrediction, LabelSets
from training.metrics import multilabel_metrics, per_label_key, summarize
from training.thresholds import DEFAULT_THRESHOLD, OBJECTIVE_METRIC, Objective, tune_thresholds

Fitter = Callable[
    [NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], int], FoldPrediction
]
"""Fit on (train features, train labels) with a seed; predict the test features."""

# One thread per worker: the processes, not the threads, share the cores.
_WORKER_ENVIRONMENT = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class Folds:
    """The splits of ``RepeatedKFold(n_splits, n_repeats, random_state=seed)``, in order."""

    n_splits: int
    n_repeats: int
    seed: int
    splits: list[tuple[NDArray[np.intp], NDArray[np.intp]]]

    @classmethod
    def of(cls, n_samples: int, *, n_splits: int, n_repeats: int, seed: int) -> Self:
        folds = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
        splits = list(folds.split(np.zeros((n_samples, 1))))
        return cls(n_splits=n_splits, n_repeats=n_repeats, seed=seed, splits=splits)

    @property
    def total(self) -> int:
        return len(self.splits)

    def repeat_of(self, index: int) -> int:
        return index // self.n_splits


@dataclass(frozen=True)
class SplitResult:
    index: int
    """1-based, as printed: ``split 7/30``."""
    total: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class Evaluation:
    """One model's cross-validation: metrics at threshold 0.5 and its out-of-fold probabilities
    (one full set per repeat: ``probabilities[repeat, sample, label]``)."""

    folds: Folds
    probabilities: NDArray[np.float32]
    cross_validation: CrossValidation
    label_sets: LabelSets | None = None
    """Every label set the model's folds range over (their union), for models that give a
    distribution over label sets; ``None`` otherwise."""
    set_probabilities: NDArray[np.float32] | None = None
    """Out-of-fold probability of each of ``label_sets``, ``[repeat, sample, set]`` (0 for a
    set absent from a split's training part)."""

    @property
    def subset_accuracies(self) -> list[float]:
        return [split["subset_accuracy"] for split in self.cross_validation.splits]


@dataclass(frozen=True)
class ThresholdEvaluation:
    """Tuned thresholds, and how they score on folds they were not tuned on."""

    objective: Objective
    tuned: NDArray[np.float64]
    """Tuned on every out-of-fold probability: what the artifact serves when it helps."""
    cross_fitted: CrossValidation
    """Split ``i`` scored at thresholds tuned on the other folds of its repeat."""
    applied: bool
    """Whether tuning beat 0.5 on the objective, cross-fitted: only then are they served."""

    @property
    def served(self) -> list[float]:
        """The tuned thresholds if they helped, else 0.5 for every label."""
        values = self.tuned if self.applied else np.full(len(self.tuned), DEFAULT_THRESHOLD)
        return [float(value) for value in values]


@dataclass(frozen=True)
class _Task:
    fitter: Fitter
    train_features: NDArray[np.float64]
    train_labels: NDArray[np.int64]
    test_features: NDArray[np.float64]
    seed: int


def _fit_and_predict(task: _Task) -> FoldPrediction:
    return task.fitter(task.train_features, task.train_labels, task.test_features, task.seed)


class SplitRunner:
    """Runs the fits of the splits here (``jobs=1``) or in worker processes, results in order."""

    def __init__(self, jobs: int = 1):
        self.jobs = jobs
        self._pool: multiprocessing.pool.Pool | None = None

    def __enter__(self) -> Self:
        if self.jobs > 1:
            # spawn, not fork: a forked TensorFlow runtime is not safe to use.
            with _environment(_WORKER_ENVIRONMENT):
                self._pool = multiprocessing.get_context("spawn").Pool(self.jobs)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def map(self, tasks: Sequence[_Task]) -> Iterator[FoldPrediction]:
        if self._pool is None:
            return map(_fit_and_predict, tasks)
        return self._pool.imap(_fit_and_predict, tasks, chunksize=1)


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cross_validate(
    dataset: Dataset,
    fitter: Fitter,
    folds: Folds,
    *,
    runner: SplitRunner | None = None,
    on_split: Callable[[SplitResult], None] = lambda result: None,
) -> Evaluation:
    """Fit ``fitter`` on each split's training part and score it on the held-out fold."""
    tasks = [
        _Task(
            fitter,
            dataset.features[train],
            dataset.labels[train],
            dataset.features[test],
            folds.seed + index,
        )
        for index, (train, test) in enumerate(folds.splits)
    ]
    probabilities = np.zeros((folds.n_repeats, *dataset.labels.shape), dtype=np.float32)
    thresholds = np.full(len(dataset.label_names), DEFAULT_THRESHOLD)
    splits: list[dict[str, float]] = []
    predictions: list[FoldPrediction] = []
    with contextlib.ExitStack() as stack:
        active = runner or stack.enter_context(SplitRunner())
        for index, prediction in enumerate(active.map(tasks)):
            test = folds.splits[index][1]
            probabilities[folds.repeat_of(index), test] = prediction.probabilities
            predictions.append(prediction)
            metrics = multilabel_metrics(
                dataset.labels[test],
                prediction.probabilities,
                thresholds,
                dataset.label_names,
                joint=prediction.joint,
            )
            splits.append(metrics)
            on_split(SplitResult(index=index + 1, total=folds.total, metrics=metrics))
    sets, set_probabilities = _out_of_fold_sets(folds, predictions, dataset.n_samples)
    return Evaluation(
        folds=folds,
        probabilities=probabilities,
        cross_validation=cross_validation_of(folds, splits),
        label_sets=sets,
        set_probabilities=set_probabilities,
    )


def _out_of_fold_sets(
    folds: Folds, predictions: list[FoldPrediction], n_samples: int
) -> tuple[LabelSets | None, NDArray[np.float32] | None]:
    """The splits' distributions over label sets on one common list of sets, when every split
    gives one."""
    if not predictions or any(prediction.sets is None for prediction in predictions):
        return None, None
    sets = functools.reduce(
        LabelSets.union, [prediction.sets for prediction in predictions if prediction.sets]
    )
    result = np.zeros((folds.n_repeats, n_samples, sets.count), dtype=np.float32)
    for index, prediction in enumerate(predictions):
        result[folds.repeat_of(index), folds.splits[index][1]] = prediction.over(sets)
    return sets, result


def evaluation_of_sets(
    dataset: Dataset, folds: Folds, sets: LabelSets, set_probabilities: NDArray[np.float32]
) -> Evaluation:
    """The evaluation of out-of-fold set probabilities ``[repeat, sample, set]`` on ``folds``
    (e.g. recalibrated ones): their marginals at 0.5 and their most probable sets."""
    probabilities = np.stack([sets.marginals(repeat) for repeat in set_probabilities])
    thresholds = np.full(dataset.n_labels, DEFAULT_THRESHOLD)
    splits = []
    for index, (_, test) in enumerate(folds.splits):
        repeat = folds.repeat_of(index)
        splits.append(
            multilabel_metrics(
                dataset.labels[test],
                probabilities[repeat, test],
                thresholds,
                dataset.label_names,
                joint=sets.most_probable(set_probabilities[repeat, test]),
            )
        )
    return Evaluation(
        folds=folds,
        probabilities=probabilities,
        cross_validation=cross_validation_of(folds, splits),
        label_sets=sets,
        set_probabilities=set_probabilities,
    )


def evaluate_thresholds(
    dataset: Dataset, evaluation: Evaluation, objective: Objective
) -> ThresholdEvaluation:
    """Tune thresholds and measure them honestly.

    Tuning and scoring on the same out-of-fold probabilities flatters the tuned thresholds,
    so each split is scored at thresholds tuned only on the other folds of its repeat (whose
    probabilities come from networks that never saw them either): a cross-fitted estimate.
    """
    folds = evaluation.folds
    splits = []
    for index, (_, test) in enumerate(folds.splits):
        tuning_rows = np.setdiff1d(np.arange(dataset.n_samples), test)
        repeat_probabilities = evaluation.probabilities[folds.repeat_of(index)]
        thresholds = tune_thresholds(
            dataset.labels[tuning_rows], repeat_probabilities[tuning_rows], objective
        )
        metrics = multilabel_metrics(
            dataset.labels[test], repeat_probabilities[test], thresholds, dataset.label_names
        )
        for label, threshold in zip(dataset.label_names, thresholds, strict=True):
            metrics[per_label_key("threshold", label)] = float(threshold)
        splits.append(metrics)
    every_labels = np.tile(dataset.labels, (folds.n_repeats, 1))
    every_probabilities = evaluation.probabilities.reshape(-1, dataset.labels.shape[1])
    cross_fitted = cross_validation_of(folds, splits)
    metric = OBJECTIVE_METRIC[objective]
    return ThresholdEvaluation(
        objective=objective,
        tuned=tune_thresholds(every_labels, every_probabilities, objective),
        cross_fitted=cross_fitted,
        applied=cross_fitted.summary[metric].mean
        > evaluation.cross_validation.summary[metric].mean,
    )


def cross_validation_of(folds: Folds, splits: list[dict[str, float]]) -> CrossValidation:
    """The artifact's record of per-split metrics on these folds, with their summary."""
    return CrossValidation(
        n_splits=folds.n_splits,
        n_repeats=folds.n_repeats,
        random_state=folds.seed,
        splits=splits,
        summary=summarize(splits),
    )
