#!/usr/bin/env bash
# Set up, then run every check CI runs: lint, format, types, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh train,dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# pytest exits 5 when it collects no tests; set -e makes that (like any failure) fail the run.
.venv/bin/pytest "$@"
