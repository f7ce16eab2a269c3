"""Signed model versions in OpenSSF model signing's format, made and checked by its library.

A signed version holds ``model.sig``: a Sigstore bundle whose in-toto statement lists the
SHA-256 of every other file of the version directory, signed with an EC key (or a key whose
certificate chains to a trusted root). ``model-signing`` (sigstore/model-transparency) writes
and verifies it; this module only chooses the key, places the file, and turns the library's
failures into one-line reasons. The stock CLI makes and checks the same file::

    model_signing sign key VERSION_DIR --private_key KEY.pem --signature VERSION_DIR/model.sig
    model_signing verify key VERSION_DIR --public_key KEY.pub.pem --signature VERSION_DIR/model.sig

The signature lives inside the version directory, so training writes it into the staging
directory before the rename that publishes the version (a server sees the version and its
signature appear together), and it is left out of what it signs by name.

Operators: ``python -m app.signing generate --out DIR`` makes an EC P-256 key pair, ``sign``
signs an already published version, ``verify`` checks a version as the service does.
"""

from __future__ import annotations

import argparse
import ast
import base64
import binascii
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
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import hashing, signing, verifying

from app.artifact import ArtifactError, read_artifact

SIGNATURE_FILE = "model.sig"  # the stock CLI's default name
OLD_SIGNATURE_FILE = "metadata.json.sig"  # this service's own Ed25519 format, before
PRIVATE_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub.pem"
# The curves the library signs and verifies with (it refuses any other key).
SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")
_BUNDLE_LIMIT = 4 * 1024 * 1024  # a bundle is ~150 bytes per file; this is far past any version
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)
_NEW_KEY_PAIR = "python -m app.signing generate --out DIR"
# How the library words a file that differs from the signed statement (model-signing 1.1):
# "Signature mismatch: " and a Python list of one line per file.
_MISMATCH = "Signature mismatch: "
_CHANGED_FILE = re.compile(r"Hash mismatch for '(.*)': Expected ", re.DOTALL)
_EXTRA_OR_MISSING = re.compile(r"(Extra|Missing) files (?:found )?in model '.*?': (.*)", re.DOTALL)


class KeyFileError(Exception):
    """A key or certificate file cannot be used (missing, unreadable, not PEM, not an EC key
    the library takes); the message says which file and why."""


class SignatureError(ArtifactError):
    """A version is unsigned, signed by an untrusted key, or not as it was signed."""


@dataclass(frozen=True)
class Trust:
    """What ``MULTILABEL_TRUSTED_KEYS`` holds: EC public keys by key id, each in its own PEM
    file (the library reads keys from files), and the certificates of PKI roots."""

    keys: Mapping[str, Path]
    certificates: tuple[Path, ...] = ()

    def describe(self) -> str:
        """The trusted keys and roots, for the start-up log line."""
        roots = [f"certificates in {path}" for path in self.certificates]
        return ", ".join([*(f"key {key}" for key in self.keys), *roots])


@dataclass(frozen=True)
class SigningKey:
    """A private key the library can sign with, and the id of its public key."""

    key_id: str
    config: signing.Config


@dataclass(frozen=True)
class Verified:
    """Who vouched for a version: ``key <id>`` or ``certificate <subject>``."""

    signer: str


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The hex SHA-256 of the public key's PEM: the hint the library writes into a bundle
    (``verificationMaterial.publicKey.hint``), so a bundle names the key that signed it."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def load_private_key(path: Path) -> SigningKey:
    """The unencrypted EC private key in a PEM file; KeyFileError says what is wrong."""
    data = _read_key_file(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as error:  # cryptography's way of saying a password is needed
        raise KeyFileError(
            f"signing key {path} is encrypted; give an unencrypted key (mode 0600)"
        ) from error
    except (ValueError, UnsupportedAlgorithm) as error:
        raise KeyFileError(f"signing key {path} is not a PEM private key") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in SUPPORTED_CURVES:
        raise KeyFileError(f"signing key {path} {_not_supported(key)}")
    config = signing.Config().use_elliptic_key_signer(private_key=path)
    config.set_hashing_config(hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE]))
    return SigningKey(key_id=key_id(key.public_key()), config=config)


