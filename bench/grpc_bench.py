"""The Open Inference Protocol over gRPC, side by side: ours, two bare ``grpc.aio`` ceilings
(``bench/grpc_ceiling.py``: a constant reply, and the work alone), KServe's and MLServer's gRPC
servers (``--peers``), each serving the same ONNX file, one worker each.

Driven by h2load (Debian's nghttp2-client) with a pre-framed request (gRPC's 5-byte prefix,
then a ModelInferRequest with raw contents), ``content-type: application/grpc`` and
``te: trailers``: a Python client saturates before the servers do. h2load counts HTTP/2
answers, and a gRPC error is an HTTP 200 too: so each server's answer to the same request is
checked first, with a real call, and a server whose answer is not right is not measured.

    .venv/bin/python -m bench.grpc_bench [--peers] [--seconds 3]   # a short run on its own
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from app.codecs.oip_grpc.open_inference_grpc_pb2 import ModelInferRequest, ModelInferResponse
from bench.prepare import ROOT, WORK, ServedModel, ensure_model, fresh_rows, served_model
from bench.processes import free_port
from bench.servers import kserve, mlserver, ours
from bench.workloads import MODEL_NAME

INFER_PATH = "/inference.GRPCInferenceService/ModelInfer"
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class GrpcWorkload:
    key: str
    name: str
    rows: int
    connections: int


WORKLOADS = (
    GrpcWorkload("grpc-1-c32", "gRPC 1 row raw, c=32", 1, 32),
    GrpcWorkload("grpc-1000", "gRPC 1000 rows raw, c=4", 1000, 4),
)


@dataclass(frozen=True)
class GrpcServer:
    key: str
    label: str
    command: tuple[str, ...]  # "{grpc}" (and "{port}") filled with free ports
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    constant: bool = False  # answers a constant: only its framing is checked


@dataclass
class GrpcResult:
    key: str
    label: str
    rates: dict[str, float] = field(default_factory=dict)  # workload → requests per second
    notes: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def catalogue(model: ServedModel, peers: bool) -> list[GrpcServer]:
    thresholds = ",".join(str(t) for t in model.thresholds)
    python = sys.executable
    ceiling = (python, "-m", "bench.grpc_ceiling", "{grpc}")
    servers = [
        _ours(model),
        GrpcServer(
            "grpc-ceiling-1",
            "gRPC constant ceiling (bench/grpc_ceiling.py)",
            (*ceiling, "constant"),
            constant=True,
        ),
        GrpcServer(
            "grpc-work-1",
            "gRPC work ceiling (bench/grpc_ceiling.py: decode raw, ONNX, encode raw)",
            (*ceiling, "work", str(model.onnx), thresholds),
        ),
    ]
    if peers:
        for peer in (kserve(model), mlserver(model)):
            if peer.prepare is not None:
                peer.prepare()
            command = tuple(part.replace("{port2}", "{grpc}") for part in peer.command)
            env = {key: value.replace("{port2}", "{grpc}") for key, value in peer.env.items()}
            servers.append(GrpcServer(peer.key, peer.label + ", gRPC", command, env, peer.cwd))
    return servers


def _ours(model: ServedModel) -> GrpcServer:
    server = ours(model, 1)
    env = {**server.env, "MULTILABEL_GRPC_PORT": "{grpc}"}
    return GrpcServer("ours-1", "ours, 1 worker (python -m app)", server.command, env)


def framed_request(rows: list[list[float]]) -> tuple[bytes, bytes]:
    """The ModelInferRequest for ``rows`` (raw contents), and the same with gRPC's framing."""
    matrix = np.asarray(rows, dtype=np.float32)
    tensor = ModelInferRequest.InferInputTensor(
        name="features", datatype="FP32", shape=list(matrix.shape)
    )
    request = ModelInferRequest(
        model_name=MODEL_NAME, inputs=[tensor], raw_input_contents=[matrix.tobytes()]
    ).SerializeToString()
    return request, b"\x00" + len(request).to_bytes(4, "big") + request


def _fill(text: str, ports: dict[str, str]) -> str:
    for placeholder, port in ports.items():
        text = text.replace(placeholder, port)
    return text


@contextmanager
def running(server: GrpcServer, log: Path) -> Iterator[str]:
    """The server started, once its gRPC port answers a one-row ModelInfer; its address."""
    ports = {"{grpc}": str(free_port()), "{port}": str(free_port()), "{port3}": str(free_port())}
    ports["{port2}"] = ports["{grpc}"]
    env = {key: _fill(value, ports) for key, value in {**os.environ, **server.env}.items()}
    log.parent.mkdir(parents=True, exist_ok=True)
    server.cwd.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{ports['{grpc}']}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [_fill(part, ports) for part in server.command],
            env=env,
            cwd=server.cwd,
            stdout=output,
            stderr=output,
        )
    try:
        request, _ = framed_request([[3, 3, 6, 7, 8, 2, 11, 11, 1, 3]])
        deadline = time.monotonic() + READY_TIMEOUT_S
        with grpc.insecure_channel(address) as channel:
            call = channel.unary_unary(INFER_PATH)
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"exited: {log.read_text(errors='replace')[-1500:]}")
                try:
                    call(request, timeout=5)
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"no answer within {READY_TIMEOUT_S} s") from None
                    time.sleep(0.2)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_answer(address: str, request: bytes, rows: int, constant: bool) -> str | None:
    """What is wrong with the server's answer to ``request`` (None: nothing)."""
    with grpc.insecure_channel(address) as channel:
        try:
            answer = ModelInferResponse.FromString(
                channel.unary_unary(INFER_PATH)(request, timeout=30)
            )
        except grpc.RpcError as error:
            return f"{error.code()}: {error.details()}"  # type: ignore[attr-defined]
    if constant:
        return None
    names = [output.name for output in answer.outputs]
    if "probabilities" not in names:
        return f"no probabilities output: {names}"
    index = names.index("probabilities")
    if answer.raw_output_contents:
        values = np.frombuffer(answer.raw_output_contents[index], dtype="<f4")
    else:
        values = np.asarray(answer.outputs[index].contents.fp32_contents, dtype=np.float32)
    return None if values.size == rows * 3 else f"{values.size} probabilities for {rows} rows"


