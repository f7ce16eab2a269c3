"""The data plane (``app.dataplane``): one entry point for every protocol's decoded request.
Thresholds of one strict type compared in float32, output selection, model lookup by path
strings, the input tensor's rules, admission control, where the work runs, the check that
outputs are finite, and the metrics; on a really trained model, without HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.config import Settings
from app.dataplane import (
    LABEL_OUTPUTS,
    DataPlane,
    Fields,
    InferenceRequest,
    InferenceResult,
    Rows,
    Tensor,
    outputs_named,
    thresholds_for,
)
from app.errors import (
    InvalidInput,
    InvalidRequest,
    ModelNotFound,
    ModelNotReady,
    Overloaded,
    ServiceError,
)
from app.inference import Backend, Model, load_model
from app.metrics import ServiceMetrics
from app.repository import ModelRepository
from tests.support import MODEL_NAME, REFERENCE_INPUTS, trained_once

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
    assert outputs_named(names) == expected


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
        outputs_named(names)
    assert raised.value.field == field


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


class Recording:
    """The real ONNX backend, recording the thread each call runs on; ``hold`` keeps calls
    waiting until released (work that stays in flight)."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.calls: list[tuple[str, int]] = []  # (thread, rows), one append per call
        self.hold = threading.Event()
        self.hold.set()

    @property
    def threads(self) -> list[str]:
        return [thread for thread, _ in self.calls]

    def offloaded(self) -> dict[int, bool]:
        """Whether the call of each batch size ran in the inference pool."""
        return {rows: thread.startswith("inference") for thread, rows in self.calls}

    def __call__(self, features: np.ndarray) -> np.ndarray:
        self.calls.append((threading.current_thread().name, len(features)))
        self.hold.wait(10)
        return self.backend(features)


def recording_plane(model_dir: Path, **changes: Any) -> tuple[DataPlane, Recording]:
    """A data plane on the trained model whose backend records where and when it runs."""
    recordings: list[Recording] = []

    def load(path: Path) -> Model:
        model = load_model(path)
        recordings.append(Recording(model.backend))
        return replace(model, backend=recordings[-1])

    settings = Settings(model_dir=model_dir, model_name=MODEL_NAME, poll_interval=0, **changes)
    repository = ModelRepository.from_settings(settings, loader=load)
    repository.refresh()
    return DataPlane(repository, settings, ServiceMetrics()), recordings[0]


def rows_of(count: int) -> Rows:
    return Rows([REFERENCE_INPUTS[0]] * count, "instances")


def infer(plane: DataPlane, request: InferenceRequest) -> InferenceResult:
    return asyncio.run(plane.infer(request))


def refusal(plane: DataPlane, request: InferenceRequest) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        infer(plane, request)
    return raised.value


def test_every_output_is_the_default_in_order(plane: DataPlane) -> None:
    result = infer(plane, InferenceRequest(rows_of(1)))
    assert result.outputs == LABEL_OUTPUTS == ("probabilities", "labels")
    assert result.decision == "labels"


def test_the_result_holds_probabilities_decisions_thresholds_and_warnings(
    plane: DataPlane,
) -> None:
    model = plane.model(MODEL_NAME)
    rows = Rows([REFERENCE_INPUTS[0], [1e6] * 10], "instances")
    result = infer(
        plane, InferenceRequest(rows, thresholds=0.5, outputs=["labels"], id="request-7")
    )
    features = np.asarray(rows.values, dtype=np.float32)
    expected = model.predict(features)
    np.testing.assert_array_equal(result.probabilities, expected.probabilities)
    np.testing.assert_array_equal(result.positives, expected.probabilities >= np.float32(0.5))
    assert result.thresholds.tolist() == [0.5, 0.5, 0.5]
    assert set(result.out_of_range.rows.tolist()) == {1}
    assert (result.outputs, result.id, result.rows, result.model) == (
        ("labels",),
        "request-7",
        2,
        model,
    )