def load_trusted_keys(path: Path) -> Trust:
    """The EC public keys and root certificates in a PEM file, or in the ``*.pem`` files of a
    directory. A file holds one public key, or certificates (a CA bundle). Any unusable file
    is a KeyFileError: a trust setting is never half applied."""
    if path.is_dir():
        files = sorted(path.glob("*.pem"))
        if not files:
            raise KeyFileError(f"trusted keys directory {path} holds no *.pem file")
    else:
        files = [path]
    keys: dict[str, Path] = {}
    certificates = []
    for file in files:
        key = _trusted_material_in(file)
        if key is None:
            certificates.append(file)
        else:
            keys[key_id(key)] = file
    return Trust(keys=MappingProxyType(keys), certificates=tuple(certificates))


def sign_version(version_dir: Path, key: SigningKey) -> None:
    """Write the version's ``model.sig`` (the library's bundle over every other file).

    The bundle is written under a hidden name first and renamed into place, so a server never
    reads half of one. A signature in the old format is removed first: it would otherwise be
    signed as one more file of the version.
    """
    (version_dir / OLD_SIGNATURE_FILE).unlink(missing_ok=True)
    partial = version_dir.parent / f".{version_dir.name}.{SIGNATURE_FILE}.partial"
    try:
        key.config.sign(version_dir, partial)
        partial.replace(version_dir / SIGNATURE_FILE)
    finally:
        partial.unlink(missing_ok=True)


def verify_version(version_dir: Path, trust: Trust) -> Verified:
    """Check a version against its ``model.sig`` as the stock CLI's ``verify`` does, with the
    key the bundle names (or the trusted roots); SignatureError says why it fails."""
    bundle = _read_bundle(version_dir)
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        raise SignatureError(f"{SIGNATURE_FILE} is not a Sigstore bundle (no verificationMaterial)")
    config = verifying.Config()
    if "publicKey" in material:
        signer = _trusted_key(material["publicKey"], trust)
        config.use_elliptic_key_verifier(public_key=trust.keys[signer])
        verified = Verified(signer=f"key {signer}")
    elif "x509CertificateChain" in material:
        if not trust.certificates:
            raise SignatureError(
                f"{SIGNATURE_FILE} is signed with a certificate, and no trusted keys file holds "
                "a root certificate"
            )
        config.use_certificate_verifier(certificate_chain=trust.certificates)
        verified = Verified(signer=f"certificate {_leaf_subject(material)}")
    else:
        raise SignatureError(
            f"{SIGNATURE_FILE} is neither key- nor certificate-signed (a keyless Sigstore "
            "bundle is checked against an identity and the public transparency log, which this "
            "service does not reach)"
        )
    config.set_hashing_config(hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE]))
    try:
        config.verify(version_dir, version_dir / SIGNATURE_FILE)
    except Exception as error:  # the library fails in many types (ValueError, InvalidSignature,
        # OpenSSL's X509StoreContextError, KeyError on a malformed bundle): each means "refuse"
        raise SignatureError(
            f"{SIGNATURE_FILE} does not verify ({verified.signer}): {_reason(error, version_dir)}"
        ) from error
    unsigned = _left_out(version_dir, bundle)
    if unsigned:
        raise SignatureError(f"{SIGNATURE_FILE} leaves out {', '.join(unsigned)}")
    return verified


@contextlib.contextmanager
def verified_copy(version_dir: Path, trust: Trust) -> Iterator[tuple[Path, Verified]]:
    """A private copy of a version, verified: the files the loader reads are the very bytes
    that were checked. Removed on exit.

    Copying first and checking the copy closes the window between the check and the runtime
    reading the files, in which whoever can write the version directory could swap a file.
    Symbolic links are copied as links, which the library refuses.
    """
    try:
        scratch = tempfile.TemporaryDirectory(prefix="multilabel-verified-")
    except OSError as error:
        raise ArtifactError(
            f"no writable temporary directory to verify it in ({error.strerror}); set TMPDIR"
        ) from error
    with scratch as private:
        copy = Path(private, version_dir.name)  # the loader checks the number it is named by
        shutil.copytree(version_dir, copy, symlinks=True)
        yield copy, verify_version(copy, trust)


