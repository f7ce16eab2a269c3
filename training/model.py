"""The network: the reference architecture, built and fitted reproducibly."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np
from numpy.typing import NDArray

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"


@dataclass(frozen=True)
class NetworkOptions:
    """How the network is shaped and fitted; the defaults are the reference experiment."""

    epochs: int = 100
    batch_size: int = 32
    hidden_units: int = 20
    learning_rate: float = 0.001

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_model(n_features: int, n_labels: int, options: NetworkOptions) -> keras.Model:
    """Dense(hidden, relu, he_uniform) → Dense(n_labels, sigmoid), binary cross-entropy, Adam."""
    inputs = keras.Input(shape=(n_features,), name=INPUT_NAME)
    hidden = keras.layers.Dense(
        options.hidden_units, activation="relu", kernel_initializer="he_uniform", name="hidden"
    )(inputs)
    outputs = keras.layers.Dense(n_labels, activation="sigmoid", name=OUTPUT_NAME)(hidden)
    model = keras.Model(inputs, outputs, name="multilabel_mlp")
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=options.learning_rate),
        # Several batches per graph call: the same updates in the same order, far less overhead.
        steps_per_execution=32,
    )
    return model


def fit_model(
    features: NDArray[np.float64], labels: NDArray[np.int64], options: NetworkOptions, *, seed: int
) -> tuple[keras.Model, list[float]]:
    """Build and fit a fresh network; the same seed and data give the same weights."""
    keras.utils.set_random_seed(seed)
    model = build_model(features.shape[1], labels.shape[1], options)
    history = model.fit(
        features.astype(np.float32),
        labels.astype(np.float32),
        epochs=options.epochs,
        batch_size=options.batch_size,
        verbose=0,
    )
    return model, [float(loss) for loss in history.history["loss"]]


def predict_probabilities(
    model: keras.Model, features: NDArray[np.floating]
) -> NDArray[np.float32]:
    """Batch inference for evaluation (training side only: the server never calls this)."""
    return np.asarray(model(features.astype(np.float32), training=False), dtype=np.float32)
