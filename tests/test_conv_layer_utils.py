"""The conv sandwich layers of course.layer_utils: numeric gradients, composition, and the
fused conv + tiling pool of conv_relu_pool against the naive layers (to 1e-10 in float64
over hypothesis-drawn geometries, exact ties included, float32 kept)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from layer_registry import KINK_MARGIN, _seeds, assert_gradient_close

import course.fast_layers as fast
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
from course.layers import (
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
    relu_backward,
    relu_forward,
)

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
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    relu_out, _ = conv_relu_forward(x, w, b, CONV)
    np.testing.assert_array_equal(relu_out, np.maximum(pre, 0))


def test_conv_relu_pool_gradients_equal_relu_before_pool() -> None:
    # The sandwich pools before its ReLU (cheaper, same result). Its gradients must equal
    # those of ReLU then pool, also where a window holds no positive value (its ReLU
    # outputs are all 0, a tie) and where pre-activations are exactly 0.
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
    np.testing.assert_allclose(out, pooled, rtol=1e-10, atol=1e-10)
    assert np.sum(pooled == 0) > 0.1 * pooled.size  # many windows without a positive value
    want = conv_backward_fast(relu_backward(max_pool_backward_fast(dout, pool_cache),
                                            relu_cache), conv_cache)
    for name, g, r in zip("xwb", got, want, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-10, err_msg=f"d{name}")
    dx, dw, db = conv_relu_pool_backward(dout, cache, input_grad=False)
    assert dx is None  # a first layer's data needs no gradient
    np.testing.assert_array_equal(dw, got[1])
    np.testing.assert_array_equal(db, got[2])


# ---------------------------------------------------------------------------------------
# The fused conv-pool of course.fast_layers (tiling pools) against the naive layers
# ---------------------------------------------------------------------------------------


@st.composite
def conv_pool_geometries(draw: st.DrawFn) -> dict:
    """A convolution and a max pool that fits its output: tiling pools (stride = size,
    the fused path) mostly, sometimes overlapping or gapped ones (the composition)."""
    size = draw(st.integers(1, 3))
    tiling = draw(st.booleans() | st.just(True))
    pool = {"pool_height": size, "pool_width": size, "stride": size}
    if not tiling:
        pool = {"pool_height": size, "pool_width": draw(st.integers(1, 3)),
                "stride": draw(st.integers(1, 2))}
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    HH, WW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sides = []
    for k, window in ((HH, pool["pool_height"]), (WW, pool["pool_width"])):
        out = window + (draw(st.integers(1, 3)) - 1) * pool["stride"]  # the pool fits it
        side = (out - 1) * stride + k - 2 * pad
        assume(1 <= side <= 12)
        sides.append(side)
    return {"N": draw(st.integers(1, 3)), "C": draw(st.integers(1, 3)),
            "F": draw(st.integers(1, 4)), "H": sides[0], "W": sides[1], "HH": HH, "WW": WW,
            "conv_param": {"stride": stride, "pad": pad}, "pool_param": pool}


def _conv_pool_inputs(g: dict, seed: int, tied: bool):
    """x, w, b of geometry g: small integers when ``tied`` (exact sums whatever their
    order, so repeated values and zeros after the ReLU are exact ties in both layers),
    else standard normal."""
    rng = np.random.default_rng(seed)
    shapes = ((g["N"], g["C"], g["H"], g["W"]), (g["F"], g["C"], g["HH"], g["WW"]), (g["F"],))
    if tied:
        return tuple(rng.integers(-1, 2, size=shape).astype(np.float64) for shape in shapes)
    return tuple(rng.standard_normal(shape) for shape in shapes)


def _naive_conv_relu_pool(x, w, b, conv_param, pool_param, dout):
    """Output and gradients of conv, ReLU, pool, all naive layers, in that order."""
    a, conv_cache = conv_forward_naive(x, w, b, conv_param)
    r, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_naive(r, pool_param)
    if dout is None:
        return out, None
    dr = max_pool_backward_naive(dout, pool_cache)
    return out, conv_backward_naive(relu_backward(dr, relu_cache), conv_cache)


def _assert_close(got, want, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, err_msg=what)


def _assert_sandwich_matches_naive(x, w, b, conv_param, pool_param, seed: int,
                                   input_grad: bool = True) -> None:
    """conv_relu_pool_forward/backward against the naive layers, on a dout drawn from
    ``seed``: the output, then dx (None without ``input_grad``), dw and db."""
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    want_out, want = _naive_conv_relu_pool(x, w, b, conv_param, pool_param, dout)
    _assert_close(out, want_out, "out")
    dx, dw, db = conv_relu_pool_backward(dout, cache, input_grad=input_grad)
    if input_grad:
        _assert_close(dx, want[0], "dx")
    else:
        assert dx is None
    _assert_close(dw, want[1], "dw")
    _assert_close(db, want[2], "db")


# PATCH_WORK that makes every tiling pool take one layout of the fused GEMM: "plain"
# (one im2col column per conv output) or "patched" (one per pool row and conv output
# column); "chosen" is what the layer picks by itself.
LAYOUTS = {"plain": 0.0, "patched": float("inf"), "chosen": fast.PATCH_WORK}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("tied", [True, False], ids=["ties", "normal"])
@pytest.mark.parametrize("input_grad", [True, False])
@given(geometry=conv_pool_geometries(), seed=_seeds)
def test_conv_relu_pool_matches_the_naive_layers(geometry: dict, seed: int, tied: bool,
                                                 input_grad: bool, layout: str) -> None:
    x, w, b = _conv_pool_inputs(geometry, seed, tied)
    with mock.patch.object(fast, "PATCH_WORK", LAYOUTS[layout]):
        _assert_sandwich_matches_naive(x, w, b, geometry["conv_param"],
                                       geometry["pool_param"], seed, input_grad)


@pytest.mark.parametrize(("HH", "size", "stride", "patched"), [
    (7, 2, 1, True),    # ThreeLayerConvNet's first layer: 8 rows per patch, 8/7 the work
    (5, 2, 1, True),    # 6 rows over 5: 1.2x, the largest patched
    (3, 2, 1, False),   # 4 rows over 3: 1.33x
    (7, 2, 2, False),   # 9 rows over 7: 1.29x
    (7, 1, 1, False),   # a 1x1 pool has nothing to share
])
def test_fused_layout_is_patched_only_where_the_extra_work_is_small(
        HH: int, size: int, stride: int, patched: bool) -> None:
    layout = fast._fused_layout(HH, stride, size, 4, 4)
    assert layout.patched is patched
    rows = HH + (size - 1) * stride if patched else HH
    assert rows == layout.U


@pytest.mark.parametrize("layout", ["plain", "patched"])
def test_conv_relu_pool_at_the_networks_geometry(layout: str) -> None:
    # 7x7 filters, pad 3, 2x2 pools, as in ThreeLayerConvNet; ties from small integers.
    g = {"N": 2, "C": 3, "F": 4, "H": 10, "W": 12, "HH": 7, "WW": 7}
    x, w, b = _conv_pool_inputs(g, 21, tied=True)
    with mock.patch.object(fast, "PATCH_WORK", LAYOUTS[layout]):
        _assert_sandwich_matches_naive(x, w, b, {"stride": 1, "pad": 3}, POOL, 22)


@pytest.mark.parametrize("block_bytes", [1, 10**9])
def test_conv_relu_pool_same_result_whatever_the_blocking(monkeypatch, block_bytes: int) -> None:
    # One example per block (the threads' path) and one block for the whole batch (dx's
    # flat fold, C < F, has a block size of its own).
    monkeypatch.setattr(fast, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(fast, "FEW_CHANNELS_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(fast, "INLINE_BYTES", 0)  # this batch is small: split it anyway
    g = {"N": 7, "C": 2, "F": 3, "H": 8, "W": 8, "HH": 3, "WW": 3,
         "conv_param": {"stride": 1, "pad": 1}, "pool_param": POOL}
    x, w, b = _conv_pool_inputs(g, 11, tied=True)
    _assert_sandwich_matches_naive(x, w, b, CONV, POOL, 12)


def test_conv_relu_pool_with_more_window_offsets_than_a_byte_counts() -> None:
    # A 17x17 window has 289 offsets: the first maximum's offset needs two bytes.
    g = {"N": 2, "C": 1, "F": 2, "H": 17, "W": 17, "HH": 3, "WW": 3}
    pool = {"pool_height": 17, "pool_width": 17, "stride": 17}
    x, w, b = _conv_pool_inputs(g, 15, tied=False)
    _assert_sandwich_matches_naive(x, w, b, CONV, pool, 16)


def test_conv_relu_pool_keeps_float32() -> None:
    x, w, b = _conv_pool_inputs({"N": 3, "C": 3, "F": 4, "H": 8, "W": 8, "HH": 3, "WW": 3},
                                13, tied=False)
    out64, cache64 = conv_relu_pool_forward(x, w, b, CONV, POOL)
    out, cache = conv_relu_pool_forward(*(a.astype(np.float32) for a in (x, w, b)), CONV, POOL)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-5)
    dout = np.random.default_rng(14).standard_normal(out.shape)
    want = conv_relu_pool_backward(dout, cache64)
    for input_grad in (True, False):
        got = conv_relu_pool_backward(dout.astype(np.float32), cache, input_grad=input_grad)
        for name, g, r in zip(("dx", "dw", "db"), got, want, strict=True):
            if g is None:
                continue
            assert g.dtype == np.float32, name
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4, err_msg=name)


def test_conv_relu_pool_rejects_a_pool_that_does_not_fit_like_the_layers() -> None:
    # A 2x2/2 pool over a 5x5 conv output leaves a row and a column out: the pool layer
    # refuses that geometry, and so does the sandwich, with the pool layer's message.
    x, w, b = np.zeros((1, 1, 5, 5)), np.zeros((2, 1, 3, 3)), np.zeros(2)
    with pytest.raises(ValueError, match=r"max_pool_forward_fast: output height 1 \+ \(5 - 2\)"):
        conv_relu_pool_forward(x, w, b, CONV, POOL)
    with pytest.raises(ValueError, match="conv_forward_fast: w must have shape"):
        conv_relu_pool_forward(x, np.zeros((2, 3, 3, 3)), b, CONV, POOL)


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
