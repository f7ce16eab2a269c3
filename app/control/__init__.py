"""The control plane: FastAPI routers for metadata and metrics (inference and the health
probes are protocols' operations, in ``app.codecs``)."""
