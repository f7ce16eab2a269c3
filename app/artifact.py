"""The model artifact contract, shared by training (writes) and serving (reads).

A model repository follows TensorFlow Serving's layout::

    <repository>/<name>/<version>/      version: a positive integer
        model.keras                     the trained Keras model (reference, optional backend)
        model.onnx                      the same network exported to ONNX (default backend)
        metadata.json                   Metadata below, written last
        ...                             anything else training adds (model card, plots)

Writing is atomic: files are built in a hidden staging directory next to the versions and the
whole directory is renamed into place, so a reader never sees a half-written version.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FORMAT_VERSION = 1
KERAS_FILE = "model.keras"
ONNX_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
REQUIRED_FILES = (KERAS_FILE, ONNX_FILE)

# Model names become directory names: keep them to a safe, portable alphabet.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_VERSION_DIR = re.compile(r"^[1-9][0-9]{0,17}$")
_STAGING_PREFIX = ".staging-"
# A staging directory this old belongs to a run that was killed (no run takes a day to write).
STALE_STAGING_SECONDS = 24 * 3600
_HASH_CHUNK = 1 << 20


class ArtifactError(Exception):
    """An artifact is missing, incomplete, corrupt or inconsistent; the message says which."""


class FeatureRange(BaseModel):
    """The closed interval of one feature's values seen in the training data."""

    min: float
    max: float


class ParityCheck(BaseModel):
    """Reference inputs with the Keras model's outputs; every backend must reproduce them."""

    inputs: list[list[float]]
    outputs: list[list[float]]
    tolerance: float = 1e-5
    set_outputs: list[list[float]] | None = Field(
        default=None,
        description="The label-set head's output on the same inputs (label_set_distribution).",
    )


class DataSummary(BaseModel):
    """Where the training data came from and a fingerprint that identifies it exactly."""

    source: str
    n_samples: int
    fingerprint: str = Field(description="SHA-256 of the float64 feature and label matrices.")
    label_frequencies: list[float] = Field(description="Fraction of samples with each label on.")
    parameters: dict[str, Any] = Field(default_factory=dict)


class MetricSummary(BaseModel):
    mean: float
    std: float
    min: float
    max: float


class CrossValidation(BaseModel):
    """Repeated k-fold results: one metrics mapping per split, and their summary."""

    n_splits: int
    n_repeats: int
    random_state: int
    splits: list[dict[str, float]]
    summary: dict[str, MetricSummary]


class ThresholdTuning(BaseModel):
    """How ``Metadata.thresholds`` were chosen from the out-of-fold probabilities."""

    objective: str = Field(description="What was maximized: 'f1' (per label) or 'subset_accuracy'.")
    tuned: list[float] = Field(description="Per-label thresholds tuned on all out-of-fold data.")
    applied: bool = Field(
        description="Whether ``thresholds`` are the tuned ones; false when 0.5 scored as well."
    )
    evaluation: CrossValidation = Field(
        description="Each split scored at thresholds tuned on the other folds of its repeat."
    )


class PairedComparison(BaseModel):
    """The served model against another on the same splits: per-split differences of subset
    accuracy (served minus other), as a paired comparison."""

    mean: float
    std: float
    won: int = Field(description="Splits where the served model scored higher.")
    lost: int
    tied: int
    standard_error: float = Field(
        description="Nadeau and Bengio's corrected standard error of the mean difference, which "
        "allows for the overlap of the training parts of repeated k-fold splits."
    )
    verdict: str = Field(
        description="'better', 'worse' or 'within noise': whether the mean difference is more "
        "than twice its corrected standard error, and in which direction."
    )


class BayesLimit(BaseModel):
    """The best any model can do on this data: the Bayes-optimal rule of its generator."""

    known: bool
    description: str
    evaluation: CrossValidation | None = Field(
        default=None,
        description="The rule on the same splits: subset_accuracy thresholds its marginals at "
        "0.5, joint_subset_accuracy takes the most probable label set.",
    )


