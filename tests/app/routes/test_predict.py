"""The native ``POST /predict`` route, on the real app and a really trained model."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import REFERENCE_INPUTS


def test_predict_returns_probabilities_and_consistent_label_sets(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": REFERENCE_INPUTS})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "multilabel", "version": 1}
    assert len(body["predictions"]) == len(REFERENCE_INPUTS)
    for row in body["predictions"]:
        probabilities = row["probabilities"]
        assert list(probabilities) == ["label_0", "label_1", "label_2"]
        assert all(0.0 <= p <= 1.0 for p in probabilities.values())
        on = [label for label, p in probabilities.items() if p >= body["thresholds"][label]]
        assert row["labels"] == on
        assert row["vector"] == [int(label in on) for label in probabilities]
