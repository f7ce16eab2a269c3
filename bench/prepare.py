"""What a run needs before any server starts: wrk, the served model, rows to send."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from app.artifact import KERAS_FILE, ONNX_FILE, list_versions, read_artifact, version_path
from bench.workloads import MODEL_NAME

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
# The reference experiment's data; rows after the first 1000 (the training set) are fresh
# draws from the same distribution, as a client would send them.
DATA_PARAMETERS = {"n_features": 10, "n_classes": 3, "n_labels": 2, "random_state": 1}
TRAINING_ROWS = 1000


def ensure_wrk() -> str:
    """The wrk binary; installed from the Debian packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing it with apt-get", flush=True)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("wrk is not installed; install it (apt-get install wrk) and rerun")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get did not install wrk")
    return found


@dataclass(frozen=True)
class ServedModel:
    """The model version every server serves: our service reads its directory, the peers
    its ONNX file and thresholds, the tutorial approach its Keras file."""

    path: Path
    labels: tuple[str, ...]
    thresholds: tuple[float, ...]

    @property
    def repository(self) -> Path:
        return self.path.parent.parent

    @property
    def onnx(self) -> Path:
        return self.path / ONNX_FILE

    @property
    def keras(self) -> Path:
        return self.path / KERAS_FILE


def ensure_model(repository: Path) -> Path:
    """The newest version of the model in ``repository``; trains the default one if none."""
    if not list_versions(repository, MODEL_NAME):
        print(f"training the default model (no cross-validation) into {repository}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "training.train", "--no-cv", "--output", str(repository)],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return version_path(repository, MODEL_NAME, list_versions(repository, MODEL_NAME)[-1])


def served_model(path: Path) -> ServedModel:
    """The version at ``path``, its files verified against their hashes."""
    metadata = read_artifact(path)
    return ServedModel(path, tuple(metadata.labels), tuple(metadata.thresholds))


def fresh_rows(count: int) -> list[list[int]]:
    """Rows drawn like the training data (make_multilabel_classification counts), unseen in
    training; kept in bench/.work. Drawn by training.generator, bit for bit scikit-learn's rows
    (scikit-learn's own loop takes over a minute for these 3000 rows)."""
    cache = WORK / f"rows-{count}.json"
    if cache.exists():
        cached: list[list[int]] = orjson.loads(cache.read_bytes())
        return cached
    from training.generator import make_multilabel_classification

    features, _, _, _ = make_multilabel_classification(
        n_samples=TRAINING_ROWS + count, **DATA_PARAMETERS
    )
    rows: list[list[int]] = features[TRAINING_ROWS:].astype(int).tolist()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(orjson.dumps(rows))
    return rows
