"""The Open Inference Protocol over gRPC, side by side: ours, two bare ``grpc.aio`` ceilings
(``bench/grpc_ceiling.py``: a constant reply, and the work alone), KServe's and MLServer's gRPC
servers (``--peers``), each serving the same ONNX file, one worker each.

Driven by h2load (Debian's nghttp2-client) with a pre-framed request (gRPC's 5-byte prefix,
then a ModelInferRequest with raw contents), ``content-type: application/grpc`` and
``te: trailers``: a Python client saturates before the servers do. h2load counts HTTP/2
answers, and a gRPC error is an HTTP 200 too: so each server's answer to the same request is
checked first, with a real call, and a server whose answer is not right is not measured.

All servers run at once and are measured in interleaved rounds, so that the ratios compare
runs made minutes apart at most seconds apart: on a shared machine, the speed of a server
measured alone drifted by a third between runs (docs/performance.md).

    .venv/bin/python -m bench.grpc_bench [--peers] [--seconds 3] [--rounds 3]  # on its own
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
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
WORK_CEILING = "grpc-work-1"
CONSTANT_CEILING = "grpc-ceiling-1"  # the same work every round: its spread is the drift
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
    rounds: dict[str, list[float | None]] = field(default_factory=dict)  # req/s, each round
    rates: dict[str, float] = field(default_factory=dict)  # workload → median req/s
    work_ratios: dict[str, float] = field(default_factory=dict)  # median per-round ratio
    # The lowest and highest per-round ratio: how far one round alone could have misled.
    ratio_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def catalogue(model: ServedModel, peers: bool) -> list[GrpcServer]:
    thresholds = ",".join(str(t) for t in model.thresholds)
    python = sys.executable
    ceiling = (python, "-m", "bench.grpc_ceiling", "{grpc}")
    servers = [
        _ours(model),
        GrpcServer(
            CONSTANT_CEILING,
            "gRPC constant ceiling (bench/grpc_ceiling.py)",
            (*ceiling, "constant"),
            constant=True,
        ),
        GrpcServer(
            WORK_CEILING,
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
    model: ServedModel, *, peers: bool, seconds: int, warmup: int, rounds: int = 1
) -> list[GrpcResult]:
    """Every server started and checked, then each workload measured in ``rounds`` rounds that
    visit every server in turn, in reverse order every other round: a drift in the machine's
    speed (a shared machine's neighbours) then falls on all of them alike. A server's rate is
    the median of its rounds, its ratio to the work ceiling the median of its rounds' ratios."""
    if shutil.which("h2load") is None:
        raise RuntimeError("h2load not found: apt-get install nghttp2-client")
    bodies = _request_bodies()
    servers = catalogue(model, peers)
    results = {server.key: GrpcResult(server.key, server.label) for server in servers}
    with ExitStack() as stack:
        addresses = {}
        for server in servers:
            print(f"== starting {server.label}", flush=True)
            log = WORK / "logs" / f"grpc-{server.key}.log"
            try:
                addresses[server.key] = stack.enter_context(running(server, log))
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                results[server.key].error = str(error)[:500]
                print(f"   failed: {results[server.key].error}", flush=True)
        for workload in WORKLOADS:
            request, path = bodies[workload.key]
            measured = []
            for server in servers:
                address = addresses.get(server.key)
                if address is None:
                    continue
                problem = check_answer(address, request, workload.rows, server.constant)
                if problem is None:
                    measured.append(server)
                else:
                    results[server.key].notes[workload.key] = f"not measured: {problem}"
                    print(f"   {server.label}, {workload.name}: not measured: {problem}")
            for round_ in range(rounds):
                print(f"\n== {workload.name}, round {round_ + 1} of {rounds}", flush=True)
                for server in measured if round_ % 2 == 0 else measured[::-1]:
                    result = results[server.key]
                    try:
                        rate, note = h2load(addresses[server.key], path, workload, seconds, warmup)
                    except (RuntimeError, subprocess.SubprocessError) as error:
                        result.notes[workload.key] = f"failed: {str(error)[:300]}"
                        result.rounds.setdefault(workload.key, []).append(None)
                        continue
                    result.rounds.setdefault(workload.key, []).append(rate)
                    result.notes[workload.key] = note
                    print(f"   {server.label}: {rate:,.0f} req/s ({note})", flush=True)
    _summarize(list(results.values()))
    return list(results.values())


def _request_bodies() -> dict[str, tuple[bytes, Path]]:
    """Each workload's request, and the file h2load sends (the same request, framed)."""
    pool = fresh_rows(2000)
    bodies = {}
    for workload in WORKLOADS:
        request, framed = framed_request(pool[: workload.rows])
        path = WORK / "grpc" / f"{workload.key}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(framed)
        bodies[workload.key] = (request, path)
    return bodies


def _summarize(results: Sequence[GrpcResult]) -> None:
    """Each server's median rate, and the median of its per-round ratios to the work ceiling
    (over the rounds that measured both)."""
    work = next((r for r in results if r.key == WORK_CEILING), None)
    for result in results:
        for key, rates in result.rounds.items():
            measured = [rate for rate in rates if rate is not None]
            if not measured:
                continue
            result.rates[key] = statistics.median(measured)
            ceiling = work.rounds.get(key, []) if work else []
            ratios = [
                rate / base
                for rate, base in zip(rates, ceiling, strict=False)
                if rate is not None and base
            ]
            if ratios:
                result.work_ratios[key] = statistics.median(ratios)
                result.ratio_ranges[key] = (min(ratios), max(ratios))


def markdown(results: Sequence[GrpcResult]) -> str:
    """The gRPC table: each server's median rate and median ratio to the work ceiling, over
    the interleaved rounds."""
    rounds = max((len(r) for result in results for r in result.rounds.values()), default=0)
    lines = [
        "## gRPC (Open Inference Protocol), raw contents, h2load",
        "",
        f"Every server running at once, measured in {rounds} interleaved rounds (each round "
        "visits every server, in reverse order every other round); the median rate, and the "
        "median of the per-round ratios to the work ceiling (and their range, where they "
        "differ).",
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
            cells.append(f"{rate:,.0f} req/s{_ratio_shown(result, workload.key)}")
        lines.append(f"| {result.label} | " + " | ".join(cells) + " |")
    drift = _drift(results)
    if drift:
        lines += ["", drift]
    return "\n".join(lines) + "\n"


def _ratio_shown(result: GrpcResult, key: str) -> str:
    ratio = result.work_ratios.get(key)
    if ratio is None:
        return ""
    low, high = result.ratio_ranges[key]  # set with the ratio, by _summarize
    spread = f"; rounds {low:.2f} to {high:.2f}" if high - low >= 0.005 else ""
    return f" ({ratio:.2f}x work ceiling{spread})"


def _drift(results: Sequence[GrpcResult]) -> str | None:
    """How much the machine's speed moved during the rounds, as the constant ceiling (the
    same work every round) shows it: ratios cancel a drift slower than a round, not one
    within it."""
    constant = next((r for r in results if r.key == CONSTANT_CEILING), None)
    if constant is None:
        return None
    spans = []
    for workload in WORKLOADS:
        measured = [rate for rate in constant.rounds.get(workload.key, []) if rate]
        if len(measured) > 1:
            low, high = min(measured), max(measured)
            spans.append(f"{low:,.0f} to {high:,.0f} req/s ({high / low:.2f}x) at {workload.name}")
    if not spans:
        return None
    return (
        "Drift: the constant ceiling does the same work in every round; its rate ranged from "
        + ", and from ".join(spans)
        + "."
    )


def to_json(results: Sequence[GrpcResult]) -> list[dict[str, Any]]:
    return [vars(result) for result in results]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_bench", description=__doc__)
    parser.add_argument("--peers", action="store_true", help="KServe's and MLServer's gRPC too")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--models", type=Path, default=WORK / "models")
    options = parser.parse_args(argv)
    model = served_model(ensure_model(options.models.resolve()))
    results = run(
        model,
        peers=options.peers,
        seconds=options.seconds,
        warmup=options.warmup,
        rounds=options.rounds,
    )
    print("\n" + markdown(results))
    (WORK / "grpc" / "latest.json").write_text(json.dumps(to_json(results), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
