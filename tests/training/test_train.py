"""The training CLI end to end: figures per split, reproducibility, the model card, CSV data."""

from __future__ import annotations

import csv
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient

from app.artifact import Metadata, read_artifact, version_path
from app.config import Settings
from app.main import create_app
from tests.support import MODEL_NAME, REPO_ROOT, SMALL_TRAINING_ARGS, train_small_model
from tests.training.test_csv_data import tree_digest
from training.data import synthetic_dataset
from training.metrics import OVERALL_METRICS, PER_LABEL_METRICS, per_label_key
from training.report import (
    CALIBRATION_PLOT,
    CARD_FILE,
    LIMIT_JOINT,
    LOSS_PLOT,
    PRECISION_RECALL_PLOT,
    ROC_PLOT,
    SUBSET_ACCURACY_PLOT,
)
from training.thresholds import describe
from training.train import main as train_main

PLOTS = [SUBSET_ACCURACY_PLOT, ROC_PLOT, PRECISION_RECALL_PLOT, CALIBRATION_PLOT]
"""The default preset's plots; a network fitted by gradient descent adds its loss curve."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def metadata(trained_version: Path) -> Metadata:
    return read_artifact(trained_version)


def test_a_cv_run_records_every_metric_for_every_split(metadata: Metadata) -> None:
    assert metadata.evaluation is not None
    n_splits = int(SMALL_TRAINING_ARGS[SMALL_TRAINING_ARGS.index("--folds") + 1])
    assert len(metadata.evaluation.splits) == n_splits
    # The default preset's label-set head also gives the joint decision.
    expected = {*OVERALL_METRICS, "log_loss", "joint_subset_accuracy"} | {
        per_label_key(metric, label) for metric in PER_LABEL_METRICS for label in metadata.labels
    }
    for split in metadata.evaluation.splits:
        assert set(split) == expected
    assert set(metadata.evaluation.summary) == expected
    assert metadata.label_sets == [
        [],
        ["label_1"],
        ["label_0"],
        ["label_0", "label_1"],
        ["label_0", "label_1", "label_2"],
    ]
    assert metadata.training["head_fitted"] == "label_sets"
    shape = metadata.training["naive_bayes_shape"]  # which naive Bayes, and the check behind it
    assert shape["chosen"] == "generator"
    assert 0 < shape["rows"] <= metadata.data.n_samples
    assert shape["log_loss_excess"] <= 2 * shape["standard_error"]
    tuning = metadata.threshold_tuning
    assert tuning is not None
    assert len(tuning.evaluation.splits) == n_splits
    assert metadata.thresholds == (tuning.tuned if tuning.applied else [0.5] * len(metadata.labels))


def test_the_model_card_and_its_plots_are_published_and_hashed_with_the_version(
    trained_version: Path, metadata: Metadata
) -> None:
    for name in [CARD_FILE, *PLOTS]:
        assert name in metadata.files, f"{name} is not part of the published version"
    for name in PLOTS:
        content = (trained_version / name).read_bytes()
        assert content.startswith(PNG_SIGNATURE)
        assert len(content) > 10_000, f"{name} looks empty"


def test_the_model_card_tells_the_data_model_figures_and_thresholds(
    trained_version: Path, metadata: Metadata
) -> None:
    card = (trained_version / CARD_FILE).read_text(encoding="utf-8")
    assert metadata.evaluation is not None
    assert metadata.threshold_tuning is not None
    ours = metadata.evaluation.summary["subset_accuracy"]
    tuned = metadata.threshold_tuning.evaluation.summary["subset_accuracy"]
    for text in [
        f"# Model card: {MODEL_NAME}",
        "## Data",
        metadata.data.fingerprint,
        "## Model",
        "Preset: `default` with options changed on the command line",
        "Dense(5, softmax) over the label sets seen in training, on the raw counts",
        "a multinomial naive Bayes over label sets → fixed (non-trainable) 5 x 3",
        "Fitting: in closed form (maximum likelihood), no gradient steps",
        "the default estimator assumes the data come from a process shaped like scikit-learn's "
        "`make_multilabel_classification`",
        "falls back to scikit-learn's `MultinomialNB` over label sets",
        "Chosen: **generator**: over 1000 held-out rows",
        "per-label probabilities (first), and the probability of each label set above (second",
        "Options: given for this run; no selection run chose them.",
        "multi-label `accuracy_score`",
        f"| **ours** (preset `default`) | {ours.mean:.3f} ± {ours.std:.3f} |",
        f"| ours, tuned thresholds (cross-fitted) | {tuned.mean:.3f} ± {tuned.std:.3f} |",
        "Baselines were not run (`--no-baselines`).",
        "### The limit of this data",
        "| limit: Bayes rule, most probable label set (ours: the same decision) |",
        "### Thresholds: 0.5 against tuned",
        "would flatter",
        f"Thresholds served: {describe(metadata.labels, metadata.thresholds)}",
        *[f"![{name}]({name})" for name in PLOTS],
        "Elapsed: ",
    ]:
        assert text in card, f"the card lacks {text!r}"
    assert LOSS_PLOT not in card  # a closed-form fit has no epochs


def test_the_card_and_metadata_say_what_to_expect_on_fresh_draws_beside_the_limit(
    trained_version: Path, metadata: Metadata
) -> None:
    expected = metadata.expected_accuracy
    assert expected is not None
    assert expected.source == "fresh_draws"
    draws = expected.fresh_draws
    assert draws is not None
    assert (draws.first_row, draws.n_rows) == (1000, 20_000)
    labels, joint = draws.decisions
    assert (labels.decision, joint.decision) == ("labels", "set")
    for score in draws.decisions:
        assert 0.8 < score.subset_accuracy < score.limit + 0.01
        assert score.ratio == pytest.approx(score.subset_accuracy / score.limit)
        assert 0 < score.ratio_standard_error < 0.01
    assert draws.model.label_sets is not None
    assert draws.model.label_sets_source == "label_set_head"
    card = (trained_version / CARD_FILE).read_text(encoding="utf-8")
    for text in [
        "## What to expect on new data",
        expected.summary,
        f"| per-label thresholds (the default decision) | **{labels.subset_accuracy:.4f}** | "
        f"{labels.limit:.4f} | {labels.ratio:.4f} ± {labels.ratio_standard_error:.4f} |",
        "Nothing\nwas chosen on these rows",
        "## Calibration",
        "| label_0 | ece | " + f"{draws.model.per_label['label_0'].ece:.4f} | ",
        "Against the targets set for this model, on the 20000 fresh draws:",
        "- ECE at most 0.01 for every label: ",
        "Calibration step, temperature scaling of the label-set logits: ",
    ]:
        assert text in card, f"the card lacks {text!r}"


def test_the_calibration_step_is_recorded_with_its_evidence(metadata: Metadata) -> None:
    calibration = metadata.calibration
    assert calibration is not None
    assert calibration.method == "temperature"
    assert calibration.log_loss_change is not None
    assert calibration.subset_accuracy_change is not None
    assert calibration.before is not None
    assert calibration.after is not None
    assert set(calibration.before.per_label) == set(metadata.labels)
    served = calibration.temperature if calibration.applied else 1.0
    assert metadata.training["temperature"] == pytest.approx(served)


def test_the_label_set_distribution_is_the_second_output_of_the_served_graph(
    trained_version: Path, metadata: Metadata
) -> None:
    distribution = metadata.label_set_distribution
    assert distribution is not None
    assert distribution.source == "label_set_head"
    session = ort.InferenceSession(
        str(trained_version / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    assert [output.name for output in session.get_outputs()][1] == distribution.output
    inputs = np.array(metadata.parity.inputs, dtype=np.float32)
    _, sets = session.run(None, {session.get_inputs()[0].name: inputs})
    assert metadata.label_sets is not None
    assert sets.shape == (len(inputs), len(metadata.label_sets))
    np.testing.assert_allclose(sets, metadata.parity.set_outputs, atol=1e-5)


def write_named_csv(path: Path) -> list[str]:
    """A CSV with an id column, named features and named labels; returns the label names."""
    dataset = synthetic_dataset(n_samples=120, n_features=4, n_classes=3)
    features, labels = ["height", "weight", "age", "income"], ["sports", "politics", "tech"]
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", *labels, *features])
        for index, (x, y) in enumerate(zip(dataset.features, dataset.labels, strict=True)):
            writer.writerow([f"row-{index}", *y.tolist(), *x.tolist()])
    return labels


def test_a_csv_with_named_labels_trains_and_the_service_answers_with_those_names(
    tmp_path: Path,
) -> None:
    labels = write_named_csv(tmp_path / "news.csv")
    models = tmp_path / "models"
    code = train_main(
        [
            "--data",
            str(tmp_path / "news.csv"),
            "--labels",
            ",".join(labels),
            "--features",
            "height,weight,age,income",
            "--ensemble",
            "2",
            "--early-stopping",
            "2",
            "--epochs",
            "5",
            "--folds",
            "2",
            "--repeats",
            "1",
            "--jobs",
            "1",
            "--max-label-sets",
            "3",
            "--name",
            "news",
            "--no-baselines",  # they take arrays, whatever the source: test_baselines.py
            "--output",
            str(models),
        ]
    )
    assert code == 0
    settings = Settings(model_dir=models, model_name="news", poll_interval=0)
    with TestClient(create_app(settings)) as client:
        response = client.post("/predict", json={"instances": [[170, 65, 40, 3], [150, 50, 20, 1]]})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "news", "version": 1}
    for row in body["predictions"]:
        assert list(row["probabilities"]) == labels
        assert set(row["labels"]) <= set(labels)
    metadata = read_artifact(version_path(models, "news", 1))
    assert metadata.features == ["height", "weight", "age", "income"]
    assert metadata.data.source == "csv:news.csv"
    assert metadata.training["ensemble"] == 2
    # More label sets than --max-label-sets: one sigmoid per label, and the card says so.
    assert metadata.training["head_fitted"] == "sigmoid"
    assert "naive_bayes_shape" not in metadata.training  # no naive Bayes fitted
    assert metadata.label_sets is None
    assert metadata.limit is not None
    assert not metadata.limit.known
    assert metadata.label_set_distribution is not None
    assert metadata.label_set_distribution.source == "product_of_marginals"
    assert metadata.calibration is not None
    assert not metadata.calibration.applied
    assert metadata.expected_accuracy is not None
    assert metadata.expected_accuracy.source == "cross_validation"
    assert LOSS_PLOT in metadata.files  # fitted by gradient descent
    card = (version_path(models, "news", 1) / CARD_FILE).read_text(encoding="utf-8")
    assert "No limit is known for this data (its generating distribution is unknown)." in card
    assert "the data holds more than 3 label sets: one sigmoid output per label instead" in card
    assert "No generator is known for this data, so the cross-validated figure is" in card
    assert "the probability of a whole label set is the product of the marginals" in card


def test_a_run_without_cross_validation_keeps_one_half_and_says_so_in_its_card(
    tmp_path: Path,
) -> None:
    assert train_main(["--no-cv", "--epochs", "2", "--output", str(tmp_path)]) == 0
    version = version_path(tmp_path, MODEL_NAME, 1)
    metadata = read_artifact(version)
    assert metadata.evaluation is None
    assert metadata.threshold_tuning is None
    assert metadata.thresholds == [0.5, 0.5, 0.5]
    assert metadata.calibration is None
    assert [name for name in metadata.files if name.endswith(".png")] == []  # nothing to plot
    card = (version / CARD_FILE).read_text()
    assert "skipped cross-validation (`--no-cv`)" in card
    assert "## What to expect on new data" in card  # fresh draws need no cross-validation


def test_the_limit_of_the_synthetic_data_is_in_the_metadata_card_and_output(
    metadata: Metadata, trained_version: Path
) -> None:
    assert metadata.limit is not None
    assert metadata.limit.known
    assert metadata.limit.evaluation is not None
    assert metadata.evaluation is not None
    assert metadata.limit.evaluation.n_splits == metadata.evaluation.n_splits
    joint = metadata.limit.evaluation.summary["joint_subset_accuracy"]
    marginals = metadata.limit.evaluation.summary["subset_accuracy"]
    # Every row is tested once per repeat, so the mean over the splits is the 1000 rows' figure.
    assert joint.mean == pytest.approx(0.868, abs=0.001)
    assert marginals.mean == pytest.approx(0.872, abs=0.001)
    card = (trained_version / CARD_FILE).read_text(encoding="utf-8")
    assert f"**{marginals.mean:.3f} ± {marginals.std:.3f}** with its marginals thresholded" in card
    assert "the limit of\nthe decision served by default (per-label thresholds)" in card
    assert f"it scores\n{joint.mean:.3f} ± {joint.std:.3f}." in card
    assert metadata.comparisons is not None
    versus_limit = metadata.comparisons[LIMIT_JOINT]
    assert versus_limit.won + versus_limit.lost + versus_limit.tied == metadata.evaluation.n_splits


def test_the_training_output_states_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_main(["--no-cv", "--epochs", "1", "--output", str(tmp_path)]) == 0
    assert "limit" not in capsys.readouterr().out  # without cross-validation, no splits to score
    train_small_model(tmp_path)
    out = capsys.readouterr().out
    assert re.search(
        r"^the limit of this data \(the Bayes-optimal rule of its generator, same splits\): "
        r"subset accuracy 0\.\d{3} ± 0\.\d{3} deciding the most probable label set, "
        r"0\.\d{3} ± 0\.\d{3} with its marginals at 0\.5$",
        out,
        re.M,
    ), out


BAD_KEYS = [
    pytest.param(None, "cannot", id="missing-file"),
    pytest.param(b"not a key\n", "is not a PEM private key", id="not-pem"),
]


@pytest.mark.parametrize(("content", "message"), BAD_KEYS)
def test_an_unusable_signing_key_ends_the_run_before_training_with_one_line(
    content: bytes | None,
    message: str,
    repository: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = tmp_path / "signing-key.pem"
    if content is not None:
        key.write_bytes(content)
    before = tree_digest(repository)
    code = train_main(["--signing-key", str(key), "--output", str(repository)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("error: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1
    assert captured.out == ""  # refused before any split ran
    assert tree_digest(repository) == before


def test_a_signing_key_signs_the_published_version(tmp_path: Path) -> None:
    from app.signing import generate_key_pair, load_trusted_keys, verify_version

    private_key, public_key = generate_key_pair(tmp_path / "keys")
    models = tmp_path / "models"
    assert (
        train_main(
            ["--no-cv", "--epochs", "1", "--signing-key", str(private_key), "--output", str(models)]
        )
        == 0
    )
    verify_version(version_path(models, MODEL_NAME, 1), load_trusted_keys(public_key))


def run_in_terminal(command: list[str], env: dict[str, str]) -> str:
    """Run ``command`` with a pseudo-terminal as its stdout and stderr; return what it wrote."""
    controller, terminal = pty.openpty()
    # A real terminal has a size (a new pseudo-terminal has 0 x 0, where a bar has no room).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(command, stdout=terminal, stderr=terminal, env=env, cwd=REPO_ROOT)
    os.close(terminal)
    output = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=600) == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


TENSORFLOW_CHATTER = ["absl::InitializeLog", "cpu_feature_guard", "oneDNN", "I0000 "]


def chatty_tensorflow_environment() -> dict[str, str]:
    """The environment with TensorFlow at its chattiest on any x86 CPU: oneDNN's custom
    operations forced on (on some CPUs they are on by default, and TensorFlow then announces
    them on every import), and no log level of ours."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "TF_ENABLE_ONEDNN_OPTS": "1"}


