"""Signing model versions: key pairs, signatures over metadata.json, and every way to fail."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from app.artifact import METADATA_FILE
from app.signing import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    SIGNATURE_FILE,
    KeyFileError,
    SignatureError,
    key_id,
    load_private_key,
    load_trusted_keys,
    main,
    sign_version,
    verify_version,
)
from tests.robustness.signed_versions import (
    corrupt_signature,
    new_key_pair,
    poison_network,
    raise_a_threshold,
)


@pytest.fixture
def version(trained_version: Path, tmp_path: Path) -> Path:
    """A private copy of the session's trained version."""
    return Path(shutil.copytree(trained_version, tmp_path / "models" / "multilabel" / "1"))


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Ed25519PrivateKey, Path]:
    return new_key_pair(tmp_path / "keys")


def pem(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_generated_keys_sign_and_verify_a_version(
    version: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "operator"
    assert main(["generate", "--out", str(out)]) == 0
    private_path, public_path = out / PRIVATE_KEY_FILE, out / PUBLIC_KEY_FILE
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    private_key = load_private_key(private_path)
    trusted = load_trusted_keys(public_path)
    assert list(trusted) == [key_id(private_key.public_key())]
    assert f"key id      {key_id(private_key.public_key())}" in capsys.readouterr().out

    assert main(["sign", str(version), "--key", str(private_path)]) == 0
    assert verify_version(version, trusted).key_id == key_id(private_key.public_key())
    assert verify_version(version, trusted).metadata == (version / METADATA_FILE).read_bytes()
    assert main(["verify", str(version), "--trusted", str(public_path)]) == 0
    assert "files intact" in capsys.readouterr().out


def test_generating_never_overwrites_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "operator"
    assert main(["generate", "--out", str(out)]) == 0
    before = (out / PRIVATE_KEY_FILE).read_bytes()
    assert main(["generate", "--out", str(out)]) == 1
    assert "signing-key.pem already exists" in capsys.readouterr().err
    assert (out / PRIVATE_KEY_FILE).read_bytes() == before


def test_the_signature_file_names_its_key_and_the_signed_metadata(
    version: Path, keys: tuple[Ed25519PrivateKey, Path]
) -> None:
    private_key, _ = keys
    sign_version(version, private_key)
    document = json.loads((version / SIGNATURE_FILE).read_text())
    assert document["format"] == 1
    assert document["algorithm"] == "ed25519"
    assert document["key_id"] == key_id(private_key.public_key())
    assert len(document["metadata_sha256"]) == 64
    assert set(document) == {"format", "algorithm", "key_id", "metadata_sha256", "signature"}


def unsigned(version: Path, key: Ed25519PrivateKey) -> None:
    (version / SIGNATURE_FILE).unlink()


def signed_by_another_key(version: Path, key: Ed25519PrivateKey) -> None:
    sign_version(version, Ed25519PrivateKey.generate())


def signature_corrupted(version: Path, key: Ed25519PrivateKey) -> None:
    corrupt_signature(version)


def metadata_edited(version: Path, key: Ed25519PrivateKey) -> None:
    raise_a_threshold(version)


def network_and_hash_rewritten(version: Path, key: Ed25519PrivateKey) -> None:
    poison_network(version)


def signature_not_json(version: Path, key: Ed25519PrivateKey) -> None:
    (version / SIGNATURE_FILE).write_text("ed25519 trust me")


def signature_of_another_algorithm(version: Path, key: Ed25519PrivateKey) -> None:
    path = version / SIGNATURE_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "algorithm": "rsa"}))


def signature_not_base64(version: Path, key: Ed25519PrivateKey) -> None:
    path = version / SIGNATURE_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "signature": "%%%"}))


def signature_file_huge(version: Path, key: Ed25519PrivateKey) -> None:
    path = version / SIGNATURE_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "padding": "x" * 100_000}))


def signature_naming_a_key_with_a_line_break(version: Path, key: Ed25519PrivateKey) -> None:
    path = version / SIGNATURE_FILE
    forged_id = "0" * 63 + "\nINFO forged log line"
    path.write_text(json.dumps({**json.loads(path.read_text()), "key_id": forged_id}))


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (unsigned, "the version is not signed: metadata.json.sig is missing"),
        (signed_by_another_key, "which is not a trusted key"),
        (signature_corrupted, "holds a signature that does not verify with key"),
        (metadata_edited, "metadata.json changed after it was signed"),
        (network_and_hash_rewritten, "metadata.json changed after it was signed"),
        (signature_not_json, "metadata.json.sig is malformed"),
        (signature_of_another_algorithm, "metadata.json.sig is malformed"),
        (signature_not_base64, "metadata.json.sig is malformed"),
        (signature_file_huge, "metadata.json.sig is malformed"),
        (signature_naming_a_key_with_a_line_break, "metadata.json.sig is malformed"),
    ],
)
def test_a_version_that_is_not_as_signed_is_refused_with_the_reason(
    version: Path,
    keys: tuple[Ed25519PrivateKey, Path],
    tamper: Callable[[Path, Ed25519PrivateKey], None],
    reason: str,
) -> None:
    private_key, public_path = keys
    sign_version(version, private_key)
    tamper(version, private_key)
    with pytest.raises(SignatureError, match=reason):
        verify_version(version, load_trusted_keys(public_path))


