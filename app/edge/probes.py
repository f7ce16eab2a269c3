"""The health probes the HTTP edge answers past its connection cap."""

from __future__ import annotations

from app.codecs import probe_paths

# The exact paths that orchestrators probe (deploy/k8s and deploy/kserve), as the codecs declare
# them: answered even past the connection cap, so that a flood of connections does not get the
# pod restarted.
PROBE_PATHS = probe_paths()
PROBE_METHODS = frozenset({b"GET", b"HEAD"})
