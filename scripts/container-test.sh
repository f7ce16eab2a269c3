#!/usr/bin/env bash
# Build the service's image and check it the way it is run: `docker run` (plain, then with a
# read-only root filesystem and no capabilities, serving a signed version with
# MULTILABEL_TRUSTED_KEYS) and `docker compose up`. One PASS or FAIL line
# per check, then the figures (image size, time to ready, stop time); exits 1 if anything failed.
# Needs a Docker engine with Compose v2 (these machines: ../shared/tools/container-engine.sh).
#   bash scripts/container-test.sh
#   PYTHON_IMAGE=local/python:3.11-slim-bookworm bash scripts/container-test.sh  # another base
# Images are kept (tagged :container-test) so that the next run builds from cache; containers,
# networks and volumes are removed on exit. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

# The classic builder: BuildKit needs the buildx plugin, and fetches its frontend from a registry.
export DOCKER_BUILDKIT=0
IMAGE=multilabel-service:container-test
TRAINER_IMAGE=multilabel-trainer:container-test
PROJECT=multilabel-container-test-$$
PLAIN=multilabel-container-test-plain-$$
LOCKED=multilabel-container-test-readonly-$$
UID_EXPECTED=10001
STOP_GRACE=25          # compose's stop_grace_period; in-flight requests get 20 s of it
READY_TIMEOUT=90       # seconds for /health to answer 200
HEALTHY_TIMEOUT=90     # seconds for Docker's HEALTHCHECK to report healthy (interval 15 s)
python=${PYTHON:-python3}
scratch=$(mktemp -d)
build_args=()
if [ -n "${PYTHON_IMAGE:-}" ]; then
  build_args=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")
  export PYTHON_IMAGE  # docker-compose.yml passes it on to both builds
fi

