#!/usr/bin/env bash
# Create .venv (once) and install the project into it with the given extras, e.g. "train,dev".
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-train}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