H2LOAD_RATE = re.compile(r"finished in [\d.]+\w*, ([\d.]+) req/s")
H2LOAD_REQUESTS = re.compile(
    r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored"
)


def h2load(
    address: str, body: Path, workload: GrpcWorkload, seconds: int, warmup: int
) -> tuple[float, str]:
    command = [
        "h2load",
        f"--duration={seconds}",
        f"--warm-up-time={warmup}",
        f"--clients={workload.connections}",
        "--max-concurrent-streams=1",
        "--threads=1",
        f"--data={body}",
        "--header=content-type: application/grpc",
        "--header=te: trailers",
        f"http://{address}{INFER_PATH}",
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + warmup + 60
    )
    rate = H2LOAD_RATE.search(completed.stdout)
    requests = H2LOAD_REQUESTS.search(completed.stdout)
    if rate is None or requests is None:
        raise RuntimeError(
            f"h2load printed no result: {completed.stdout[-500:]}{completed.stderr[-500:]}"
        )
    failed, errored = int(requests.group(4)), int(requests.group(5))
    note = f"{requests.group(3)} succeeded, {failed} failed, {errored} errored"
    return float(rate.group(1)), note


def run(
    model: ServedModel, *, peers: bool, seconds: int, warmup: int, repeat: int = 1
) -> list[GrpcResult]:
    """Every server in turn: start, check, measure each workload (median of ``repeat``), stop."""
    if shutil.which("h2load") is None:
        raise RuntimeError("h2load not found: apt-get install nghttp2-client")
    pool = fresh_rows(2000)
    bodies = {}
    for workload in WORKLOADS:
        request, framed = framed_request(pool[: workload.rows])
        path = WORK / "grpc" / f"{workload.key}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(framed)
        bodies[workload.key] = (request, path)
    results = []
    for server in catalogue(model, peers):
        result = GrpcResult(server.key, server.label)
        results.append(result)
        print(f"\n== {server.label}", flush=True)
        try:
            with running(server, WORK / "logs" / f"grpc-{server.key}.log") as address:
                for workload in WORKLOADS:
                    request, path = bodies[workload.key]
                    problem = check_answer(address, request, workload.rows, server.constant)
                    if problem is not None:
                        result.notes[workload.key] = f"not measured: {problem}"
                        print(f"   {workload.name}: not measured: {problem}", flush=True)
                        continue
                    runs = [h2load(address, path, workload, seconds, warmup) for _ in range(repeat)]
                    rate, note = sorted(runs)[len(runs) // 2]
                    result.rates[workload.key] = rate
                    result.notes[workload.key] = note
                    print(f"   {workload.name}: {rate:,.0f} req/s ({note})", flush=True)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            result.error = str(error)[:500]
            print(f"   failed: {result.error}", flush=True)
    return results


def markdown(results: Sequence[GrpcResult]) -> str:
    """The gRPC table, with each server's ratio to the work ceiling."""
    work = next((r for r in results if r.key == "grpc-work-1"), None)
    lines = [
        "## gRPC (Open Inference Protocol), raw contents, h2load",
        "",
        "| server | " + " | ".join(w.name for w in WORKLOADS) + " |",
        "|---|" + "---|" * len(WORKLOADS),
    ]
    for result in results:
        cells = []
        for workload in WORKLOADS:
            rate = result.rates.get(workload.key)
            if rate is None:
                cells.append(result.error or result.notes.get(workload.key, "not measured"))
                continue
            base = work.rates.get(workload.key) if work else None
            ratio = f" ({rate / base:.2f}x work ceiling)" if base else ""
            cells.append(f"{rate:,.0f} req/s{ratio}")
        lines.append(f"| {result.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_json(results: Sequence[GrpcResult]) -> list[dict[str, Any]]:
    return [vars(result) for result in results]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_bench", description=__doc__)
    parser.add_argument("--peers", action="store_true", help="KServe's and MLServer's gRPC too")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--models", type=Path, default=WORK / "models")
    options = parser.parse_args(argv)
    model = served_model(ensure_model(options.models.resolve()))
    results = run(
        model,
        peers=options.peers,
        seconds=options.seconds,
        warmup=options.warmup,
        repeat=options.repeat,
    )
    print("\n" + markdown(results))
    (WORK / "grpc" / "latest.json").write_text(json.dumps(to_json(results), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
