"""Tests of course.layer_utils beyond the generic registry tests (which check affine_relu and
the plain hidden block against numeric gradients): the hidden block's normalisation and
dropout slots, exercised with stand-in layers registered for the test, and the registry
errors."""

from __future__ import annotations

import numpy as np
import pytest
from layer_registry import assert_gradient_close

from course import layer_utils
from course.gradient_check import eval_numerical_gradient_array
from course.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    hidden_block_backward,
    hidden_block_forward,
    register_dropout_layer,
    register_norm_layer,
)

# ---------------------------------------------------------------------------------------
# Stand-in layers with the registry's signatures. They are simple enough that their
# correctness is evident, so a failure points at the block's plumbing.
# ---------------------------------------------------------------------------------------


def scale_shift_forward(x, gamma, beta, norm_param):
    """A 'normalisation' that only scales and shifts: out = gamma * x + beta."""
    norm_param.setdefault("calls", []).append(norm_param.get("mode"))
    return gamma * x + beta, (x, gamma)


def scale_shift_backward(dout, cache):
    x, gamma = cache
    return dout * gamma, np.sum(dout * x, axis=0), np.sum(dout, axis=0)


def fixed_mask_forward(x, dropout_param):
    """A 'dropout' whose mask comes from dropout_param, so it is deterministic."""
    mask = dropout_param["mask"]
    return x * mask, mask


def fixed_mask_backward(dout, cache):
    return dout * cache


@pytest.fixture
def registries(monkeypatch):
    """Fresh copies of both registries for one test, holding the stand-ins, so neither
    the test's entries nor the real layers registered by other modules leak across."""
    monkeypatch.setattr(layer_utils, "NORM_LAYERS", {})
    monkeypatch.setattr(layer_utils, "DROPOUT_LAYERS", {})
    register_norm_layer("scaleshift", scale_shift_forward, scale_shift_backward)
    register_dropout_layer("maskdrop", fixed_mask_forward, fixed_mask_backward)
    return layer_utils


def _block_inputs(seed: int = 0, N: int = 4, D: int = 5, M: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D))
    w = rng.standard_normal((D, M))
    b = rng.standard_normal(M)
    gamma = rng.uniform(0.5, 2.0, size=M)
    beta = rng.standard_normal(M)
    mask = rng.integers(0, 2, size=(N, M)) * 2.0  # inverted-dropout style: 0 or 1/p
    return x, w, b, gamma, beta, mask


# ---------------------------------------------------------------------------------------
# Plain block and affine_relu
# ---------------------------------------------------------------------------------------


def test_plain_hidden_block_equals_affine_relu() -> None:
    x, w, b, *_ = _block_inputs()
    out, cache = hidden_block_forward(x, w, b)
    expected_out, expected_cache = affine_relu_forward(x, w, b)
    np.testing.assert_array_equal(out, expected_out)
    dout = np.random.default_rng(9).standard_normal(out.shape)
    dx, dw, db, dgamma, dbeta = hidden_block_backward(dout, cache)
    for got, want in zip((dx, dw, db), affine_relu_backward(dout, expected_cache), strict=True):
        np.testing.assert_array_equal(got, want)
    assert dgamma is None and dbeta is None


# ---------------------------------------------------------------------------------------
# Normalisation and dropout slots
# ---------------------------------------------------------------------------------------


def test_block_applies_norm_between_affine_and_relu_and_dropout_last(registries) -> None:
    x, w, b, gamma, beta, mask = _block_inputs(1)
    norm_param = {"mode": "train"}
    out, _ = hidden_block_forward(x, w, b, normalization="scaleshift", gamma=gamma,
                                  beta=beta, norm_param=norm_param,
                                  dropout_param={"mask": mask}, dropout="maskdrop")
    expected = np.maximum(gamma * (x @ w + b) + beta, 0) * mask
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert norm_param["calls"] == ["train"]  # the norm layer received this very dict


