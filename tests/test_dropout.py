"""Tests of inverted dropout (tasks 3.1, 3.2): mask statistics with tolerances taken from
the binomial standard deviation, the seed's reproducibility, test-mode identity, dtypes,
the backward pass by hand, and bad inputs.

The gradient against a numeric one is in tests/test_layers.py (registry entry "dropout")."""

from __future__ import annotations

import numpy as np
import pytest

from course.layers import dropout_backward, dropout_forward

N_ENTRIES = 200_000


def binomial_tolerance(p: float, n: int) -> float:
    """Six standard deviations of the fraction of kept entries among n: a seeded draw
    never gets near it, while a wrong keep probability (0.05 off) is dozens away."""
    return 6 * np.sqrt(p * (1 - p) / n) + 1e-12


# ---------------------------------------------------------------------------------------
# dropout_forward [task 3.1]
# ---------------------------------------------------------------------------------------


@pytest.mark.task("3.1")
@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
def test_fraction_kept_is_p_and_kept_entries_are_scaled_by_1_over_p(p: float) -> None:
    x = np.full(N_ENTRIES, 2.0)
    out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 0})
    kept = out != 0
    assert abs(kept.mean() - p) < binomial_tolerance(p, N_ENTRIES)
    np.testing.assert_allclose(out[kept], 2.0 / p, rtol=1e-12)


@pytest.mark.task("3.1")
@pytest.mark.parametrize("p", [0.3, 0.8])
def test_train_mean_matches_test_mean(p: float) -> None:
    # Inverted dropout keeps the expectation: mean(out) = mean(x) up to sampling noise.
    # With x = 1 the mean of out is (kept fraction) / p, so its standard deviation is
    # that of the kept fraction divided by p.
    x = np.ones((400, 500))
    train, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 1})
    test, _ = dropout_forward(x, {"mode": "test", "p": p, "seed": 1})
    assert test.mean() == 1.0
    assert abs(train.mean() - 1.0) < binomial_tolerance(p, x.size) / p


@pytest.mark.task("3.1")
def test_seed_gives_the_same_mask_on_every_call_and_leaves_global_state_alone() -> None:
    x = np.random.default_rng(2).standard_normal((30, 40))
    state = np.random.get_state()[1].copy()
    param = {"mode": "train", "p": 0.5, "seed": 123}
    first, _ = dropout_forward(x, param)
    second, _ = dropout_forward(x, param)
    np.testing.assert_array_equal(first, second)
    other, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 124})
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.task("3.1")
def test_without_seed_the_mask_comes_from_numpy_global_state() -> None:
    x = np.ones((20, 50))
    param = {"mode": "train", "p": 0.5}
    np.random.seed(231)
    first, _ = dropout_forward(x, param)
    second, _ = dropout_forward(x, param)
    np.random.seed(231)
    again, _ = dropout_forward(x, param)
    assert not np.array_equal(first, second)  # the state moved on between the calls
    np.testing.assert_array_equal(first, again)


@pytest.mark.task("3.1")
def test_test_mode_is_the_identity_and_caches_no_mask() -> None:
    x = np.random.default_rng(3).standard_normal((4, 5, 6))
    param = {"mode": "test", "p": 0.3}
    out, cache = dropout_forward(x, param)
    np.testing.assert_array_equal(out, x)
    assert cache[0] is param and cache[1] is None


@pytest.mark.task("3.1")
@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_keeps_the_dtype_of_x(mode: str, dtype) -> None:
    x = np.ones((10, 10), dtype=dtype)
    out, _ = dropout_forward(x, {"mode": mode, "p": 0.7, "seed": 0})
    assert out.dtype == dtype and out.shape == x.shape


@pytest.mark.task("3.1")
def test_train_cache_holds_the_mask_x_was_multiplied_by() -> None:
    x = np.random.default_rng(4).uniform(1, 2, (6, 7))
    param = {"mode": "train", "p": 0.4, "seed": 5}
    out, (cached_param, mask) = dropout_forward(x, param)
    assert cached_param is param
    assert set(np.unique(mask)) <= {0.0, 1 / 0.4}
    np.testing.assert_allclose(out, x * mask, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# dropout_backward [task 3.2]
# ---------------------------------------------------------------------------------------


@pytest.mark.task("3.2")
def test_backward_passes_gradient_where_kept_scaled_by_1_over_p() -> None:
    x = np.random.default_rng(6).uniform(1, 2, (50, 8))  # no zeros: out != 0 where kept
    param = {"mode": "train", "p": 0.25, "seed": 7}
    out, cache = dropout_forward(x, param)
    dout = np.random.default_rng(8).standard_normal(x.shape)
    dx = dropout_backward(dout, cache)
    kept = out != 0
    np.testing.assert_allclose(dx[kept], 4.0 * dout[kept], rtol=1e-12)
    np.testing.assert_array_equal(dx[~kept], 0.0)


@pytest.mark.task("3.2")
def test_backward_known_answer_from_a_cache_built_by_hand() -> None:
    # The cache is (dropout_param, mask) with mask the array x was multiplied by: 0 or
    # 1/p (here p = 0.25, so 4). dx = dout * mask: [[4, 0, 12], [0, -8, 0]]. Built by hand,
    # so a backward pass that only undoes its own forward pass's mistake (a 0/1 mask there,
    # divided by p here) fails, as it does in the grade.
    mask = np.array([[4.0, 0.0, 4.0], [0.0, 4.0, 0.0]])
    dout = np.array([[1.0, 2.0, 3.0], [4.0, -2.0, 6.0]])
    dx = dropout_backward(dout, ({"mode": "train", "p": 0.25}, mask))
    np.testing.assert_allclose(dx, [[4.0, 0.0, 12.0], [0.0, -8.0, 0.0]], rtol=1e-12)


@pytest.mark.task("3.2")
def test_backward_in_test_mode_is_the_identity() -> None:
    x = np.ones((3, 4))
    _, cache = dropout_forward(x, {"mode": "test", "p": 0.5})
    dout = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


# ---------------------------------------------------------------------------------------
# Bad inputs: given validation code, no task marker.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0, -0.5, 1.5, None, True, "0.5"])
def test_rejects_keep_probability_outside_0_1(p) -> None:
    with pytest.raises(ValueError, match=r"dropout_forward: dropout_param\['p'\] \(the keep "
                                         r"probability\) must be a finite number in \(0, 1\]; "
                                         rf"got {p!r}"):
        dropout_forward(np.ones(3), {"mode": "train", "p": p})


@pytest.mark.parametrize("param", [{"p": 0.5}, {"p": 0.5, "mode": "eval"}],
                         ids=["missing", "eval"])
def test_rejects_bad_mode(param) -> None:
    with pytest.raises(ValueError, match=r"dropout_param\['mode'\] must be one of "
                                         r"\('train', 'test'\)"):
        dropout_forward(np.ones(3), param)


def test_rejects_non_dict_param_and_backward_rejects_dout_of_wrong_shape() -> None:
    with pytest.raises(ValueError, match="dropout_param must be a dict; got float"):
        dropout_forward(np.ones(3), 0.5)
    _, cache = dropout_forward(np.ones((2, 3)), {"mode": "train", "p": 0.5, "seed": 0})
    with pytest.raises(ValueError, match=r"dropout_backward: dout must have shape \(2, 3\).*"
                                         r"got dout\.shape = \(3, 2\)"):
        dropout_backward(np.ones((3, 2)), cache)
