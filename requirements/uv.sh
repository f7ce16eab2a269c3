# Sourced by scripts/setup.sh and requirements/lock.sh: the project's .venv with the pinned uv.
# uv resolves the lock (requirements/lock.sh) and installs from it (scripts/setup.sh). Its own
# version is locked like every other tool of the project (dev extra); requirements/uv.txt holds
# that pin with its hashes, which pip checks when it installs uv.

# uv ships its own certificate roots; trust the machine's store instead, as pip does (some
# networks re-sign TLS). Never download a Python: the project's interpreter is the one given.
# Compile bytecode at install, as pip does: where PYTHONDONTWRITEBYTECODE is set (CI machines)
# nothing else would, and every import of TensorFlow would compile it again (+15 s).
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}"
export UV_PYTHON_DOWNLOADS=never
export UV_COMPILE_BYTECODE=1
export UV_NO_PROGRESS=1

# The CPython minor version the lock is resolved for (requirements/lock.sh) and CI runs.
LOCK_PYTHON_VERSION=3.11

# Create .venv with $PYTHON (default python3) unless it exists, check it is the lock's Python,
# and install the pinned uv into it unless that version is already there.
ensure_venv_with_uv() {
  if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
  fi
  local version
  version=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [ "$version" != "$LOCK_PYTHON_VERSION" ]; then
    echo "error: .venv runs Python $version; the lock is for Python $LOCK_PYTHON_VERSION." >&2
    echo "       Remove .venv and run again with PYTHON=python$LOCK_PYTHON_VERSION." >&2
    return 1
  fi
  local pinned
  if ! pinned=$(grep -o '^uv==[^ ]*' requirements/uv.txt); then
    echo "error: requirements/uv.txt pins no uv; restore it from git (requirements/lock.sh writes it)" >&2
    return 1
  fi
  if [ "$(.venv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "${pinned#uv==}" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
      --require-hashes --no-deps --requirement requirements/uv.txt
  fi
}
