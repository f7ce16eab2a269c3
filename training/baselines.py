"""Simple scikit-learn alternatives, fitted on the very same splits as our network.

Every baseline is scored like the network: probabilities, then ``probability >= 0.5``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import ClassifierChain, MultiOutputClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits


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


BASELINES: dict[str, Callable[[int], Any]] = {
    "MLPClassifier(20), standardized": _mlp,
    "ClassifierChain(LogisticRegression)": _chain,
    "RandomForestClassifier(300)": _forest,
    "binary relevance LogisticRegression": _binary_relevance,
}


@dataclass(frozen=True)
class BaselineFitter:
    """A cross-validation fitter for one named baseline (picklable, for worker processes)."""

    name: str

    def __call__(
        self,
        train_features: NDArray[np.float64],
        train_labels: NDArray[np.int64],
        test_features: NDArray[np.float64],
        seed: int,
    ) -> NDArray[np.float32]:
        estimator = BASELINES[self.name](seed)
        # One BLAS thread wherever it runs, so serial and parallel runs agree to the bit.
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(train_features, train_labels)
            return positive_probabilities(estimator.predict_proba(test_features), estimator)


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
