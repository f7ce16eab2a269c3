"""Access control (``app.auth``): with API keys configured, from the environment or a file,
every protected operation of every protocol answers 401 in its own envelope, the right key
opens it, health probes stay open, ``/metrics`` follows its setting, and no key is logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.auth import ApiKeys
from app.codecs import CODECS
from app.config import Settings
from app.errors import Unauthorized
from app.main import create_app
from tests.support import MODEL_NAME, REFERENCE_INPUTS

KEY = "k-3f9a1c7e5b"
OTHER_KEY = "k-second-0042"
WRONG_KEY = "k-3f9a1c7e5c"  # one character off
JSON_BODIES = {
    "native": {"instances": REFERENCE_INPUTS},
    "v2": {
        "inputs": [
            {"name": "features", "shape": [2, 10], "datatype": "FP32", "data": REFERENCE_INPUTS}
        ]
    },
    "tfserving": {"instances": REFERENCE_INPUTS},
}
MESSAGE_ENVELOPE = {"native": False, "v2": True, "tfserving": True, "control": False}


def filled(template: str) -> str:
    return template.replace("{name}", MODEL_NAME).replace("{version}", "1")


PROTECTED = [
    (codec.name, operation.method, filled(operation.path))
    for codec in CODECS
    for operation in codec.operations
    if not operation.public
] + [("control", "GET", "/metadata")]
PUBLIC = [
    *(
        (codec.name, operation.method, filled(operation.path))
        for codec in CODECS
        for operation in codec.operations
        if operation.public
    ),
    ("control", "GET", "/health/live"),
    ("control", "GET", "/health/ready"),
    ("control", "GET", "/health"),
]
WRONG_CREDENTIALS = {
    "missing header": {},
    "wrong scheme": {"Authorization": f"Basic {KEY}"},
    "no scheme": {"Authorization": KEY},
    "wrong key": {"Authorization": f"Bearer {WRONG_KEY}"},
    "key with a suffix": {"Authorization": f"Bearer {KEY}x"},
    "empty key": {"Authorization": "Bearer "},
}


def ids(operations: list[tuple[str, str, str]]) -> list[str]:
    return [f"{method} {path}" for _, method, path in operations]


def send(client: TestClient, codec: str, method: str, path: str, headers: dict[str, str]) -> Any:
    body = JSON_BODIES.get(codec) if method == "POST" else None
    return client.request(method, path, json=body, headers=headers)


@pytest.fixture(scope="module", params=["environment", "file"])
def secured(
    request: pytest.FixtureRequest,
    trained_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    """The app with two keys, given as ``MULTILABEL_API_KEYS`` or in a keys file."""
    settings = Settings(model_dir=trained_repository, model_name=MODEL_NAME, poll_interval=0)
    if request.param == "environment":
        changes: dict[str, Any] = {"api_keys": SecretStr(f"{KEY}, {OTHER_KEY}")}
    else:
        keys_file = tmp_path_factory.mktemp("keys") / "api-keys"
        keys_file.write_text(f"# the service's keys\n{KEY}\n\n  # the batch job\n{OTHER_KEY}\n")
        changes = {"api_keys_file": keys_file}
    with TestClient(create_app(settings.model_copy(update=changes))) as client:
        yield client


@pytest.mark.parametrize(("codec", "method", "path"), PROTECTED, ids=ids(PROTECTED))
@pytest.mark.parametrize("credentials", WRONG_CREDENTIALS.values(), ids=WRONG_CREDENTIALS)
def test_a_protected_operation_without_a_valid_key_gets_401_in_its_envelope(
    secured: TestClient, codec: str, method: str, path: str, credentials: dict[str, str]
) -> None:
    response = send(secured, codec, method, path, credentials)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    document = response.json()
    if MESSAGE_ENVELOPE[codec]:
        assert list(document) == ["error"]
        message = document["error"]
    else:
        assert document["error"]["code"] == "unauthorized"
        message = document["error"]["message"]
    assert KEY not in message
    assert WRONG_KEY not in message


@pytest.fixture(scope="module")
def unsecured(trained_repository: Path) -> Iterator[TestClient]:
    """The same app with keys off: what every operation answers once past the key check."""
    settings = Settings(model_dir=trained_repository, model_name=MODEL_NAME, poll_interval=0)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(("codec", "method", "path"), PROTECTED, ids=ids(PROTECTED))
@pytest.mark.parametrize("key", [KEY, OTHER_KEY], ids=["first key", "second key"])
def test_a_configured_key_opens_every_protected_operation(
    secured: TestClient, unsecured: TestClient, codec: str, method: str, path: str, key: str
) -> None:
    """With a key, each operation answers as it does with keys off (a refused verb too)."""
    response = send(secured, codec, method, path, {"Authorization": f"Bearer {key}"})
    expected = send(unsecured, codec, method, path, {})
    assert response.status_code == expected.status_code != 401, response.text
    assert response.content == expected.content


def test_the_scheme_is_case_insensitive(secured: TestClient) -> None:
    response = secured.get("/metadata", headers={"Authorization": f"bearer {KEY}"})
    assert response.status_code == 200


@pytest.mark.parametrize(("codec", "method", "path"), PUBLIC, ids=ids(PUBLIC))
def test_health_probes_stay_open(secured: TestClient, codec: str, method: str, path: str) -> None:
    assert send(secured, codec, method, path, {}).status_code == 200


@pytest.mark.parametrize(("required", "status"), [(True, 401), (False, 200)])
def test_metrics_follow_their_setting(
    trained_repository: Path, required: bool, status: int
) -> None:
    settings = Settings(
        model_dir=trained_repository,
        model_name=MODEL_NAME,
        poll_interval=0,
        api_keys=SecretStr(KEY),
        metrics_require_key=required,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == status
        keyed = client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
        assert keyed.status_code == 200


def test_without_keys_nothing_asks_for_one(client: TestClient) -> None:
    assert client.get("/metadata").status_code == 200
    assert client.post("/predict", json=JSON_BODIES["native"]).status_code == 200


def test_the_openapi_document_declares_the_bearer_scheme_on_protected_operations(
    secured: TestClient,
) -> None:
    document = secured.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert [scheme["scheme"].lower() for scheme in schemes.values()] == ["bearer"]
    operations = document["paths"]
    assert operations["/predict"]["post"].get("security")
    assert operations["/v2/models/{name}/infer"]["post"].get("security")
    assert not operations["/v2/health/live"]["get"].get("security")
    assert not operations["/health/live"]["get"].get("security")


def test_no_key_reaches_the_logs(
    trained_repository: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"{OTHER_KEY}\n")
    settings = Settings(
        model_dir=trained_repository,
        model_name=MODEL_NAME,
        poll_interval=0,
        api_keys=SecretStr(KEY),
        api_keys_file=keys_file,
    )
    with caplog.at_level(logging.DEBUG), TestClient(create_app(settings)) as client:
        for headers in [*WRONG_CREDENTIALS.values(), {"Authorization": f"Bearer {KEY}"}]:
            for codec, method, path in PROTECTED:
                send(client, codec, method, path, headers)
    assert caplog.records
    logged = "\n".join(
        f"{record.getMessage()} {getattr(record, 'fields', '')}" for record in caplog.records
    )
    for secret in (KEY, OTHER_KEY, WRONG_KEY):
        assert secret not in logged
    assert KEY not in repr(settings)


def test_an_unreadable_keys_file_stops_the_start(trained_repository: Path, tmp_path: Path) -> None:
    settings = Settings(
        model_dir=trained_repository,
        model_name=MODEL_NAME,
        poll_interval=0,
        api_keys_file=tmp_path / "missing",
    )
    application = create_app(settings)
    with pytest.raises(ValueError, match="cannot read the API keys file"), TestClient(application):
        pass


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        (" a , b ,,", [b"a", b"b"]),
        ("only", [b"only"]),
    ],
)
def test_keys_from_the_environment_are_trimmed_and_blank_ones_dropped(
    trained_repository: Path, value: str, keys: list[bytes]
) -> None:
    api_keys = ApiKeys.from_settings(
        Settings(model_dir=trained_repository, api_keys=SecretStr(value))
    )
    assert api_keys.enabled
    for key in keys:
        api_keys.check({b"authorization": b"Bearer " + key})
    with pytest.raises(Unauthorized):
        api_keys.check({b"authorization": b"Bearer "})


# Keys that contain what a looser format would cut or take for a comment: every one must
# open the service whole, and no piece of one may.
UNUSUAL_KEYS = {
    "a # inside": "x#Zq8pL2vN9rT4wY7uB1",
    "a # at the end": "k-8d2f#",
    "inner spaces": "two words and # more",
    "= padding": "c2VjcmV0LWtleQ==",
    "= inside": "a=b=c",
}


@pytest.fixture(scope="module")
def unusual_keys(trained_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> ApiKeys:
    """The keys above in a keys file, with comment lines, blank lines and stray spaces."""
    keys_file = tmp_path_factory.mktemp("keys") / "api-keys"
    lines = ["# keys of the service", ""]
    for name, key in UNUSUAL_KEYS.items():
        lines += [f"  # {name}", f"  {key}\t"]
    keys_file.write_text("\n".join(lines) + "\n")
    return ApiKeys.from_settings(Settings(model_dir=trained_repository, api_keys_file=keys_file))


@pytest.mark.parametrize("key", UNUSUAL_KEYS.values(), ids=UNUSUAL_KEYS.keys())
def test_a_key_from_the_file_opens_the_service_whole(unusual_keys: ApiKeys, key: str) -> None:
    unusual_keys.check({b"authorization": b"Bearer " + key.encode()})


def pieces(key: str) -> list[str]:
    """What a parser that cut keys at ``#``, spaces or ``=`` would have kept of ``key``."""
    cut = {key.split(separator, 1)[0] for separator in ("#", " ", "=")}
    return sorted(piece for piece in cut | {key[:-1]} if piece != key)


