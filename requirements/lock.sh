#!/usr/bin/env bash
# The lock: every dependency of pyproject.toml resolved once, pinned with its hashes, in three
# nested sets that share one resolution (each a subset of the next, same versions):
#   requirements/serve.txt   the base set: the container's runtime, `scripts/setup.sh ""`
#   requirements/train.txt   + the train extra: the container's trainer, `scripts/setup.sh train`
#   requirements/dev.txt     + every other extra: CI and `scripts/setup.sh train,dev`
#   requirements/uv.txt      uv alone, as pinned in dev.txt: what installs the others (setup,
#                            the image's stages)
# Resolved for CPython 3.11 on Linux x86-64 (CI's machines and the image), by uv (pinned in
# dev.txt itself). Usage, from anywhere in the checkout:
#   bash requirements/lock.sh            after changing dependencies in pyproject.toml: resolve
#                                        again, keeping every pin that still satisfies it
#   bash requirements/lock.sh --upgrade  move every pin to the newest release pyproject.toml allows
#   bash requirements/lock.sh --check    change nothing; fail if the lock is not what
#                                        pyproject.toml gives (scripts/test.sh runs this in CI)
set -euo pipefail
cd "$(dirname "$0")/.."
source requirements/uv.sh

mode=${1:-write}
case "$mode" in
  write | --check | --upgrade) ;;
  *) echo "usage: bash requirements/lock.sh [--check | --upgrade]" >&2; exit 2 ;;
esac

ensure_venv_with_uv
# Resolve in a scratch directory that holds copies of pyproject.toml and of the current lock
# (uv keeps the pins it finds in an output file), so that --check compares like with like.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp pyproject.toml "$work/"
cp requirements/{serve,train,dev}.txt "$work/" 2>/dev/null || true

compile() {  # compile OUTPUT [uv pip compile options...]
  local output=$1
  shift
  (cd "$work" && "$OLDPWD/.venv/bin/uv" pip compile pyproject.toml --quiet --generate-hashes \
    --python-version "$LOCK_PYTHON_VERSION" --python-platform x86_64-manylinux_2_28 \
    --custom-compile-command "bash requirements/lock.sh" --output-file "$output" "$@")
}
upgrade=()
[ "$mode" = --upgrade ] && upgrade=(--upgrade)
compile dev.txt --all-extras "${upgrade[@]}"
# The smaller sets take their versions from the full one, so all three agree.
compile train.txt --extra train --constraint dev.txt --upgrade
compile serve.txt --constraint dev.txt --upgrade
{
  echo "# uv, pinned as in dev.txt: it installs the lock (scripts/setup.sh, Dockerfile)."
  echo "# Written by: bash requirements/lock.sh"
  awk '/^uv==/ { pinned = 1 } pinned { print } pinned && !/\\$/ { exit }' "$work/dev.txt"
} >"$work/uv.txt"

if [ "$mode" = --check ]; then
  stale=()
  for name in serve.txt train.txt dev.txt uv.txt; do
    # Versions, markers and provenance; hashes are left out of the comparison because an index
    # may add a file (a wheel for a new platform) to a pinned release. Every install checks them.
    if ! diff -u --label "requirements/$name (committed)" --label "$name (from pyproject.toml)" \
      <(grep -v -- '--hash=' "requirements/$name" 2>/dev/null) <(grep -v -- '--hash=' "$work/$name"); then
      stale+=("requirements/$name")
    fi
  done
  if [ ${#stale[@]} -gt 0 ]; then
    echo "FAIL: the lock disagrees with pyproject.toml: ${stale[*]}" >&2
    echo "      Run  bash requirements/lock.sh  and commit the result." >&2
    exit 1
  fi
  echo "lock: requirements/{serve,train,dev,uv}.txt match pyproject.toml"
  exit 0
fi

for name in serve.txt train.txt dev.txt uv.txt; do
  mv "$work/$name" "requirements/$name"
  echo "wrote requirements/$name ($(grep -c '^[a-z0-9]' "requirements/$name") packages)"
done