def test_every_form_of_the_same_values_gets_the_same_answer(plane: DataPlane) -> None:
    """JSON rows, named rows, a flat or nested JSON tensor, raw bytes, typed values."""
    values = np.asarray(REFERENCE_INPUTS, dtype=np.float32)
    names = plane.model(MODEL_NAME).metadata.features
    flat = [value for row in REFERENCE_INPUTS for value in row]

    def tensor(data: Any, typed: bool = False) -> list[Tensor]:
        return [Tensor("features", "FP32", [2, 10], data, "inputs.0", "inputs.0.data", typed=typed)]

    forms = {
        "rows": Rows(REFERENCE_INPUTS, "instances"),
        "named rows": Rows(
            [dict(zip(names, row, strict=True)) for row in REFERENCE_INPUTS], "rows", named=True
        ),
        "flat": tensor(flat),
        "nested": tensor(REFERENCE_INPUTS),
        "raw": tensor(values.tobytes()),
        "raw view": tensor(memoryview(values.tobytes())),
        "typed": tensor(values.ravel().tolist(), typed=True),
        "typed array": tensor(values.ravel(), typed=True),
    }
    answers = {name: infer(plane, InferenceRequest(form)) for name, form in forms.items()}
    for name, answer in answers.items():
        np.testing.assert_array_equal(answer.probabilities, answers["rows"].probabilities, name)


V2_FIELDS = Fields(
    thresholds="parameters.threshold", decision="parameters.decision", top_k="parameters.top_k"
)
TF_FIELDS = Fields(outputs="signature_name", output_names_listed=False)


def one_tensor(**changes: Any) -> list[Tensor]:
    given = {
        "name": "features",
        "datatype": "FP32",
        "shape": [1, 10],
        "data": REFERENCE_INPUTS[0],
        "field": "inputs.0",
        "data_field": "inputs.0.data",
        **changes,
    }
    return [Tensor(**given)]


