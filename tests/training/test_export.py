"""Publishing is all or nothing: a failure anywhere leaves the model repository as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from app.artifact import METADATA_FILE, ONNX_FILE, Metadata, list_versions, read_artifact
from tests.training.test_csv_data import tree_digest
from training.data import Dataset, synthetic_dataset
from training.export import export_artifact
from training.model import FittedNetwork, fit_model, predict_outputs, with_temperature
from training.options import NetworkOptions, preset_options
from training.temperature import scaled


def test_a_failure_while_writing_the_report_publishes_nothing(repository: Path) -> None:
    dataset = synthetic_dataset(n_samples=60)
    fitted = fit_model(dataset.features, dataset.labels, NetworkOptions(epochs=1), seed=0)
    before = tree_digest(repository)

    def failing_report(directory: Path) -> None:
        (directory / "model_card.md").write_text("half a card")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        export_artifact(
            fitted.model,
            dataset,
            repository=repository,
            name="multilabel",
            thresholds=[0.5, 0.5, 0.5],
            training={},
            evaluation=None,
            write_extras=failing_report,
        )
    assert tree_digest(repository) == before
    assert list_versions(repository, "multilabel") == [1]


def export(fitted: FittedNetwork, dataset: Dataset, repository: Path) -> Path:
    """Publish ``fitted`` as the next version in ``repository``, as training does."""
    sets = fitted.label_sets
    return export_artifact(
        fitted.model,
        dataset,
        repository=repository,
        name="multilabel",
        thresholds=[0.5] * dataset.n_labels,
        training={},
        evaluation=None,
        label_sets=None if sets is None else sets.describe(dataset.label_names),
    )


@pytest.mark.parametrize(
    "options",
    [
        NetworkOptions(head="label_sets", hidden_units=0, normalize=True, epochs=2),
        NetworkOptions(head="label_sets", hidden_units=0, normalize=True, epochs=2, ensemble=2),
        NetworkOptions(head="label_sets", hidden_units=0, estimator="naive_bayes"),
    ],
    ids=["network", "ensemble", "naive-bayes"],
)
def test_a_label_set_model_exports_the_labels_first_and_the_label_sets_second_with_parity(
    tmp_path: Path, options: NetworkOptions
) -> None:
    dataset = synthetic_dataset(n_samples=100)
    fitted = fit_model(dataset.features, dataset.labels, options, seed=0)
    assert fitted.label_sets is not None
    version = export(fitted, dataset, tmp_path)
    session = ort.InferenceSession(str(version / ONNX_FILE), providers=["CPUExecutionProvider"])
    [model_input] = session.get_inputs()
    labels_output, sets_output = session.get_outputs()
    assert (model_input.type, model_input.shape[1]) == ("tensor(float)", 10)
    assert (labels_output.type, labels_output.shape[1]) == ("tensor(float)", 3)
    assert (sets_output.type, sets_output.shape[1]) == ("tensor(float)", fitted.label_sets.count)
    metadata = read_artifact(version)
    distribution = metadata.label_set_distribution
    assert distribution is not None
    assert distribution.source == "label_set_head"
    assert (distribution.output, distribution.output_index) == (sets_output.name, 1)
    assert metadata.label_sets == fitted.label_sets.describe(dataset.label_names)
    inputs = np.array(metadata.parity.inputs, dtype=np.float32)
    outputs, set_outputs = session.run(None, {model_input.name: inputs})
    np.testing.assert_allclose(outputs, metadata.parity.outputs, atol=metadata.parity.tolerance)
    assert metadata.parity.set_outputs is not None
    np.testing.assert_allclose(
        set_outputs, metadata.parity.set_outputs, atol=metadata.parity.tolerance
    )
    np.testing.assert_allclose(set_outputs.sum(axis=1), 1.0, atol=1e-5)
    assert outputs.min() >= 0.0
    assert outputs.max() <= 1.0


def test_a_sigmoid_model_exports_one_output_and_says_sets_are_products_of_marginals(
    tmp_path: Path,
) -> None:
    dataset = synthetic_dataset(n_samples=60)
    fitted = fit_model(dataset.features, dataset.labels, NetworkOptions(epochs=1), seed=0)
    version = export(fitted, dataset, tmp_path)
    session = ort.InferenceSession(str(version / ONNX_FILE), providers=["CPUExecutionProvider"])
    assert len(session.get_outputs()) == 1
    metadata = read_artifact(version)
    assert metadata.label_set_distribution is not None
    assert metadata.label_set_distribution.source == "product_of_marginals"
    assert metadata.label_set_distribution.output is None
    assert metadata.label_sets is None
    assert metadata.parity.set_outputs is None


NEW_FIELDS = ("calibration", "expected_accuracy", "label_set_distribution")


def test_a_version_written_before_the_label_set_fields_still_reads(tmp_path: Path) -> None:
    dataset = synthetic_dataset(n_samples=100)
    fitted = fit_model(dataset.features, dataset.labels, preset_options("default"), seed=0)
    version = export(fitted, dataset, tmp_path)
    document = json.loads((version / METADATA_FILE).read_text())
    for name in NEW_FIELDS:
        del document[name]
    del document["parity"]["set_outputs"]
    older = Metadata.model_validate(document)
    assert older.label_set_distribution is None
    assert older.calibration is None
    assert older.parity.set_outputs is None
    assert older.label_sets == read_artifact(version).label_sets


def test_a_served_temperature_is_inside_the_exported_graph(tmp_path: Path) -> None:
    dataset = synthetic_dataset(n_samples=100)
    fitted = fit_model(dataset.features, dataset.labels, preset_options("default"), seed=0)
    version = export(with_temperature(fitted, 1.5), dataset, tmp_path)
    session = ort.InferenceSession(str(version / ONNX_FILE), providers=["CPUExecutionProvider"])
    rows = dataset.features.astype(np.float32)
    marginals, sets = session.run(None, {session.get_inputs()[0].name: rows})
    _, unscaled = predict_outputs(fitted.model, rows)
    np.testing.assert_allclose(sets, scaled(unscaled, 1.5), atol=1e-5)
    assert fitted.label_sets is not None
    np.testing.assert_allclose(marginals, fitted.label_sets.marginals(sets), atol=1e-5)
