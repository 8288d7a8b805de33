"""The one table of layers that the generic layer tests run over.

Each ``LayerCase`` says how to call a layer, how to draw valid random inputs for it, which
inputs its backward pass differentiates, and which student tasks it belongs to.
``tests/test_layers.py`` turns every entry into property tests (backward against numeric
gradients), marked with the entry's task IDs. Forward passes are cross-checked against
independent references in the instructor-only tests under ``tests/kit/``, which this
table's inputs also drive: this file ships to students, so it holds no second
implementation of a task. Adding a layer to the kit means adding an entry here.

Inputs are drawn as shapes and a seed by hypothesis and filled by a numpy generator: the
values are varied, hypothesis still shrinks failures to small shapes, and drawing is fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import assume
from hypothesis import strategies as st

from course.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from course.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    hidden_block_backward,
    hidden_block_forward,
)
from course.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    conv_backward_naive,
    conv_forward_naive,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    max_pool_backward_naive,
    max_pool_forward_naive,
    relu_backward,
    relu_forward,
    softmax_loss,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
    svm_loss,
)

# Inputs of piecewise-linear layers stay this far from a kink, far more than the step
# h = 1e-5 of the numeric gradients, so the numeric gradient never straddles one.
KINK_MARGIN = 1e-3


@dataclass(frozen=True)
class LayerCase:
    """One layer (kind "layer") or loss (kind "loss") under test.

    - forward: called as ``forward(**inputs)``; a layer returns ``(out, cache)``, a loss
      ``(loss, dx)``.
    - backward: ``backward(dout, cache)`` returning the gradients of ``differentiable`` in
      that order (a single array counts as a 1-tuple); None for a loss.
    - inputs: hypothesis strategy of ``{argument name: float64 array or labels}``.
    - differentiable: names of the inputs the gradients are taken with respect to.
    - reference: independent implementation of the forward output (the loss value for a
      loss), written with loops or scipy, never with the code under test; None for layers
      whose cross-check lives in the instructor-only tests (tests/kit/), so that no
      second implementation of a task ships to students.
    - forward_task, backward_task: task IDs of ``course.tasks`` (None for given code).
    """

    name: str
    kind: str
    forward: Callable[..., tuple[Any, Any]]
    backward: Callable[[np.ndarray, Any], Any] | None
    inputs: st.SearchStrategy[dict[str, np.ndarray]]
    differentiable: tuple[str, ...]
    reference: Callable[..., Any] | None = None
    forward_task: str | None = None
    backward_task: str | None = None


def task_marks(*task_ids: str | None) -> list[pytest.MarkDecorator]:
    """pytest marks for the given task IDs, skipping None and duplicates."""
    unique = dict.fromkeys(t for t in task_ids if t is not None)
    return [pytest.mark.task(t) for t in unique]


def assert_gradient_close(analytic: Any, numeric: np.ndarray, what: str) -> None:
    """Assert an analytic gradient equals a numeric one up to the numeric method's error.

    Centred differences with h = 1e-5 in float64 are accurate to about 1e-9 relative to
    the size of the values involved, so the tolerance is 1e-6 relative plus 1e-7 of the
    gradient's largest entry: far below what any real mistake produces.
    """
    analytic = np.asarray(analytic)
    assert analytic.shape == numeric.shape, (
        f"{what}: gradient has shape {analytic.shape}, expected {numeric.shape}")
    scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7 * scale, err_msg=what)


# The independent references of the notebook-1 layers (explicit loops) live in the
# instructor-only tests/kit/test_task_references.py: a second implementation of a task
# in a shipped test file would hand students the answer.


# ---------------------------------------------------------------------------------------
# Input strategies
# ---------------------------------------------------------------------------------------

_seeds = st.integers(0, 2**32 - 1)
_scales = st.sampled_from([0.1, 1.0, 5.0])


@st.composite
def affine_inputs(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """x of shape (N, d1, ..., dk) with k in 1..3, w (D, M), b (M,)."""
    N = draw(st.integers(1, 4))
    example_shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    M = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(_seeds))
    x = draw(_scales) * rng.standard_normal((N, *example_shape))
    D = int(np.prod(example_shape))
    return {"x": x, "w": rng.standard_normal((D, M)), "b": rng.standard_normal(M)}


@st.composite
def relu_inputs(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """x of any shape (1 to 4 dims), every entry at least KINK_MARGIN away from 0."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    rng = np.random.default_rng(draw(_seeds))
    magnitude = rng.uniform(KINK_MARGIN, 3.0, size=shape)
    return {"x": rng.choice([-1.0, 1.0], size=shape) * magnitude}


