"""Signed model versions: an Ed25519 signature over ``metadata.json``, and checking it.

``metadata.json`` holds the SHA-256 of every other file of a version, so a signature over its
exact bytes covers the whole version. The signature is a small JSON file beside it,
``metadata.json.sig``::

    {"format": 1,
     "algorithm": "ed25519",
     "key_id": "<hex SHA-256 of the signer's raw 32-byte public key>",
     "metadata_sha256": "<hex SHA-256 of the metadata.json that was signed>",
     "signature": "<base64 of the 64-byte Ed25519 signature of metadata.json's bytes>"}

``metadata_sha256`` only lets a refusal say why (metadata changed after signing, or a corrupt
signature); whether a version is accepted rests on the signature alone.

Operators: ``python -m app.signing generate --out DIR`` makes a key pair, ``sign`` signs an
already published version, ``verify`` checks a version's signature and file hashes.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.artifact import METADATA_FILE, ArtifactError, read_artifact

SIGNATURE_FILE = METADATA_FILE + ".sig"
SIGNATURE_FORMAT = 1
ALGORITHM = "ed25519"
PRIVATE_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub.pem"
_SIGNATURE_FILE_LIMIT = 64 * 1024
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)

# Key id (hex SHA-256 of the raw public key) → key; read-only once loaded.
TrustedKeys = Mapping[str, Ed25519PublicKey]


class KeyFileError(Exception):
    """A key file cannot be used (missing, unreadable, not PEM, not Ed25519); says which, why."""


class SignatureError(ArtifactError):
    """A version is unsigned, signed by an untrusted key, or its signature does not verify."""


@dataclass(frozen=True)
class _Signature:
    """The fields of ``metadata.json.sig``, the signature decoded."""

    key_id: str
    metadata_sha256: str
    signature: bytes


@dataclass(frozen=True)
class Verified:
    """What a valid signature vouches for: these exact ``metadata.json`` bytes, by this key."""

    key_id: str
    metadata: bytes


def key_id(public_key: Ed25519PublicKey) -> str:
    """The hex SHA-256 of the raw 32-byte public key: names a key in files and logs."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The unencrypted Ed25519 private key in a PEM file; KeyFileError says what is wrong."""
    data = _read_key_file(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as error:  # cryptography's way of saying a password is needed
        raise KeyFileError(
            f"signing key {path} is encrypted; give an unencrypted key (mode 0600)"
        ) from error
    except (ValueError, UnsupportedAlgorithm) as error:
        raise KeyFileError(f"signing key {path} is not a PEM private key") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"signing key {path} is not an Ed25519 key ({_kind(key)})")
    return key


def load_trusted_keys(path: Path) -> TrustedKeys:
    """The Ed25519 public keys of a PEM file (one or more keys), or of every ``*.pem`` file of
    a directory. Any unusable file or key is a KeyFileError: a trust setting is never half
    applied."""
    if path.is_dir():
        files = sorted(path.glob("*.pem"))
        if not files:
            raise KeyFileError(f"trusted keys directory {path} holds no *.pem file")
    else:
        files = [path]
    keys: dict[str, Ed25519PublicKey] = {}
    for file in files:
        for key in _public_keys_in(file):
            keys[key_id(key)] = key
    return MappingProxyType(keys)


def sign_version(version_dir: Path, private_key: Ed25519PrivateKey) -> None:
    """Write ``metadata.json.sig``: the signature of the version's ``metadata.json`` bytes."""
    metadata = (version_dir / METADATA_FILE).read_bytes()
    document = {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "key_id": key_id(private_key.public_key()),
        "metadata_sha256": hashlib.sha256(metadata).hexdigest(),
        "signature": base64.b64encode(private_key.sign(metadata)).decode("ascii"),
    }
    (version_dir / SIGNATURE_FILE).write_text(json.dumps(document, indent=2) + "\n")


def verify_version(version_dir: Path, trusted: TrustedKeys) -> Verified:
    """Check a version's signature against the trusted keys; SignatureError says why not."""
    document = _read_signature(version_dir)
    signer = document.key_id
    public_key = trusted.get(signer)
    if public_key is None:
        raise SignatureError(f"signed by key {signer}, which is not a trusted key")
    try:
        metadata = (version_dir / METADATA_FILE).read_bytes()
    except OSError as error:
        raise SignatureError(f"{METADATA_FILE} is unreadable: {error.strerror}") from error
    try:
        public_key.verify(document.signature, metadata)
    except InvalidSignature:
        if hashlib.sha256(metadata).hexdigest() != document.metadata_sha256:
            raise SignatureError(
                f"{METADATA_FILE} changed after it was signed (key {signer})"
            ) from None
        raise SignatureError(
            f"{SIGNATURE_FILE} holds a signature that does not verify with key {signer}"
        ) from None
    return Verified(key_id=signer, metadata=metadata)


@contextlib.contextmanager
def verified_copy(version_dir: Path, trusted: TrustedKeys) -> Iterator[tuple[Path, Verified]]:
    """A private copy of a version to load from, whose ``metadata.json`` is the exact bytes
    that were verified, beside the files they list (not yet checked against their hashes:
    the loader does that on the copy). Removed on exit.

    Loading from the copy rather than the version directory closes the window between the
    checks and the runtime reading the files, in which whoever can write the directory could
    swap a file.
    """
    verified = verify_version(version_dir, trusted)
    try:
        scratch = tempfile.TemporaryDirectory(prefix="multilabel-verified-")
    except OSError as error:
        raise ArtifactError(
            f"no writable temporary directory to verify it in ({error.strerror}); set TMPDIR"
        ) from error
    with scratch as private:
        copy = Path(private, version_dir.name)  # the loader checks the number it is named by
        copy.mkdir()
        (copy / METADATA_FILE).write_bytes(verified.metadata)
        for name in _listed_files(verified.metadata):
            if Path(name).is_absolute() or ".." in Path(name).parts:
                continue  # never copied from outside; the loader refuses the listing itself
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # the loader says which is missing
                shutil.copyfile(version_dir / name, copy / name)
        yield copy, verified