def test_block_gradients_with_norm_and_dropout_match_numeric(registries) -> None:
    x, w, b, gamma, beta, mask = _block_inputs(2)
    norm_param: dict = {"mode": "train"}
    inputs = {"x": x, "w": w, "b": b, "gamma": gamma, "beta": beta}

    def forward(_=None):
        return hidden_block_forward(
            inputs["x"], inputs["w"], inputs["b"], normalization="scaleshift",
            gamma=inputs["gamma"], beta=inputs["beta"], norm_param=norm_param,
            dropout_param={"mask": mask}, dropout="maskdrop")

    out, cache = forward()
    # Keep clear of the ReLU kink so the numeric gradient is valid.
    pre_relu = gamma * (x @ w + b) + beta
    assert np.min(np.abs(pre_relu)) > 1e-3
    dout = np.random.default_rng(3).standard_normal(out.shape)
    analytic = dict(zip(("x", "w", "b", "gamma", "beta"),
                        hidden_block_backward(dout, cache), strict=True))
    for name in inputs:
        numeric = eval_numerical_gradient_array(lambda _: forward()[0], inputs[name], dout)
        assert_gradient_close(analytic[name], numeric, f"hidden block: d{name}")


def test_block_without_dropout_param_skips_dropout(registries) -> None:
    x, w, b, *_ = _block_inputs(4)
    out, _ = hidden_block_forward(x, w, b, dropout="maskdrop")
    np.testing.assert_array_equal(out, np.maximum(x @ w + b, 0))


# ---------------------------------------------------------------------------------------
# Registry errors
# ---------------------------------------------------------------------------------------


def test_unknown_normalization_names_the_registered_ones(registries) -> None:
    x, w, b, gamma, beta, _ = _block_inputs()
    with pytest.raises(ValueError, match=r"hidden_block_forward: normalization 'groupnorm' is "
                                         r"not registered; available: 'scaleshift'"):
        hidden_block_forward(x, w, b, normalization="groupnorm", gamma=gamma, beta=beta,
                             norm_param={})


def test_unknown_dropout_names_the_registered_ones(registries) -> None:
    x, w, b, *_ = _block_inputs()
    with pytest.raises(ValueError, match=r"dropout 'dropout' is not registered; "
                                         r"available: 'maskdrop'"):
        hidden_block_forward(x, w, b, dropout_param={"mode": "train", "p": 0.5})


def test_empty_registry_says_none_yet(monkeypatch) -> None:
    monkeypatch.setattr(layer_utils, "NORM_LAYERS", {})
    x, w, b, *_ = _block_inputs()
    with pytest.raises(ValueError, match=r"normalization 'batchnorm' is not registered; "
                                         r"available: none yet"):
        hidden_block_forward(x, w, b, normalization="batchnorm", gamma=np.ones(3),
                             beta=np.zeros(3), norm_param={})


@pytest.mark.parametrize("missing", ["gamma", "beta", "norm_param"])
def test_normalization_needs_gamma_beta_and_norm_param(registries, missing: str) -> None:
    x, w, b, gamma, beta, _ = _block_inputs()
    kwargs = {"gamma": gamma, "beta": beta, "norm_param": {}}
    kwargs[missing] = None
    with pytest.raises(ValueError, match=f"normalization 'scaleshift' needs {missing}; got None"):
        hidden_block_forward(x, w, b, normalization="scaleshift", **kwargs)


def test_register_replaces_an_entry_and_rejects_empty_names(registries) -> None:
    register_norm_layer("scaleshift", fixed_mask_forward, fixed_mask_backward)
    assert layer_utils.NORM_LAYERS["scaleshift"] == (fixed_mask_forward, fixed_mask_backward)
    with pytest.raises(ValueError, match="register_norm_layer: name must be a non-empty string"):
        register_norm_layer("", scale_shift_forward, scale_shift_backward)
    with pytest.raises(ValueError, match="register_dropout_layer: name must be a non-empty"):
        register_dropout_layer(None, fixed_mask_forward, fixed_mask_backward)