REFUSED_REQUESTS: list[tuple[str, InferenceRequest, int, str | None, str]] = [
    # (case, request, status, field, in the message)
    ("no input", InferenceRequest([], fields=V2_FIELDS), 422, "inputs", "got 0"),
    (
        "two inputs",
        InferenceRequest(one_tensor() * 2, fields=V2_FIELDS),
        422,
        "inputs",
        "one input tensor",
    ),
    ("another name", InferenceRequest(one_tensor(name="x")), 422, "inputs.0.name", "'x'"),
    ("FP64", InferenceRequest(one_tensor(datatype="FP64")), 422, "inputs.0.datatype", "FP64"),
    ("shape of 3", InferenceRequest(one_tensor(shape=[1, 10, 1])), 422, "inputs.0.shape", "[1,"),
    ("narrow", InferenceRequest(one_tensor(shape=[1, 9])), 422, "inputs.0.shape", "[rows, 10]"),
    ("rows -1", InferenceRequest(one_tensor(shape=[-1, 10])), 422, "inputs.0.shape", "-1"),
    ("float rows", InferenceRequest(one_tensor(shape=[1.0, 10])), 422, "inputs.0.shape", "1.0"),
    (
        "raw of another size",
        InferenceRequest(one_tensor(data=b"\0" * 36, data_field="raw_input_contents.0")),
        400,
        "raw_input_contents.0",
        "36 bytes, but shape [1, 10] of FP32 needs 40",
    ),
    ("no data", InferenceRequest(one_tensor(data=None)), 422, "inputs.0.data", "got missing"),
    ("data a string", InferenceRequest(one_tensor(data="1")), 422, "inputs.0.data", "a str"),
    (
        "nested rows against the shape",
        InferenceRequest(one_tensor(data=REFERENCE_INPUTS)),
        422,
        "inputs.0.data",
        "2 rows but shape says 1",
    ),
    ("no rows", InferenceRequest(Rows([], "instances")), 422, None, "no rows"),
    ("rows not a list", InferenceRequest(Rows({}, "instances")), 422, "instances", "a list"),
    (
        "threshold as V2 names it",
        InferenceRequest(one_tensor(), thresholds="0.5", fields=V2_FIELDS),
        422,
        "parameters.threshold",
        '"0.5"',
    ),
    (
        "unknown output",
        InferenceRequest(one_tensor(), outputs=["labels", "scores"]),
        422,
        "outputs.1.name",
        '"scores"',
    ),
    (
        "unknown decision",
        InferenceRequest(one_tensor(), decision="best", fields=V2_FIELDS),
        422,
        "parameters.decision",
        'unknown decision "best"; the decisions are labels, set',
    ),
    (
        "a threshold with decision set",
        InferenceRequest(one_tensor(), decision="set", thresholds=0.5, fields=V2_FIELDS),
        422,
        "parameters.threshold",
        "no threshold decides",
    ),
    (
        "top_k with decision labels",
        InferenceRequest(one_tensor(), top_k=2, fields=V2_FIELDS),
        422,
        "parameters.top_k",
        'ask for parameters.decision "set" with it',
    ),
    *(
        (
            f"top_k {shown}",
            InferenceRequest(one_tensor(), decision="set", top_k=top_k, fields=V2_FIELDS),
            422,
            "parameters.top_k",
            f"an integer from 1 to 5 (the label sets this model ranks), got {shown}",
        )
        for top_k, shown in [
            (0, "0"),
            (-1, "-1"),
            (6, "6"),
            (2.0, "2.0"),
            ("2", '"2"'),
            (True, "true"),
            ([2], "[2]"),
        ]
    ),
    (
        "a set output with decision labels",
        InferenceRequest(one_tensor(), outputs=["labels", "label_sets"]),
        422,
        "outputs.1.name",
        "output 'label_sets' comes with decision 'set' only (decision: \"set\")",
    ),
    (
        "a set output with decision labels, the signature choosing",
        InferenceRequest(one_tensor(), outputs=["label_set_probabilities"], fields=TF_FIELDS),
        422,
        "signature_name",
        "signature_name: output 'label_set_probabilities' comes with decision 'set' only",
    ),
    (
        "decision set without an output that shows it",
        InferenceRequest(one_tensor(), decision="set", outputs=["probabilities"]),
        422,
        "outputs",
        "outputs: asks for none of the outputs that show decision 'set'",
    ),
    ("unknown model", InferenceRequest(one_tensor(), model_name="other"), 404, None, "'other'"),
    (
        "unknown version",
        InferenceRequest(one_tensor(), model_name=MODEL_NAME, model_version="3"),
        404,
        None,
        "version 3",
    ),
]


@pytest.mark.parametrize(
    ("request_", "status", "field", "fragment"),
    [case[1:] for case in REFUSED_REQUESTS],
    ids=[case[0] for case in REFUSED_REQUESTS],
)
def test_a_wrong_request_is_refused_naming_the_protocols_field(
    plane: DataPlane, request_: InferenceRequest, status: int, field: str | None, fragment: str
) -> None:
    error = refusal(plane, request_)
    assert (error.status_code, error.field) == (status, field), error.message
    assert fragment in error.message
    assert plane.rows_in_flight == 0


@pytest.mark.parametrize(("rows", "offloaded"), [(1, False), (255, False), (256, True)])
def test_batches_from_offload_rows_on_are_predicted_in_the_pool(
    trained_repository: Path, rows: int, offloaded: bool
) -> None:
    plane, backend = recording_plane(trained_repository, offload_rows=256)
    try:
        infer(plane, InferenceRequest(rows_of(rows)))
    finally:
        plane.close()
    assert [thread.startswith("inference") for thread in backend.threads] == [offloaded]
    assert plane.rows_in_flight == 0


def raw_tensor(rows: int) -> list[Tensor]:
    """``rows`` reference rows as one raw little-endian tensor (values that arrive as an array)."""
    values = np.asarray([REFERENCE_INPUTS[0]] * rows, dtype="<f4").tobytes()
    return one_tensor(shape=[rows, 10], data=values, data_field="raw_input_contents.0")


