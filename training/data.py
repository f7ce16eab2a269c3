"""Training data: the reference synthetic problem, with its identity (names, fingerprint)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from training.generator import make_multilabel_classification


@dataclass(frozen=True)
class GeneratorDistributions:
    """The distributions ``make_multilabel_classification`` drew synthetic data from."""

    class_prior: NDArray[np.float64]
    """``p_c``: the probability of drawing each class, ``[classes]``."""
    word_distributions: NDArray[np.float64]
    """``p_w_c``: each class's distribution over the features (words), ``[features, classes]``."""
    mean_label_count: float
    """``n_labels``: the Poisson mean of a label set's size."""
    allow_unlabeled: bool
    """Whether empty label sets were kept (the generator redraws them otherwise)."""


@dataclass(frozen=True)
class Dataset:
    """A feature matrix with its 0/1 label matrix and the names of both axes."""

    features: NDArray[np.float64]
    labels: NDArray[np.int64]
    feature_names: list[str]
    label_names: list[str]
    source: str
    parameters: dict[str, Any] = field(default_factory=dict)
    generator: GeneratorDistributions | None = None
    """Known for synthetic data only: then the best possible model is known too (limits.py)."""

    @property
    def n_samples(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_labels(self) -> int:
        return len(self.label_names)

    def fingerprint(self) -> str:
        """SHA-256 over shapes and values: equal fingerprints mean identical training data."""
        digest = hashlib.sha256()
        for matrix in (self.features.astype(np.float64), self.labels.astype(np.float64)):
            digest.update(np.asarray(matrix.shape, dtype=np.int64).tobytes())
            digest.update(np.ascontiguousarray(matrix).tobytes())
        return digest.hexdigest()

    def label_frequencies(self) -> list[float]:
        return [float(value) for value in self.labels.mean(axis=0)]


def are_counts(features: NDArray[np.floating]) -> bool:
    """Whether every value is a non-negative integer: what a multinomial model describes."""
    return bool(np.all(features >= 0) and np.all(features == np.round(features)))


def default_feature_names(count: int) -> list[str]:
    return [f"x{index}" for index in range(count)]


def default_label_names(count: int) -> list[str]:
    return [f"label_{index}" for index in range(count)]


def synthetic_dataset(
    *,
    n_samples: int = 1000,
    n_features: int = 10,
    n_classes: int = 3,
    n_labels: int = 2,
    random_state: int = 1,
) -> Dataset:
    """The reference experiment's data: scikit-learn's ``make_multilabel_classification``
    (drawn bit for bit the same by ``training.generator``, in a fraction of its time)."""
    features, labels, class_prior, word_distributions = make_multilabel_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_classes=n_classes,
        n_labels=n_labels,
        allow_unlabeled=True,
        random_state=random_state,
    )
    parameters = {
        "n_samples": n_samples,
        "n_features": n_features,
        "n_classes": n_classes,
        "n_labels": n_labels,
        "random_state": random_state,
    }
    return Dataset(
        features=np.asarray(features, dtype=np.float64),
        labels=np.asarray(labels, dtype=np.int64),
        feature_names=default_feature_names(n_features),
        label_names=default_label_names(n_classes),
        source="make_multilabel_classification",
        parameters=parameters,
        generator=GeneratorDistributions(
            class_prior=np.asarray(class_prior, dtype=np.float64),
            word_distributions=np.asarray(word_distributions, dtype=np.float64),
            mean_label_count=float(n_labels),
            allow_unlabeled=True,
        ),
    )
