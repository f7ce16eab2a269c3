"""The data plane (``app.dataplane``): thresholds of one strict type compared in float32, output
selection, model lookup by path strings, admission control, where the work runs, and the
check that outputs are finite; on a really trained model, without HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.config import Settings
from app.dataplane import (
    OUTPUTS,
    DataPlane,
    InferenceRequest,
    InferenceResult,
    outputs_named,
    thresholds_for,
)
from app.errors import InvalidInput, InvalidRequest, ModelNotFound, ModelNotReady, Overloaded
from app.inference import Model, load_model
from app.metrics import ServiceMetrics
from app.repository import ModelRepository
from tests.support import MODEL_NAME, REFERENCE_INPUTS

LABELS = ["label_0", "label_1", "label_2"]
FLOAT32_MAX = float(np.finfo(np.float32).max)


@pytest.fixture(scope="module")
def model(trained_version: Path) -> Model:
    return load_model(trained_version)


def data_plane(model_dir: Path, **changes: Any) -> DataPlane:
    settings = Settings(model_dir=model_dir, model_name=MODEL_NAME, poll_interval=0, **changes)
    repository = ModelRepository.from_settings(settings, loader=partial(load_model))
    repository.refresh()
    return DataPlane(repository, settings, ServiceMetrics())


@pytest.fixture
def plane(trained_repository: Path) -> Iterator[DataPlane]:
    dataplane = data_plane(trained_repository)
    yield dataplane
    dataplane.close()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        (0, [0.0, 0.0, 0.0]),
        (1, [1.0, 1.0, 1.0]),
        (0.25, [0.25, 0.25, 0.25]),
        ({"label_1": 0.9}, "defaults but label_1 0.9"),
        ({}, None),
    ],
    ids=["none", "int 0", "int 1", "float", "by label", "empty mapping"],
)
def test_thresholds_are_one_number_or_some_labels_by_name(
    model: Model, given: Any, expected: Any
) -> None:
    thresholds = thresholds_for(model, given, field="threshold")
    assert thresholds.dtype == np.float32
    defaults = model.default_thresholds.tolist()
    if expected is None:
        expected = defaults
    elif isinstance(expected, str):
        expected = [defaults[0], np.float32(0.9), defaults[2]]
    assert thresholds.tolist() == expected


REFUSED_THRESHOLDS: list[tuple[str, Any, str]] = [
    # (case, value, field of the error)
    ("true", True, "threshold"),
    ("false", False, "threshold"),
    ("a string", "0.7", "threshold"),
    ("above 1", 1.0000001, "threshold"),
    ("below 0", -0.0001, "threshold"),
    ("NaN", float("nan"), "threshold"),
    ("a list", [0.5, 0.5, 0.5], "threshold"),
    ("unknown label", {"label_9": 0.5}, "threshold.label_9"),
    ("a label's boolean", {"label_0": True}, "threshold.label_0"),
    ("a label's string", {"label_2": "0.5"}, "threshold.label_2"),
    ("a label's null", {"label_2": None}, "threshold.label_2"),
    ("a label above 1", {"label_2": 2}, "threshold.label_2"),
]


@pytest.mark.parametrize(
    ("value", "field"),
    [case[1:] for case in REFUSED_THRESHOLDS],
    ids=[case[0] for case in REFUSED_THRESHOLDS],
)
def test_anything_but_numbers_in_0_to_1_is_refused_as_a_threshold(
    model: Model, value: Any, field: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        thresholds_for(model, value, field="threshold")
    assert raised.value.field == field


def test_the_field_named_in_errors_is_the_protocols_own(model: Model) -> None:
    with pytest.raises(InvalidRequest) as raised:
        thresholds_for(model, {"nope": 0.5}, field="parameters.threshold")
    assert raised.value.field == "parameters.threshold.nope"
    assert 'unknown label "nope"' in raised.value.message
    assert "label_0, label_1, label_2" in raised.value.message


def test_a_threshold_equal_to_a_probability_as_printed_turns_the_label_on(model: Model) -> None:
    """Compared in float32: the shortest text of a float32 probability, read back as a
    threshold, is that same float32, so the label is on (float64 would say off for half)."""
    rows = np.random.default_rng(5).uniform(0, 15, size=(200, 10)).astype(np.float32)
    probabilities = model.predict(rows).probabilities
    above_in_float64 = 0
    for row, probability in zip(rows, probabilities[:, 0], strict=True):
        printed = float(str(probability))  # what a client read in the JSON answer
        above_in_float64 += printed > float(probability)
        thresholds = thresholds_for(model, {"label_0": printed}, field="threshold")
        prediction = model.predict(row[None, :], thresholds)
        assert prediction.positives[0, 0], (probability, printed)
    assert above_in_float64 > 0  # the case a float64 comparison gets wrong did occur


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["labels"], ("labels",)),
        (["labels", "probabilities"], ("labels", "probabilities")),
        ([], ()),
    ],
)
def test_outputs_are_chosen_by_name_in_request_order(names: list[object], expected: Any) -> None:
    assert outputs_named(names, field="outputs") == expected


@pytest.mark.parametrize(
    ("names", "field"),
    [
        (["scores"], "outputs.0.name"),
        (["labels", "labels"], "outputs.1.name"),
        (["probabilities", None], "outputs.1.name"),
        ([3], "outputs.0.name"),
    ],
    ids=["unknown", "twice", "null", "a number"],
)
def test_unknown_or_repeated_outputs_are_refused(names: list[object], field: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        outputs_named(names, field="outputs")
    assert raised.value.field == field


def test_every_output_is_the_default(model: Model) -> None:
    request = InferenceRequest(model, np.zeros((1, 10), np.float32), model.default_thresholds)
    assert request.outputs == OUTPUTS == ("probabilities", "labels")


@pytest.mark.parametrize("version", [None, "1", "01"])
def test_the_model_is_found_by_name_and_version_text(plane: DataPlane, version: Any) -> None:
    assert plane.model(MODEL_NAME, version).version == 1


@pytest.mark.parametrize(
    "version", ["2", "-1", "1.0", "v1", "1 ", "\u0661", "9" * 19, "9" * 18], ids=repr
)
def test_a_version_not_loaded_or_not_a_number_is_not_found(plane: DataPlane, version: str) -> None:
    with pytest.raises(ModelNotFound, match="version"):
        plane.model(MODEL_NAME, version)


@pytest.mark.parametrize("version", [None, "1", "v1"])
def test_an_unknown_model_is_reported_before_its_version(plane: DataPlane, version: Any) -> None:
    with pytest.raises(ModelNotFound, match="'other' is not served"):
        plane.model("other", version)


def test_without_a_loaded_version_every_lookup_is_not_ready(tmp_path: Path) -> None:
    empty = data_plane(tmp_path)
    try:
        for version in (None, "1", "v1"):
            with pytest.raises(ModelNotReady):
                empty.model(MODEL_NAME, version)
    finally:
        empty.close()


def request_for(model: Model, rows: int) -> InferenceRequest:
    features = np.tile(np.asarray(REFERENCE_INPUTS[:1], np.float32), (rows, 1))
    return InferenceRequest(model, features, model.default_thresholds)


def admitted(request: InferenceRequest) -> tuple[int, Callable[[], InferenceRequest]]:
    """What a codec hands the data plane: the row count it read, and how to build the request."""
    return request.rows, lambda: request


def thread_of(result: InferenceResult) -> str:
    return threading.current_thread().name


@pytest.mark.parametrize(("rows", "offloaded"), [(1, False), (255, False), (256, True)])
def test_batches_from_offload_rows_on_run_in_the_pool(
    trained_repository: Path, model: Model, rows: int, offloaded: bool
) -> None:
    plane = data_plane(trained_repository, offload_rows=256)
    try:
        thread = asyncio.run(plane.infer(*admitted(request_for(model, rows)), thread_of))
    finally:
        plane.close()
    assert thread.startswith("inference") is offloaded
    assert plane.rows_in_flight == 0


def test_past_the_rows_in_flight_a_request_is_refused_with_retry_after(
    trained_repository: Path, model: Model
) -> None:
    """One request holds 8 rows in the pool; one more row would pass the limit of 8."""
    plane = data_plane(trained_repository, max_inflight_rows=8, offload_rows=1, retry_after=7)
    release = threading.Event()

    def held(result: InferenceResult) -> int:
        release.wait(10)
        return result.request.rows

    async def scenario() -> tuple[Any, Any]:
        first = asyncio.create_task(plane.infer(*admitted(request_for(model, 8)), held))
        while plane.rows_in_flight == 0:
            await asyncio.sleep(0.001)
        with pytest.raises(Overloaded) as refused:
            await plane.infer(*admitted(request_for(model, 1)), lambda result: 1)
        release.set()
        return await first, refused.value

    try:
        answered, refusal = asyncio.run(scenario())
    finally:
        plane.close()
    assert answered == 8
    assert refusal.status_code == 503
    assert refusal.headers == {"Retry-After": "7"}
    assert "limit of 8 rows" in refusal.message
    assert plane.rows_in_flight == 0


def test_a_refused_request_is_never_decoded(trained_repository: Path, model: Model) -> None:
    """Admission comes first: past the limit, none of the request's work is done."""
    plane = data_plane(trained_repository, max_inflight_rows=8, offload_rows=1)
    release = threading.Event()
    decoded: list[int] = []

    def decode() -> InferenceRequest:
        decoded.append(1)
        return request_for(model, 1)

    async def scenario() -> None:
        first = asyncio.create_task(
            plane.infer(*admitted(request_for(model, 8)), lambda r: release.wait(10))
        )
        while plane.rows_in_flight == 0:
            await asyncio.sleep(0.001)
        with pytest.raises(Overloaded):
            await plane.infer(1, decode, lambda result: None)
        release.set()
        await first

    try:
        asyncio.run(scenario())
    finally:
        plane.close()
    assert decoded == []


