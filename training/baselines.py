"""Simple scikit-learn alternatives, fitted on the very same splits as our network.

Every baseline is scored like the network: probabilities, then ``probability >= 0.5``. The
label-powerset ones (one class per label set seen in the training part) also give their most
probable label set, the joint decision.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import ClassifierChain, MultiOutputClassifier
from sklearn.naive_bayes import MultinomialNB
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from training.label_sets import MAX_LABEL_SETS, FoldPrediction, LabelSets


def _mlp(seed: int) -> Any:
    return make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(20,), max_iter=1000, random_state=seed)
    )


def _chain(seed: int) -> Any:
    return ClassifierChain(LogisticRegression(max_iter=1000), random_state=seed)


def _forest(seed: int) -> Any:
    return RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1)


def _binary_relevance(seed: int) -> Any:
    return MultiOutputClassifier(LogisticRegression(max_iter=1000))


def _powerset_logistic(seed: int) -> Any:
    # Multinomial over the label sets, on the raw counts: the posterior of the reference
    # data's generator is a softmax of a linear function of the counts (training/limits.py).
    return LogisticRegression(max_iter=1000)


def _powerset_naive_bayes(seed: int) -> Any:
    # Each label set's own multinomial over the features, counted: the reference data's
    # generator draws each row's counts from exactly such a distribution (training/limits.py).
    return MultinomialNB()


def _most_frequent_set(seed: int) -> Any:
    # The label sets' shares in the training part, whatever the features: the floor.
    return DummyClassifier(strategy="prior")


BASELINES: dict[str, Callable[[int], Any]] = {
    "label-powerset LogisticRegression": _powerset_logistic,
    "label-powerset MultinomialNB": _powerset_naive_bayes,
    "most frequent label set (dummy)": _most_frequent_set,
    "MLPClassifier(20), standardized": _mlp,
    "ClassifierChain(LogisticRegression)": _chain,
    "RandomForestClassifier(300)": _forest,
    "binary relevance LogisticRegression": _binary_relevance,
}
POWERSET_BASELINES = (
    "label-powerset LogisticRegression",
    "label-powerset MultinomialNB",
    "most frequent label set (dummy)",
)
"""Baselines with one class per label set: left out above ``MAX_LABEL_SETS`` sets, like the
network's label-set head."""
COUNT_BASELINES = ("label-powerset MultinomialNB",)
"""Baselines for count features only (non-negative integers): left out on other data."""


def bag_name(size: int) -> str:
    """The bag of MLPs as large as a served ensemble of ``size`` networks."""
    return f"bag of {size} MLPClassifier(20), standardized"


def baseline_names(*, ensemble: int, n_label_sets: int, counts: bool = True) -> list[str]:
    """The baselines to run beside a network of ``ensemble`` members, on data with that many
    distinct label sets (and count features or not): every one above that applies, and a bag
    of MLPs when the network is an ensemble."""
    names = [
        name
        for name in BASELINES
        if (n_label_sets <= MAX_LABEL_SETS or name not in POWERSET_BASELINES)
        and (counts or name not in COUNT_BASELINES)
    ]
    return [*names, bag_name(ensemble)] if ensemble > 1 else names


@dataclass(frozen=True)
class BaselineFitter:
    """A cross-validation fitter for one named baseline (picklable, for worker processes)."""

    name: str
    bag_size: int = 1
    """Members of the bag of MLPs (only for the name ``bag_name(bag_size)``)."""

    def __call__(
        self,
        train_features: NDArray[np.float64],
        train_labels: NDArray[np.int64],
        test_features: NDArray[np.float64],
        seed: int,
    ) -> FoldPrediction:
        # One BLAS thread wherever it runs, so serial and parallel runs agree to the bit.
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.name in POWERSET_BASELINES:
                return _fit_powerset(
                    BASELINES[self.name](seed), train_features, train_labels, test_features
                )
            if self.name == bag_name(self.bag_size):
                return FoldPrediction(
                    _fit_bag(self.bag_size, seed, train_features, train_labels, test_features)
                )
            estimator = BASELINES[self.name](seed)
            estimator.fit(train_features, train_labels)
            return FoldPrediction(
                positive_probabilities(estimator.predict_proba(test_features), estimator)
            )


def _fit_powerset(
    estimator: Any,
    train_features: NDArray[np.float64],
    train_labels: NDArray[np.int64],
    test_features: NDArray[np.float64],
) -> FoldPrediction:
    """Fit ``estimator`` on label-set indices; its class probabilities are the sets'."""
    sets = LabelSets.seen_in(train_labels)
    estimator.fit(train_features, sets.index_of(train_labels))
    # classes_ is every index 0..K-1 in order: each set occurs in the training part.
    return FoldPrediction.from_label_sets(sets, estimator.predict_proba(test_features))


def _fit_bag(
    size: int,
    seed: int,
    train_features: NDArray[np.float64],
    train_labels: NDArray[np.int64],
    test_features: NDArray[np.float64],
) -> NDArray[np.float32]:
    """The mean probability of ``size`` MLPs seeded apart, like the network's ensemble."""
    seeds = np.random.SeedSequence([seed, size]).generate_state(size)
    members = []
    for member_seed in seeds:
        estimator = _mlp(int(member_seed))
        estimator.fit(train_features, train_labels)
        members.append(positive_probabilities(estimator.predict_proba(test_features), estimator))
    return np.asarray(np.mean(members, axis=0, dtype=np.float64), dtype=np.float32)


def positive_probabilities(raw: Any, estimator: Any) -> NDArray[np.float32]:
    """Probability of label = 1 as a [samples, labels] matrix, whatever shape ``raw`` has.

    Multi-output estimators give one [samples, classes] array per label; a label that was
    constant in the training part has one class there.
    """
    if not isinstance(raw, list):
        return np.asarray(raw, dtype=np.float32)
    classes = (
        [member.classes_ for member in estimator.estimators_]
        if isinstance(estimator, MultiOutputClassifier)
        else estimator.classes_
    )
    columns = [
        per_label[:, list(label_classes).index(1)]
        if 1 in label_classes
        else np.zeros(len(per_label))
        for per_label, label_classes in zip(raw, classes, strict=True)
    ]
    return np.stack(columns, axis=1).astype(np.float32)
