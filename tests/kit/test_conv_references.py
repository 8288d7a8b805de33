"""Instructor-only cross-checks of the convolutional task functions (4.1, 4.3, 4.7, 4.9)
against independent references: scipy's correlate for the convolution, explicit Python
loops over scalars for pooling and group norm, and the flat batchnorm for spatial
batchnorm. Not shipped in the student release (tests/kit/ stays behind), so these second
implementations hand no student the answer."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from layer_registry import conv_inputs, groupnorm_inputs, pool_inputs
from scipy.signal import correlate

from course.layers import (
    batchnorm_forward,
    conv_forward_naive,
    max_pool_forward_naive,
    spatial_batchnorm_forward,
    spatial_groupnorm_forward,
)


def reference_conv(x, w, b, conv_param) -> np.ndarray:
    """Full 'valid' cross-correlation of each padded example with each filter (scipy),
    subsampled by the stride."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    outs = []
    for n in range(x.shape[0]):
        maps = [correlate(x_pad[n], w[f], mode="valid")[0, ::stride, ::stride] + b[f]
                for f in range(w.shape[0])]
        outs.append(np.stack(maps))
    return np.stack(outs)


def reference_max_pool(x, pool_param) -> np.ndarray:
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    H_out, W_out = 1 + (H - ph) // s, 1 + (W - pw) // s
    out = np.zeros((N, C, H_out, W_out))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    out[n, c, i, j] = max(float(x[n, c, i * s + p, j * s + q])
                                          for p in range(ph) for q in range(pw))
    return out


def reference_groupnorm(x, gamma, beta, G, gn_param) -> np.ndarray:
    eps = gn_param.get("eps", 1e-5)
    N, C = x.shape[:2]
    per = C // G
    out = np.zeros_like(x)
    for n in range(N):
        for g in range(G):
            values = [float(v) for v in x[n, g * per:(g + 1) * per].flat]
            mean = statistics.fmean(values)
            std = math.sqrt(statistics.pvariance(values, mu=mean) + eps)
            for c in range(g * per, (g + 1) * per):
                out[n, c] = gamma[0, c, 0, 0] * (x[n, c] - mean) / std + beta[0, c, 0, 0]
    return out


@pytest.mark.task("4.1")
@given(inputs=conv_inputs())
def test_conv_forward_matches_scipy_correlate(inputs) -> None:
    out, _ = conv_forward_naive(**inputs)
    np.testing.assert_allclose(out, reference_conv(**inputs), rtol=1e-10, atol=1e-10)


@pytest.mark.task("4.3")
@given(inputs=pool_inputs())
def test_max_pool_forward_matches_loop_reference(inputs) -> None:
    out, _ = max_pool_forward_naive(**inputs)
    np.testing.assert_array_equal(out, reference_max_pool(**inputs))


@pytest.mark.task("4.9")
@given(inputs=groupnorm_inputs())
def test_groupnorm_forward_matches_loop_reference(inputs) -> None:
    out, _ = spatial_groupnorm_forward(**inputs)
    np.testing.assert_allclose(out, reference_groupnorm(**inputs), rtol=1e-9, atol=1e-10)


@pytest.mark.task("4.7")
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(["train", "test"]))
def test_spatial_batchnorm_is_flat_batchnorm_over_pixels(seed: int, mode: str) -> None:
    rng = np.random.default_rng(seed)
    N, C, H, W = 3, 4, 2, 5
    x = rng.standard_normal((N, C, H, W)) * 2 + 1
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    stats = {"running_mean": rng.standard_normal(C), "running_var": rng.random(C) + 0.5}
    spatial_param = {"mode": mode, **{k: v.copy() for k, v in stats.items()}}
    flat_param = {"mode": mode, **{k: v.copy() for k, v in stats.items()}}
    out, _ = spatial_batchnorm_forward(x, gamma, beta, spatial_param)
    flat = x.transpose(0, 2, 3, 1).reshape(-1, C)
    expected, _ = batchnorm_forward(flat, gamma, beta, flat_param)
    np.testing.assert_allclose(out, expected.reshape(N, H, W, C).transpose(0, 3, 1, 2),
                               rtol=1e-12, atol=1e-12)
    for key in stats:
        np.testing.assert_allclose(spatial_param[key], flat_param[key], rtol=1e-12)