@pytest.mark.parametrize(("rows", "offloaded"), [(1, False), (256, True)])
def test_large_batches_are_also_decoded_in_the_pool(
    trained_repository: Path, model: Model, rows: int, offloaded: bool
) -> None:
    """Converting and checking thousands of values is work for the pool, not the loop."""
    plane = data_plane(trained_repository, offload_rows=256)
    threads: list[str] = []

    def decode() -> InferenceRequest:
        threads.append(threading.current_thread().name)
        return request_for(model, rows)

    try:
        asyncio.run(plane.infer(rows, decode, lambda result: None))
    finally:
        plane.close()
    assert threads[0].startswith("inference") is offloaded


def test_a_lone_request_is_admitted_whatever_its_size(
    trained_repository: Path, model: Model
) -> None:
    plane = data_plane(trained_repository, max_inflight_rows=4)
    try:
        rows = asyncio.run(
            plane.infer(*admitted(request_for(model, 50)), lambda result: result.request.rows)
        )
    finally:
        plane.close()
    assert rows == 50


def test_refusals_are_counted(trained_repository: Path, model: Model) -> None:
    plane = data_plane(trained_repository, max_inflight_rows=1, offload_rows=1)
    release = threading.Event()

    async def scenario() -> None:
        first = asyncio.create_task(
            plane.infer(*admitted(request_for(model, 1)), lambda r: release.wait(10))
        )
        while plane.rows_in_flight == 0:
            await asyncio.sleep(0.001)
        for _ in range(3):
            with pytest.raises(Overloaded):
                await plane.infer(*admitted(request_for(model, 1)), lambda result: None)
        release.set()
        await first

    try:
        asyncio.run(scenario())
    finally:
        plane.close()
    assert b"multilabel_overload_refusals_total 3.0" in plane.metrics.render()


