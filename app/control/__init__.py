"""The control plane: FastAPI routers for health, metadata and metrics (the data plane's
inference endpoints live in ``app.codecs``)."""