@st.composite
def affine_relu_inputs(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """Affine inputs whose pre-activations all stay KINK_MARGIN away from 0."""
    inputs = draw(affine_inputs())
    # The layer under test computes the pre-activations: only to keep inputs off the
    # kink, so a wrong affine_forward is caught by its own tests, not here.
    pre_activation, _ = affine_forward(inputs["x"], inputs["w"], inputs["b"])
    assume(np.min(np.abs(pre_activation)) > KINK_MARGIN)
    return inputs


@st.composite
def score_inputs(draw: st.DrawFn, kink_free: bool = False) -> dict[str, np.ndarray]:
    """Scores x of shape (N, C) and integer labels y of shape (N,) in [0, C).

    With ``kink_free``, no SVM margin ``x[n, j] - x[n, y[n]] + 1`` (j != y[n]) is within
    KINK_MARGIN of 0, where the hinge loss has no derivative.
    """
    N = draw(st.integers(1, 5))
    C = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(_seeds))
    x = draw(_scales) * rng.standard_normal((N, C))
    y = rng.integers(0, C, size=N)
    if kink_free:
        margins = x - x[np.arange(N), y][:, None] + 1
        margins[np.arange(N), y] = 1.0  # the correct class has no hinge
        assume(np.min(np.abs(margins)) > KINK_MARGIN)
    return {"x": x, "y": y}


@st.composite
def norm_inputs(draw: st.DrawFn, axis: int, param_name: str) -> dict[str, Any]:
    """x (N, D) with N, D in 2..5, gamma and beta (D,) and a train-mode parameter dict
    under ``param_name`` ("bn_param" or "ln_param").

    ``axis`` is the one the layer normalises over (0: batchnorm, 1: layernorm); every
    slice along it keeps a variance of at least 0.01, so the division by the standard
    deviation stays well conditioned and numeric gradients stay accurate.
    """
    N, D = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(_seeds))
    x = draw(_scales) * rng.standard_normal((N, D)) + rng.normal(0, 3, size=D)
    assume(np.min(np.var(x, axis=axis)) > 1e-2)
    return {"x": x, "gamma": rng.uniform(0.5, 2.0, size=D), "beta": rng.standard_normal(D),
            param_name: {"mode": "train"}}


