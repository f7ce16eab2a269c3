"""The servers one run measures, each started as its users start it, on 127.0.0.1.

| key | what |
|---|---|
| ours-1, ours-2 | ``python -m app``, default settings, 1 or 2 workers |
| ceiling-1, ceiling-2 | bench/ceiling.py: bare ASGI, orjson parse, constant reply |
| ceiling-binary-1 | bench/ceiling_binary.py: bare ASGI, binary V2 body viewed with numpy |
| ceiling-work-1 | bench/ceiling_work.py: bare ASGI, only the work (parse, float32, ONNX, render) |
| tutorial-1 | bench/tutorial.py: FastAPI + pydantic + Keras ``model.predict`` |
| kserve-1 | KServe's ModelServer with bench/peers/kserve_model.py (``--peers``) |
| mlserver-1 | MLServer, bench/peers/mlserver_model.py, parallel_workers 0, NumpyCodec (--peers) |
| mlserver-list-1 | the same, one FP32 output from ``p.ravel().tolist()``: stronger (--peers) |
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.peers.pins import KSERVE, MLSERVER, PeerPins
from bench.peers.virtualenvs import ensure_virtualenv, installed_versions
from bench.prepare import ROOT, WORK, ServedModel
from bench.workloads import BATCH_OF_FORM, FORMS, MODEL_NAME, NATIVE, V1, V2_BINARY, V2_JSON

OURS, CEILING, TUTORIAL, PEER = "ours", "ceiling", "tutorial", "peer"
WORK_CEILING = "work ceiling"  # answers like ours: checked as ours are
PEERS_DIR = WORK / "peers"
UVICORN = (sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}")
FAST_UVICORN = ("--loop", "uvloop", "--http", "httptools", "--log-level", "warning")
ALL_FORMS = frozenset(form.key for form in FORMS)
JSON_FORMS = ALL_FORMS - {V2_BINARY.key}
# Worker scaling is read at 1 row, c=32 (and batches for context): enough for the 2-worker
# target, without doubling the run.
SCALING_WORKLOADS = frozenset({"native-1-c32", "native-1000"})
# The work ceiling is read where the work dominates: the 1000-row batches of every form.
BATCH_WORKLOADS = frozenset(BATCH_OF_FORM.values())
# Versions reported beside each server's figures.
STACK = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "onnxruntime", "numpy")


@dataclass(frozen=True)
class Server:
    key: str
    label: str
    kind: str  # OURS, CEILING, TUTORIAL or PEER
    command: tuple[str, ...]
    ready_path: str
    forms: frozenset[str]  # the wire forms it answers
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    workloads: frozenset[str] | None = None  # None: every workload of its forms
    min_duration_s: int = 0  # a server this slow needs a longer window for enough requests
    prepare: Callable[[], None] | None = None  # run before it starts; may raise
    versions: Callable[[], dict[str, str]] = dict

    def serves(self, form: str, workload: str) -> bool:
        return form in self.forms and (self.workloads is None or workload in self.workloads)


def ours(model: ServedModel, workers: int) -> Server:
    """Our service exactly as deployed: ``python -m app``, default settings."""
    env = {
        "MULTILABEL_MODEL_DIR": str(model.repository),
        "MULTILABEL_MODEL_NAME": MODEL_NAME,
        "MULTILABEL_HOST": "127.0.0.1",
        "MULTILABEL_PORT": "{port}",
        "MULTILABEL_GRPC_PORT": "{port2}",  # on, as deployed, on a free port of its own
        "MULTILABEL_WORKERS": str(workers),
    }
    return Server(
        f"ours-{workers}",
        f"ours, {_workers(workers)} (python -m app)",
        OURS,
        (sys.executable, "-m", "app"),
        "/health/ready",
        ALL_FORMS,
        workers,
        env,
        workloads=None if workers == 1 else SCALING_WORKLOADS,
        versions=_our_versions,
    )


def ceiling(workers: int) -> Server:
    """The JSON ceiling on the same server stack as ours (uvicorn, uvloop, httptools)."""
    command = (
        *UVICORN,
        *FAST_UVICORN,
        *("--no-access-log", "--workers", str(workers), "bench.ceiling:app"),
    )
    return Server(
        f"ceiling-{workers}",
        f"JSON ceiling, {_workers(workers)} (bench/ceiling.py)",
        CEILING,
        command,
        "/",
        JSON_FORMS,
        workers,
        workloads=None if workers == 1 else SCALING_WORKLOADS,
        versions=_our_versions,
    )


def ceiling_binary() -> Server:
    """The binary-body ceiling on the same stack, for the V2 binary form."""
    command = (*UVICORN, *FAST_UVICORN, "--no-access-log", "bench.ceiling_binary:app")
    return Server(
        "ceiling-binary-1",
        "binary ceiling, 1 worker (bench/ceiling_binary.py)",
        CEILING,
        command,
        "/",
        frozenset({V2_BINARY.key}),
        versions=_our_versions,
    )


def work_ceiling(model: ServedModel) -> Server:
    """The work ceiling on the same stack: every form, only the work its answer needs."""
    command = (*UVICORN, *FAST_UVICORN, "--no-access-log", "bench.ceiling_work:app")
    return Server(
        "ceiling-work-1",
        "work ceiling, 1 worker (bench/ceiling_work.py)",
        WORK_CEILING,
        command,
        "/",
        ALL_FORMS,
        env={"BENCH_MODEL": str(model.path)},
        workloads=BATCH_WORKLOADS,
        versions=_our_versions,
    )


def tutorial(model: ServedModel) -> Server:
    """The tutorial approach as tutorials run it: ``uvicorn main:app``, defaults."""
    return Server(
        "tutorial-1",
        "tutorial approach, 1 worker (bench/tutorial.py)",
        TUTORIAL,
        (*UVICORN, "bench.tutorial:app"),
        "/health",
        frozenset({NATIVE.key}),
        env={"BENCH_KERAS_MODEL": str(model.keras), "TF_CPP_MIN_LOG_LEVEL": "2"},
        min_duration_s=10,
        versions=_our_versions,
    )


def kserve(model: ServedModel) -> Server:
    """KServe's ModelServer (V1 and V2 REST), one worker, with our ONNX file."""
    python = _peer_python(KSERVE)
    command = (
        str(python),
        *("-m", "bench.peers.kserve_model", "--model_name", MODEL_NAME),
        *("--onnx", str(model.onnx), "--thresholds", _thresholds(model)),
        *("--http_port", "{port}", "--grpc_port", "{port2}", "--workers", "1"),
    )
    return Server(
        "kserve-1",
        f"KServe {KSERVE.version} ModelServer, 1 worker",
        PEER,
        command,
        f"/v2/models/{MODEL_NAME}/ready",
        frozenset({V1.key, V2_JSON.key}),
        env={"PYTHONPATH": str(ROOT)},  # to import bench.peers.kserve_model
        cwd=PEERS_DIR / "kserve-run",
        prepare=lambda: _ensure_peer(KSERVE),
        versions=lambda: installed_versions(python, ("kserve", *STACK)),
    )


