"""Signing model versions in OpenSSF model signing's format: keys, interoperability with the
stock ``model_signing`` CLI both ways, certificates, and every way to be refused."""

from __future__ import annotations

import base64
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

from app.artifact import ONNX_FILE
from app.signing import (
    OLD_SIGNATURE_FILE,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    SIGNATURE_FILE,
    KeyFileError,
    SignatureError,
    SigningKey,
    key_id,
    load_private_key,
    load_trusted_keys,
    main,
    sign_version,
    verify_version,
)
from tests.robustness.signed_versions import (
    certificate_authority,
    corrupt_signature,
    new_key_pair,
    poison_network,
    raise_a_threshold,
    sign_in_old_format,
    sign_with_certificate,
    sign_with_stock_cli,
    stock_cli,
    stranger_key,
)
from tests.robustness.versions import truncate_model_file


@pytest.fixture
def version(trained_version: Path, tmp_path: Path) -> Path:
    """A private copy of the session's trained version."""
    return Path(shutil.copytree(trained_version, tmp_path / "models" / "multilabel" / "1"))


@pytest.fixture
def keys(tmp_path: Path) -> tuple[SigningKey, Path]:
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


def bundle_of(version: Path) -> dict[str, object]:
    bundle: dict[str, object] = json.loads((version / SIGNATURE_FILE).read_text())
    return bundle


