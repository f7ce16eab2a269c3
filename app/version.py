"""The service's name and installed version, as its protocols report them."""

from importlib.metadata import PackageNotFoundError, version

SERVICE_NAME = "multilabel-service"
try:
    SERVICE_VERSION = version(SERVICE_NAME)
except PackageNotFoundError:  # running from a source tree that was never installed
    SERVICE_VERSION = "0+unknown"
