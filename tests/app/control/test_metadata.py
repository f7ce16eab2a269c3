"""``GET /metadata``: what the served model takes, gives, and how it was made."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.artifact import read_artifact
from app.inference import load_model


def test_metadata_describes_the_served_version(client: TestClient, trained_version: Path) -> None:
    stored = read_artifact(trained_version)
    body = client.get("/metadata").json()
    assert (body["name"], body["version"], body["versions"]) == ("multilabel", 1, [1])
    assert body["backend"] == "onnx"
    assert body["labels"] == stored.labels
    assert [f["name"] for f in body["features"]] == stored.features
    assert [tuple(f["train_range"]) for f in body["features"]] == [
        (r.min, r.max) for r in stored.feature_ranges
    ]
    assert body["thresholds"] == dict(zip(stored.labels, stored.thresholds, strict=True))
    assert body["data_fingerprint"] == stored.data.fingerprint
    assert len(body["data_fingerprint"]) == 64
    assert 0.0 <= body["evaluation"]["subset_accuracy"]["mean"] <= 1.0
    assert body["training"]["epochs"] == stored.training["epochs"]
    assert body["created_at"].startswith(stored.created_at.isoformat()[:19])
    assert load_model(trained_version).version == 1
