"""The conv sandwich layers of course.layer_utils: numeric gradients and composition."""

from __future__ import annotations

import numpy as np
import pytest
from layer_registry import assert_gradient_close

from course.fast_layers import conv_forward_fast, max_pool_forward_fast
from course.gradient_check import eval_numerical_gradient_array
from course.layer_utils import (
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)

CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _inputs(seed: int):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)),
            rng.standard_normal(4))


def _check(forward, backward, args, extra) -> None:
    out, cache = forward(*args, *extra)
    dout = np.random.default_rng(9).standard_normal(out.shape)
    grads = backward(dout, cache)
    for name, arr, analytic in zip("xwb", args, grads, strict=True):
        numeric = eval_numerical_gradient_array(lambda _: forward(*args, *extra)[0], arr, dout)
        assert_gradient_close(analytic, numeric, f"{forward.__name__}: d{name}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_relu_gradients(seed: int) -> None:
    x, w, b = _inputs(seed)
    pre, _ = conv_forward_fast(x, w, b, CONV)
    if np.min(np.abs(pre)) < 1e-3:  # a pre-activation at the kink: numeric grad is wrong
        pytest.skip("drawn input sits at the ReLU kink")
    _check(conv_relu_forward, conv_relu_backward, (x, w, b), (CONV,))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_relu_pool_gradients(seed: int) -> None:
    x, w, b = _inputs(seed)
    _check(conv_relu_pool_forward, conv_relu_pool_backward, (x, w, b), (CONV, POOL))


def test_conv_relu_pool_is_the_composition() -> None:
    x, w, b = _inputs(3)
    out, _ = conv_relu_pool_forward(x, w, b, CONV, POOL)
    pre, _ = conv_forward_fast(x, w, b, CONV)
    expected, _ = max_pool_forward_fast(np.maximum(pre, 0), POOL)
    np.testing.assert_array_equal(out, expected)
    relu_out, _ = conv_relu_forward(x, w, b, CONV)
    np.testing.assert_array_equal(relu_out, np.maximum(pre, 0))


@pytest.mark.parametrize("seed", [0, 1])
def test_conv_bn_relu_gradients_and_five_results(seed: int) -> None:
    x, w, b = _inputs(seed)
    rng = np.random.default_rng(seed + 10)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)

    def forward(x, w, b, gamma, beta):
        return conv_bn_relu_forward(x, w, b, gamma, beta, CONV, {"mode": "train"})

    args = (x, w, b, gamma, beta)
    out, cache = forward(*args)
    dout = rng.standard_normal(out.shape)
    grads = conv_bn_relu_backward(dout, cache)
    assert len(grads) == 5
    for name, arr, analytic in zip(("x", "w", "b", "gamma", "beta"), args, grads, strict=True):
        numeric = eval_numerical_gradient_array(lambda _: forward(*args)[0], arr, dout)
        assert_gradient_close(analytic, numeric, f"conv_bn_relu: d{name}")
