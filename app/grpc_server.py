"""The gRPC edge: a ``grpc.aio`` server in each worker's own event loop, beside uvicorn, serving
the gRPC codec's RPCs (``app.codecs.grpc``) on the same data plane, with the standard health
(``grpc.health.v1``) and reflection services.

gRPC's own limits come from the settings: the largest message (``max_body_bytes``; past it
RESOURCE_EXHAUSTED), concurrent streams per connection, keepalive pings and how often a client
may send its own, idle connections, and a deadline on every call. Every call is checked
against the API keys (``authorization: Bearer <key>`` metadata, the same keys and rules as
HTTP's), gets a request id (``x-request-id`` metadata, or a new one; sent back in the trailing
metadata), and one access-log line and the request metrics, labelled ``grpc``.

With several workers each one binds the port with ``SO_REUSEPORT``, and the kernel spreads new
connections over them; a single worker binds it alone, so that a port already taken fails
start-up instead of being silently shared.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from time import perf_counter
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from app.codecs.grpc import RPCS, SERVICE, Rpc, status_of
from app.codecs.oip_grpc import open_inference_grpc_pb2
from app.errors import ServiceError
from app.services import Services

logger = logging.getLogger(__name__)

PROTOCOL = "grpc"
METHOD = "POST"  # every gRPC call is an HTTP/2 POST: the access log's and metrics' method
AUTHORIZATION = "authorization"
REQUEST_ID = "x-request-id"
KEEPALIVE_TIMEOUT_MS = 20_000
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# A health check's service names: "" is the server (live while it runs); the inference
# service is ready once a model is loaded.
READINESS_SERVICES = frozenset({SERVICE})
WATCH_INTERVAL = 1.0
_READ_METADATA = frozenset({AUTHORIZATION, REQUEST_ID})
HealthContext = grpc.aio.ServicerContext[
    health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
]


class GrpcServer:
    """The gRPC server of one worker, on the services its lifespan built."""

    def __init__(self, services: Services):
        self.services = services
        settings = services.settings
        self.address = _address(settings.host, settings.grpc_port)
        self._server = grpc.aio.server(options=_options(services))
        self._deadlines = Deadlines(settings.grpc_deadline)
        self._server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    SERVICE, {rpc.name: self._method(rpc) for rpc in RPCS}
                )
            ]
        )
        health_pb2_grpc.add_HealthServicer_to_server(Health(services), self._server)
        _enable_reflection(self._server)

    async def start(self) -> None:
        """Bind the port and start serving; a port that cannot be bound stops start-up."""
        try:
            bound = self._server.add_insecure_port(self.address)
        except RuntimeError as error:
            raise OSError(f"cannot listen for gRPC on {self.address}: {error}") from error
        if bound == 0:
            raise OSError(f"cannot listen for gRPC on {self.address}")
        await self._server.start()
        logger.info("gRPC: listening on %s", self.address)

    async def stop(self, grace: float) -> None:
        """Refuse new calls; calls in flight get ``grace`` seconds to finish."""
        await self._server.stop(grace)

    def _method(self, rpc: Rpc) -> grpc.RpcMethodHandler[bytes, bytes]:
        """The RPC's handler with the edge's part around it: API key, request id, deadline,
        errors as status codes, the access log and metrics. Requests and responses stay bytes
        here: the codec parses and serializes them."""
        services = self.services
        dataplane, observer, api_keys = services.dataplane, services.observer, services.api_keys
        deadlines = self._deadlines
        handler, path, public = rpc.handler, rpc.path, rpc.public

        async def call(data: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            started = perf_counter()
            task = asyncio.current_task()
            assert task is not None  # grpc.aio runs every call in a task of its own
            headers = _headers(context.invocation_metadata())
            request_id = observer.request_id(headers.get(b"x-request-id"))
            trailing: tuple[tuple[str, str], ...] = ((REQUEST_ID, request_id),)

            def record(status: str, rows: int | None = None, model: Any = None) -> None:
                seconds = perf_counter() - started
                observer.record(
                    METHOD, path, path, status, seconds, request_id, rows, model, protocol=PROTOCOL
                )

            deadlines.start(task)
            try:
                if not public:
                    api_keys.check(headers)
                reply = await handler(dataplane, data)
            except ServiceError as error:
                code, message = status_of(error), error.message
                retry = error.headers.get("Retry-After")
                if retry is not None:
                    trailing = (*trailing, ("retry-after", retry))
            except asyncio.CancelledError:  # ours passed, or the client went away or gave up
                if not deadlines.passed(task):
                    record(grpc.StatusCode.CANCELLED.name)
                    raise
                code = grpc.StatusCode.DEADLINE_EXCEEDED
                message = f"the call did not finish within {deadlines.limit:g} s"
            except Exception:
                logger.exception("unhandled error on %s", path)
                code, message = grpc.StatusCode.INTERNAL, "internal server error"
            else:
                # Recorded before the answer leaves, as the HTTP edge does after its send.
                record("OK", reply.rows, reply.model)
                context.set_trailing_metadata(trailing)
                return reply.message
            finally:
                deadlines.finish(task)
            record(code.name)
            await context.abort(code, message, trailing)
            raise AssertionError("unreachable: abort raises")  # pragma: no cover

        return grpc.unary_unary_rpc_method_handler(call)


class Deadlines:
    """Every call's deadline on one timer. Each call gets the same limit from when it starts,
    so the oldest call's deadline always passes first: a queue in start order and a timer for
    its head do what a timer per call (``asyncio.timeout``) does, which cost about a tenth of
    a one-row call's CPU under load (docs/performance.md)."""

    def __init__(self, limit: float):
        self.limit = limit
        self._due: dict[asyncio.Task[Any], float] = {}  # in start order, so in deadline order
        self._passed: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, task: asyncio.Task[Any]) -> None:
        """Start the clock of the call ``task`` runs."""
        loop = asyncio.get_running_loop()
        due = self._due[task] = loop.time() + self.limit
        if self._timer is None:
            self._timer = loop.call_at(due, self._expire)

    def finish(self, task: asyncio.Task[Any]) -> None:
        """The call is over, answered or not."""
        self._due.pop(task, None)
        self._passed.discard(task)

    def passed(self, task: asyncio.Task[Any]) -> bool:
        """Whether the call was cancelled because its deadline passed: then the task is told
        to forget that cancellation, as ``asyncio.timeout`` does, and the call answers."""
        if task not in self._passed:
            return False
        task.uncancel()
        return True

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._timer = None
        while self._due:
            task, due = next(iter(self._due.items()))
            if due > now:
                self._timer = loop.call_at(due, self._expire)
                return
            del self._due[task]
            self._passed.add(task)
            task.cancel()


