#!/usr/bin/env bash
# Set up, then run every check CI runs: the lock agrees with pyproject.toml, lint, format,
# types, the whole test suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh train,dev
bash requirements/lock.sh --check
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# pytest exits 5 when it collects no tests; set -e makes that (like any failure) fail the run.
.venv/bin/pytest "$@"
