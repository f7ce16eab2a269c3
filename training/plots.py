"""The model card's figures, drawn headless (matplotlib's Agg canvas, no pyplot state)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray
from sklearn.metrics import (
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_curve,
)

from training.calibration import Reliability

# The reference experiment's published result (DEVELOPERS.md): 30 splits of its own data.
REFERENCE_SPREAD = {"mean": 0.822, "std": 0.029, "min": 0.77, "max": 0.88}
_DPI = 110
LegendPlace = Literal["upper left", "upper right", "lower left", "lower right"]


def _figure(width: float = 7.5, height: float = 5.0) -> Figure:
    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=_DPI, metadata={"Software": None})


@contextlib.contextmanager
def _single_plot(path: Path, *, legend: LegendPlace, **settings: Any) -> Iterator[Axes]:
    """Axes to draw on; then titles, labels and limits (``settings``), the legend, the file."""
    figure = _figure()
    axes = figure.subplots()
    yield axes
    axes.set(**settings)
    axes.legend(loc=legend)
    _save(figure, path)


def _diagonal(axes: Axes, label: str) -> None:
    axes.plot([0, 1], [0, 1], color="tab:gray", linestyle=":", label=label)


def subset_accuracy_plot(
    path: Path,
    ours: Sequence[float],
    *,
    models: Mapping[str, Sequence[float]],
    limit: Sequence[float] | None,
    show_reference: bool,
) -> None:
    """Our per-split subset accuracy (left) and every model's spread on the same splits
    (right), each against the data's limit where it is known."""
    figure = _figure(12.0, 5.0)
    left, right = figure.subplots(1, 2, width_ratios=[3, 2])
    splits = np.arange(1, len(ours) + 1)
    if show_reference:
        ref = REFERENCE_SPREAD
        left.axhspan(
            ref["min"],
            ref["max"],
            color="tab:gray",
            alpha=0.15,
            label=f"reference range {ref['min']:.2f} to {ref['max']:.2f}",
        )
        left.axhspan(
            ref["mean"] - ref["std"],
            ref["mean"] + ref["std"],
            color="tab:gray",
            alpha=0.3,
            label=f"reference mean ± std {ref['mean']:.3f} ± {ref['std']:.3f}",
        )
        left.axhline(ref["mean"], color="tab:gray", linestyle="--")
    if limit is not None:
        left.plot(splits, limit, "^:", color="tab:red", label="limit (Bayes rule), per split")
        left.axhline(
            float(np.mean(limit)), color="tab:red", label=f"limit, mean {np.mean(limit):.3f}"
        )
    left.plot(splits, ours, "o-", color="tab:blue", label="ours, per split")
    left.axhline(float(np.mean(ours)), color="tab:blue", label=f"ours, mean {np.mean(ours):.3f}")
    left.set(
        title="Subset accuracy per cross-validation split",
        xlabel="split",
        ylabel="subset accuracy (threshold 0.5)",
    )
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    # Below the axes: inside, the legend would hide some splits' points.
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, fontsize="small")
    names = list(models)
    right.boxplot([list(models[name]) for name in names], orientation="horizontal", showmeans=True)
    right.set_yticks(range(1, len(names) + 1), names, fontsize="small")
    right.invert_yaxis()
    right.set(title="All models on the same splits", xlabel="subset accuracy (threshold 0.5)")
    if limit is not None:
        right.axvline(
            float(np.mean(limit)), color="tab:red", label=f"limit, mean {np.mean(limit):.3f}"
        )
    if show_reference:
        right.axvline(
            REFERENCE_SPREAD["mean"],
            color="tab:gray",
            linestyle="--",
            label="reference published mean",
        )
    if limit is not None or show_reference:
        right.legend(loc="lower left", fontsize="small")
    _save(figure, path)


