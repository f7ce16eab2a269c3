"""Versions for the trust checks: signed or not, tampered after signing, of another schema.

Versions are published the way training publishes them (``app.artifact.publish``, signing in
its ``before_rename`` hook) from the files of a really trained version; tampering happens
afterwards, as an attacker who can write the model directory would do it.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from onnx import numpy_helper

from app.artifact import (
    METADATA_FILE,
    ONNX_FILE,
    Metadata,
    publish,
    staging_directory,
    version_path,
)
from app.signing import SIGNATURE_FILE, generate_key_pair, load_private_key, sign_version
from tests.robustness.versions import read_metadata, update_hash, write_metadata
from tests.support import MODEL_NAME, train_small_model

MetadataChange = Callable[[Metadata], Metadata]
# The label the poisoned network always turns on.
POISONED_LABEL = 2


def new_key_pair(directory: Path) -> tuple[Ed25519PrivateKey, Path]:
    """A fresh key pair written by the operators' generator: the private key, the public PEM."""
    private_path, public_path = generate_key_pair(directory)
    return load_private_key(private_path), public_path


def republish(
    root: Path,
    source: Path,
    *,
    key: Ed25519PrivateKey | None = None,
    change: MetadataChange | None = None,
) -> Path:
    """Publish the files of the version at ``source`` as the next version under ``root``, with
    its metadata changed by ``change`` and signed by ``key``, exactly as training publishes."""
    with staging_directory(root, MODEL_NAME) as staging:
        for file in source.iterdir():
            if file.name not in (METADATA_FILE, SIGNATURE_FILE):
                shutil.copy(file, staging / file.name)
        metadata = Metadata.model_validate_json((source / METADATA_FILE).read_bytes())
        if change is not None:
            metadata = change(metadata)
        sign = None if key is None else partial(sign_version, private_key=key)
        return publish(staging, metadata, before_rename=sign)


def rename_features(metadata: Metadata) -> Metadata:
    """A retraining on data whose columns were renamed: the same count, other names."""
    return metadata.model_copy(
        update={"features": [f"f{i}" for i in range(len(metadata.features))]}
    )


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
    """One bit of the signature flipped (a disk error, or a forger's guess)."""
    path = version / SIGNATURE_FILE
    document = json.loads(path.read_text())
    signature = bytearray(base64.b64decode(document["signature"]))
    signature[0] ^= 1
    document["signature"] = base64.b64encode(signature).decode()
    path.write_text(json.dumps(document))


def raise_a_threshold(version: Path) -> None:
    """A small, plausible edit of the served behaviour: label 0 needs a higher probability."""
    document = read_metadata(version)
    document["thresholds"][0] = 0.9
    write_metadata(version, document)


def wider_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 of a model trained by the real CLI on 8 features and 4 labels (not 10 and 3);
    trained once per test session, in seconds (few epochs, no cross-validation)."""
    root = tmp_path_factory.getbasetemp() / "wider-model"
    version = version_path(root, MODEL_NAME, 1)
    if not version.is_dir():
        train_small_model(
            root,
            *("--n-features", "8", "--n-classes", "4", "--epochs", "3", "--no-cv"),
        )
    return version