def signed_files(version: Path) -> set[str]:
    """The file names the bundle's in-toto statement lists with a digest."""
    envelope = json.loads((version / SIGNATURE_FILE).read_text())["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    return {resource["name"] for resource in statement["predicate"]["resources"]}


def test_generated_keys_sign_and_verify_a_version(
    version: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "operator"
    assert main(["generate", "--out", str(out)]) == 0
    private_path, public_path = out / PRIVATE_KEY_FILE, out / PUBLIC_KEY_FILE
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    private_key = serialization.load_pem_private_key(private_path.read_bytes(), None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert private_key.curve.name == "secp256r1"
    signer = key_id(private_key.public_key())
    trusted = load_trusted_keys(public_path)
    assert list(trusted.keys) == [signer]
    assert f"key id      {signer}" in capsys.readouterr().out

    assert main(["sign", str(version), "--key", str(private_path)]) == 0
    assert capsys.readouterr().out == f"signed {version / SIGNATURE_FILE} with key {signer}\n"
    # The key id is the hint the library writes into the bundle: logs and bundles agree.
    assert bundle_of(version)["verificationMaterial"] == {
        "publicKey": {"hint": signer},
        "tlogEntries": [],
    }
    assert verify_version(version, trusted).signer == f"key {signer}"
    assert main(["verify", str(version), "--trusted", str(public_path)]) == 0
    assert "signed by trusted key" in capsys.readouterr().out


def test_generating_never_overwrites_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "operator"
    assert main(["generate", "--out", str(out)]) == 0
    before = (out / PRIVATE_KEY_FILE).read_bytes()
    assert main(["generate", "--out", str(out)]) == 1
    assert "signing-key.pem already exists" in capsys.readouterr().err
    assert (out / PRIVATE_KEY_FILE).read_bytes() == before


def test_our_signature_passes_the_stock_cli_verify_unchanged(
    version: Path, keys: tuple[SigningKey, Path]
) -> None:
    key, public_path = keys
    sign_version(version, key)
    assert "Verification succeeded" in stock_cli(
        "verify", "key", str(version), "--public_key", str(public_path)
    )


def test_a_version_signed_with_the_stock_cli_is_accepted(version: Path, tmp_path: Path) -> None:
    key, public_path = new_key_pair(tmp_path / "keys")
    sign_with_stock_cli(version, tmp_path / "keys" / PRIVATE_KEY_FILE)
    assert verify_version(version, load_trusted_keys(public_path)).signer == f"key {key.key_id}"


def test_the_signature_covers_every_file_but_itself_and_signing_again_replaces_it(
    version: Path, keys: tuple[SigningKey, Path]
) -> None:
    key, public_path = keys
    sign_in_old_format(version)  # what was there before is replaced, not signed along
    sign_version(version, key)
    first = (version / SIGNATURE_FILE).read_bytes()
    sign_version(version, key)  # a bundle that signed itself would now mismatch
    assert (version / SIGNATURE_FILE).read_bytes() != first  # ECDSA: a fresh signature
    files = {path.name for path in version.iterdir()}
    assert signed_files(version) == files - {SIGNATURE_FILE}
    assert OLD_SIGNATURE_FILE not in files
    assert not list(version.parent.glob(".*partial"))  # written aside, renamed into place
    verify_version(version, load_trusted_keys(public_path))


def test_a_certificate_signed_version_verifies_against_its_trusted_root(
    version: Path, tmp_path: Path
) -> None:
    authority = certificate_authority(tmp_path / "pki")
    sign_with_certificate(version, authority)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(authority.root, trusted / "company-root.pem")
    new_key_pair(tmp_path / "keys")
    shutil.copy(tmp_path / "keys" / PUBLIC_KEY_FILE, trusted / "team.pem")
    assert verify_version(version, load_trusted_keys(trusted)).signer == (
        "certificate CN=training pipeline"
    )
    other_root = certificate_authority(tmp_path / "other-pki", name="Another CA").root
    with pytest.raises(SignatureError, match="self-signed certificate in certificate chain"):
        verify_version(version, load_trusted_keys(other_root))


# Each way a version can be other than a trusted key signed it: (tamper, reason).


def unsigned(version: Path, key: SigningKey) -> None:
    pass


def signed_in_the_old_format(version: Path, key: SigningKey) -> None:
    sign_in_old_format(version)


def signed_by_another_key(version: Path, key: SigningKey) -> None:
    sign_version(version, stranger_key(version.parent.parent.parent))


def signature_corrupted(version: Path, key: SigningKey) -> None:
    sign_version(version, key)
    corrupt_signature(version)


def metadata_edited(version: Path, key: SigningKey) -> None:
    sign_version(version, key)
    raise_a_threshold(version)


def network_and_hash_rewritten(version: Path, key: SigningKey) -> None:
    sign_version(version, key)
    poison_network(version)


def file_added(version: Path, key: SigningKey) -> None:
    sign_version(version, key)
    (version / "notes.txt").write_text("added after signing\n")


def file_removed(version: Path, key: SigningKey) -> None:
    sign_version(version, key)
    (version / "roc_curves.png").unlink()


def file_replaced_by_a_link(version: Path, key: SigningKey) -> None:
    sign_version(version, key)
    (version / "model_card.md").unlink()
    (version / "model_card.md").symlink_to("/etc/hostname")


def signed_leaving_out_a_file(version: Path, key: SigningKey) -> None:
    """Signed with the stock CLI's --ignore-paths: the card could then change unnoticed."""
    private_key = version.parent.parent.parent / "keys" / PRIVATE_KEY_FILE
    stock_cli(
        "sign", "key", str(version), "--private_key", str(private_key), "--ignore-paths",
        "model_card.md",
    )  # fmt: skip


def signature_not_json(version: Path, key: SigningKey) -> None:
    (version / SIGNATURE_FILE).write_text("ed25519 trust me")


def bundle_without_a_key_hint(version: Path, key: SigningKey) -> None:
    sign_version(version, key)
    bundle = bundle_of(version)
    bundle["verificationMaterial"] = {"publicKey": {"hint": "x\nINFO forged"}, "tlogEntries": []}
    (version / SIGNATURE_FILE).write_text(json.dumps(bundle))


def keyless_sigstore_bundle(version: Path, key: SigningKey) -> None:
    sign_version(version, key)
    bundle = bundle_of(version)
    bundle["verificationMaterial"] = {"certificate": {"rawBytes": "MAo="}, "tlogEntries": []}
    (version / SIGNATURE_FILE).write_text(json.dumps(bundle))


def certificate_signed_without_a_trusted_root(version: Path, key: SigningKey) -> None:
    sign_with_certificate(version, certificate_authority(version.parent / ".pki"))


def signature_file_huge(version: Path, key: SigningKey) -> None:
    (version / SIGNATURE_FILE).write_bytes(b" " * (5 * 1024 * 1024))


SIGNATURE_REFUSALS = [
    pytest.param(tamper, reason, id=tamper.__name__)
    for tamper, reason in [
        (unsigned, "the version is not signed: model.sig is missing"),
        (
            signed_in_the_old_format,
            "signed in the old format (metadata.json.sig, Ed25519), which is no longer "
            "accepted: re-sign it with an EC key (`python -m app.signing generate --out DIR`): "
            "python -m app.signing sign VERSION_DIR --key DIR/signing-key.pem",
        ),
        (signed_by_another_key, "which is not a trusted key"),
        (signature_corrupted, "): bad signature (InvalidSignature)"),
        (metadata_edited, "the files differ from what was signed (metadata.json changed)"),
        (
            network_and_hash_rewritten,
            "the files differ from what was signed (metadata.json changed; model.onnx changed)",
        ),
        (file_added, "the files differ from what was signed (added: notes.txt)"),
        (file_removed, "the files differ from what was signed (removed: roc_curves.png)"),
        (file_replaced_by_a_link, "model_card.md"),
        (signed_leaving_out_a_file, "model.sig leaves out model_card.md"),
        (signature_not_json, "model.sig is not a Sigstore bundle"),
        (bundle_without_a_key_hint, "model.sig does not name its key (no key hint): re-sign it"),
        (keyless_sigstore_bundle, "a keyless Sigstore bundle is checked against an identity"),
        (
            certificate_signed_without_a_trusted_root,
            "model.sig is signed with a certificate, and no trusted keys file holds a root",
        ),
        (signature_file_huge, "model.sig is not a Sigstore bundle (too large)"),
    ]
]


@pytest.mark.parametrize(("tamper", "reason"), SIGNATURE_REFUSALS)
def test_a_version_that_is_not_as_signed_is_refused_with_the_reason(
    version: Path,
    keys: tuple[SigningKey, Path],
    tamper: Callable[[Path, SigningKey], None],
    reason: str,
) -> None:
    key, public_path = keys
    tamper(version, key)
    with pytest.raises(SignatureError) as refused:
        verify_version(version, load_trusted_keys(public_path))
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)
    assert str(version) not in str(refused.value)


def test_verify_reports_a_refusal_in_one_line(
    version: Path, keys: tuple[SigningKey, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, public_path = keys
    assert main(["verify", str(version), "--trusted", str(public_path)]) == 1
    assert capsys.readouterr().err == "error: the version is not signed: model.sig is missing\n"


def test_sign_refuses_a_version_whose_files_do_not_match_its_metadata(
    version: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new_key_pair(tmp_path / "keys")
    truncate_model_file(version)
    assert main(["sign", str(version), "--key", str(tmp_path / "keys" / PRIVATE_KEY_FILE)]) == 1
    assert capsys.readouterr().err == (
        f"error: {ONNX_FILE} does not match its SHA-256 in metadata.json\n"
    )
    assert not (version / SIGNATURE_FILE).exists()


def test_trusted_keys_come_from_one_file_or_a_directory_of_pem_files(tmp_path: Path) -> None:
    first, second = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    third = ec.generate_private_key(ec.SECP384R1())
    single = tmp_path / "single.pem"
    single.write_bytes(pem(first.public_key()))
    assert load_trusted_keys(single).keys == {key_id(first.public_key()): single}

    directory = tmp_path / "trusted"
    directory.mkdir()
    shutil.copy(single, directory / "team.pem")
    (directory / "ci.pem").write_bytes(pem(second.public_key()))
    (directory / "release.pem").write_bytes(pem(third.public_key()))
    roots = certificate_authority(tmp_path / "pki").root
    shutil.copy(roots, directory / "roots.pem")
    (directory / "README").write_text("not a key, and not read")
    trust = load_trusted_keys(directory)
    assert set(trust.keys) == {key_id(key.public_key()) for key in (first, second, third)}
    assert trust.certificates == (directory / "roots.pem",)


def write(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


def empty_directory(directory: Path) -> Path:
    path = directory / "empty"
    path.mkdir()
    return path


def ec_public(curve: ec.EllipticCurve | None = None) -> bytes:
    return pem(ec.generate_private_key(curve or ec.SECP256R1()).public_key())


NEW_PAIR = r"make a new pair with `python -m app.signing generate --out DIR`"
TRUSTED_KEY_PROBLEMS = [
    pytest.param(lambda d: d / "absent.pem", "cannot be read: No such file", id="missing"),
    pytest.param(
        lambda d: write(d, "k.pem", b"hello"),
        "holds no PEM public key or certificate",
        id="not-pem",
    ),
    pytest.param(
        lambda d: write(d, "k.pem", private_pem(ec.generate_private_key(ec.SECP256R1()))),
        "holds a private key; trust the public key",
        id="private-key",
    ),
    pytest.param(
        lambda d: write(d, "k.pem", pem(Ed25519PrivateKey.generate().public_key())),
        r"is an Ed25519 key; OpenSSF model signing takes EC keys on P-256, P-384 or P-521: "
        + NEW_PAIR,
        id="ed25519-the-old-format's-keys",
    ),
    pytest.param(
        lambda d: write(d, "k.pem", pem(rsa.generate_private_key(65537, 2048).public_key())),
        r"is an RSA key; OpenSSF model signing takes EC keys",
        id="rsa",
    ),
    pytest.param(
        lambda d: write(d, "k.pem", ec_public(ec.SECP256K1())),
        r"is an EC secp256k1 key; OpenSSF model signing takes EC keys",
        id="another-curve",
    ),
    pytest.param(
        lambda d: write(d, "k.pem", ec_public() + ec_public()),
        r"must hold one public key, or certificates only \(found: public key, public key\)",
        id="two-keys-in-one-file",
    ),
    pytest.param(
        lambda d: write(
            d, "k.pem", b"-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"
        ),
        "is not a PEM public key",
        id="garbled",
    ),
    pytest.param(
        lambda d: write(
            d, "k.pem", b"-----BEGIN CERTIFICATE-----\nbm90IGEga2V5\n-----END CERTIFICATE-----\n"
        ),
        "holds an unreadable certificate",
        id="garbled-certificate",
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
        lambda d: write(d, "k.pem", ec_public()), "is not a PEM private key", id="public-key"
    ),
    pytest.param(
        lambda d: write(
            d,
            "k.pem",
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
        ),
        "is encrypted",
        id="encrypted",
    ),
    pytest.param(
        lambda d: write(d, "k.pem", private_pem(Ed25519PrivateKey.generate())),
        "is an Ed25519 key; OpenSSF model signing takes EC keys on P-256, P-384 or P-521: "
        + NEW_PAIR,
        id="ed25519-the-old-format's-keys",
    ),
    pytest.param(
        lambda d: write(d, "k.pem", private_pem(rsa.generate_private_key(65537, 2048))),
        r"is an RSA key",
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
