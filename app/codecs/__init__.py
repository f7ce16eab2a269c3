"""The protocols the service speaks, one codec each (``app.codecs.base`` says what a codec is).

A protocol decodes its wire format into the data plane's request, encodes the result, and
renders its own errors. To add one, write its module with a ``CODEC`` and list it here: the
edge, the OpenAPI document and the table-driven tests read everything else from it.
"""

from app.codecs import native, tfserving, v2
from app.codecs.base import Codec

CODECS: tuple[Codec, ...] = (native.CODEC, v2.CODEC, tfserving.CODEC)


def probe_paths() -> frozenset[bytes]:
    """The exact paths of every codec's health probes, as the HTTP edge compares them."""
    return frozenset(path.encode() for codec in CODECS for path in codec.probe_paths)
