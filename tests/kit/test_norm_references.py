"""Instructor-only cross-checks of batchnorm, layernorm and dropout (tasks 2.1, 2.4, 3.1)
against independent references written with explicit loops and Python's ``statistics``
module. This file is not shipped in the student release (tests/kit/ stays behind), so the
second implementations here hand no student the answer."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.layers import batchnorm_forward, dropout_forward, layernorm_forward


def reference_normalise(values: list[float], eps: float) -> list[float]:
    """(v - mean) / sqrt(population variance + eps), one Python float at a time."""
    mean = statistics.fmean(values)
    var = statistics.pvariance(values, mu=mean)
    return [(v - mean) / math.sqrt(var + eps) for v in values]


def reference_batchnorm(x, gamma, beta, eps: float) -> np.ndarray:
    N, D = x.shape
    out = np.zeros((N, D))
    for j in range(D):
        column = reference_normalise([float(x[n, j]) for n in range(N)], eps)
        for n in range(N):
            out[n, j] = gamma[j] * column[n] + beta[j]
    return out


def reference_layernorm(x, gamma, beta, eps: float) -> np.ndarray:
    N, D = x.shape
    out = np.zeros((N, D))
    for n in range(N):
        row = reference_normalise([float(x[n, j]) for j in range(D)], eps)
        for j in range(D):
            out[n, j] = gamma[j] * row[j] + beta[j]
    return out


@st.composite
def norm_case(draw: st.DrawFn):
    N, D = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = draw(st.sampled_from([0.1, 1.0, 10.0])) * rng.standard_normal((N, D))
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.5]))
    return x, rng.standard_normal(D), rng.standard_normal(D), eps


@pytest.mark.task("2.1")
@given(case=norm_case())
def test_batchnorm_train_forward_matches_loop_reference(case) -> None:
    x, gamma, beta, eps = case
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    np.testing.assert_allclose(out, reference_batchnorm(x, gamma, beta, eps),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.task("2.1")
@given(case=norm_case(), momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]))
def test_batchnorm_running_stats_and_test_mode_match_loop_reference(case, momentum) -> None:
    x, gamma, beta, eps = case
    N, D = x.shape
    bn_param = {"mode": "train", "eps": eps, "momentum": momentum}
    expected_mean, expected_var = [0.0] * D, [0.0] * D
    for step in range(3):
        batch = x + step  # three batches with moving means
        batchnorm_forward(batch, gamma, beta, bn_param)
        for j in range(D):
            column = [float(batch[n, j]) for n in range(N)]
            expected_mean[j] = (momentum * expected_mean[j]
                                + (1 - momentum) * statistics.fmean(column))
            expected_var[j] = (momentum * expected_var[j]
                               + (1 - momentum) * statistics.pvariance(column))
    np.testing.assert_allclose(bn_param["running_mean"], expected_mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], expected_var, rtol=1e-9, atol=1e-12)

    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    expected = [[gamma[j] * (x[n, j] - expected_mean[j]) / math.sqrt(expected_var[j] + eps)
                 + beta[j] for j in range(D)] for n in range(N)]
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.task("2.4")
@given(case=norm_case())
def test_layernorm_forward_matches_loop_reference(case) -> None:
    x, gamma, beta, eps = case
    out, _ = layernorm_forward(x, gamma, beta, {"eps": eps})
    np.testing.assert_allclose(out, reference_layernorm(x, gamma, beta, eps),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.task("3.1")
@pytest.mark.parametrize("p", [0.2, 0.5, 1.0])
def test_seeded_dropout_mask_is_uniform_draw_below_p(p: float) -> None:
    # The kit's documented mask: keep where a uniform draw of default_rng(seed) is below p.
    x = np.arange(1.0, 61.0).reshape(6, 10)
    out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 42})
    draws = np.random.default_rng(42).random(x.shape)
    expected = [[x[i, j] / p if draws[i, j] < p else 0.0 for j in range(10)] for i in range(6)]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