@pytest.mark.parametrize(
    "piece",
    sorted({piece for key in UNUSUAL_KEYS.values() for piece in pieces(key)}),
)
def test_no_piece_of_a_key_from_the_file_opens_the_service(
    unusual_keys: ApiKeys, piece: str
) -> None:
    with pytest.raises(Unauthorized, match="not valid"):
        unusual_keys.check({b"authorization": b"Bearer " + piece.encode()})


def test_comment_lines_are_not_keys(unusual_keys: ApiKeys) -> None:
    for comment in ["# keys of the service", "# a # inside", "#"]:
        with pytest.raises(Unauthorized, match="not valid"):
            unusual_keys.check({b"authorization": b"Bearer " + comment.encode()})


UNUSABLE = {
    "an empty variable": {"api_keys": SecretStr("")},
    "blanks only": {"api_keys": SecretStr("   ")},
    "a tab": {"api_keys": SecretStr("\t")},
    "only commas": {"api_keys": SecretStr(",, ,")},
    "file of comments only": {"api_keys_file": "# keys go here\n\n   \n"},
    "empty file": {"api_keys_file": ""},
}


@pytest.mark.parametrize("changes", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_access_control_asked_for_without_a_usable_key_stops_the_start(
    trained_repository: Path, tmp_path: Path, changes: dict[str, Any]
) -> None:
    """Fail closed: an operator who set keys, however badly, must not get an open service."""
    if "api_keys_file" in changes:
        keys_file = tmp_path / "keys"
        keys_file.write_text(changes["api_keys_file"])
        changes = {"api_keys_file": keys_file}
    settings = Settings(
        model_dir=trained_repository, model_name=MODEL_NAME, poll_interval=0, **changes
    )
    with (
        pytest.raises(ValueError, match=r"API keys are configured .* but none is usable"),
        TestClient(create_app(settings)) as client,
    ):
        client.post("/predict", json=JSON_BODIES["native"])
