#!/usr/bin/env bash
# The main job: serve the model on 127.0.0.1:8000, setting up .venv first.
# The repository commits the default model (models/multilabel/1/), so a fresh clone installs
# only what serving needs and answers within seconds of the install. Only when the model
# repository holds no version yet is the training extra installed and the default model trained.
set -euo pipefail
cd "$(dirname "$0")/.."
# The same variables the service reads (app/config.py), so both look at the same repository.
model_dir=${MULTILABEL_MODEL_DIR:-${MODEL_DIR:-models}}
model_name=${MULTILABEL_MODEL_NAME:-${MODEL_NAME:-multilabel}}

has_version() {
  local version
  for version in "$model_dir/$model_name"/[1-9]*/; do
    [ -f "${version}metadata.json" ] && return 0
  done
  return 1
}

if has_version; then
  bash scripts/setup.sh ""
else
  bash scripts/setup.sh train
  .venv/bin/python -m training.train --if-missing --output "$model_dir" --name "$model_name"
fi
exec .venv/bin/python -m app
