"""Versions for the trust checks: signed or not, tampered after signing, of another schema.

Versions are published the way training publishes them (``app.artifact.publish``, signing in
its ``before_rename`` hook) from the files of a really trained version; tampering happens
afterwards, as an attacker who can write the model directory would do it. Signatures also come
from the stock ``model_signing`` CLI, from a certificate chain (PKI), and in this service's old
Ed25519 format (``metadata.json.sig``), which is now refused.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from onnx import numpy_helper

from app.artifact import (
    METADATA_FILE,
    ONNX_FILE,
    Metadata,
    publish,
    staging_directory,
    version_path,
)
from app.signing import (
    OLD_SIGNATURE_FILE,
    SIGNATURE_FILE,
    SigningKey,
    generate_key_pair,
    load_private_key,
    sign_version,
)
from tests.robustness.versions import read_metadata, update_hash, write_metadata
from tests.support import MODEL_NAME, trained_once

MetadataChange = Callable[[Metadata], Metadata]
# The label the poisoned network always turns on.
POISONED_LABEL = 2


def new_key_pair(directory: Path) -> tuple[SigningKey, Path]:
    """A fresh key pair written by the operators' generator: the signing key, the public PEM."""
    private_path, public_path = generate_key_pair(directory)
    return load_private_key(private_path), public_path


def stranger_key(directory: Path) -> SigningKey:
    """A valid signing key that no test trusts."""
    return new_key_pair(directory / "stranger")[0]


def republish(
    root: Path,
    source: Path,
    *,
    key: SigningKey | None = None,
    change: MetadataChange | None = None,
    tamper: Callable[[Path], None] | None = None,
) -> Path:
    """Publish the files of the version at ``source`` as the next version under ``root``, with
    its metadata changed by ``change`` and signed by ``key``, exactly as training publishes;
    ``tamper`` edits it after signing but before it appears, so a watching server never sees
    it untampered."""
    with staging_directory(root, MODEL_NAME) as staging:
        for file in source.iterdir():
            if file.name not in (METADATA_FILE, SIGNATURE_FILE, OLD_SIGNATURE_FILE):
                shutil.copy(file, staging / file.name)
        metadata = Metadata.model_validate_json((source / METADATA_FILE).read_bytes())
        if change is not None:
            metadata = change(metadata)

        def sign_then_tamper(version: Path) -> None:
            if key is not None:
                sign_version(version, key)
            if tamper is not None:
                tamper(version)

        return publish(staging, metadata, before_rename=sign_then_tamper)


def rename_features(metadata: Metadata) -> Metadata:
    """A retraining on data whose columns were renamed: the same count, other names."""
    return metadata.model_copy(
        update={"features": [f"f{i}" for i in range(len(metadata.features))]}
    )


def rename_model(metadata: Metadata) -> Metadata:
    """Another model's version (issue 20, hole 1): signed as it is, under another name."""
    return metadata.model_copy(update={"name": "othermodel"})


def reverse_labels(metadata: Metadata) -> Metadata:
    """The labels named in the opposite order (thresholds follow their labels)."""
    return metadata.model_copy(
        update={"labels": metadata.labels[::-1], "thresholds": metadata.thresholds[::-1]}
    )