async def in_turns(plane: DataPlane, batches: list[int], same_turn: bool) -> None:
    """Array batches of the given rows, all started in one turn of the event loop, or each in
    a turn of its own."""
    requests = [InferenceRequest(raw_tensor(rows)) for rows in batches]
    if same_turn:
        await asyncio.gather(*(plane.infer(request) for request in requests))
        return
    for request in requests:
        await plane.infer(request)
        await asyncio.sleep(0)  # the next turn


@pytest.mark.parametrize(
    ("batches", "same_turn", "offloaded"),
    [
        ([1000, 1001, 1002], False, [False, False, False]),
        ([1000, 1001, 1002], True, [False, False, True]),
        ([300, 2300, 100], True, [False, True, False]),
        ([2500], False, [True]),
    ],
    ids=["a-turn-each", "one-turn", "the-budget-is-rows", "past-it-alone"],
)
def test_array_batches_run_inline_until_a_turn_holds_offload_array_rows(
    trained_repository: Path, batches: list[int], same_turn: bool, offloaded: list[bool]
) -> None:
    plane, backend = recording_plane(trained_repository, offload_rows=256, offload_array_rows=2500)
    try:
        asyncio.run(in_turns(plane, batches, same_turn))
    finally:
        plane.close()
    assert backend.offloaded() == dict(zip(batches, offloaded, strict=True))
    assert plane.rows_in_flight == 0


def test_too_many_rows_are_refused_before_any_work(trained_repository: Path) -> None:
    plane, backend = recording_plane(trained_repository, max_rows=5)
    try:
        error = refusal(plane, InferenceRequest(rows_of(6)))
    finally:
        plane.close()
    assert error.status_code == 413
    assert backend.threads == []


async def held_in_flight(plane: DataPlane, backend: Recording, rows: int) -> asyncio.Task[Any]:
    """A request of ``rows`` rows, started and held in the pool until ``backend.hold`` is set."""
    backend.hold.clear()
    held = asyncio.create_task(plane.infer(InferenceRequest(rows_of(rows))))
    while not backend.threads:
        await asyncio.sleep(0.001)
    return held


def test_past_the_rows_in_flight_a_request_is_refused_before_it_is_converted(
    trained_repository: Path,
) -> None:
    """One request holds 8 rows in the pool; one more row would pass the limit of 8. The
    refused request's row is not even a number: it is refused before anyone looks."""
    plane, backend = recording_plane(
        trained_repository, max_inflight_rows=8, offload_rows=1, retry_after=7
    )
    not_a_number = InferenceRequest(Rows([["x"] * 10], "instances"))

    async def scenario() -> tuple[InferenceResult, ServiceError]:
        held = await held_in_flight(plane, backend, 8)
        with pytest.raises(Overloaded) as refused:
            await plane.infer(not_a_number)
        backend.hold.set()
        return await held, refused.value

    try:
        answered, refused = asyncio.run(scenario())
    finally:
        plane.close()
    assert answered.rows == 8
    assert refused.status_code == 503
    assert refused.headers == {"Retry-After": "7"}
    assert "limit of 8 rows" in refused.message
    assert len(backend.threads) == 1
    assert plane.rows_in_flight == 0
    assert b"multilabel_overload_refusals_total 1.0" in plane.metrics.render()


def test_a_lone_request_is_admitted_whatever_its_size(trained_repository: Path) -> None:
    plane = data_plane(trained_repository, max_inflight_rows=4)
    try:
        assert infer(plane, InferenceRequest(rows_of(50))).rows == 50
    finally:
        plane.close()


