"""Turn a fitted network into a published artifact version (Keras + ONNX + metadata)."""

from __future__ import annotations

import contextlib
import io
import platform
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from app.artifact import (
    KERAS_FILE,
    ONNX_FILE,
    ArtifactError,
    BayesLimit,
    CrossValidation,
    DataSummary,
    ExpectedAccuracy,
    FeatureRange,
    LabelSetDistribution,
    Metadata,
    PairedComparison,
    ParityCheck,
    PostHocCalibration,
    Selection,
    ThresholdTuning,
    publish,
    staging_directory,
)
from training.data import Dataset
from training.model import predict_outputs
from training.runtime import keras

PARITY_TOLERANCE = 1e-5
_RECORDED_LIBRARIES = ("keras", "tensorflow-cpu", "numpy", "scikit-learn", "tf2onnx", "onnx")


def parity_inputs(features: NDArray[np.float64]) -> NDArray[np.float32]:
    """A few inputs that exercise the whole training range: some rows, the extremes, the mean."""
    extremes = np.stack([features.min(axis=0), features.max(axis=0), features.mean(axis=0)])
    return np.vstack([features[:5], extremes]).astype(np.float32)


def export_artifact(
    model: keras.Model,
    dataset: Dataset,
    *,
    repository: Path,
    name: str,
    thresholds: list[float],
    training: dict[str, Any],
    evaluation: CrossValidation | None,
    threshold_tuning: ThresholdTuning | None = None,
    baselines: dict[str, CrossValidation] | None = None,
    label_sets: list[list[str]] | None = None,
    limit: BayesLimit | None = None,
    comparisons: dict[str, PairedComparison] | None = None,
    selection: Selection | None = None,
    calibration: PostHocCalibration | None = None,
    expected_accuracy: ExpectedAccuracy | None = None,
    write_extras: Callable[[Path], object] = lambda directory: None,
    before_rename: Callable[[Path], None] | None = None,
) -> Path:
    """Write the model, its ONNX export and metadata; publish atomically as the next version.

    ``write_extras`` adds files (the model card, plots) to the version before it is hashed and
    published; ``before_rename`` runs once the metadata is final (e.g. to sign the version).
    If either fails, nothing is published.
    """
    with staging_directory(repository, name) as staging:
        # Called before the export, which refuses a model never called (an assembled ensemble).
        inputs = parity_inputs(dataset.features)
        outputs = predict_outputs(model, inputs)
        model.save(staging / KERAS_FILE)
        # The exporter prints its own banner, and Keras's tf2onnx shim warns about NumPy's
        # future np.object: neither concerns whoever runs the training.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(staging / ONNX_FILE), format="onnx")
        output_names = _check_onnx_parity(staging / ONNX_FILE, inputs, outputs)
        write_extras(staging)
        metadata = Metadata(
            name=name,
            created_at=datetime.now(UTC),
            features=dataset.feature_names,
            labels=dataset.label_names,
            thresholds=thresholds,
            feature_ranges=[
                FeatureRange(min=float(low), max=float(high))
                for low, high in zip(
                    dataset.features.min(axis=0), dataset.features.max(axis=0), strict=True
                )
            ],
            data=DataSummary(
                source=dataset.source,
                n_samples=dataset.n_samples,
                fingerprint=dataset.fingerprint(),
                label_frequencies=dataset.label_frequencies(),
                parameters=dataset.parameters,
            ),
            training=training,
            evaluation=evaluation,
            threshold_tuning=threshold_tuning,
            baselines=baselines,
            label_sets=label_sets,
            limit=limit,
            comparisons=comparisons,
            selection=selection,
            calibration=calibration,
            expected_accuracy=expected_accuracy,
            label_set_distribution=_set_distribution(label_sets, output_names),
            libraries=library_versions(),
            parity=ParityCheck(
                inputs=inputs.tolist(),
                outputs=outputs[0].tolist(),
                tolerance=PARITY_TOLERANCE,
                set_outputs=outputs[1].tolist() if len(outputs) > 1 else None,
            ),
        )
        return publish(staging, metadata, before_rename=before_rename)


def _check_onnx_parity(
    onnx_path: Path, inputs: NDArray[np.float32], expected: list[NDArray[np.float32]]
) -> list[str]:
    """Refuse to publish an ONNX export that does not reproduce every output of the Keras
    model, in order; return the ONNX names of the outputs."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    actual = session.run(names, {session.get_inputs()[0].name: inputs})
    if len(actual) != len(expected):
        raise ArtifactError(f"ONNX export has {len(actual)} outputs, Keras {len(expected)}")
    for name, ours, theirs in zip(names, actual, expected, strict=True):
        if ours.shape != theirs.shape:
            raise ArtifactError(f"ONNX output {name} has shape {ours.shape}, not {theirs.shape}")
        difference = float(np.max(np.abs(ours - theirs)))
        if difference > PARITY_TOLERANCE:
            raise ArtifactError(f"ONNX output {name} differs from Keras by {difference:.2e}")
    return names


def _set_distribution(
    label_sets: list[list[str]] | None, output_names: list[str]
) -> LabelSetDistribution:
    """The label-set head's output (the second), or the product of the marginals."""
    if len(output_names) < 2:
        return LabelSetDistribution(source="product_of_marginals")
    if label_sets is None:
        raise ArtifactError("the model has a label-set output, but no label sets were given")
    return LabelSetDistribution(source="label_set_head", output=output_names[1], output_index=1)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _RECORDED_LIBRARIES:
        with contextlib.suppress(package_metadata.PackageNotFoundError):
            versions[package] = package_metadata.version(package)
    return versions
