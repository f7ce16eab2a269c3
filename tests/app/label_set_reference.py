"""The probability of every label set, computed by hand for a published version: what decision
"set" must rank, whatever protocol asks.

A label-set head is read straight from the ONNX graph's weights (the Dense layer before its
Softmax) and its softmax taken in float64 with numpy; a model with sigmoid heads has its
marginals from a plain ONNX Runtime session, and each of the 2^labels sets gets the product of
p or 1 - p, set by set (``itertools.product``). None of the service's code takes part.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from app.artifact import ONNX_FILE, read_artifact


@dataclass(frozen=True)
class LabelSetReference:
    """P(set) of each row for every set ([rows, sets], float64), each set's labels, the model's
    labels in order."""

    probabilities: np.ndarray
    sets: list[tuple[str, ...]]
    source: str
    labels: list[str]

    def of(self, row: int, labels: list[str] | tuple[str, ...]) -> float:
        """The probability the reference gives ``labels`` (in label order) in ``row``."""
        return float(self.probabilities[row, self.sets.index(tuple(labels))])


def assert_ranked_as(
    sets: np.ndarray, probabilities: np.ndarray, reference: LabelSetReference, k: int
) -> None:
    """Each row's k sets ([rows, k, labels] booleans, with their probabilities) are the
    reference's k most probable, in order, with its values."""
    labels = reference.labels
    assert sets.shape == (len(reference.probabilities), k, len(labels))
    assert probabilities.shape == (len(reference.probabilities), k)
    for row, (row_sets, row_probabilities) in enumerate(zip(sets, probabilities, strict=True)):
        expected = np.sort(reference.probabilities[row])[::-1][:k]
        np.testing.assert_allclose(row_probabilities, expected, atol=1e-6)
        for chosen, probability in zip(row_sets, row_probabilities, strict=True):
            named = [label for label, on in zip(labels, chosen, strict=True) if on]
            assert reference.of(row, named) == pytest.approx(float(probability), abs=1e-6)


def reference_for(version: Path, rows: np.ndarray) -> LabelSetReference:
    """The label-set distribution of ``rows`` under the version at ``version``, by hand."""
    metadata = read_artifact(version)
    labels = metadata.labels
    if metadata.label_set_distribution and metadata.label_set_distribution.source == (
        "label_set_head"
    ):
        assert metadata.label_sets is not None
        sets = [
            tuple(label for label in labels if label in chosen) for chosen in metadata.label_sets
        ]
        probabilities = head_softmax(version / ONNX_FILE, rows)
        return LabelSetReference(probabilities, sets, "label_set_head", labels)
    marginals = onnx_outputs(version / ONNX_FILE, rows)[0].astype(np.float64)
    states = list(itertools.product([False, True], repeat=len(labels)))
    probabilities = np.asarray(
        [
            [
                np.prod([p if on else 1.0 - p for p, on in zip(row, state, strict=True)])
                for state in states
            ]
            for row in marginals
        ]
    )
    sets = [tuple(itertools.compress(labels, state)) for state in states]
    return LabelSetReference(probabilities, sets, "product_of_marginals", labels)


def head_softmax(path: Path, rows: np.ndarray) -> np.ndarray:
    """softmax(x · W + b) in float64, W and b the weights that feed the graph's Softmax."""
    graph = onnx.load(str(path)).graph
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    made_by = {output: node for node in graph.node for output in node.output}
    (softmax,) = [node for node in graph.node if node.op_type == "Softmax"]
    add = made_by[softmax.input[0]]
    assert add.op_type == "Add", add.op_type
    (bias_name,) = [name for name in add.input if name in weights]
    (product_name,) = [name for name in add.input if name not in weights]
    matmul = made_by[product_name]
    assert matmul.op_type == "MatMul", matmul.op_type
    assert matmul.input[0] == graph.input[0].name, "a layer between the input and the head"
    kernel = weights[matmul.input[1]].astype(np.float64)
    logits = rows.astype(np.float64) @ kernel + weights[bias_name].astype(np.float64)
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def onnx_outputs(path: Path, rows: np.ndarray) -> list[np.ndarray]:
    """Every output of the graph for ``rows``, from a session of ONNX Runtime's own."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs: list[np.ndarray] = session.run(
        None, {session.get_inputs()[0].name: rows.astype(np.float32)}
    )
    return outputs
