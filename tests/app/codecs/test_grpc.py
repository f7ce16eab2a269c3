"""The Open Inference Protocol over gRPC (``app.codecs.grpc``, served by ``app.grpc_server``) on
the real app and a really trained model, called with the codec's own messages as bytes.

Every RPC; answers equal to ``/predict``'s, typed and raw; parameters; errors as status codes;
API keys, request ids, the access log and metrics; the health and reflection services; the
stream cap, the message size limit and the deadline. What ModelInfer refuses, beside every
other protocol, is in ``test_strictness.py``; Triton's and KServe's own clients in
``tests/e2e/test_grpc_clients.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from app.codecs.grpc import SERVICE
from app.codecs.oip_grpc import open_inference_grpc_pb2 as messages
from tests.app.codecs.grpc_calls import (
    KEY,
    GrpcApp,
    grpc_app,
    infer_request,
    outputs_of,
    threshold,
)
from tests.app.codecs.protocols import native_outputs
from tests.support import MODEL_NAME, REFERENCE_INPUTS

MAX_ROWS = 1000
MAX_MESSAGE_BYTES = 65_536
ROWS = np.random.default_rng(21).integers(0, 30, size=(MAX_ROWS, 10)).tolist()
BIG_CALL_ROWS = 200_000


@pytest.fixture(scope="module")
def served(trained_repository: Path) -> Iterator[GrpcApp]:
    """One connection may carry one call at a time here (the stream cap test needs it)."""
    with grpc_app(
        trained_repository,
        max_rows=MAX_ROWS,
        max_body_bytes=MAX_MESSAGE_BYTES,
        grpc_max_concurrent_streams=1,
    ) as app:
        yield app


def test_server_and_model_say_live_ready_and_what_they_are(served: GrpcApp) -> None:
    live, _ = served.call("ServerLive", b"")
    assert messages.ServerLiveResponse.FromString(live).live
    ready, _ = served.call("ServerReady", b"")
    assert messages.ServerReadyResponse.FromString(ready).ready
    for version in ("", "1"):
        request = messages.ModelReadyRequest(name=MODEL_NAME, version=version)
        answer, _ = served.call("ModelReady", request.SerializeToString())
        assert messages.ModelReadyResponse.FromString(answer).ready
    server, _ = served.call("ServerMetadata", b"")
    assert messages.ServerMetadataResponse.FromString(server).name == "multilabel-service"
    request = messages.ModelMetadataRequest(name=MODEL_NAME, version="1")
    answer, _ = served.call("ModelMetadata", request.SerializeToString())
    metadata = messages.ModelMetadataResponse.FromString(answer)
    v2 = served.http.get(f"/v2/models/{MODEL_NAME}/versions/1").json()
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        (t["name"], t["datatype"], t["shape"]) for t in v2["inputs"]
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [
        (t["name"], t["datatype"], t["shape"]) for t in v2["outputs"]
    ]
    assert (list(metadata.versions), metadata.platform, dict(metadata.properties)) == (
        v2["versions"],
        v2["platform"],
        v2["properties"],
    )


@pytest.mark.parametrize("raw", [False, True], ids=["typed", "raw"])
@pytest.mark.parametrize("count", [1, MAX_ROWS])
def test_answers_equal_the_native_apis_and_come_as_they_were_asked(
    served: GrpcApp, raw: bool, count: int
) -> None:
    rows = ROWS[:count]
    response = served.infer(infer_request(rows, raw=raw, id="req-9"))
    assert bool(response.raw_output_contents) is raw
    assert (response.model_name, response.model_version, response.id) == (MODEL_NAME, "1", "req-9")
    answer = outputs_of(response)
    expected = native_outputs(served.http, rows)
    assert list(answer) == ["probabilities", "labels"]
    np.testing.assert_array_equal(answer["probabilities"], expected["probabilities"])
    np.testing.assert_array_equal(answer["labels"], expected["labels"])


def test_outputs_come_as_asked_in_their_order(served: GrpcApp) -> None:
    outputs = [messages.ModelInferRequest.InferRequestedOutputTensor(name="labels")]
    response = served.infer(infer_request(REFERENCE_INPUTS, raw=True, outputs=outputs))
    assert [output.name for output in response.outputs] == ["labels"]
    assert len(response.raw_output_contents) == 1


@pytest.mark.parametrize(
    ("parameters", "native"),
    [
        ({"threshold": threshold(0.3)}, 0.3),
        ({"threshold": threshold(1)}, 1),
        (
            {"threshold.label_1": threshold(0.9), "threshold.label_2": threshold(0)},
            {"label_1": 0.9, "label_2": 0},
        ),
        (
            {"threshold": threshold(0.3), "decision": threshold("labels"), "x": threshold(True)},
            0.3,
        ),
    ],
    ids=["one number", "an integer", "by label", "with the decision and another parameter"],
)
def test_thresholds_are_parameters_with_the_native_apis_meaning(
    served: GrpcApp, parameters: dict[str, Any], native: Any
) -> None:
    response = served.infer(infer_request(ROWS[:50], parameters=parameters))
    expected = native_outputs(served.http, ROWS[:50], threshold=native)
    np.testing.assert_array_equal(outputs_of(response)["labels"], expected["labels"])


STATUS_CASES: list[tuple[str, Any, grpc.StatusCode, str]] = [
    # (case, request bytes, status, in the message)
    (
        "unknown model",
        infer_request(REFERENCE_INPUTS, model_name="other").SerializeToString(),
        grpc.StatusCode.NOT_FOUND,
        "model 'other' is not served here",
    ),
    (
        "unknown version",
        infer_request(REFERENCE_INPUTS, model_version="7").SerializeToString(),
        grpc.StatusCode.NOT_FOUND,
        "version 7",
    ),
    (
        "not a ModelInferRequest",
        b"\xff\xff\xff",
        grpc.StatusCode.INVALID_ARGUMENT,
        "not a inference.ModelInferRequest",
    ),
    (
        "too many rows",
        infer_request(ROWS[:1] * (MAX_ROWS + 1), raw=True).SerializeToString(),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"exceed the limit of {MAX_ROWS} rows",
    ),
    (
        "a message over the size limit",
        infer_request(ROWS[:1] * 2 * MAX_ROWS, raw=True).SerializeToString(),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "larger than max",
    ),
    (
        "a threshold and thresholds by label",
        infer_request(
            REFERENCE_INPUTS,
            parameters={"threshold": threshold(0.5), "threshold.label_0": threshold(0.5)},
        ).SerializeToString(),
        grpc.StatusCode.INVALID_ARGUMENT,
        "not both",
    ),
    (
        "another decision",
        infer_request(
            REFERENCE_INPUTS, parameters={"decision": threshold("best")}
        ).SerializeToString(),
        grpc.StatusCode.INVALID_ARGUMENT,
        'unknown decision "best"',
    ),
    (
        "raw contents for two inputs",
        infer_request(
            REFERENCE_INPUTS, raw=True, raw_input_contents=[b"", b""]
        ).SerializeToString(),
        grpc.StatusCode.INVALID_ARGUMENT,
        "raw_input_contents holds 3 tensors but there are 1 inputs",
    ),
]


@pytest.mark.parametrize(
    ("request_", "code", "fragment"),
    [case[1:] for case in STATUS_CASES],
    ids=[case[0] for case in STATUS_CASES],
)
def test_errors_are_status_codes_with_a_message_that_says_why(
    served: GrpcApp, request_: bytes, code: grpc.StatusCode, fragment: str
) -> None:
    error = served.status("ModelInfer", request_)
    assert error.code() == code, error.details()
    assert fragment in error.details()


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [((), "requires an API key"), ((("authorization", "Bearer nope"),), "not valid")],
    ids=["no key", "a wrong key"],
)
def test_every_call_but_the_probes_needs_an_api_key(
    served: GrpcApp, metadata: Any, fragment: str
) -> None:
    for rpc in ("ModelInfer", "ModelMetadata", "ModelReady", "ServerMetadata"):
        error = served.status(rpc, infer_request(REFERENCE_INPUTS).SerializeToString(), metadata)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, rpc
        assert fragment in error.details()
    for rpc in ("ServerLive", "ServerReady"):
        served.call(rpc, b"", metadata)
    health = health_pb2_grpc.HealthStub(served.channel)
    assert (
        health.Check(health_pb2.HealthCheckRequest()).status
        == health_pb2.HealthCheckResponse.SERVING
    )


def test_each_call_has_a_request_id_one_log_line_and_its_metrics(
    served: GrpcApp, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        _, call = served.call(
            "ModelInfer",
            infer_request(REFERENCE_INPUTS).SerializeToString(),
            (*KEY, ("x-request-id", "grpc-trace-1")),
        )
        failed = served.status("ModelInfer", b"\xff", (*KEY, ("x-request-id", "grpc-trace-2")))
    assert ("x-request-id", "grpc-trace-1") in call.trailing_metadata()
    assert ("x-request-id", "grpc-trace-2") in failed.trailing_metadata()
    lines = [record.fields for record in caplog.records if record.name == "app.access"]  # type: ignore[attr-defined]
    path = f"/{SERVICE}/ModelInfer"
    assert [
        (line["protocol"], line["path"], line["status"], line["request_id"], line["rows"])
        for line in lines
    ] == [
        ("grpc", path, "OK", "grpc-trace-1", 2),
        ("grpc", path, "INVALID_ARGUMENT", "grpc-trace-2", None),
    ]
    metrics = served.http.get("/metrics").text
    assert (
        f'multilabel_http_requests_total{{method="POST",protocol="grpc",route="{path}",status="OK"}}'
        in metrics
    )


def test_the_health_service_answers_for_the_server_and_the_inference_service(
    served: GrpcApp,
) -> None:
    health = health_pb2_grpc.HealthStub(served.channel)
    for service in ("", SERVICE):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.RpcError) as unknown:
        health.Check(health_pb2.HealthCheckRequest(service="nope"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_describes_every_service(served: GrpcApp) -> None:
    database = ProtoReflectionDescriptorDatabase(served.channel)
    assert set(database.get_services()) >= {
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    described = database.FindFileContainingSymbol(f"{SERVICE}")
    assert "ModelInfer" in {method.name for method in described.service[0].method}


def test_past_a_connections_stream_cap_calls_wait_and_a_probe_on_its_own_connection_answers(
    served: GrpcApp,
) -> None:
    """The cap is one stream per connection here: a health Watch holds it."""
    health = health_pb2_grpc.HealthStub(served.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    live = served.channel.unary_unary(f"/{SERVICE}/ServerLive")
    with pytest.raises(grpc.RpcError) as waited:
        live(b"", timeout=1.0)  # never starts while the watch holds the one stream
    assert waited.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    options = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own
    with grpc.insecure_channel(served.address, options=options) as other:
        probe = health_pb2_grpc.HealthStub(other).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert probe.status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    assert messages.ServerLiveResponse.FromString(live(b"", timeout=10)).live


def test_without_a_model_the_service_is_live_not_ready_and_says_so(tmp_path: Path) -> None:
    with grpc_app(tmp_path) as empty:
        health = health_pb2_grpc.HealthStub(empty.channel)
        assert (
            health.Check(health_pb2.HealthCheckRequest()).status
            == health_pb2.HealthCheckResponse.SERVING
        )
        readiness = health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert readiness.status == health_pb2.HealthCheckResponse.NOT_SERVING
        ready, _ = empty.call("ServerReady", b"")
        assert not messages.ServerReadyResponse.FromString(ready).ready
        model, _ = empty.call(
            "ModelReady", messages.ModelReadyRequest(name=MODEL_NAME).SerializeToString()
        )
        assert not messages.ModelReadyResponse.FromString(model).ready
        error = empty.status("ModelInfer", infer_request(REFERENCE_INPUTS).SerializeToString())
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "not ready" in error.details()


def test_a_call_past_the_deadline_setting_ends_deadline_exceeded(trained_repository: Path) -> None:
    with grpc_app(trained_repository, grpc_deadline=0.001) as hurried:
        error = hurried.status("ModelInfer", infer_request(ROWS * 10, raw=True).SerializeToString())
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "within 0.001 s" in error.details()


def test_past_the_rows_in_flight_a_call_is_resource_exhausted_with_retry_after(
    trained_repository: Path,
) -> None:
    """A 200,000-row call holds the pool; a one-row call sent while it does is refused (the
    limit is 200,000 rows), with ``retry-after`` in its trailing metadata. The big call is
    that big so that its time in flight (milliseconds) outlasts the small call's trip."""
    big_rows = np.tile(np.asarray(ROWS, dtype=np.float32), (BIG_CALL_ROWS // len(ROWS), 1))
    big = infer_request(big_rows, raw=True).SerializeToString()
    small = infer_request(REFERENCE_INPUTS[:1]).SerializeToString()
    with grpc_app(
        trained_repository,
        max_rows=BIG_CALL_ROWS,
        max_inflight_rows=BIG_CALL_ROWS,
        max_body_bytes=2 * len(big),
        offload_rows=1,
        retry_after=3,
    ) as held:
        dataplane = held.http.app_state["services"].dataplane
        method = held.channel.unary_unary(f"/{SERVICE}/ModelInfer")
        refusals = []
        for _ in range(20):  # the big call may finish before the small one arrives: again
            future = method.future(big, metadata=KEY, timeout=60)
            while dataplane.rows_in_flight == 0 and not future.done():
                time.sleep(0.001)
            try:
                method(small, metadata=KEY, timeout=30)
            except grpc.RpcError as error:
                refusals.append(error)
            future.result()
            if refusals:
                break
    (refusal,) = refusals
    assert refusal.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"limit of {BIG_CALL_ROWS} rows in flight" in refusal.details()
    assert ("retry-after", "3") in refusal.trailing_metadata()
