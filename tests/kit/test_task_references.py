"""Instructor-only cross-checks of the notebook-1 tasks against independent references.

The loop-based references of affine, ReLU, softmax and SVM (tasks 1.1, 1.3, 1.5, 1.6),
of the given affine_relu sandwich, and the plain-numpy forward pass of the network (task
1.8) live here, not in the shipped tests: tests/kit/ stays out of the student release,
so no second implementation of a task reaches students (issue 9, item 11). The
student-visible tests keep known answers, numeric gradients and properties.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from layer_registry import case_named
from scipy.special import logsumexp

from course.classifiers.fc_net import FullyConnectedNet


def reference_affine(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    N, M = x.shape[0], w.shape[1]
    out = np.zeros((N, M))
    for n in range(N):
        row = list(x[n].flat)  # C-order flattening of example n
        for m in range(M):
            out[n, m] = b[m] + sum(row[d] * w[d, m] for d in range(len(row)))
    return out


def reference_relu(x: np.ndarray) -> np.ndarray:
    return np.array([v if v > 0 else 0.0 for v in x.flat]).reshape(x.shape)


def reference_affine_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return reference_relu(reference_affine(x, w, b))


def reference_softmax_loss(x: np.ndarray, y: np.ndarray) -> float:
    # -log p_y = logsumexp(row) - row[y]; scipy's logsumexp is stable on its own.
    return float(np.mean([logsumexp(x[n]) - x[n, y[n]] for n in range(x.shape[0])]))


def reference_svm_loss(x: np.ndarray, y: np.ndarray) -> float:
    N, C = x.shape
    total = 0.0
    for n in range(N):
        for j in range(C):
            if j != y[n]:
                total += max(0.0, x[n, j] - x[n, y[n]] + 1.0)
    return total / N


REFERENCES = [
    pytest.param("affine", reference_affine, marks=pytest.mark.task("1.1"), id="affine"),
    pytest.param("relu", reference_relu, marks=pytest.mark.task("1.3"), id="relu"),
    pytest.param("softmax_loss", reference_softmax_loss, marks=pytest.mark.task("1.5"),
                 id="softmax_loss"),
    pytest.param("svm_loss", reference_svm_loss, marks=pytest.mark.task("1.6"), id="svm_loss"),
    pytest.param("affine_relu", reference_affine_relu, id="affine_relu"),
    pytest.param("hidden_block (plain)", reference_affine_relu, id="hidden_block"),
]


@pytest.mark.parametrize(("name", "reference"), REFERENCES)
@given(data=st.data())
def test_forward_matches_loop_reference(name: str, reference, data: st.DataObject) -> None:
    case = case_named(name)
    inputs = data.draw(case.inputs, label="inputs")
    out = case.forward(**inputs)[0]
    np.testing.assert_allclose(out, reference(**inputs), rtol=1e-10, atol=1e-10)


# -- the network's forward pass (task 1.8) -------------------------------------------------


def reference_scores(model: FullyConnectedNet, X: np.ndarray) -> np.ndarray:
    """The forward pass of a plain network (no normalisation, no dropout), in plain numpy."""
    h = X.reshape(X.shape[0], -1)
    for i in range(1, model.num_layers):
        h = np.maximum(h @ model.params[f"W{i}"] + model.params[f"b{i}"], 0)
    L = model.num_layers
    return h @ model.params[f"W{L}"] + model.params[f"b{L}"]


HIDDEN = {1: [7], 2: [6, 5], 3: [6, 5, 4], 4: [5, 6, 4, 5]}
D_IN, C = 6, 4


def _net(depth: int) -> FullyConnectedNet:
    model = FullyConnectedNet(HIDDEN[depth], input_dim=D_IN, num_classes=C, dtype=np.float64,
                              seed=depth, weight_scale="he")
    rng = np.random.default_rng(depth)
    for name, value in model.params.items():
        if name.startswith("b"):
            value[...] = rng.normal(0.0, 0.5, size=value.shape)
    return model


@pytest.mark.task("1.8")
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_test_mode_scores_match_the_plain_numpy_network(depth: int) -> None:
    model = _net(depth)
    X = np.random.default_rng(1).standard_normal((3, 2, 3))  # any shape with 6 per example
    np.testing.assert_allclose(model.loss(X), reference_scores(model, X),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.task("1.8")
def test_loss_is_the_softmax_loss_of_the_plain_numpy_scores() -> None:
    model = _net(2)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((5, D_IN)), rng.integers(0, C, size=5)
    loss, _ = model.loss(X, y)
    scores = reference_scores(model, X)
    expected = np.mean(logsumexp(scores, axis=1) - scores[np.arange(len(y)), y])
    assert loss == pytest.approx(expected, rel=1e-10)