def _reason(error: Exception, version_dir: Path) -> str:
    """The library's failure in a line: which files differ from what was signed, when that is
    the failure (its own message spells every digest out as Python bytes)."""
    message = str(error)
    if message.startswith(_MISMATCH):
        with contextlib.suppress(ValueError, SyntaxError):
            differences = ast.literal_eval(message.removeprefix(_MISMATCH))
            changes = [_difference(line) for line in differences if isinstance(line, str)]
            return "the files differ from what was signed (" + "; ".join(changes) + ")"
    # cryptography's InvalidSignature says nothing: a corrupt or forged signature.
    return message.replace(f"{version_dir}/", "") or f"bad signature ({type(error).__name__})"


def _difference(line: str) -> str:
    if changed := _CHANGED_FILE.match(line):
        return f"{changed.group(1)} changed"
    if extra_or_missing := _EXTRA_OR_MISSING.match(line):
        kind, names = extra_or_missing.groups()
        return f"{'added' if kind == 'Extra' else 'removed'}: {names}"
    return line


def _read_bundle(version_dir: Path) -> dict[str, Any]:
    """The version's ``model.sig`` as JSON; SignatureError if missing, too large or not JSON."""
    try:
        with (version_dir / SIGNATURE_FILE).open("rb") as stream:
            text = stream.read(_BUNDLE_LIMIT + 1)
    except FileNotFoundError:
        if (version_dir / OLD_SIGNATURE_FILE).exists():
            raise SignatureError(
                f"it is signed in the old format ({OLD_SIGNATURE_FILE}, Ed25519), which is no "
                f"longer accepted: re-sign it with an EC key (`{_NEW_KEY_PAIR}`): "
                "python -m app.signing sign VERSION_DIR --key DIR/signing-key.pem"
            ) from None
        raise SignatureError(f"the version is not signed: {SIGNATURE_FILE} is missing") from None
    except OSError as error:
        raise SignatureError(f"{SIGNATURE_FILE} is unreadable: {error.strerror}") from error
    try:
        if len(text) > _BUNDLE_LIMIT:
            raise ValueError("too large")
        bundle = json.loads(text)
        if not isinstance(bundle, dict):
            raise ValueError("not an object")
    except ValueError as error:
        raise SignatureError(f"{SIGNATURE_FILE} is not a Sigstore bundle ({error})") from error
    return bundle


def _trusted_key(public_key: object, trust: Trust) -> str:
    """The id of the trusted key a key-signed bundle names; SignatureError if none."""
    hint = public_key.get("hint") if isinstance(public_key, dict) else None
    if not isinstance(hint, str) or not _HEX_DIGEST.fullmatch(hint):
        # Only ever echoed as the hex digest it must be (it lands in logs and /health).
        raise SignatureError(f"{SIGNATURE_FILE} does not name its key (no key hint): re-sign it")
    if hint not in trust.keys:
        raise SignatureError(f"signed by key {hint}, which is not a trusted key")
    return hint


def _leaf_subject(material: dict[str, Any]) -> str:
    """The subject of the signing certificate, for the log (read before it is verified)."""
    try:
        raw = material["x509CertificateChain"]["certificates"][0]["rawBytes"]
        certificate = x509.load_der_x509_certificate(base64.b64decode(raw))
        return certificate.subject.rfc4514_string().encode("unicode_escape").decode()
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error):
        return "(unreadable)"


def _left_out(version_dir: Path, bundle: dict[str, Any]) -> list[str]:
    """Files of the version that the (verified) statement says it did not sign: a signer's
    ``--ignore-paths`` would otherwise leave them open to change."""
    try:
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        ignored = statement["predicate"]["serialization"].get("ignore_paths", [])
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
        return []  # the library read the same payload; it would have refused a broken one
    return sorted(
        name
        for name in map(str, ignored)
        if name != SIGNATURE_FILE and (version_dir / name).exists()
    )


