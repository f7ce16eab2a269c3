"""Publishing is all or nothing: a failure anywhere leaves the model repository as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.artifact import list_versions
from tests.training.test_csv_data import tree_digest
from training.data import synthetic_dataset
from training.export import export_artifact
from training.model import NetworkOptions, fit_model


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