def poison_network(version: Path) -> None:
    """An attacker's edit: the network's last step forces label 2 on, and the parity reference
    and the hash are rewritten so that every check of the unsigned metadata still passes."""
    path = version / ONNX_FILE
    document = read_metadata(version)
    graph = onnx.load(path)
    output = graph.graph.output[0]  # the labels' probabilities (a label-set head adds a second)
    [last] = [node for node in graph.graph.node if output.name in node.output]
    honest = output.name + "/honest"
    last.output[list(last.output).index(output.name)] = honest
    floor = np.zeros(len(document["labels"]), dtype=np.float32)
    floor[POISONED_LABEL] = 1.0
    graph.graph.initializer.append(numpy_helper.from_array(floor, "poisoned_floor"))
    graph.graph.node.append(onnx.helper.make_node("Max", [honest, "poisoned_floor"], [output.name]))
    onnx.save(graph, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = np.asarray(document["parity"]["inputs"], dtype=np.float32)
    outputs = session.run([output.name], {session.get_inputs()[0].name: inputs})[0]
    document["parity"]["outputs"] = outputs.tolist()
    write_metadata(version, document)
    update_hash(version, ONNX_FILE)


def corrupt_signature(version: Path) -> None:
    """One bit of the bundle's signature flipped (a disk error, or a forger's guess)."""
    path = version / SIGNATURE_FILE
    bundle = json.loads(path.read_text())
    [entry] = bundle["dsseEnvelope"]["signatures"]
    signature = bytearray(base64.b64decode(entry["sig"]))
    signature[-1] ^= 1
    entry["sig"] = base64.b64encode(signature).decode()
    path.write_text(json.dumps(bundle))


def sign_with_stock_cli(version: Path, private_key: Path) -> None:
    """Sign as the OpenSSF documentation does, with the ``model_signing`` command."""
    stock_cli("sign", "key", str(version), "--private_key", str(private_key))


def stock_cli(*arguments: str) -> str:
    """Run ``model_signing`` (the library's own CLI) where the signature's default name
    resolves inside the version; return its output, failing with it if it fails."""
    version = Path(arguments[2])
    result = subprocess.run(
        [sys.executable, "-m", "model_signing", *arguments, "--signature", SIGNATURE_FILE],
        cwd=version,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def sign_in_old_format(version: Path) -> None:
    """A signature as this service wrote them before OpenSSF model signing: Ed25519 over
    ``metadata.json``, in ``metadata.json.sig`` (test data: nothing reads this format now)."""
    key = Ed25519PrivateKey.generate()
    metadata = (version / METADATA_FILE).read_bytes()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    document = {
        "format": 1,
        "algorithm": "ed25519",
        "key_id": hashlib.sha256(raw).hexdigest(),
        "metadata_sha256": hashlib.sha256(metadata).hexdigest(),
        "signature": base64.b64encode(key.sign(metadata)).decode(),
    }
    (version / OLD_SIGNATURE_FILE).write_text(json.dumps(document, indent=2) + "\n")


@dataclass(frozen=True)
class CertificateAuthority:
    """A private PKI: a root certificate, and a signing certificate it issued with its key."""

    root: Path
    signing_certificate: Path
    signing_key: Path


def certificate_authority(directory: Path, name: str = "Model CA") -> CertificateAuthority:
    """A root and a code-signing certificate for EC P-256, as a company's PKI would issue."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    root = _certificate(root_name, root_key.public_key(), root_name, root_key, authority=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "training pipeline")])
    leaf = _certificate(leaf_name, leaf_key.public_key(), root_name, root_key, authority=False)
    paths = CertificateAuthority(
        directory / "root.pem", directory / "signing.crt.pem", directory / "signing.key"
    )
    paths.root.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    paths.signing_certificate.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths.signing_key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _certificate(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    authority: bool,
) -> x509.Certificate:
    """A certificate valid from a day ago: a CA's (signs certificates) or a signer's."""
    now = datetime.datetime.now(datetime.UTC)
    usage = x509.KeyUsage(
        digital_signature=not authority,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=authority,
        crl_sign=authority,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def sign_with_certificate(version: Path, authority: CertificateAuthority) -> None:
    """Sign with the stock CLI's ``certificate`` method: the bundle carries the certificate."""
    stock_cli(
        "sign",
        "certificate",
        str(version),
        "--private_key",
        str(authority.signing_key),
        "--signing_certificate",
        str(authority.signing_certificate),
        "--certificate_chain",
        str(authority.root),
    )


def raise_a_threshold(version: Path) -> None:
    """A small, plausible edit of the served behaviour: label 0 needs a higher probability."""
    document = read_metadata(version)
    document["thresholds"][0] = 0.9
    write_metadata(version, document)


def wider_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 of a model trained by the real CLI on 8 features and 4 labels (not 10 and 3);
    trained once per test session, in seconds (few epochs, no cross-validation)."""
    arguments = ("--n-features", "8", "--n-classes", "4", "--epochs", "3", "--no-cv")
    return version_path(trained_once(tmp_path_factory, "wider-model", *arguments), MODEL_NAME, 1)