def roc_plot(
    path: Path, truth: NDArray[np.int64], scores: NDArray[np.floating], labels: Sequence[str]
) -> None:
    with _single_plot(
        path,
        legend="lower right",
        title="ROC curve per label (out-of-fold probabilities)",
        xlabel="false positive rate",
        ylabel="true positive rate",
        aspect="equal",
    ) as axes:
        for j, label in enumerate(labels):
            false_positive, true_positive, _ = roc_curve(truth[:, j], scores[:, j])
            area = auc(false_positive, true_positive)
            axes.plot(false_positive, true_positive, label=f"{label} (AUC {area:.3f})")
        _diagonal(axes, "chance")


def precision_recall_plot(
    path: Path,
    truth: NDArray[np.int64],
    scores: NDArray[np.floating],
    labels: Sequence[str],
    thresholds: Sequence[float],
) -> None:
    """Curves per label, each with a dot where the served threshold operates."""
    with _single_plot(
        path,
        legend="lower left",
        title="Precision-recall curve per label (out-of-fold probabilities)",
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1.02),
        ylim=(0, 1.02),
    ) as axes:
        for j, label in enumerate(labels):
            precision, recall, _ = precision_recall_curve(truth[:, j], scores[:, j])
            ap = average_precision_score(truth[:, j], scores[:, j])
            (line,) = axes.plot(recall, precision, label=f"{label} (AP {ap:.3f})")
            on = scores[:, j] >= thresholds[j]
            hits = int((on & (truth[:, j] == 1)).sum())
            operating_point = (hits / max(int(truth[:, j].sum()), 1), hits / max(int(on.sum()), 1))
            axes.plot(*operating_point, "o", color=line.get_color(), markeredgecolor="black")
        legend_entry = "operating point at the served threshold"
        axes.plot([], [], "o", color="white", markeredgecolor="black", label=legend_entry)


MAX_RELIABILITY_PANELS = 8
"""Panels of the reliability plot: the most probable label set and the first labels."""


def reliability_plot(path: Path, series: Mapping[str, Mapping[str, Reliability]]) -> None:
    """One panel per label (and one for the most probable label set): for each series, the
    observed frequency against the mean probability in each of 10 bins; the legend gives the
    ECE."""
    panels = list(next(iter(series.values())))
    shown = [panels[-1], *panels[:-1]][:MAX_RELIABILITY_PANELS]
    columns = min(len(shown), 2)
    rows = math.ceil(len(shown) / columns)
    figure = _figure(width=5.2 * columns, height=4.6 * rows)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes, panel in zip(grid.flat, shown, strict=False):
        for name, curves in series.items():
            curve = curves[panel]
            axes.plot(
                curve.predicted,
                curve.observed,
                "o-",
                markersize=4,
                label=f"{name} (ECE {curve.expected_calibration_error:.3f})",
            )
        _diagonal(axes, "perfectly calibrated")
        axes.set(
            title=panel,
            xlabel="mean predicted probability (10 bins)",
            ylabel="observed frequency",
            xlim=(0, 1),
            ylim=(0, 1),
            aspect="equal",
        )
        axes.legend(loc="upper left", fontsize="x-small")
    for axes in list(grid.flat)[len(shown) :]:
        axes.set_visible(False)
    _save(figure, path)


def loss_plot(path: Path, histories: Sequence[Mapping[str, Sequence[float]]], *, loss: str) -> None:
    """Per-epoch loss of the final fit, one line per network (and its validation loss)."""
    with _single_plot(
        path,
        legend="upper right",
        title="Final fit on all the data: loss per epoch",
        xlabel="epoch",
        ylabel=loss,
    ) as axes:
        for index, history in enumerate(histories):
            name = "network" if len(histories) == 1 else f"network {index + 1}"
            epochs = np.arange(1, len(history["loss"]) + 1)
            (line,) = axes.plot(epochs, history["loss"], label=f"{name}: training loss")
            if "val_loss" in history:
                validation = f"{name}: validation loss"
                axes.plot(
                    epochs, history["val_loss"], "--", color=line.get_color(), label=validation
                )
