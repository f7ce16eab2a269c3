#!/usr/bin/env bash
# The main job: set up, train the default model if there is none yet, serve it on 127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh train
.venv/bin/python -m training.train --if-missing
exec .venv/bin/python -m app
