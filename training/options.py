"""The network's options and presets: plain data, importable without TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from training.label_sets import MAX_LABEL_SETS

PresetName = Literal["default", "reference"]
Head = Literal["sigmoid", "label_sets"]


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[PresetName, NetworkOptions] = {
    "reference": NetworkOptions(),
    # Chosen on the selection folds, not on the folds that report it: training/selection.json.
    "default": NetworkOptions(
        normalize=True, head="label_sets", hidden_units=0, learning_rate=0.01
    ),
}


def preset_options(preset: PresetName, **overrides: Any) -> NetworkOptions:
    """A preset's options with the given fields replaced (``None`` values are ignored)."""
    return replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