class ProbabilityScores(BaseModel):
    """How well probabilities read as frequencies, on some rows (lower is better for all)."""

    brier_loss: float = Field(description="Mean squared error of the probabilities.")
    log_loss: float = Field(description="Mean negative log probability of what happened.")
    ece: float = Field(
        description="Expected calibration error: 10 equal-width bins of the probability; the "
        "mean gap between a bin's mean probability and its observed frequency, weighted by "
        "the bin's share of rows."
    )


class SetProbabilityScores(ProbabilityScores):
    """A distribution over whole label sets, scored: log loss of each row's true set, Brier
    summed over every set, and the top-label ECE of the most probable set."""

    rows_scored: int
    rows_outside: int = Field(
        default=0,
        description="Rows whose true label set the model gives probability 0 (a set absent "
        "from its training data): left out of these scores, and of the limit's beside them.",
    )


class CalibrationScores(BaseModel):
    """Per-label and label-set probability scores of one model on one set of rows."""

    rows: str = Field(description="Which rows, in words (e.g. out-of-fold, fresh draws).")
    per_label: dict[str, ProbabilityScores]
    label_sets: SetProbabilityScores | None = None
    label_sets_source: Literal["label_set_head", "product_of_marginals"] | None = Field(
        default=None,
        description="Where the set probabilities come from: the model's label-set head, or the "
        "product of its marginals (labels taken as independent).",
    )


class PostHocCalibration(BaseModel):
    """The calibration step tried after fitting, how it was judged, and whether it is served."""

    method: str = Field(description="'temperature' (of the label-set logits) or 'none'.")
    applied: bool = Field(description="Whether the served graph includes it.")
    temperature: float = Field(
        default=1.0,
        description="The served label-set logits are divided by it (folded into the last "
        "layer's weights); 1 when not applied.",
    )
    reason: str = Field(description="Why it was applied or not, in words.")
    log_loss_change: PairedComparison | None = Field(
        default=None,
        description="Per split, the label-set log loss without the step minus with it "
        "(positive: the step lowered it), the step fitted on the other folds of the repeat.",
    )
    subset_accuracy_change: PairedComparison | None = Field(
        default=None,
        description="Per split, subset accuracy with the step minus without it (threshold 0.5).",
    )
    before: CalibrationScores | None = None
    after: CalibrationScores | None = None


class DecisionScore(BaseModel):
    """One decision's subset accuracy on new rows, beside the Bayes rule's same decision."""

    decision: Literal["labels", "set"] = Field(
        description="'labels': each label's probability against its threshold; 'set': the most "
        "probable label set."
    )
    subset_accuracy: float
    limit: float = Field(description="The Bayes rule's subset accuracy, same decision, same rows.")
    ratio: float = Field(description="subset_accuracy / limit.")
    ratio_standard_error: float = Field(
        description="Standard error of the ratio over the rows (delta method, paired rows)."
    )


class FreshDraws(BaseModel):
    """Synthetic data only: the served model scored on new rows of the same generator."""

    generator_call: str
    first_row: int = Field(description="Rows before it are the training data (checked equal).")
    n_rows: int
    decisions: list[DecisionScore]
    baselines: dict[str, list[DecisionScore]] | None = Field(
        default=None, description="Each baseline fitted on the same training rows, same scoring."
    )
    model: CalibrationScores
    limit: CalibrationScores = Field(description="The exact posterior on the same rows.")


class ExpectedAccuracy(BaseModel):
    """What to expect of the served model on new data, and where the estimate comes from."""

    source: Literal["fresh_draws", "cross_validation"]
    summary: str = Field(description="The estimate and what it is an estimate of, in words.")
    fresh_draws: FreshDraws | None = None


class LabelSetDistribution(BaseModel):
    """Where serving finds the probability of each whole label set (the ``set`` decision)."""

    source: Literal["label_set_head", "product_of_marginals"] = Field(
        description="'label_set_head': the ONNX graph's output ``output`` holds P(set) for each "
        "of Metadata.label_sets, in that order; 'product_of_marginals': the model has no set "
        "head, and a set's probability is the product over labels of p or 1 - p."
    )
    output: str | None = Field(default=None, description="ONNX output name (label-set head).")
    output_index: int | None = Field(default=None, description="Its position among the outputs.")


