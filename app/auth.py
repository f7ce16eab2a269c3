"""Optional access control: API keys sent as ``Authorization: Bearer <key>``.

Off unless ``MULTILABEL_API_KEYS`` or ``MULTILABEL_API_KEYS_FILE`` is set; set, they must hold
at least one usable key, or the service does not start. Keys are compared in constant time
(``hmac.compare_digest`` against every configured key, whatever matches first), so response
timing does not reveal how much of a guess was right. Keys are never logged: the error says
only that a key is missing or wrong.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

from fastapi.security import HTTPBearer

from app.config import Settings
from app.errors import Unauthorized

AUTHORIZATION_HEADER = b"authorization"
_BEARER = b"bearer "


class ApiKeys:
    """The configured keys, and the check every protected request goes through."""

    def __init__(self, keys: list[bytes]):
        self._keys = keys

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """Keys from the environment and from the keys file; a bad file stops start-up."""
        keys = []
        if settings.api_keys is not None:
            keys += [key.strip() for key in settings.api_keys.get_secret_value().split(",")]
        if settings.api_keys_file is not None:
            keys += read_keys_file(settings.api_keys_file)
        usable = [key.encode() for key in keys if key]
        if not usable and cls.configured(settings):
            # Access control was asked for: never fall back to serving everyone.
            raise ValueError(
                "API keys are configured (MULTILABEL_API_KEYS or MULTILABEL_API_KEYS_FILE is "
                "set) but none is usable: blank or empty keys only"
            )
        return cls(usable)

    @staticmethod
    def configured(settings: Settings) -> bool:
        """Whether the settings ask for access control: either setting is set, whatever it
        holds (known before any key is read)."""
        return settings.api_keys is not None or settings.api_keys_file is not None

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, headers: Mapping[bytes, bytes]) -> None:
        """Raise Unauthorized unless the request carries one of the keys (when keys are on)."""
        if not self._keys:
            return
        value = headers.get(AUTHORIZATION_HEADER)
        if value is None:
            raise Unauthorized("this service requires an API key: Authorization: Bearer <key>")
        if value[: len(_BEARER)].lower() != _BEARER:
            raise Unauthorized("the Authorization header must use the Bearer scheme")
        if not self._matches(value[len(_BEARER) :].strip()):
            raise Unauthorized("the API key is not valid")

    def _matches(self, candidate: bytes) -> bool:
        found = False
        for key in self._keys:  # every key is compared: no early exit to time
            found |= hmac.compare_digest(candidate, key)
        return found


def read_keys_file(path: Path) -> list[str]:
    """The keys of a keys file: one key per line, surrounding whitespace removed; blank lines
    and comment lines (``#`` as their first non-blank character) skipped. A ``#`` anywhere
    else is part of the key, as are inner spaces and ``=``."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read the API keys file {path}: {error.strerror}") from error
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# Declares the scheme in OpenAPI (Swagger UI's "Authorize"); the check itself is ApiKeys'.
bearer_scheme = HTTPBearer(auto_error=False, description="An API key of the service")
