"""The network's presets and options, as built (no fitting needed)."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import synthetic_dataset
from training.label_sets import LabelSets
from training.model import build_model, fit_model, predict_probabilities, standardization
from training.options import NetworkOptions, preset_options

LINEAR_LABEL_SETS = NetworkOptions(head="label_sets", hidden_units=0, epochs=3)


def layer_summary(options: NetworkOptions, **kwargs: object) -> list[tuple[str, object]]:
    model = build_model(10, 3, options, **kwargs)  # type: ignore[arg-type]
    return [(type(layer).__name__, getattr(layer, "units", None)) for layer in model.layers]


def test_the_reference_preset_is_the_reference_network_exactly() -> None:
    options = preset_options("reference")
    assert options == NetworkOptions(epochs=100, batch_size=32, hidden_units=20)
    assert not options.normalize
    assert options.early_stopping == 0
    assert options.ensemble == 1
    model = build_model(10, 3, options)
    assert layer_summary(options) == [("InputLayer", None), ("Dense", 20), ("Dense", 3)]
    hidden = model.get_layer("hidden")
    assert hidden.activation.__name__ == "relu"
    assert type(hidden.kernel_initializer).__name__ == "HeUniform"
    assert model.get_layer("probabilities").activation.__name__ == "sigmoid"
    assert model.loss == "binary_crossentropy"
    assert type(model.optimizer).__name__ == "Adam"


def test_flags_override_the_preset_and_unset_flags_keep_it() -> None:
    options = preset_options("default", hidden_units=32, epochs=None)
    assert options.normalize
    assert options.hidden_units == 32
    assert options.epochs == 100


def test_a_label_set_head_is_a_softmax_over_the_sets_trained_with_categorical_cross_entropy() -> (
    None
):
    model = build_model(10, 5, LINEAR_LABEL_SETS)
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense"]
    assert model.get_layer("label_set_probabilities").activation.__name__ == "softmax"
    assert model.output_shape == (None, 5)
    assert model.loss == "sparse_categorical_crossentropy"


def test_the_served_label_set_model_outputs_the_marginals_of_its_set_probabilities() -> None:
    dataset = synthetic_dataset(n_samples=200)
    fitted = fit_model(dataset.features, dataset.labels, LINEAR_LABEL_SETS, seed=3)
    assert fitted.head == "label_sets"
    assert fitted.label_sets is not None
    assert fitted.set_model is not None
    assert fitted.label_sets.matrix.tolist() == LabelSets.seen_in(dataset.labels).matrix.tolist()
    served = predict_probabilities(fitted.model, dataset.features)
    sets = predict_probabilities(fitted.set_model, dataset.features)
    assert served.shape == (200, 3)
    np.testing.assert_allclose(served, np.minimum(sets @ fitted.label_sets.matrix, 1), atol=1e-6)
    assert served.min() >= 0.0
    assert served.max() <= 1.0
    # The fixed matrix is not trained: only the softmax layer's kernel and bias are.
    assert len(fitted.model.trainable_weights) == 2
    prediction = fitted.predict(dataset.features)
    assert prediction.joint is not None
    assert prediction.joint.tolist() == fitted.label_sets.most_probable(sets).tolist()


@pytest.mark.parametrize(("cap", "head"), [(5, "label_sets"), (4, "sigmoid")])
def test_above_the_cap_of_label_sets_the_network_keeps_one_sigmoid_per_label(
    cap: int, head: str
) -> None:
    dataset = synthetic_dataset(n_samples=200)
    assert LabelSets.seen_in(dataset.labels).count == 5
    options = NetworkOptions(head="label_sets", max_label_sets=cap, epochs=1)
    fitted = fit_model(dataset.features, dataset.labels, options, seed=0)
    assert fitted.head == head
    assert fitted.model.output_shape == (None, 3)
    assert (fitted.predict(dataset.features[:4]).joint is None) == (head == "sigmoid")


def test_standardization_maps_the_fit_data_to_zero_mean_and_unit_variance() -> None:
    features = np.random.default_rng(3).normal(
        loc=[5.0, -2.0, 7.0], scale=[3.0, 0.5, 0.0], size=(200, 3)
    )
    scaled = np.asarray(standardization(features)(features.astype(np.float32)))
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-5)
    # A constant feature is centred, not divided by zero.
    np.testing.assert_allclose(scaled.std(axis=0), [1.0, 1.0, 0.0], atol=1e-5)
    assert layer_summary(NetworkOptions(normalize=True), preprocessing=standardization(features))[
        1
    ] == (
        "Rescaling",
        None,
    )