class CandidateScore(BaseModel):
    """One set of network options, cross-validated on the selection folds."""

    options: dict[str, Any]
    subset_accuracy: MetricSummary
    joint_subset_accuracy: MetricSummary | None = None


class Selection(BaseModel):
    """How a preset's options were chosen: on selection folds, not on the folds reported."""

    n_splits: int
    n_repeats: int
    random_state: int = Field(description="Seed of the selection folds' RepeatedKFold.")
    data_fingerprint: str
    command: str
    rule: str
    candidates: dict[str, CandidateScore]
    chosen: str


class Metadata(BaseModel):
    """Everything a server needs to know about one model version (``metadata.json``)."""

    model_config = ConfigDict(extra="allow")

    format_version: int = FORMAT_VERSION
    name: str = Field(pattern=MODEL_NAME_PATTERN)
    version: int = Field(default=0, ge=0, description="Set when the version is published.")
    created_at: datetime
    features: list[str] = Field(min_length=1)
    labels: list[str] = Field(min_length=1)
    thresholds: list[float] = Field(description="One decision threshold per label, in order.")
    feature_ranges: list[FeatureRange]
    data: DataSummary
    training: dict[str, Any]
    evaluation: CrossValidation | None = Field(
        default=None, description="Cross-validation of the network at threshold 0.5."
    )
    threshold_tuning: ThresholdTuning | None = None
    baselines: dict[str, CrossValidation] | None = Field(
        default=None, description="scikit-learn models on the same splits, at threshold 0.5."
    )
    label_sets: list[list[str]] | None = Field(
        default=None,
        description="The label sets the network's softmax head ranges over (label names on in "
        "each); None for one sigmoid output per label.",
    )
    limit: BayesLimit | None = Field(
        default=None, description="The data's Bayes limit on the same splits, where known."
    )
    comparisons: dict[str, PairedComparison] | None = Field(
        default=None,
        description="The served model against each baseline and the limit, split by split.",
    )
    selection: Selection | None = Field(
        default=None,
        description="The selection run that chose the preset's options (other folds than "
        "``evaluation``'s); None when options were given on the command line.",
    )
    calibration: PostHocCalibration | None = Field(
        default=None, description="The post-hoc calibration step and the evidence for it."
    )
    expected_accuracy: ExpectedAccuracy | None = Field(
        default=None, description="What to expect on new data (fresh draws or cross-validation)."
    )
    label_set_distribution: LabelSetDistribution | None = Field(
        default=None,
        description="How to get P(label set); None in versions older than this field.",
    )
    libraries: dict[str, str]
    parity: ParityCheck
    files: dict[str, str] = Field(default_factory=dict, description="File name → SHA-256.")

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"unsupported artifact format {self.format_version}")
        if len(set(self.features)) != len(self.features):
            raise ValueError("feature names must be unique")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("label names must be unique")
        if len(self.thresholds) != len(self.labels):
            raise ValueError("one threshold per label is required")
        if not all(0.0 <= t <= 1.0 for t in self.thresholds):
            raise ValueError("thresholds must lie in [0, 1]")
        if len(self.feature_ranges) != len(self.features):
            raise ValueError("one feature range per feature is required")
        if any(len(row) != len(self.features) for row in self.parity.inputs):
            raise ValueError("parity inputs must have one value per feature")
        if any(len(row) != len(self.labels) for row in self.parity.outputs):
            raise ValueError("parity outputs must have one value per label")
        known = set(self.labels)
        if any(not known.issuperset(chosen) for chosen in self.label_sets or []):
            raise ValueError("label_sets may name only the model's labels")
        distribution = self.label_set_distribution
        if distribution is not None and distribution.source == "label_set_head":
            if self.label_sets is None or distribution.output is None:
                raise ValueError("a label-set head needs label_sets and its output's name")
            sets = self.parity.set_outputs
            if sets is not None and any(len(row) != len(self.label_sets) for row in sets):
                raise ValueError("parity set outputs must have one value per label set")
        return self