def mlserver(model: ServedModel, *, list_output: bool = False) -> Server:
    """MLServer (V2 REST), inference in the server process (parallel_workers 0). Its runtime
    answers both outputs through MLServer's ``NumpyCodec`` or (``list_output``, the stronger
    setup) one FP32 output built as ``ResponseOutput(data=p.ravel().tolist())``."""
    python = _peer_python(MLSERVER)
    variant = "list" if list_output else "numpy"
    repository = PEERS_DIR / f"mlserver-{variant}-repository"
    runtime = "OnnxListRuntime" if list_output else "OnnxMultilabelRuntime"

    def prepare() -> None:
        _ensure_peer(MLSERVER)
        _write_mlserver_repository(repository, model, runtime)

    key, what = (
        ("mlserver-list-1", "one FP32 output from a list")
        if list_output
        else ("mlserver-1", "NumpyCodec, two outputs")
    )
    return Server(
        key,
        f"MLServer {MLSERVER.version}, 1 worker (parallel_workers=0), {what}",
        PEER,
        (str(python.parent / "mlserver"), "start", str(repository)),
        f"/v2/models/{MODEL_NAME}/ready",
        frozenset({V2_JSON.key}),
        # Ports from the environment: settings.json would override MLSERVER_* variables.
        env={
            "PYTHONPATH": str(ROOT),  # to import bench.peers.mlserver_model
            "MLSERVER_HTTP_PORT": "{port}",
            "MLSERVER_GRPC_PORT": "{port2}",
            "MLSERVER_METRICS_PORT": "{port3}",
        },
        cwd=PEERS_DIR / f"mlserver-{variant}-run",  # where MLServer keeps .metrics and .envs
        prepare=prepare,
        versions=lambda: installed_versions(python, ("mlserver", *STACK)),
    )


def _write_mlserver_repository(repository: Path, model: ServedModel, runtime: str) -> None:
    """MLServer's server settings and one model's settings, naming our runtime class."""
    model_dir = repository / MODEL_NAME
    model_dir.mkdir(parents=True, exist_ok=True)
    settings = {"parallel_workers": 0, "host": "127.0.0.1"}
    model_settings = {
        "name": MODEL_NAME,
        "implementation": f"bench.peers.mlserver_model.{runtime}",
        "parameters": {"uri": str(model.onnx), "extra": {"thresholds": list(model.thresholds)}},
    }
    (repository / "settings.json").write_bytes(orjson.dumps(settings, option=orjson.OPT_INDENT_2))
    (model_dir / "model-settings.json").write_bytes(
        orjson.dumps(model_settings, option=orjson.OPT_INDENT_2)
    )


def catalogue(model: ServedModel) -> list[Server]:
    """Every server, in the order a run measures them."""
    return [
        ours(model, 1),
        ceiling(1),
        ceiling_binary(),
        work_ceiling(model),
        tutorial(model),
        kserve(model),
        mlserver(model),
        mlserver(model, list_output=True),
        ours(model, 2),
        ceiling(2),
    ]


SERVER_KEYS = (
    "ours-1",
    "ceiling-1",
    "ceiling-binary-1",
    "ceiling-work-1",
    "tutorial-1",
    "kserve-1",
    "mlserver-1",
    "mlserver-list-1",
    "ours-2",
    "ceiling-2",
)
PEER_KEYS = ("kserve-1", "mlserver-1", "mlserver-list-1")


def _workers(count: int) -> str:
    return f"{count} worker{'s' if count > 1 else ''}"


def _thresholds(model: ServedModel) -> str:
    return ",".join(repr(threshold) for threshold in model.thresholds)


def _peer_python(peer: PeerPins) -> Path:
    return PEERS_DIR / peer.name / "bin" / "python"


def _ensure_peer(peer: PeerPins) -> None:
    ensure_virtualenv(peer, PEERS_DIR)


def _our_versions() -> dict[str, str]:
    versions = {}
    for name in STACK:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