@pytest.mark.parametrize("offload_rows", [1, 1000], ids=["pool", "inline"])
def test_rows_the_model_cannot_answer_finitely_are_refused_by_position(
    trained_repository: Path, model: Model, offload_rows: int
) -> None:
    """Values within float32 can overflow the network to NaN: a 4xx naming the rows."""
    features = np.tile(np.asarray(REFERENCE_INPUTS[:1], np.float32), (30, 1))
    features[[3, 17]] = FLOAT32_MAX
    assert not np.isfinite(model.predict(features).probabilities[[3, 17]]).any()
    plane = data_plane(trained_repository, offload_rows=offload_rows)
    request = InferenceRequest(model, features, model.default_thresholds)
    try:
        with pytest.raises(InvalidInput) as raised:
            asyncio.run(plane.infer(*admitted(request), lambda result: None))
    finally:
        plane.close()
    assert raised.value.row == 3
    assert "row 3, 17" in raised.value.message
    assert plane.rows_in_flight == 0


def test_the_result_holds_probabilities_decisions_and_warnings(plane: DataPlane) -> None:
    model = plane.model(MODEL_NAME)
    features = np.asarray([REFERENCE_INPUTS[0], [1e6] * 10], dtype=np.float32)
    thresholds = thresholds_for(model, 0.5, field="threshold")
    result = asyncio.run(
        plane.infer(*admitted(InferenceRequest(model, features, thresholds)), lambda r: r)
    )
    expected = model.predict(features, thresholds)
    np.testing.assert_array_equal(result.probabilities, expected.probabilities)
    np.testing.assert_array_equal(result.positives, expected.probabilities >= np.float32(0.5))
    assert set(result.out_of_range.rows.tolist()) == {1}