def decide(
    probabilities: NDArray[np.float32], thresholds: NDArray[np.floating[Any]]
) -> NDArray[np.bool_]:
    """The meaning of a threshold, for training and serving alike: a label is on at or above it,
    compared in the probabilities' own precision (float32), so that a probability printed as
    0.7 is on at threshold 0.7."""
    return probabilities >= thresholds.astype(probabilities.dtype, copy=False)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_versions(repository: Path, name: str) -> list[int]:
    """Published versions of a model, oldest first; staging directories are never listed."""
    model_dir = repository / name
    if not re.match(MODEL_NAME_PATTERN, name) or not model_dir.is_dir():
        return []
    return sorted(
        int(entry.name)
        for entry in model_dir.iterdir()
        if _VERSION_DIR.match(entry.name) and entry.is_dir()
    )


def version_path(repository: Path, name: str, version: int) -> Path:
    return repository / name / str(version)


def read_artifact(path: Path) -> Metadata:
    """Read a published version's metadata and verify every file against its hash."""
    try:
        raw = (path / METADATA_FILE).read_bytes()
    except OSError as error:
        raise ArtifactError(f"{METADATA_FILE} is unreadable: {error.strerror}") from error
    try:
        metadata = Metadata.model_validate_json(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise ArtifactError(f"{METADATA_FILE} is invalid at {where}: {first['msg']}") from error
    if path.name != str(metadata.version):
        raise ArtifactError(f"{METADATA_FILE} says version {metadata.version}, not {path.name}")
    _verify_files(path, metadata.files)
    return metadata


def _verify_files(path: Path, files: dict[str, str]) -> None:
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise ArtifactError(f"{METADATA_FILE} lists no hash for {', '.join(missing)}")
    for name, expected in files.items():
        file = path / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ArtifactError(f"{METADATA_FILE} names a file outside the version: {name}")
        if not file.is_file():
            raise ArtifactError(f"{name} is missing")
        if sha256_of(file) != expected:
            raise ArtifactError(f"{name} does not match its SHA-256 in {METADATA_FILE}")


@contextlib.contextmanager
def staging_directory(repository: Path, name: str) -> Iterator[Path]:
    """A private directory to build a version in; removed on exit unless it was published.

    It lives beside the versions (same filesystem, so publishing is one rename) and its name
    starts with a dot, so neither servers nor ``list_versions`` ever take it for a version.
    """
    model_dir = repository / name
    created = _make_dirs(model_dir)
    _remove_stale_staging(model_dir)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=model_dir))
    staging.chmod(0o755)  # mkdtemp makes it private; a published version is world-readable
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in created:  # leave the repository exactly as it was
            with contextlib.suppress(OSError):
                directory.rmdir()


def _remove_stale_staging(model_dir: Path) -> None:
    """Clear what killed runs left behind; a run still writing is never that old."""
    now = time.time()
    for entry in model_dir.glob(_STAGING_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(entry)


def publish(
    staging: Path, metadata: Metadata, *, before_rename: Callable[[Path], None] | None = None
) -> Path:
    """Hash the staged files, take the next version number and rename the directory into place.

    ``before_rename`` runs on the staged directory once ``metadata.json`` is final (e.g. to sign
    it), so whatever it writes is published atomically with the rest. A lock on the model
    directory makes concurrent trainings take distinct versions.
    """
    files = {
        str(file.relative_to(staging)): sha256_of(file)
        for file in sorted(staging.rglob("*"))
        if file.is_file() and file.name != METADATA_FILE
    }
    model_dir = staging.parent
    with _locked(model_dir / ".lock"):
        version = max(list_versions(model_dir.parent, model_dir.name), default=0) + 1
        final = metadata.model_copy(update={"version": version, "files": files})
        _write_synced(staging / METADATA_FILE, final.model_dump_json(indent=2).encode())
        if before_rename is not None:
            before_rename(staging)
        for file in staging.rglob("*"):
            if file.is_file():
                _fsync_file(file)
        target = model_dir / str(version)
        staging.rename(target)
        _fsync_dir(model_dir)
    return target


def _make_dirs(directory: Path) -> list[Path]:
    """Create a directory and its missing parents; return those created, deepest first."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    directory.mkdir(parents=True, exist_ok=True)
    return missing


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_synced(path: Path, content: bytes) -> None:
    with path.open("wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())


def _fsync_file(path: Path) -> None:
    with path.open("rb") as stream:
        os.fsync(stream.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
