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
# The suite on every core (pytest-xdist): tests are handed out a module at a time
# (--dist loadscope), so the tests of one module share its server processes and fixtures; the
# 25 slowest steps are listed at the end.
# pytest exits 5 when it collects no tests; set -e makes that (like any failure) fail the run.
.venv/bin/pytest --numprocesses "${PYTEST_WORKERS:-auto}" --dist loadscope --durations=25 "$@"
