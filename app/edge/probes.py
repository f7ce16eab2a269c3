"""The health probes the HTTP edge answers past its connection cap."""

from __future__ import annotations

# The exact paths that orchestrators probe (deploy/k8s and deploy/kserve): answered even past
# the connection cap, so that a flood of connections does not get the pod restarted.
PROBE_PATHS = frozenset(
    {b"/health", b"/health/live", b"/health/ready", b"/v2/health/live", b"/v2/health/ready"}
)
PROBE_METHODS = frozenset({b"GET", b"HEAD"})