@st.composite
def dropout_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """x of any shape (1 to 3 dims) and a seeded train-mode dropout_param, so that every
    call of the forward pass draws the same mask."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    rng = np.random.default_rng(draw(_seeds))
    param = {"mode": "train", "p": draw(st.sampled_from([0.3, 0.5, 0.8, 1.0])),
             "seed": draw(_seeds)}
    return {"x": rng.standard_normal(shape), "dropout_param": param}


def _hidden_block_plain_forward(x, w, b):
    return hidden_block_forward(x, w, b)


def _hidden_block_plain_backward(dout, cache):
    dx, dw, db, dgamma, dbeta = hidden_block_backward(dout, cache)
    assert dgamma is None and dbeta is None, "no normalisation: dgamma and dbeta must be None"
    return dx, dw, db


LAYERS: tuple[LayerCase, ...] = (
    LayerCase("affine", "layer", affine_forward, affine_backward, affine_inputs(),
              ("x", "w", "b"), forward_task="1.1", backward_task="1.2"),
    LayerCase("relu", "layer", relu_forward, relu_backward, relu_inputs(),
              ("x",), forward_task="1.3", backward_task="1.4"),
    LayerCase("softmax_loss", "loss", softmax_loss, None, score_inputs(),
              ("x",), forward_task="1.5", backward_task="1.5"),
    LayerCase("svm_loss", "loss", svm_loss, None, score_inputs(kink_free=True),
              ("x",), forward_task="1.6", backward_task="1.6"),
    # Notebooks 2 and 3. Their independent references live in the instructor-only
    # tests/kit/test_norm_references.py, so that no second implementation ships.
    LayerCase("batchnorm", "layer", batchnorm_forward, batchnorm_backward,
              norm_inputs(0, "bn_param"), ("x", "gamma", "beta"),
              forward_task="2.1", backward_task="2.2"),
    LayerCase("batchnorm_alt", "layer", batchnorm_forward, batchnorm_backward_alt,
              norm_inputs(0, "bn_param"), ("x", "gamma", "beta"),
              forward_task="2.1", backward_task="2.3"),
    LayerCase("layernorm", "layer", layernorm_forward, layernorm_backward,
              norm_inputs(1, "ln_param"), ("x", "gamma", "beta"),
              forward_task="2.4", backward_task="2.5"),
    LayerCase("dropout", "layer", dropout_forward, dropout_backward, dropout_inputs(),
              ("x",), forward_task="3.1", backward_task="3.2"),
    # Given code composed from the layers above: no task of its own.
    LayerCase("affine_relu", "layer", affine_relu_forward, affine_relu_backward,
              affine_relu_inputs(), ("x", "w", "b")),
    LayerCase("hidden_block (plain)", "layer", _hidden_block_plain_forward,
              _hidden_block_plain_backward, affine_relu_inputs(), ("x", "w", "b")),
)


def cases(kind: str, marks_from: str, with_reference: bool = False) -> list[Any]:
    """``pytest.param`` per registry entry of this kind, marked with its forward or
    backward task (``marks_from`` is "forward" or "backward"); with ``with_reference``,
    only the entries that carry a reference forward."""
    params = []
    for case in LAYERS:
        if case.kind != kind or (with_reference and case.reference is None):
            continue
        task = case.forward_task if marks_from == "forward" else case.backward_task
        params.append(pytest.param(case, id=case.name, marks=task_marks(task)))
    return params


def all_cases(marks_from: str, with_reference: bool = False) -> list[Any]:
    """``pytest.param`` per registry entry of every kind (see ``cases``)."""
    return (cases("layer", marks_from, with_reference)
            + cases("loss", marks_from, with_reference))


# ---------------------------------------------------------------------------------------
# Convolutional layers (notebook 4). Their loop references live in the instructor-only
# tests/kit/test_conv_references.py; the fast layers are checked against the naive ones
# through FAST_TWINS below, on the same drawn inputs.
# ---------------------------------------------------------------------------------------


@st.composite
def conv_geometries(draw: st.DrawFn, max_side: int = 7) -> dict[str, Any]:
    """Shapes and conv_param of a convolution that fits: any stride, pad and kernel (odd or
    even, square or not); the input size is derived from the drawn output size."""
    stride = draw(st.integers(1, 3))
    pad = draw(st.integers(0, 2))
    HH, WW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sizes = []
    for k in (HH, WW):
        out = draw(st.integers(1, 3))
        side = (out - 1) * stride + k - 2 * pad
        # Padding may make the input smaller than the kernel, never empty.
        assume(1 <= side <= max_side)
        sizes.append(side)
    return {"N": draw(st.integers(1, 2)), "C": draw(st.integers(1, 3)),
            "F": draw(st.integers(1, 3)), "H": sizes[0], "W": sizes[1], "HH": HH, "WW": WW,
            "conv_param": {"stride": stride, "pad": pad}}


@st.composite
def conv_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """x (N, C, H, W), w (F, C, HH, WW), b (F,) and conv_param, float64."""
    g = draw(conv_geometries())
    rng = np.random.default_rng(draw(_seeds))
    return {"x": draw(_scales) * rng.standard_normal((g["N"], g["C"], g["H"], g["W"])),
            "w": rng.standard_normal((g["F"], g["C"], g["HH"], g["WW"])),
            "b": rng.standard_normal(g["F"]),
            "conv_param": g["conv_param"]}


@st.composite
def pool_geometries(draw: st.DrawFn) -> dict[str, Any]:
    """Shapes and pool_param of a max pool that fits: tiling, gapped and overlapping
    windows (stride equal to, larger or smaller than the window)."""
    ph, pw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    H = (draw(st.integers(1, 3)) - 1) * stride + ph
    W = (draw(st.integers(1, 3)) - 1) * stride + pw
    return {"shape": (draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W),
            "pool_param": {"pool_height": ph, "pool_width": pw, "stride": stride}}


@st.composite
def pool_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """x with distinct values at least 0.05 apart (so no window has a tie within the
    numeric gradient's reach) and pool_param."""
    g = draw(pool_geometries())
    rng = np.random.default_rng(draw(_seeds))
    size = int(np.prod(g["shape"]))
    x = (rng.permutation(size) - size / 2).reshape(g["shape"]) * 0.05
    return {"x": x, "pool_param": g["pool_param"]}


@st.composite
def groupnorm_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """x (N, C, H, W), gamma and beta (1, C, 1, 1), G a divisor of C, gn_param."""
    N, H, W = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    G = draw(st.integers(1, 3))
    C = G * draw(st.integers(1, 3))
    # One value per group would have zero variance: no gradient worth checking.
    assume((C // G) * H * W >= 2)
    rng = np.random.default_rng(draw(_seeds))
    x = draw(_scales) * rng.standard_normal((N, C, H, W)) + rng.standard_normal()
    # Every group keeps a variance of at least 0.01 (see norm_inputs).
    assume(np.min(np.var(x.reshape(N, G, -1), axis=2)) > 1e-2)
    return {"x": x, "gamma": rng.standard_normal((1, C, 1, 1)),
            "beta": rng.standard_normal((1, C, 1, 1)), "G": G, "gn_param": {"eps": 1e-5}}


@st.composite
def spatial_batchnorm_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """x (N, C, H, W) with N * H * W >= 2, gamma and beta (C,), a train-mode bn_param."""
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    assume(N * H * W >= 2)
    rng = np.random.default_rng(draw(_seeds))
    x = draw(_scales) * rng.standard_normal((N, C, H, W)) + rng.standard_normal()
    # As in norm_inputs: a channel of two nearly equal values divides by a tiny standard
    # deviation, and the numeric gradient loses the accuracy the tolerance assumes.
    assume(np.min(np.var(x, axis=(0, 2, 3))) > 1e-2)
    return {"x": x, "gamma": rng.standard_normal(C), "beta": rng.standard_normal(C),
            "bn_param": {"mode": "train"}}


CONV_LAYERS: tuple[LayerCase, ...] = (
    LayerCase("conv (naive)", "layer", conv_forward_naive, conv_backward_naive, conv_inputs(),
              ("x", "w", "b"), forward_task="4.1", backward_task="4.2"),
    LayerCase("max_pool (naive)", "layer", max_pool_forward_naive, max_pool_backward_naive,
              pool_inputs(), ("x",), forward_task="4.3", backward_task="4.4"),
    LayerCase("spatial_batchnorm", "layer", spatial_batchnorm_forward,
              spatial_batchnorm_backward, spatial_batchnorm_inputs(), ("x", "gamma", "beta"),
              forward_task="4.7", backward_task="4.8"),
    LayerCase("spatial_groupnorm", "layer", spatial_groupnorm_forward,
              spatial_groupnorm_backward, groupnorm_inputs(), ("x", "gamma", "beta"),
              forward_task="4.9", backward_task="4.10"),
    # Given code: checked against numeric gradients here and against the naive twins.
    LayerCase("conv (fast)", "layer", conv_forward_fast, conv_backward_fast, conv_inputs(),
              ("x", "w", "b")),
    LayerCase("max_pool (fast)", "layer", max_pool_forward_fast, max_pool_backward_fast,
              pool_inputs(), ("x",)),
)
LAYERS = LAYERS + CONV_LAYERS

# Fast layer -> the naive layer it must reproduce (forward and backward, to 1e-10).
FAST_TWINS: dict[str, str] = {
    "conv (fast)": "conv (naive)",
    "max_pool (fast)": "max_pool (naive)",
}


def case_named(name: str) -> LayerCase:
    """The registry entry called ``name``."""
    return next(case for case in LAYERS if case.name == name)