def test_refusals_before_the_body_is_read_ask_to_close_the_connection(
    trained_repository: Path,
) -> None:
    plane, backend = recording_plane(trained_repository, max_inflight_rows=1, offload_rows=1)

    async def scenario() -> Overloaded:
        held = await held_in_flight(plane, backend, 1)
        with pytest.raises(Overloaded) as refused:
            plane.refuse_when_full()
        backend.hold.set()
        await held
        plane.refuse_when_full()  # below the limit again: nothing to refuse
        return refused.value

    try:
        refused = asyncio.run(scenario())
    finally:
        plane.close()
    assert refused.headers == {"Retry-After": "1", "Connection": "close"}


@pytest.mark.parametrize("decision", ["labels", "set"])
@pytest.mark.parametrize("offload_rows", [1, 1000], ids=["pool", "inline"])
def test_rows_the_model_cannot_answer_finitely_are_refused_by_position(
    trained_repository: Path, model: Model, offload_rows: int, decision: str
) -> None:
    """Values within float32 can overflow the network to NaN: a 4xx naming the rows."""
    features = np.tile(np.asarray(REFERENCE_INPUTS[:1], np.float32), (30, 1))
    features[[3, 17]] = FLOAT32_MAX
    assert not np.isfinite(model.predict(features).probabilities[[3, 17]]).any()
    plane = data_plane(trained_repository, offload_rows=offload_rows)
    try:
        rows = Rows(features.tolist(), "instances")
        error = refusal(plane, InferenceRequest(rows, decision=decision))
    finally:
        plane.close()
    assert isinstance(error, InvalidInput)
    assert error.row == 3
    assert "row 3, 17" in error.message
    assert plane.rows_in_flight == 0


def test_predictions_are_counted(plane: DataPlane) -> None:
    infer(plane, InferenceRequest(rows_of(3)))
    infer(plane, InferenceRequest(Rows([[1e6] * 10], "instances")))
    plane.metrics.flush()
    text = plane.metrics.render().decode()
    assert f'multilabel_predicted_rows_total{{model="{MODEL_NAME}",version="1"}} 4.0' in text
    assert f'multilabel_out_of_range_warnings_total{{model="{MODEL_NAME}"}} 10.0' in text


def test_readiness_and_versions_say_what_is_served(plane: DataPlane, tmp_path: Path) -> None:
    assert plane.ready
    assert plane.versions() == [1]
    readiness = plane.readiness()
    assert readiness.model is plane.model()
    empty = data_plane(tmp_path)
    try:
        assert not empty.ready
        assert empty.versions() == []
        assert empty.readiness().model is None
        assert "no version" in empty.readiness().reason
    finally:
        empty.close()


@pytest.mark.parametrize(
    ("request_", "rows", "thread"),
    [
        (InferenceRequest(rows_of(255)), 255, "MainThread"),
        # Predicted in the pool; rendered in the next turn, whose budget is whole.
        (InferenceRequest(rows_of(1200)), 1200, "MainThread"),
        # Predicted inline; with its rendering the turn holds 2000 rows, under the budget.
        (InferenceRequest(raw_tensor(1000)), 1000, "MainThread"),
        # Predicted inline; with its rendering the turn would hold 2600 rows.
        (InferenceRequest(raw_tensor(1300)), 1300, "render"),
        (InferenceRequest(rows_of(2500)), 2500, "render"),
    ],
    ids=["few-rows", "its-own-turn", "within-the-turn", "past-the-turn", "past-it-alone"],
)
def test_answers_are_rendered_inline_until_a_turn_holds_offload_array_rows(
    trained_repository: Path, request_: InferenceRequest, rows: int, thread: str
) -> None:
    """Rendering shares the inline array work's budget per turn; past it, answers are
    rendered on a thread of their own, not in the inference pool, where they would queue
    behind other batches' predictions."""
    plane = data_plane(trained_repository, offload_rows=256, offload_array_rows=2500)

    def rendered(result: InferenceResult) -> tuple[str, int]:
        return threading.current_thread().name, result.rows

    async def scenario() -> tuple[str, int]:
        result = await plane.infer(request_)
        return await plane.render(result.rows, rendered, result)

    try:
        name, count = asyncio.run(scenario())
    finally:
        plane.close()
    assert (name.split("_")[0], count) == (thread, rows)


