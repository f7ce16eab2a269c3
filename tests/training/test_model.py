"""The network's presets and options, as built (no fitting needed)."""

from __future__ import annotations

import numpy as np

from training.model import NetworkOptions, build_model, preset_options, standardization


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
