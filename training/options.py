"""The network's options and presets: plain data, importable without TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from training.label_sets import MAX_LABEL_SETS

PresetName = Literal["default", "reference"]
Head = Literal["sigmoid", "label_sets"]
Estimator = Literal["gradient", "naive_bayes"]


@dataclass(frozen=True)
class NetworkOptions:
    """How the network is shaped and fitted; the field defaults are the reference experiment."""

    epochs: int = 100
    batch_size: int = 32
    hidden_units: int = 20
    """Width of the one hidden (relu) layer; 0 for none (a linear model of the inputs)."""
    learning_rate: float = 0.001
    head: Head = "sigmoid"
    """``sigmoid``: one independent output per label, binary cross-entropy. ``label_sets``: a
    softmax over the label sets seen in the fit data, categorical cross-entropy; per-label
    probabilities are its marginals (a fixed matrix in the graph). Falls back to ``sigmoid``
    above ``max_label_sets`` sets."""
    max_label_sets: int = MAX_LABEL_SETS
    normalize: bool = False
    """Standardize inputs inside the graph with the mean and std of the data it is fitted on."""
    early_stopping: int = 0
    """Patience in epochs on a held-out validation part of the fit data; 0 turns it off."""
    validation_fraction: float = 0.1
    """Share of the fit data held out for early stopping (used only when it is on)."""
    ensemble: int = 1
    """Networks trained from different seeds whose probabilities are averaged."""
    estimator: Estimator = "gradient"
    """How the weights are found. ``gradient``: Adam on the loss, as above. ``naive_bayes``
    (label-set head, no hidden layer): in closed form, as a multinomial naive Bayes over the
    label sets: each set's prior and feature distribution fitted in the fit data, so that
    P(set | x) is a softmax of x · log(feature distribution) + log(prior), the same graph on the
    raw counts. They are fitted in the shape of the reference generator (a truncated Poisson
    set size, labels drawn from a label prior, a set's words its labels' mixed) unless
    cross-validation on the fit rows finds that counting each set on its own (add-one
    smoothed, scikit-learn's MultinomialNB) is better beyond noise: ``training.naive_bayes``'s
    ``NAIVE_BAYES_SHAPES``. It models count features (non-negative integers); on
    any other data the gradient fit (with the options above) is used instead."""

    def __post_init__(self) -> None:
        if self.estimator == "naive_bayes" and (
            self.head != "label_sets" or self.hidden_units or self.ensemble != 1
        ):
            raise ValueError(
                "--estimator naive_bayes fits a label-set head without a hidden layer, once: "
                "it needs --head label_sets, --hidden-units 0 and --ensemble 1 (or use "
                "--estimator gradient)"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[PresetName, NetworkOptions] = {
    "reference": NetworkOptions(),
    # Chosen on the selection folds, not on the folds that report it: training/selection.json.
    # Naive Bayes on count features; the gradient options are what other data is fitted with.
    "default": NetworkOptions(
        normalize=True,
        head="label_sets",
        hidden_units=0,
        learning_rate=0.01,
        estimator="naive_bayes",
    ),
}


def preset_options(preset: PresetName, **overrides: Any) -> NetworkOptions:
    """A preset's options with the given fields replaced (``None`` values are ignored).

    Asking for what only gradient descent fits (a hidden layer, sigmoid heads, an ensemble)
    without naming an estimator means the gradient one, whatever the preset's.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    options = PRESETS[preset]
    if "estimator" not in given and options.estimator == "naive_bayes":
        wanted = {**options.as_dict(), **given}
        if wanted["head"] != "label_sets" or wanted["hidden_units"] or wanted["ensemble"] != 1:
            given["estimator"] = "gradient"
    return replace(options, **given)