class Health(health_pb2_grpc.HealthServicer):
    """``grpc.health.v1``, as Kubernetes' ``grpc:`` probes ask it: the server ("") is serving
    while it runs; ``inference.GRPCInferenceService`` once a model version is loaded. Never
    behind an API key."""

    def __init__(self, services: Services):
        self.dataplane = services.dataplane

    def _status(self, service: str) -> int:
        if service == "" or (service in READINESS_SERVICES and self.dataplane.ready):
            return health_pb2.HealthCheckResponse.SERVING
        if service in READINESS_SERVICES:
            return health_pb2.HealthCheckResponse.NOT_SERVING
        return health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

    async def Check(  # noqa: N802 (the service's method name)
        self,
        request: health_pb2.HealthCheckRequest,
        context: HealthContext,
    ) -> health_pb2.HealthCheckResponse:
        status = self._status(request.service)
        if status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(  # noqa: N802
        self,
        request: health_pb2.HealthCheckRequest,
        context: HealthContext,
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        """The status now, then each change (looked at every second)."""
        last = None
        while True:
            status = self._status(request.service)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            await asyncio.sleep(WATCH_INTERVAL)


def _options(services: Services) -> list[tuple[str, int]]:
    settings = services.settings
    return [
        ("grpc.max_receive_message_length", settings.max_body_bytes),
        ("grpc.max_concurrent_streams", settings.grpc_max_concurrent_streams),
        ("grpc.keepalive_time_ms", _ms(settings.grpc_keepalive_time)),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        (
            "grpc.http2.min_ping_interval_without_data_ms",
            int(settings.grpc_min_ping_interval * 1000),
        ),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.max_connection_idle_ms", _ms(settings.grpc_max_connection_idle)),
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
    ]


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _headers(metadata: Iterable[tuple[str, str | bytes]] | None) -> dict[bytes, bytes]:
    """The metadata the edge reads (API key, request id), as the HTTP edge's headers."""
    found: dict[bytes, bytes] = {}
    for key, value in metadata or ():
        if key in _READ_METADATA and isinstance(value, str):
            found[key.encode()] = value.encode()
    return found


def _enable_reflection(server: grpc.aio.Server) -> None:
    """Server reflection over the inference, health and reflection services. The inference
    messages live in a descriptor pool of their own (app/codecs/oip_grpc/SOURCE.md): the other
    two services' files join it, so that one pool describes everything served."""
    pool = open_inference_grpc_pb2.DESCRIPTOR.pool
    for module in (health_pb2, reflection_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    names = (SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server, pool=pool)