def test_verify_reports_a_refusal_in_one_line(
    version: Path, keys: tuple[Ed25519PrivateKey, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, public_path = keys
    assert main(["verify", str(version), "--trusted", str(public_path)]) == 1
    assert capsys.readouterr().err == (
        "error: the version is not signed: metadata.json.sig is missing\n"
    )


def test_trusted_keys_come_from_one_file_or_a_directory_of_pem_files(tmp_path: Path) -> None:
    first, second, third = (Ed25519PrivateKey.generate() for _ in range(3))
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pem(first.public_key()) + b"\n" + pem(second.public_key()))
    assert set(load_trusted_keys(bundle)) == {
        key_id(first.public_key()),
        key_id(second.public_key()),
    }

    directory = tmp_path / "trusted"
    directory.mkdir()
    shutil.copy(bundle, directory / "team.pem")
    (directory / "ci.pem").write_bytes(pem(third.public_key()))
    (directory / "README").write_text("not a key, and not read")
    assert set(load_trusted_keys(directory)) == {
        key_id(key.public_key()) for key in (first, second, third)
    }


def write(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


def empty_directory(directory: Path) -> Path:
    path = directory / "empty"
    path.mkdir()
    return path


TRUSTED_KEY_PROBLEMS = [
    pytest.param(lambda d: d / "absent.pem", "cannot be read: No such file", id="missing"),
    pytest.param(lambda d: write(d, "k.pem", b"hello"), "holds no PEM public key", id="not-pem"),
    pytest.param(
        lambda d: write(d, "k.pem", private_pem(Ed25519PrivateKey.generate())),
        "PEM block 1 is a private key; trust the public key instead",
        id="private-key",
    ),
    pytest.param(
        lambda d: write(d, "k.pem", pem(rsa.generate_private_key(65537, 2048).public_key())),
        r"PEM block 1 is not an Ed25519 key \(RSA\)",
        id="rsa",
    ),
    pytest.param(
        lambda d: write(
            d,
            "k.pem",
            pem(Ed25519PrivateKey.generate().public_key())
            + pem(ec.generate_private_key(ec.SECP256R1()).public_key()),
        ),
        r"PEM block 2 is not an Ed25519 key \(EC\)",
        id="second-key-ecdsa",
    ),
    pytest.param(
        lambda d: write(
            d, "k.pem", b"-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"
        ),
        "PEM block 1 is not a PEM public key",
        id="garbled",
    ),
    pytest.param(empty_directory, "holds no \\*.pem file", id="empty-dir"),
]


@pytest.mark.parametrize(("make", "message"), TRUSTED_KEY_PROBLEMS)
def test_an_unusable_trusted_keys_setting_is_an_error_naming_the_problem(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    with pytest.raises(KeyFileError, match=message):
        load_trusted_keys(make(tmp_path))


PRIVATE_KEY_PROBLEMS = [
    pytest.param(lambda d: d / "absent.pem", "cannot be read: No such file", id="missing"),
    pytest.param(lambda d: write(d, "k.pem", b"hello"), "is not a PEM private key", id="not-pem"),
    pytest.param(
        lambda d: write(d, "k.pem", pem(Ed25519PrivateKey.generate().public_key())),
        "is not a PEM private key",
        id="public-key",
    ),
    pytest.param(
        lambda d: write(
            d,
            "k.pem",
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
        ),
        "is encrypted",
        id="encrypted",
    ),
    pytest.param(
        lambda d: write(d, "k.pem", private_pem(rsa.generate_private_key(65537, 2048))),
        r"is not an Ed25519 key \(RSA\)",
        id="rsa",
    ),
]


@pytest.mark.parametrize(("make", "message"), PRIVATE_KEY_PROBLEMS)
def test_an_unusable_signing_key_is_an_error_naming_the_problem(
    tmp_path: Path,
    make: Callable[[Path], Path],
    message: str,
    version: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = make(tmp_path)
    with pytest.raises(KeyFileError, match=message):
        load_private_key(path)
    assert main(["sign", str(version), "--key", str(path)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: signing key {path} ")
    assert not (version / SIGNATURE_FILE).exists()
