"""The tutorial approach, as most blog posts serve a Keras model: a pydantic request model of
nested float lists, ``model.predict`` per request in a ``def`` route, ``.tolist()`` answers.

    BENCH_KERAS_MODEL=.../model.keras uvicorn bench.tutorial:app

It serves the same artifact as our service (its ``model.keras``) and is here only to be
measured against; nothing in ``app/`` uses it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

THRESHOLD = 0.5


class PredictRequest(BaseModel):
    instances: list[list[float]]


app = FastAPI(title="tutorial approach")
model = keras.saving.load_model(os.environ["BENCH_KERAS_MODEL"], compile=False)
# The label names, as a tutorial would hard-code them: from the version's metadata.
LABELS = json.loads(Path(os.environ["BENCH_KERAS_MODEL"]).with_name("metadata.json").read_text())[
    "labels"
]


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
def predict(request: PredictRequest) -> dict[str, Any]:
    outputs = model.predict(np.array(request.instances), verbose=0)
    # A label-set model answers its marginals first, then the probability of each label set.
    probabilities = outputs[0] if isinstance(outputs, list) else outputs
    return {
        "predictions": [
            {
                "probabilities": dict(zip(LABELS, row, strict=True)),
                "labels": [label for label, p in zip(LABELS, row, strict=True) if p >= THRESHOLD],
            }
            for row in probabilities.tolist()
        ]
    }
