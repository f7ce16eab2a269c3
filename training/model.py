"""The network: the reference architecture and its measured options, fitted reproducibly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import keras
import numpy as np
from numpy.typing import NDArray

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
PresetName = Literal["default", "reference"]


@dataclass(frozen=True)
class NetworkOptions:
    """How the network is shaped and fitted; the field defaults are the reference experiment."""

    epochs: int = 100
    batch_size: int = 32
    hidden_units: int = 20
    learning_rate: float = 0.001
    normalize: bool = False
    """Standardize inputs inside the graph with the mean and std of the data it is fitted on."""
    early_stopping: int = 0
    """Patience in epochs on a held-out validation part of the fit data; 0 turns it off."""
    validation_fraction: float = 0.1
    """Share of the fit data held out for early stopping (used only when it is on)."""
    ensemble: int = 1
    """Networks trained from different seeds whose probabilities are averaged."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[PresetName, NetworkOptions] = {
    "reference": NetworkOptions(),
    # Measured on the reference protocol (10 x 3 folds): see the README's Training section.
    "default": NetworkOptions(normalize=True, ensemble=3),
}


def preset_options(preset: PresetName, **overrides: Any) -> NetworkOptions:
    """A preset's options with the given fields replaced (``None`` values are ignored)."""
    return replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class FittedNetwork:
    """A fitted model and the per-epoch losses of each member network."""

    model: keras.Model
    histories: list[dict[str, list[float]]]

    @property
    def final_loss(self) -> float:
        return float(np.mean([history["loss"][-1] for history in self.histories]))


def build_model(
    n_features: int,
    n_labels: int,
    options: NetworkOptions,
    *,
    preprocessing: keras.layers.Layer | None = None,
    name: str = "multilabel_mlp",
) -> keras.Model:
    """[preprocessing] → Dense(hidden, relu, he_uniform) → Dense(n_labels, sigmoid); BCE, Adam."""
    inputs = keras.Input(shape=(n_features,), name=INPUT_NAME)
    x = inputs if preprocessing is None else preprocessing(inputs)
    hidden = keras.layers.Dense(
        options.hidden_units, activation="relu", kernel_initializer="he_uniform", name="hidden"
    )(x)
    outputs = keras.layers.Dense(n_labels, activation="sigmoid", name=OUTPUT_NAME)(hidden)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=options.learning_rate),
        # Several batches per graph call: the same updates in the same order, far less overhead.
        steps_per_execution=32,
    )
    return model


def standardization(features: NDArray[np.floating]) -> keras.layers.Layer:
    """(x - mean) / std with the statistics of ``features``, as a layer of the model graph.

    A Rescaling layer rather than Keras's Normalization: the same transform, but
    Normalization's statistics turn into extra graph inputs in the ONNX export (tf2onnx takes
    the tensors it captures for inputs), while Rescaling's stay constants.
    """
    mean = features.astype(np.float64).mean(axis=0)
    std = features.astype(np.float64).std(axis=0)
    std[std == 0] = 1.0  # a constant feature: centre it, do not divide by zero
    return keras.layers.Rescaling(
        scale=(1.0 / std).tolist(), offset=(-mean / std).tolist(), name="standardization"
    )


def fit_model(
    features: NDArray[np.float64], labels: NDArray[np.int64], options: NetworkOptions, *, seed: int
) -> FittedNetwork:
    """Build and fit a fresh network (or ensemble); the same seed and data give the same weights.

    Member 0 of an ensemble is seeded with ``seed`` itself, so ``ensemble=1`` is exactly the
    single network.
    """
    x = features.astype(np.float32)
    y = labels.astype(np.float32)
    members = []
    histories = []
    for member in range(options.ensemble):
        name = "multilabel_mlp" if options.ensemble == 1 else f"member_{member}"
        network, history = _fit_member(x, y, options, seed=_member_seed(seed, member), name=name)
        members.append(network)
        histories.append(history)
    if len(members) == 1:
        return FittedNetwork(members[0], histories)
    return FittedNetwork(_average(members, x.shape[1]), histories)


def _fit_member(
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    options: NetworkOptions,
    *,
    seed: int,
    name: str,
) -> tuple[keras.Model, dict[str, list[float]]]:
    fit_arguments: dict[str, Any] = {}
    if options.early_stopping:
        fit_rows, validation_rows = _validation_split(len(x), options.validation_fraction, seed)
        fit_arguments = {
            "validation_data": (x[validation_rows], y[validation_rows]),
            "callbacks": [
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=options.early_stopping, restore_best_weights=True
                )
            ],
        }
        x, y = x[fit_rows], y[fit_rows]
    keras.utils.set_random_seed(seed)
    preprocessing = standardization(x) if options.normalize else None
    model = build_model(x.shape[1], y.shape[1], options, preprocessing=preprocessing, name=name)
    history = model.fit(
        x, y, epochs=options.epochs, batch_size=options.batch_size, verbose=0, **fit_arguments
    )
    return model, {key: [float(v) for v in values] for key, values in history.history.items()}


def _validation_split(
    n_rows: int, fraction: float, seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """A seeded random hold-out (not the last rows, which may be ordered in a user's CSV)."""
    order = np.random.default_rng(seed).permutation(n_rows)
    n_validation = max(1, round(n_rows * fraction))
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def _member_seed(seed: int, member: int) -> int:
    if member == 0:
        return seed
    return int(np.random.SeedSequence([seed, member]).generate_state(1)[0])


def _average(members: list[keras.Model], n_features: int) -> keras.Model:
    """One graph whose output is the mean of the members' probabilities (exports as one ONNX)."""
    inputs = keras.Input(shape=(n_features,), name=INPUT_NAME)
    outputs = keras.layers.Average(name=OUTPUT_NAME)([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name="multilabel_mlp_ensemble")


def predict_probabilities(
    model: keras.Model, features: NDArray[np.floating]
) -> NDArray[np.float32]:
    """Batch inference for evaluation (training side only: the server never calls this)."""
    return np.asarray(model(features.astype(np.float32), training=False), dtype=np.float32)


@dataclass(frozen=True)
class NetworkFitter:
    """A cross-validation fitter (picklable, for worker processes): fit, then predict the test."""

    options: NetworkOptions

    def __call__(
        self,
        train_features: NDArray[np.float64],
        train_labels: NDArray[np.int64],
        test_features: NDArray[np.float64],
        seed: int,
    ) -> NDArray[np.float32]:
        fitted = fit_model(train_features, train_labels, self.options, seed=seed)
        return predict_probabilities(fitted.model, test_features)