def _trusted_material_in(file: Path) -> ec.EllipticCurvePublicKey | None:
    """The EC public key a trusted file holds, or None when it holds root certificates."""
    data = _read_key_file(file, "trusted keys file")
    labels = [match.group(1) for match in _PEM_BLOCK.finditer(data)]
    if not labels:
        raise KeyFileError(f"trusted keys file {file} holds no PEM public key or certificate")
    if any(b"PRIVATE" in label for label in labels):  # it would leak to the serving host too
        raise KeyFileError(f"trusted keys file {file} holds a private key; trust the public key")
    if all(label == b"CERTIFICATE" for label in labels):
        try:
            x509.load_pem_x509_certificates(data)
        except ValueError as error:
            raise KeyFileError(
                f"trusted keys file {file} holds an unreadable certificate"
            ) from error
        return None
    if labels != [b"PUBLIC KEY"]:
        raise KeyFileError(
            f"trusted keys file {file} must hold one public key, or certificates only "
            f"(found: {', '.join(label.decode().lower() for label in labels)})"
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise KeyFileError(f"trusted keys file {file} is not a PEM public key") from error
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in SUPPORTED_CURVES:
        raise KeyFileError(f"trusted keys file {file} {_not_supported(key)}")
    return key


def _not_supported(key: object) -> str:
    """Why a key cannot be used, and what to do: the library takes EC keys on three curves."""
    curve = getattr(key, "curve", None)
    kind = f"EC {curve.name}" if curve is not None else _kind(key)
    return (
        f"is an {kind} key; OpenSSF model signing takes EC keys on P-256, P-384 or P-521: "
        f"make a new pair with `{_NEW_KEY_PAIR}`"
    )


def _kind(key: object) -> str:
    """The algorithm of a key, for messages: ``RSA``, ``Ed25519``, ``Ed448``."""
    return type(key).__name__.removesuffix("PublicKey").removesuffix("PrivateKey").lstrip("_")


def _read_key_file(path: Path, role: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyFileError(
            f"{role} {path} cannot be read: {error.strerror or type(error).__name__}"
        ) from error


def generate_key_pair(directory: Path) -> tuple[Path, Path]:
    """Write a new EC P-256 private key (mode 0600) and its public key; never overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; move it away or choose another --out")
    private_key = ec.generate_private_key(ec.SECP256R1())
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
    parser = argparse.ArgumentParser(
        prog="python -m app.signing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="write a new EC P-256 key pair")
    generate.add_argument("--out", type=Path, required=True, help="directory for the two keys")
    sign = commands.add_parser(
        "sign", help="check a published version's files against its metadata, then sign it"
    )
    sign.add_argument("version_dir", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="EC private key (PEM)")
    verify = commands.add_parser("verify", help="check a version as the service does")
    verify.add_argument("version_dir", type=Path)
    verify.add_argument(
        "--trusted", type=Path, required=True, help="PEM file or directory (public keys, roots)"
    )
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "generate":
            private_path, public_path = generate_key_pair(arguments.out)
            print(f"private key {private_path} (keep it secret; sign with it at training)")
            print(f"public key  {public_path} (give it to the service: MULTILABEL_TRUSTED_KEYS)")
            print(f"key id      {load_private_key(private_path).key_id}")
        elif arguments.command == "sign":
            key = load_private_key(arguments.key)
            read_artifact(arguments.version_dir)  # sign only what matches its own metadata
            sign_version(arguments.version_dir, key)
            print(f"signed {arguments.version_dir / SIGNATURE_FILE} with key {key.key_id}")
        else:
            trust = load_trusted_keys(arguments.trusted)
            verified = verify_version(arguments.version_dir, trust)
            read_artifact(arguments.version_dir)  # every file against its metadata's hash
            print(f"{arguments.version_dir}: signed by trusted {verified.signer}, files intact")
    except (KeyFileError, ArtifactError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