def _listed_files(metadata: bytes) -> list[str]:
    """The file names a signed ``metadata.json`` lists with their hashes (none if unreadable:
    the loader then says what is wrong with it)."""
    try:
        files = json.loads(metadata).get("files")
    except (ValueError, AttributeError):
        return []
    return [name for name in files if isinstance(name, str)] if isinstance(files, dict) else []


def _read_signature(version_dir: Path) -> _Signature:
    """The version's ``metadata.json.sig``; SignatureError if it is missing or unusable."""
    try:
        with (version_dir / SIGNATURE_FILE).open("rb") as stream:
            text = stream.read(_SIGNATURE_FILE_LIMIT + 1)  # a real one is under 400 bytes
    except FileNotFoundError:
        raise SignatureError(f"the version is not signed: {SIGNATURE_FILE} is missing") from None
    except OSError as error:
        raise SignatureError(f"{SIGNATURE_FILE} is unreadable: {error.strerror}") from error
    try:
        if len(text) > _SIGNATURE_FILE_LIMIT:
            raise ValueError("too large")
        document = json.loads(text)
        if document.get("format") != SIGNATURE_FORMAT or document.get("algorithm") != ALGORITHM:
            raise ValueError("unsupported format or algorithm")
        signer, digest = document["key_id"], document["metadata_sha256"]
        # Both are echoed in logs: only ever as the hex digests they must be.
        if not (_HEX_DIGEST.fullmatch(signer) and _HEX_DIGEST.fullmatch(digest)):
            raise ValueError("key_id and metadata_sha256 must be hex SHA-256 digests")
        signature = base64.b64decode(document["signature"], validate=True)
    except (ValueError, KeyError, TypeError, AttributeError) as error:  # binascii too
        raise SignatureError(
            f"{SIGNATURE_FILE} is malformed (expected format {SIGNATURE_FORMAT}, {ALGORITHM})"
        ) from error
    return _Signature(key_id=signer, metadata_sha256=digest, signature=signature)


def _public_keys_in(file: Path) -> list[Ed25519PublicKey]:
    data = _read_key_file(file, "trusted keys file")
    blocks = [(match.group(1), match.group(0)) for match in _PEM_BLOCK.finditer(data)]
    if not blocks:
        raise KeyFileError(f"trusted keys file {file} holds no PEM public key")
    keys = []
    for number, (label, block) in enumerate(blocks, start=1):
        where = f"trusted keys file {file}, PEM block {number}"
        if b"PRIVATE" in label:  # a private key here would also leak it to the serving host
            raise KeyFileError(f"{where} is a private key; trust the public key instead")
        try:
            key = serialization.load_pem_public_key(block)
        except (ValueError, UnsupportedAlgorithm) as error:
            raise KeyFileError(f"{where} is not a PEM public key") from error
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{where} is not an Ed25519 key ({_kind(key)})")
        keys.append(key)
    return keys


def _read_key_file(path: Path, role: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyFileError(
            f"{role} {path} cannot be read: {error.strerror or type(error).__name__}"
        ) from error


def _kind(key: object) -> str:
    """The algorithm of a key that is not Ed25519, for messages: ``RSA``, ``EC``, ``Ed448``."""
    return type(key).__name__.removesuffix("PublicKey").removesuffix("PrivateKey")


def generate_key_pair(directory: Path) -> tuple[Path, Path]:
    """Write a new private key (mode 0600) and its public key; never overwrite a key."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; move it away or choose another --out")
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Created with its final mode: the key is never readable by others, not even briefly.
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m app.signing generate|sign|verify``: keys and signatures for operators."""
    parser = argparse.ArgumentParser(prog="python -m app.signing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="write a new Ed25519 key pair")
    generate.add_argument("--out", type=Path, required=True, help="directory for the two keys")
    sign = commands.add_parser("sign", help="sign a published version directory")
    sign.add_argument("version_dir", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="private key (PEM)")
    verify = commands.add_parser("verify", help="check a version's signature and file hashes")
    verify.add_argument("version_dir", type=Path)
    verify.add_argument("--trusted", type=Path, required=True, help="PEM file or directory")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "generate":
            private_path, public_path = generate_key_pair(arguments.out)
            public_key = load_private_key(private_path).public_key()
            print(f"private key {private_path} (keep it secret; sign with it at training)")
            print(f"public key  {public_path} (give it to the service: MULTILABEL_TRUSTED_KEYS)")
            print(f"key id      {key_id(public_key)}")
        elif arguments.command == "sign":
            sign_version(arguments.version_dir, load_private_key(arguments.key))
            print(f"signed {arguments.version_dir / SIGNATURE_FILE}")
        else:
            verified = verify_version(arguments.version_dir, load_trusted_keys(arguments.trusted))
            read_artifact(arguments.version_dir)  # every file against its hash
            print(f"{arguments.version_dir}: signed by trusted key {verified.key_id}, files intact")
    except (KeyFileError, ArtifactError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
