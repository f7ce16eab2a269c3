"""Publishing is all or nothing: a failure anywhere leaves the model repository as it was."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from app.artifact import ONNX_FILE, list_versions, read_artifact
from tests.training.test_csv_data import tree_digest
from training.data import synthetic_dataset
from training.export import export_artifact
from training.model import fit_model
from training.options import NetworkOptions


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


@pytest.mark.parametrize("ensemble", [1, 2])
def test_a_label_set_model_exports_one_input_and_one_output_with_parity(
    tmp_path: Path, ensemble: int
) -> None:
    dataset = synthetic_dataset(n_samples=100)
    options = NetworkOptions(head="label_sets", hidden_units=0, normalize=True, ensemble=ensemble)
    fitted = fit_model(dataset.features, dataset.labels, replace(options, epochs=2), seed=0)
    version = export_artifact(
        fitted.model,
        dataset,
        repository=tmp_path,
        name="multilabel",
        thresholds=[0.5, 0.5, 0.5],
        training={},
        evaluation=None,
    )
    session = ort.InferenceSession(str(version / ONNX_FILE), providers=["CPUExecutionProvider"])
    [model_input] = session.get_inputs()
    [model_output] = session.get_outputs()
    assert (model_input.type, model_input.shape[1]) == ("tensor(float)", 10)
    assert (model_output.type, model_output.shape[1]) == ("tensor(float)", 3)
    metadata = read_artifact(version)
    inputs = np.array(metadata.parity.inputs, dtype=np.float32)
    (outputs,) = session.run(None, {model_input.name: inputs})
    np.testing.assert_allclose(outputs, metadata.parity.outputs, atol=metadata.parity.tolerance)
    assert outputs.min() >= 0.0
    assert outputs.max() <= 1.0
