"""The conv sandwich layers of course.layer_utils: numeric gradients and composition."""

from __future__ import annotations

import numpy as np
import pytest
from layer_registry import KINK_MARGIN, assert_gradient_close

from course.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from course.gradient_check import eval_numerical_gradient_array
from course.layer_utils import (
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from course.layers import relu_backward, relu_forward

CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _inputs(seed: int):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)),
            rng.standard_normal(4))


def _smooth_inputs(seed: int, pool: dict | None = None):
    """Inputs drawn (seed, then the seeds after it) until no pre-activation lies within
    KINK_MARGIN of the ReLU's kink and, with a pool, every window's maximum leads the
    rest of its window by KINK_MARGIN: then no step of the numeric gradient crosses a
    point where the sandwich has no derivative. A draw fails that about once in 25."""
    for attempt in range(seed * 1000, seed * 1000 + 1000):
        x, w, b = _inputs(attempt)
        pre, _ = conv_forward_fast(x, w, b, CONV)
        if np.min(np.abs(pre)) <= KINK_MARGIN:
            continue
        if pool is None or _window_gap(pre, pool) > KINK_MARGIN:
            return x, w, b
    raise AssertionError(f"no smooth input among 1000 draws from seed {seed}")


def _window_gap(a: np.ndarray, pool: dict) -> float:
    """The smallest gap, over the non-overlapping pool windows of a, between a window's
    largest and second largest value."""
    N, C, H, W = a.shape
    size = pool["pool_height"]
    assert pool["pool_width"] == pool["stride"] == size, "tiling square windows only"
    windows = a.reshape(N, C, H // size, size, W // size, size).transpose(0, 1, 2, 4, 3, 5)
    ranked = np.sort(windows.reshape(N, C, H // size, W // size, size * size), axis=-1)
    return float(np.min(ranked[..., -1] - ranked[..., -2]))


def _check(forward, backward, args, extra) -> None:
    out, cache = forward(*args, *extra)
    dout = np.random.default_rng(9).standard_normal(out.shape)
    grads = backward(dout, cache)
    for name, arr, analytic in zip("xwb", args, grads, strict=True):
        numeric = eval_numerical_gradient_array(lambda _: forward(*args, *extra)[0], arr, dout)
        assert_gradient_close(analytic, numeric, f"{forward.__name__}: d{name}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_relu_gradients(seed: int) -> None:
    x, w, b = _smooth_inputs(seed)
    _check(conv_relu_forward, conv_relu_backward, (x, w, b), (CONV,))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_relu_pool_gradients(seed: int) -> None:
    x, w, b = _smooth_inputs(seed, POOL)
    _check(conv_relu_pool_forward, conv_relu_pool_backward, (x, w, b), (CONV, POOL))


def test_conv_relu_pool_is_the_composition() -> None:
    x, w, b = _inputs(3)
    out, _ = conv_relu_pool_forward(x, w, b, CONV, POOL)
    pre, _ = conv_forward_fast(x, w, b, CONV)
    expected, _ = max_pool_forward_fast(np.maximum(pre, 0), POOL)
    np.testing.assert_array_equal(out, expected)
    relu_out, _ = conv_relu_forward(x, w, b, CONV)
    np.testing.assert_array_equal(relu_out, np.maximum(pre, 0))


def test_conv_relu_pool_gradients_equal_relu_before_pool() -> None:
    # The sandwich pools before its ReLU (cheaper, same result). Its gradients must equal
    # those of ReLU then pool exactly, also where a window holds no positive value (its
    # ReLU outputs are all 0, a tie) and where pre-activations are exactly 0.
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((4, 2, 3, 3)), -np.ones(4)
    x[0, :, :2, :2] = 0.0  # with b = -1 ...
    b[0] = 0.0  # ... filter 0 gives exact zeros there
    out, cache = conv_relu_pool_forward(x, w, b, CONV, POOL)
    dout = rng.standard_normal(out.shape)
    got = conv_relu_pool_backward(dout, cache)
    pre, conv_cache = conv_forward_fast(x, w, b, CONV)
    post, relu_cache = relu_forward(pre)
    pooled, pool_cache = max_pool_forward_fast(post, POOL)
    np.testing.assert_array_equal(out, pooled)
    assert np.sum(pooled == 0) > 0.1 * pooled.size  # many windows without a positive value
    want = conv_backward_fast(relu_backward(max_pool_backward_fast(dout, pool_cache),
                                            relu_cache), conv_cache)
    for name, g, r in zip("xwb", got, want, strict=True):
        np.testing.assert_array_equal(g, r, err_msg=f"conv_relu_pool d{name}")
    dx, dw, db = conv_relu_pool_backward(dout, cache, input_grad=False)
    assert dx is None  # a first layer's data needs no gradient
    np.testing.assert_array_equal(dw, want[1])
    np.testing.assert_array_equal(db, want[2])


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