def test_decision_set_answers_the_most_probable_sets_of_the_models_own_ranking(
    plane: DataPlane, model: Model
) -> None:
    rows = np.asarray(REFERENCE_INPUTS, dtype=np.float32)
    asked = infer(
        plane, InferenceRequest(Rows(rows.tolist(), "instances"), decision="set", top_k=3)
    )
    _, expected = model.rank_label_sets(rows, 3)
    assert asked.decision == "set"
    assert asked.top_k == 3
    assert asked.outputs == ("probabilities", "labels", "label_sets", "label_set_probabilities")
    assert asked.label_sets is not None
    np.testing.assert_array_equal(asked.label_sets.sets, expected.sets)
    np.testing.assert_array_equal(asked.label_sets.probabilities, expected.probabilities)
    np.testing.assert_array_equal(asked.positives, expected.sets[:, 0, :])
    assert asked.thresholds is plane.model().default_thresholds  # none took part
    alone = infer(plane, InferenceRequest(Rows(rows.tolist(), "instances"), decision="set"))
    assert alone.top_k is None  # not asked: the most probable set alone
    assert alone.label_sets is not None
    assert alone.label_sets.sets.shape == (2, 1, 3)
    np.testing.assert_array_equal(alone.label_sets.sets[:, 0], expected.sets[:, 0])
    assert infer(plane, InferenceRequest(rows_of(1))).label_sets is None


class Counting:
    """The real backend, counting the runs of the network a request costs, by kind."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.runs: list[str] = []

    def __call__(self, features: np.ndarray) -> np.ndarray:
        self.runs.append("probabilities")
        return self.backend(features)

    def with_label_sets(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.runs.append("probabilities and label sets")
        return self.backend.with_label_sets(features)


@pytest.mark.parametrize(
    ("decision", "top_k", "runs"),
    [
        (None, None, ["probabilities"]),
        ("set", None, ["probabilities and label sets"]),
        ("set", 5, ["probabilities and label sets"]),
    ],
    ids=["labels", "set", "set, top 5"],
)
def test_each_decision_costs_one_run_of_the_network(
    trained_repository: Path, decision: Any, top_k: Any, runs: list[str]
) -> None:
    counting: list[Counting] = []

    def load(path: Path) -> Model:
        model = load_model(path)
        counting.append(Counting(model.backend))
        return replace(model, backend=counting[-1])

    settings = Settings(model_dir=trained_repository, model_name=MODEL_NAME, poll_interval=0)
    repository = ModelRepository.from_settings(settings, loader=load)
    repository.refresh()
    plane = DataPlane(repository, settings, ServiceMetrics())
    try:
        counting[0].runs.clear()  # the parity check at load
        infer(plane, InferenceRequest(rows_of(4), decision=decision, top_k=top_k))
    finally:
        plane.close()
    assert counting[0].runs == runs


@pytest.fixture(scope="module")
def eleven_labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model with 11 labels and sigmoid heads, trained by the real CLI in seconds."""
    arguments = ("--n-classes", "11", "--head", "sigmoid", "--epochs", "1", "--no-cv")
    return trained_once(tmp_path_factory, "eleven-labels", *arguments)


def test_without_a_head_past_ten_labels_decision_set_is_refused_and_labels_served(
    eleven_labels: Path,
) -> None:
    plane = data_plane(eleven_labels)
    try:
        model = plane.model()
        assert (len(model.metadata.labels), model.label_set_count) == (11, 0)
        error = refusal(plane, InferenceRequest(rows_of(1), decision="set", fields=V2_FIELDS))
        assert infer(plane, InferenceRequest(rows_of(1))).positives.shape == (1, 11)
    finally:
        plane.close()
    assert (error.status_code, error.field) == (422, "parameters.decision")
    assert "11 labels and no label-set head" in error.message
    assert "at most 10 labels" in error.message