def test_in_two_workers_on_a_terminal_the_figures_hold_the_bar_shows_and_tensorflow_is_quiet(
    metadata: Metadata, tmp_path: Path
) -> None:
    """The session's recipe again, its cross-validation in two worker processes, on a
    terminal, with TensorFlow at its chattiest: the same figures as one process gave, each
    split printed as it finishes, tqdm's bar, and no TensorFlow line from any process."""
    output = run_in_terminal(
        [
            sys.executable,
            "-m",
            "training.train",
            *SMALL_TRAINING_ARGS,
            *("--jobs", "2", "--output", str(tmp_path)),
        ],
        chatty_tensorflow_environment(),
    )
    again = read_artifact(version_path(tmp_path, MODEL_NAME, 1))
    assert again.evaluation is not None
    assert metadata.evaluation is not None
    # The same decisions on every split; continuous figures equal but for the last bits that
    # oneDNN's kernels (forced on here, not in the session's run) may round differently.
    for split, reference in zip(again.evaluation.splits, metadata.evaluation.splits, strict=True):
        assert split == pytest.approx(reference, rel=1e-6, abs=1e-9)
        assert split["subset_accuracy"] == reference["subset_accuracy"]
    assert again.thresholds == metadata.thresholds
    np.testing.assert_allclose(again.parity.outputs, metadata.parity.outputs, rtol=1e-6)
    # A terminal's lines end in \r\n, and the bar redraws itself after a \r.
    lines = re.split(r"[\r\n]+", output)
    printed = [
        found.groups()
        for line in lines
        if (found := re.fullmatch(r"split (\d+)/(\d+)  subset accuracy (\d\.\d{3})", line.strip()))
    ]
    assert printed == [
        (str(index), str(len(again.evaluation.splits)), f"{split['subset_accuracy']:.3f}")
        for index, split in enumerate(again.evaluation.splits, start=1)
    ]
    assert "cross-validation:" in output  # tqdm's bar, drawn only on a terminal
    assert "mean subset accuracy" in output
    for chatter in TENSORFLOW_CHATTER:
        assert chatter not in output


def test_the_selection_help_is_quiet_and_needs_no_tensorflow() -> None:
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "training.select", "--help"],
        env=chatty_tensorflow_environment(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: python -m training.select")
    imported = [line.split("|")[-1].strip() for line in completed.stderr.splitlines()]
    assert "tensorflow" not in imported  # -X importtime lists every module imported
    messages = [line for line in completed.stderr.splitlines() if not line.startswith("import ")]
    for chatter in TENSORFLOW_CHATTER:
        assert not [line for line in messages if chatter in line], messages