passed=0
failed=0
pass() { echo "PASS  $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }
check() {  # check "what" command...: PASS or FAIL by the command's exit status
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
figures=()
figure() { figures+=("$*"); }

compose() {
  timeout 900 docker compose --project-name "$PROJECT" \
    --file docker-compose.yml --file "$scratch/compose.test.yml" "$@"
}
cleanup() {
  docker rm --force --volumes "$PLAIN" "$LOCKED" >/dev/null 2>&1 || true
  if [ -f "$scratch/compose.test.yml" ]; then
    compose down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
finish() {  # print the figures and the verdict, exit accordingly
  echo
  for line in "${figures[@]}"; do echo "  $line"; done
  echo "container checks: $passed passed, $failed failed"
  if [ "$failed" -eq 0 ]; then exit 0; fi
  exit 1
}
now() { date +%s.%N; }
seconds_since() { "$python" -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$1"; }

# HTTP and JSON, with the standard library only. Subcommands:
#   ready URL TIMEOUT            wait for 200 on URL (bounded); print the served name and version
#   predict BASE_URL METADATA    POST the artifact's parity inputs to /predict; exit 1 unless the
#                                probabilities match its recorded outputs and the labels its thresholds
#   version BASE_URL             the served model version (from /health)
#   json-log FILE                exit 1 unless every line of FILE is one JSON object
http() {
  "$python" - "$@" <<'PY'
import json
import math
import sys
import time
import urllib.error
import urllib.request


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, {}


command, *args = sys.argv[1:]
if command == "ready":
    url, deadline = args[0], time.monotonic() + float(args[1])
    while time.monotonic() < deadline:
        try:
            status, body = get(url)
            if status == 200:
                print(body["model"]["name"], body["model"]["version"])
                sys.exit(0)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    sys.exit(f"no 200 from {url} within {args[1]} s")
elif command == "version":
    print(get(args[0] + "/health")[1]["model"]["version"])
elif command == "predict":
    metadata = json.load(open(args[1]))
    parity, labels = metadata["parity"], metadata["labels"]
    thresholds = dict(zip(labels, metadata["thresholds"], strict=True))
    request = urllib.request.Request(
        args[0] + "/predict",
        data=json.dumps({"instances": parity["inputs"]}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        rows = json.load(response)["predictions"]
    assert len(rows) == len(parity["outputs"]), "one answer per row"
    for row, expected in zip(rows, parity["outputs"], strict=True):
        served = [row["probabilities"][label] for label in labels]
        for got, want in zip(served, expected, strict=True):
            assert math.isclose(got, want, rel_tol=0, abs_tol=parity["tolerance"]), (got, want)
        on = [label for label in labels if row["probabilities"][label] >= thresholds[label]]
        assert row["labels"] == on, (row["labels"], on)
    print(f"{len(rows)} rows as recorded in metadata.json (tolerance {parity['tolerance']})")
elif command == "json-log":
    lines = [line for line in open(args[0]).read().splitlines() if line.strip()]
    bad = [line for line in lines if not line.startswith("{") or not isinstance(json.loads(line), dict)]
    for line in bad:
        print("  not JSON:", line[:160])
    sys.exit(1 if bad or not lines else 0)
PY
}

published_port() { docker port "$1" 8000/tcp | head -1 | sed 's/.*://'; }
served_metadata() {  # CONTAINER BASE_URL → the served version's metadata.json, copied out
  local name version
  read -r name version < <(http ready "$2/health" 5)
  docker exec "$1" cat "/models/$name/$version/metadata.json" >"$scratch/metadata-$1.json"
  echo "$scratch/metadata-$1.json"
}
health_status() { docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1"; }
wait_healthy() {  # CONTAINER TIMEOUT
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(health_status "$1")" = healthy ] && return 0
    sleep 1
  done
  echo "  health: $(health_status "$1"); last probe: $(docker inspect --format \
    '{{with .State.Health}}{{range .Log}}{{.ExitCode}} {{.Output}}{{end}}{{end}}' "$1" | tail -c 300)"
  return 1
}
stop_cleanly() {  # CONTAINER LABEL: docker stop exits 0 within the grace period
  local start elapsed code
  start=$(now)
  timeout $((STOP_GRACE + 30)) docker stop --time "$STOP_GRACE" "$1" >/dev/null
  elapsed=$(seconds_since "$start")
  code=$(docker inspect --format '{{.State.ExitCode}}' "$1")
  figure "docker stop ($2): exit $code after $elapsed s (grace $STOP_GRACE s)"
  [ "$code" = 0 ] && "$python" -c "import sys; sys.exit(float(sys.argv[1]) >= $STOP_GRACE)" "$elapsed"
}
no_training_stack() {  # CONTAINER: TensorFlow, Keras, scikit-learn and training/ not installed
  docker exec "$1" python -c '
import importlib.util, sys
present = [m for m in ("tensorflow", "keras", "sklearn", "tf2onnx", "training") if importlib.util.find_spec(m)]
sys.exit(f"installed: {present}" if present else 0)'
}
commands_load() {  # CONTAINER: every console script left in /opt/venv/bin imports what it runs
  docker exec "$1" python -c '
import importlib.metadata, os, sys
scripts = [e for e in importlib.metadata.entry_points(group="console_scripts")
           if os.path.exists(os.path.join(sys.prefix, "bin", e.name))]
for script in scripts:
    script.load()
names = {e.name for e in scripts}
sys.exit(0 if "multilabel-serve" in names else f"multilabel-serve missing from {sorted(names)}")'
}
runs_as_uid() {  # CONTAINER UID: the image's user and the serving process (pid 1)
  [ "$(docker inspect --format '{{.Config.User}}' "$1")" = "$2:$2" ] \
    && [ "$(docker exec "$1" awk '/^Uid:/ { print $2 }' /proc/1/status)" = "$2" ] \
    && docker exec "$1" sh -c 'test -d "$HOME"'
}
grpc_answers() {  # CONTAINER: the gRPC port, from inside the container: health, then ModelInfer
  # with the served version's parity inputs (raw contents), answered as recorded
  docker exec "$1" python -c '
import json, os, pathlib
import grpc, numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from app.codecs.oip_grpc import open_inference_grpc_pb2 as messages
channel = grpc.insecure_channel("127.0.0.1:" + os.environ["MULTILABEL_GRPC_PORT"])
check = health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")
status = health_pb2_grpc.HealthStub(channel).Check(check, timeout=5).status
assert status == health_pb2.HealthCheckResponse.SERVING, status
root = pathlib.Path(os.environ["MULTILABEL_MODEL_DIR"]) / os.environ.get("MULTILABEL_MODEL_NAME", "multilabel")
version = max(int(path.name) for path in root.iterdir() if path.name.isdigit())
parity = json.loads((root / str(version) / "metadata.json").read_text())["parity"]
rows = np.asarray(parity["inputs"], dtype=np.float32)
tensor = messages.ModelInferRequest.InferInputTensor(name="features", datatype="FP32", shape=list(rows.shape))
request = messages.ModelInferRequest(model_name=root.name, inputs=[tensor], raw_input_contents=[rows.tobytes()])
infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
response = messages.ModelInferResponse.FromString(infer(request.SerializeToString(), timeout=10))
served = np.frombuffer(response.raw_output_contents[0], dtype="<f4").reshape(len(rows), -1)
assert np.allclose(served, parity["outputs"], rtol=0, atol=parity["tolerance"]), served
print(f"gRPC: {len(rows)} rows as recorded, version {response.model_version}")'
}
log_is_json() {  # CONTAINER: stdout and stderr so far, one JSON object per line
  docker logs "$1" >"$scratch/$1.log" 2>&1
  http json-log "$scratch/$1.log"
}

echo "== build"
mkdir -p "$scratch/empty/models"
cp Dockerfile "$scratch/empty/"
if timeout 600 docker build --force-rm --network=host "${build_args[@]}" --target model "$scratch/empty" \
  >"$scratch/empty.log" 2>&1; then
  fail "a build context whose models/ holds no version is refused"
else
  check "a build context whose models/ holds no version is refused, saying why" \
    grep -q "models/ in the build context holds no model version" "$scratch/empty.log"
fi
start=$(now)
if ! timeout 1800 docker build --network=host "${build_args[@]}" --tag "$IMAGE" . \
  >"$scratch/build.log" 2>&1; then
  tail -40 "$scratch/build.log"
  fail "the image builds"
  finish
fi
pass "the image builds ($(seconds_since "$start") s)"
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
base=$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)
base_size=$(docker image inspect --format '{{.Size}}' "${PYTHON_IMAGE:-$base}" 2>/dev/null || echo 0)
figure "image $IMAGE: $((size / 1000000)) MB (base ${PYTHON_IMAGE:-$base}: $((base_size / 1000000)) MB)"

echo "== docker run"
start=$(now)
if ! docker run --detach --name "$PLAIN" --publish 127.0.0.1::8000 "$IMAGE" >/dev/null; then
  fail "docker run"
  finish
fi
url=http://127.0.0.1:$(published_port "$PLAIN")
if ! http ready "$url/health" "$READY_TIMEOUT" >/dev/null; then
  docker logs "$PLAIN" 2>&1 | tail -20
  fail "/health answers 200"
  finish
fi
ready=$(seconds_since "$start")
pass "/health answers 200 ($ready s after docker run)"
figure "ready (docker run to the first 200 on /health): $ready s"
check "/predict answers the artifact's recorded parity outputs" \
  http predict "$url" "$(served_metadata "$PLAIN" "$url")"
check "the gRPC port answers health and the recorded parity outputs" grpc_answers "$PLAIN"
check "runs as uid $UID_EXPECTED, with an existing HOME" runs_as_uid "$PLAIN" "$UID_EXPECTED"
check "TensorFlow, Keras, scikit-learn and the training code are absent" no_training_stack "$PLAIN"
check "every command in /opt/venv/bin loads (multilabel-serve among them)" commands_load "$PLAIN"
start_healthy=$(now)
if wait_healthy "$PLAIN" "$HEALTHY_TIMEOUT"; then
  pass "the HEALTHCHECK turns healthy"
  figure "HEALTHCHECK healthy: $(seconds_since "$start_healthy") s after ready (its interval is 15 s)"
else
  fail "the HEALTHCHECK turns healthy"
fi
check "the log is JSON only (no plain-text line from ONNX Runtime or anyone)" \
  log_is_json "$PLAIN"
check "docker stop exits 0 within the grace period" stop_cleanly "$PLAIN" "plain"

echo "== a signed copy of the default model, made with the image's own python -m app.signing"
# An EC P-256 key pair and an OpenSSF model signing bundle (model.sig) in each version; the
# read-only run below serves it with MULTILABEL_TRUSTED_KEYS (the public key only is mounted).
signed=$scratch/signed
mkdir -p "$signed"
if docker run --rm --user "$(id -u):$(id -g)" --volume "$signed:/work" "$IMAGE" sh -c '
  cp -R /models /work/models && python -m app.signing generate --out /work/keys >/dev/null &&
  for version in /work/models/*/[0-9]*/; do
    python -m app.signing sign "$version" --key /work/keys/signing-key.pem || exit 1
  done' >"$scratch/sign.log" 2>&1; then
  pass "the image signs a copy of its default model ($(grep -c '^signed ' "$scratch/sign.log") version)"
else
  cat "$scratch/sign.log"
  fail "the image signs a copy of its default model"
fi

echo "== docker run --read-only --cap-drop ALL (2 workers; /tmp a tmpfs, as in deploy/k8s) with MULTILABEL_TRUSTED_KEYS"
if ! docker run --detach --name "$LOCKED" --publish 127.0.0.1::8000 --read-only --tmpfs /tmp \
  --cap-drop ALL --security-opt no-new-privileges --env MULTILABEL_WORKERS=2 \
  --volume "$signed/models:/models:ro" --volume "$signed/keys/signing-key.pub.pem:/keys/trusted.pem:ro" \
  --env MULTILABEL_TRUSTED_KEYS=/keys/trusted.pem "$IMAGE" >/dev/null; then
  fail "docker run --read-only --cap-drop ALL"
  finish
fi
url=http://127.0.0.1:$(published_port "$LOCKED")
if http ready "$url/health" "$READY_TIMEOUT" >/dev/null; then
  pass "read-only, trusted keys: /health answers 200"
  check "read-only, trusted keys: /predict answers the recorded parity outputs" \
    http predict "$url" "$(served_metadata "$LOCKED" "$url")"
  # The whole log first: `docker logs | grep -q` fails under pipefail when grep's early exit
  # cuts docker logs off (SIGPIPE) after a match.
  signature_checked() {
    local log
    log=$(docker logs "$LOCKED" 2>&1)
    grep -q '"message":"multilabel version [0-9]* is signed by key ' <<<"$log"
  }
  check "read-only, trusted keys: the served version's signature was verified (log)" signature_checked
  check "read-only, trusted keys: the gRPC port, shared by both workers, answers" grpc_answers "$LOCKED"
else
  docker logs "$LOCKED" 2>&1 | tail -20
  fail "read-only, trusted keys: /health answers 200"
fi
check "read-only: the log is JSON only" log_is_json "$LOCKED"
check "read-only: docker stop exits 0 within the grace period" stop_cleanly "$LOCKED" "read-only"

echo "== docker compose up"
# The test's own image tags, a free host port, and the host network for builds (as above).
cat >"$scratch/compose.test.yml" <<YAML
services:
  trainer:
    image: $TRAINER_IMAGE
    build:
      network: host
  api:
    image: $IMAGE
    build:
      network: host
    ports: !override
      - "127.0.0.1::8000"
YAML
start=$(now)
if ! compose up --detach --build >"$scratch/compose-up.log" 2>&1; then
  tail -40 "$scratch/compose-up.log"
  fail "docker compose up"
  finish
fi
figure "docker compose up --build (trainer stage included): $(seconds_since "$start") s"
trainer=$(compose ps --all --quiet trainer)
api=$(compose ps --all --quiet api)
trainer_ran_first() {
  local exit_code finished started
  exit_code=$(docker inspect --format '{{.State.ExitCode}} {{.State.Status}}' "$trainer")
  finished=$(docker inspect --format '{{.State.FinishedAt}}' "$trainer")
  started=$(docker inspect --format '{{.State.StartedAt}}' "$api")
  echo "  trainer: $exit_code, finished $finished; api started $started"
  [ "$exit_code" = "0 exited" ] && [[ "$finished" < "$started" ]]
}
check "compose: the trainer completed successfully before the api started" trainer_ran_first
url=http://127.0.0.1:$(compose port api 8000 | sed 's/.*://')
if read -r _ served < <(http ready "$url/health" "$READY_TIMEOUT"); then
  pass "compose: the api's /health answers 200 (version $served)"
else
  compose logs api | tail -20
  fail "compose: the api's /health answers 200"
  finish
fi
healthcheck_is_the_images() {  # CONTAINER: runs the image's HEALTHCHECK command, not its own
  local format='{{json .Config.Healthcheck.Test}}'
  [ "$(docker inspect --format "$format" "$1")" = "$(docker image inspect --format "$format" "$IMAGE")" ]
}
check "compose: the api runs the image's own healthcheck" healthcheck_is_the_images "$api"
check "compose: the api turns healthy" wait_healthy "$api" "$HEALTHY_TIMEOUT"
# A new version, published into the volume the way the README says: the trainer, run once.
# Small on purpose (seconds of training): what is checked is that it gets served.
if compose run --rm --no-deps -T trainer python -m training.train --output /models --quiet \
  --no-cv --epochs 5 --ensemble 1 --no-baselines --jobs 1 >"$scratch/publish.log" 2>&1; then
  published=$(now)
  wait_for_version() {  # BASE_URL VERSION TIMEOUT
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
      [ "$(http version "$1" 2>/dev/null)" = "$2" ] && return 0
      sleep 0.5
    done
    return 1
  }
  if wait_for_version "$url" "$((served + 1))" 60; then
    pass "compose: a version published into the volume is served (version $((served + 1)))"
    figure "compose: new version served $(seconds_since "$published") s after it was published (poll interval 10 s)"
  else
    compose logs api | tail -20
    fail "compose: a version published into the volume is served"
  fi
else
  tail -20 "$scratch/publish.log"
  fail "compose: the trainer publishes a new version into the volume"
fi
check "compose: the api's log is JSON only" log_is_json "$api"
finish
