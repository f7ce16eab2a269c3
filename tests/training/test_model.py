"""The network's presets and options, as built and fitted (small data, few epochs)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn.naive_bayes import MultinomialNB

from training.data import are_counts, synthetic_dataset
from training.label_sets import LabelSets
from training.limits import label_set_prior, set_word_distributions
from training.model import (
    build_model,
    fit_model,
    predict_outputs,
    predict_probabilities,
    standardization,
    with_temperature,
)
from training.naive_bayes import naive_bayes_weights
from training.options import NetworkOptions, preset_options
from training.temperature import scaled

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
    options = preset_options("default", learning_rate=0.05, epochs=None)
    assert options.normalize
    assert options.learning_rate == 0.05
    assert options.epochs == 100
    assert options.estimator == "naive_bayes"


@pytest.mark.parametrize(
    "override",
    [{"hidden_units": 32}, {"head": "sigmoid"}, {"ensemble": 3}],
    ids=["hidden-layer", "sigmoid", "ensemble"],
)
def test_asking_the_default_preset_for_what_only_gradient_descent_fits_means_gradient(
    override: dict[str, object],
) -> None:
    options = preset_options("default", **override)
    assert options.estimator == "gradient"
    assert options.normalize


def test_naive_bayes_named_with_a_hidden_layer_is_refused_with_the_way_out() -> None:
    with pytest.raises(ValueError, match="--estimator gradient"):
        preset_options("default", hidden_units=20, estimator="naive_bayes")


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
    served, served_sets = predict_outputs(fitted.model, dataset.features)
    sets = predict_probabilities(fitted.set_model, dataset.features)
    assert served.shape == (200, 3)
    np.testing.assert_array_equal(served_sets, sets)
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
    expected = [(None, 3), (None, 5)] if head == "label_sets" else (None, 3)
    assert fitted.model.output_shape == expected
    assert (fitted.predict(dataset.features[:4]).joint is None) == (head == "sigmoid")


NAIVE_BAYES = preset_options("default")


def counts_unlike_the_generator(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference generator's label sets, with 50 words per row drawn from a distribution of
    each set's own: a set's words are not its labels' mixed, nor the empty set's uniform."""
    labels = synthetic_dataset(n_samples=n_samples).labels
    sets = LabelSets.seen_in(labels)
    rng = np.random.default_rng(5)
    distributions = rng.dirichlet(np.full(10, 0.5), size=sets.count)
    features = np.array(
        [rng.multinomial(50, distributions[index]) for index in sets.index_of(labels)],
        dtype=np.float64,
    )
    return features, labels


def test_the_counted_naive_bayes_network_is_scikit_learns_multinomial_naive_bayes() -> None:
    features, labels = counts_unlike_the_generator(300)
    fitted = fit_model(features, labels, NAIVE_BAYES, seed=0)
    assert fitted.estimator == "naive_bayes"
    assert fitted.naive_bayes_shape == "counted"  # cross-validation rejects the generator shape
    choice = fitted.naive_bayes_choice
    assert choice is not None
    assert choice.log_loss_excess is not None
    assert choice.standard_error is not None
    assert choice.log_loss_excess > 2 * choice.standard_error
    assert choice.as_dict()["chosen"] == "counted"
    assert fitted.histories == []
    assert fitted.final_loss is None
    assert fitted.label_sets is not None
    sets = fitted.label_sets
    reference = MultinomialNB().fit(features, sets.index_of(labels))
    served, set_probabilities = predict_outputs(fitted.model, features)
    np.testing.assert_allclose(set_probabilities, reference.predict_proba(features), atol=1e-5)
    np.testing.assert_allclose(served, np.minimum(set_probabilities @ sets.matrix, 1), atol=1e-6)
    # Closed form: another seed gives the very same weights.
    again = fit_model(features, labels, NAIVE_BAYES, seed=7)
    for ours, theirs in zip(fitted.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_on_the_generators_data_naive_bayes_takes_its_shape_and_finds_its_distributions() -> None:
    dataset = synthetic_dataset(n_samples=1000)
    assert dataset.generator is not None
    fitted = fit_model(dataset.features, dataset.labels, NAIVE_BAYES, seed=0)
    assert fitted.naive_bayes_shape == "generator"
    choice = fitted.naive_bayes_choice
    assert choice is not None
    assert choice.log_loss_excess is not None
    assert choice.standard_error is not None
    assert choice.log_loss_excess <= 2 * choice.standard_error
    assert 0 < choice.rows <= dataset.n_samples
    assert fitted.label_sets is not None
    sets = fitted.label_sets
    log_feature, log_prior = naive_bayes_weights(
        dataset.features, sets.index_of(dataset.labels), sets, "generator"
    )
    np.testing.assert_allclose(np.exp(log_prior).sum(), 1.0)
    # The graph holds these weights: its set probabilities are their softmax.
    logits = dataset.features @ log_feature.T + log_prior
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    _, set_probabilities = predict_outputs(fitted.model, dataset.features)
    np.testing.assert_allclose(set_probabilities, expected, atol=1e-5)
    # And they are near the generator's own (1000 rows: a few hundredths).
    every_set, prior = label_set_prior(dataset.generator)
    seen = prior[every_set.index_of(sets.matrix)]
    true_prior = seen / seen.sum()
    np.testing.assert_allclose(np.exp(log_prior), true_prior, atol=0.03)
    true_words = set_word_distributions(dataset.generator, sets)
    np.testing.assert_allclose(np.exp(log_feature), true_words, atol=0.02)
    np.testing.assert_allclose(np.exp(log_feature[~sets.matrix.any(axis=1)]), 0.1)  # uniform


def test_naive_bayes_on_features_that_are_not_counts_is_fitted_by_gradient_instead() -> None:
    dataset = synthetic_dataset(n_samples=200)
    features = dataset.features - dataset.features.mean(axis=0)
    assert are_counts(dataset.features)
    assert not are_counts(features)
    fitted = fit_model(features, dataset.labels, replace(NAIVE_BAYES, epochs=1), seed=0)
    assert fitted.estimator == "gradient"
    assert fitted.naive_bayes_choice is None
    assert fitted.head == "label_sets"
    assert len(fitted.histories) == 1


def test_temperature_divides_the_label_set_logits_inside_the_graph() -> None:
    dataset = synthetic_dataset(n_samples=300)
    fitted = fit_model(dataset.features, dataset.labels, NAIVE_BAYES, seed=0)
    assert fitted.label_sets is not None
    _, before = predict_outputs(fitted.model, dataset.features)
    warmer = with_temperature(fitted, 1.7)
    assert warmer.temperature == pytest.approx(1.7)
    marginals, after = predict_outputs(warmer.model, dataset.features)
    np.testing.assert_allclose(after, scaled(before, 1.7), atol=1e-5)
    np.testing.assert_allclose(marginals, warmer.label_sets.marginals(after), atol=1e-6)
    assert (after.argmax(axis=1) == before.argmax(axis=1)).all()
    assert after.max(axis=1).mean() < before.max(axis=1).mean()  # softer
    # The original is untouched.
    np.testing.assert_array_equal(predict_outputs(fitted.model, dataset.features)[1], before)


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
