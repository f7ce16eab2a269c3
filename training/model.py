"""The network: the reference architecture and its measured options, fitted reproducibly."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from training.data import are_counts
from training.label_sets import FoldPrediction, LabelSets
from training.naive_bayes import (
    NaiveBayesShape,
    ShapeChoice,
    naive_bayes_shape,
    naive_bayes_weights,
)
from training.options import Estimator, Head, NetworkOptions
from training.runtime import keras, tf

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
SET_OUTPUT_NAME = "label_set_probabilities"


@dataclass(frozen=True)
class FittedNetwork:
    """A fitted model and the per-epoch losses of each member network."""

    model: keras.Model
    """What is served: features → per-label probabilities (first output) and, with a label-set
    head, the probability of each of ``label_sets`` (second output)."""
    histories: list[dict[str, list[float]]]
    """Per member, the loss per epoch; empty for weights found in closed form."""
    label_sets: LabelSets | None = None
    """The sets the softmax ranges over (label-set head); ``None`` with sigmoid heads."""
    set_model: keras.Model | None = None
    """Features → probability of each of ``label_sets`` (label-set head only)."""
    estimator: Estimator = "gradient"
    """How the weights were found (``naive_bayes`` falls back to ``gradient`` on non-counts)."""
    temperature: float = 1.0
    """The label-set logits are divided by it (folded into the last layer's weights)."""
    naive_bayes_choice: ShapeChoice | None = None
    """With the naive Bayes estimator: the shape its weights were fitted in
    (``NAIVE_BAYES_SHAPES``) and the cross-validation that chose it."""

    @property
    def naive_bayes_shape(self) -> NaiveBayesShape | None:
        return None if self.naive_bayes_choice is None else self.naive_bayes_choice.shape

    @property
    def final_loss(self) -> float | None:
        if not self.histories:
            return None
        return float(np.mean([history["loss"][-1] for history in self.histories]))

    @property
    def head(self) -> Head:
        """The head actually fitted (``label_sets`` falls back to ``sigmoid`` above the cap)."""
        return "sigmoid" if self.label_sets is None else "label_sets"

    def predict(self, features: NDArray[np.floating]) -> FoldPrediction:
        """Per-label probabilities, and the most probable label set when the head has sets."""
        if self.label_sets is None or self.set_model is None:
            return FoldPrediction(predict_probabilities(self.model, features))
        return FoldPrediction.from_label_sets(
            self.label_sets, predict_probabilities(self.set_model, features)
        )


def build_model(
    n_features: int,
    n_outputs: int,
    options: NetworkOptions,
    *,
    preprocessing: keras.layers.Layer | None = None,
    name: str = "multilabel_mlp",
) -> keras.Model:
    """[preprocessing] → [Dense(hidden, relu, he_uniform)] → the head; Adam.

    The head is Dense(n_outputs, sigmoid) with binary cross-entropy (one output per label), or
    Dense(n_outputs, softmax) with categorical cross-entropy (one output per label set).
    """
    inputs = keras.Input(shape=(n_features,), name=INPUT_NAME)
    x = inputs if preprocessing is None else preprocessing(inputs)
    if options.hidden_units:
        x = keras.layers.Dense(
            options.hidden_units, activation="relu", kernel_initializer="he_uniform", name="hidden"
        )(x)
    if options.head == "label_sets":
        outputs = keras.layers.Dense(n_outputs, activation="softmax", name=SET_OUTPUT_NAME)(x)
        loss = "sparse_categorical_crossentropy"
    else:
        outputs = keras.layers.Dense(n_outputs, activation="sigmoid", name=OUTPUT_NAME)(x)
        loss = "binary_crossentropy"
    model = keras.Model(inputs, outputs, name=name)
    model.compile(
        loss=loss,
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


def head_label_sets(labels: NDArray[np.int64], options: NetworkOptions) -> LabelSets | None:
    """The label sets a label-set head ranges over, or ``None`` for sigmoid heads (asked for,
    or more distinct sets in ``labels`` than the cap)."""
    if options.head != "label_sets":
        return None
    sets = LabelSets.seen_in(labels)
    return sets if sets.count <= options.max_label_sets else None


def fit_model(
    features: NDArray[np.float64], labels: NDArray[np.int64], options: NetworkOptions, *, seed: int
) -> FittedNetwork:
    """Build and fit a fresh network (or ensemble); the same seed and data give the same weights.

    Member 0 of an ensemble is seeded with ``seed`` itself, so ``ensemble=1`` is exactly the
    single network. The naive Bayes estimate needs no seed.
    """
    x = features.astype(np.float32)
    sets = head_label_sets(labels, options)
    if sets is None:
        options = replace(options, head="sigmoid", estimator="gradient")
        targets: NDArray[Any] = labels.astype(np.float32)
        n_outputs = labels.shape[1]
    else:
        targets = sets.index_of(labels)
        n_outputs = sets.count
    if options.estimator == "naive_bayes" and sets is not None and are_counts(features):
        set_model, choice = naive_bayes_network(features, targets, sets)
        return FittedNetwork(
            _with_marginals(set_model, sets),
            [],
            sets,
            set_model,
            "naive_bayes",
            naive_bayes_choice=choice,
        )
    members = []
    histories = []
    for member in range(options.ensemble):
        name = "multilabel_mlp" if options.ensemble == 1 else f"member_{member}"
        network, history = _fit_member(
            x, targets, n_outputs, options, seed=_member_seed(seed, member), name=name
        )
        members.append(network)
        histories.append(history)
    output_name = OUTPUT_NAME if sets is None else SET_OUTPUT_NAME
    combined = members[0] if len(members) == 1 else _average(members, x.shape[1], output_name)
    if sets is None:
        return FittedNetwork(combined, histories)
    return FittedNetwork(_with_marginals(combined, sets), histories, sets, combined)


def naive_bayes_network(
    features: NDArray[np.floating],
    set_index: NDArray[np.intp],
    sets: LabelSets,
) -> tuple[keras.Model, ShapeChoice]:
    """A multinomial naive Bayes over label sets, as a network: Dense(sets, softmax) on the raw
    counts, whose kernel is log P(feature | set) and bias log P(set), fitted in the data in the
    shape ``naive_bayes_shape`` chooses; returns that choice too.

    The softmax of x · log q_set + log prior_set is P(set | x) by Bayes' rule, since the
    multinomial coefficient of x is the same for every set. Every set must occur in the data.
    Each feature's log probabilities are centred over the sets (and so is the bias): that adds
    the same amount to every set's logit, which the softmax ignores, and keeps the logits small
    (tens, not hundreds), where float32 sums in ONNX Runtime and TensorFlow agree within 1e-5.
    """
    choice = naive_bayes_shape(features, set_index, sets)
    log_feature, log_prior = naive_bayes_weights(features, set_index, sets, choice.shape)
    log_feature -= log_feature.mean(axis=0, keepdims=True)
    log_prior -= log_prior.mean()
    inputs = keras.Input(shape=(features.shape[1],), name=INPUT_NAME)
    head = keras.layers.Dense(sets.count, activation="softmax", name=SET_OUTPUT_NAME)
    model = keras.Model(inputs, head(inputs), name="multilabel_naive_bayes")
    head.set_weights([log_feature.T.astype(np.float32), log_prior.astype(np.float32)])
    return model, choice


def with_temperature(fitted: FittedNetwork, temperature: float) -> FittedNetwork:
    """The same network with its label-set logits divided by ``temperature``: the last
    layer's kernel and bias scaled by 1 / temperature, so the graph is unchanged.

    Only for one network with a label-set head (an ensemble averages probabilities, not logits).
    """
    if fitted.set_model is None or fitted.label_sets is None or len(fitted.histories) > 1:
        raise ValueError("temperature scaling needs a single network with a label-set head")
    set_model = keras.models.clone_model(fitted.set_model)
    set_model.set_weights(fitted.set_model.get_weights())
    head = set_model.get_layer(SET_OUTPUT_NAME)
    head.set_weights([weight / np.float32(temperature) for weight in head.get_weights()])
    return replace(
        fitted,
        model=_with_marginals(set_model, fitted.label_sets),
        set_model=set_model,
        temperature=fitted.temperature * temperature,
    )


def _fit_member(
    x: NDArray[np.float32],
    y: NDArray[Any],
    n_outputs: int,
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
    model = build_model(x.shape[1], n_outputs, options, preprocessing=preprocessing, name=name)
    history = model.fit(
        _shuffled_batches(x, y, options.batch_size, seed),
        epochs=options.epochs,
        shuffle=False,  # the dataset reshuffles itself every epoch
        verbose=0,
        **fit_arguments,
    )
    return model, {key: [float(v) for v in values] for key, values in history.history.items()}


def _shuffled_batches(
    x: NDArray[np.float32], y: NDArray[Any], batch_size: int, seed: int
) -> tf.data.Dataset:
    """The fit data, reshuffled every epoch, as one dataset built once.

    Handing Keras numpy arrays rebuilds the input pipeline every epoch, which costs more than
    the epoch's arithmetic for networks this small (measured: 6.3 s of CPU per 100-epoch fit
    against 2.7 s this way).
    """
    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
    )


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


def _average(members: list[keras.Model], n_features: int, output_name: str) -> keras.Model:
    """One graph whose output is the mean of the members' outputs (exports as one ONNX)."""
    inputs = keras.Input(shape=(n_features,), name=INPUT_NAME)
    outputs = keras.layers.Average(name=output_name)([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name="multilabel_mlp_ensemble")


def _with_marginals(set_model: keras.Model, sets: LabelSets) -> keras.Model:
    """``set_model`` followed by a fixed matrix that sums each label's sets: per-label
    probabilities first, so the served model's input and first output are those of the sigmoid
    heads; the set probabilities themselves are its second output.

    A Dense layer without bias, frozen (not trainable), whose kernel is the 0/1 matrix
    [sets, labels]: a plain MatMul in the ONNX export. Float32 sums of a softmax can come out
    a rounding step above 1 (seen: 1.0000001), so a ReLU capped at 1 keeps them in [0, 1].
    """
    marginals = keras.layers.Dense(
        sets.matrix.shape[1], use_bias=False, trainable=False, name="label_marginals"
    )
    set_probabilities = set_model.outputs[0]
    summed = marginals(set_probabilities)
    marginals.set_weights([sets.matrix.astype(np.float32)])
    outputs = keras.layers.ReLU(max_value=1.0, name=OUTPUT_NAME)(summed)
    return keras.Model(
        set_model.inputs[0], [outputs, set_probabilities], name=f"{set_model.name}_marginals"
    )


def predict_probabilities(
    model: keras.Model, features: NDArray[np.floating]
) -> NDArray[np.float32]:
    """Batch inference for evaluation (training side only: the server never calls this): the
    model's first output."""
    return predict_outputs(model, features)[0]


def predict_outputs(
    model: keras.Model, features: NDArray[np.floating]
) -> list[NDArray[np.float32]]:
    """Every output of ``model``, in order."""
    outputs = model(features.astype(np.float32), training=False)
    if not isinstance(outputs, list | tuple):
        outputs = [outputs]
    return [np.asarray(output, dtype=np.float32) for output in outputs]


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
    ) -> FoldPrediction:
        fitted = fit_model(train_features, train_labels, self.options, seed=seed)
        return fitted.predict(test_features)
