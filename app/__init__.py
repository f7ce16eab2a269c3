"""The prediction service: loads a published model version and serves it over HTTP."""
