#!/usr/bin/env bash
# Make .venv hold the project (editable) and the locked dependencies of the given extras:
#   bash scripts/setup.sh ""           the serving set only (requirements/serve.txt)
#   bash scripts/setup.sh train        + training (requirements/train.txt); also the default
#   bash scripts/setup.sh train,dev    + tests and tools (requirements/dev.txt: every extra),
#                                      and Debian's chromium and chromium-driver for browser tests
# Every version and hash comes from the lock (requirements/lock.sh); nothing is resolved here.
# Quick when nothing changed (about a second): scripts/serve.sh runs it on every start. It adds
# and changes packages but never removes any, so a smaller set keeps what a larger one added.
set -euo pipefail
cd "$(dirname "$0")/.."
source requirements/uv.sh

extras=${1-train}

# The smallest locked set that holds every extra asked for; an unknown extra is an error.
lock_for_extras() {
  .venv/bin/python - "$1" <<'PY'
import sys
import tomllib

declared = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
asked = {extra.strip() for extra in sys.argv[1].split(",") if extra.strip()}
unknown = sorted(asked - set(declared))
if unknown:
    sys.exit(f"error: pyproject.toml has no extra named {', '.join(unknown)}")
print("serve" if not asked else "train" if asked == {"train"} else "dev")
PY
}

# Debian's chromium and chromium-driver, for the real-browser tests: installed when missing if
# we are root; otherwise say so loudly and go on (those tests then say what is missing).
install_browser() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "WARNING: chromium and chromium-driver are missing, and installing them needs root:" >&2
    echo "WARNING:   sudo apt-get update && sudo apt-get install chromium chromium-driver" >&2
    return 0
  fi
  echo "setup: installing Debian's chromium and chromium-driver (browser tests)"
  if ! { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 900 \
    apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null; }; then
    echo "WARNING: could not install chromium and chromium-driver; the browser tests will fail" >&2
  fi
}

ensure_venv_with_uv
lock=requirements/$(lock_for_extras "$extras").txt
.venv/bin/uv pip install --quiet --python .venv/bin/python --require-hashes --requirement "$lock"
# The project itself, editable, without dependencies (they all came from the lock). Building it
# takes seconds, so only when pyproject.toml changed since the last time (or it is missing).
stamp=.venv/.project-pyproject.sha256
if ! sha256sum --check --status "$stamp" 2>/dev/null || ! .venv/bin/python -c \
  'import importlib.metadata as metadata; metadata.distribution("multilabel-service")' 2>/dev/null; then
  .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps --editable .
  sha256sum pyproject.toml >"$stamp"
fi
if [ "$lock" = requirements/dev.txt ]; then
  install_browser
fi
