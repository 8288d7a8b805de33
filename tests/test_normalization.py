"""Tests of batch and layer normalisation (tasks 2.1-2.5): hand-derived answers, the
statistics the forward passes promise, the running-average rule, the closed-form backward
against the graph one, batchnorm vs layernorm under transposition, and bad inputs.

Gradients against numeric ones are in tests/test_layers.py (registry entries
"batchnorm", "batchnorm_alt", "layernorm")."""

from __future__ import annotations

import numpy as np
import pytest

from course.layers import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)
from course.tasks import TASKS_BY_ID

EPS = 1e-5


def assert_two_tasks_agree(first: np.ndarray, second: np.ndarray, first_task: str,
                           second_task: str, what: str, rtol: float, atol: float) -> None:
    """Assert two tasks' functions give the same ``what``, entry by entry
    (``|first - second| <= atol + rtol * |second|``, NaNs equal, as ``assert_allclose``).

    Neither result is the answer: numpy's ACTUAL/DESIRED labels would present the second
    as right, and with the second task broken the student's correct code would read as
    the wrong one. The message names each side by its function and task and says that
    either may be at fault."""
    __tracebackhide__ = True  # pytest's report shows the test's line, not this helper's
    first_name, second_name = (f"your {TASKS_BY_ID[t].function} ({t})"
                               for t in (first_task, second_task))
    first, second = np.asarray(first), np.asarray(second)
    header = (f"{what}: {first_name} and {second_name} should agree, and do not. Either "
              f"may be wrong: each one's own tests (make check TASK={first_task}, "
              f"TASK={second_task}) tell which.")
    if first.shape != second.shape:
        raise AssertionError(f"{header}\n  {first_name} has shape {first.shape}, "
                             f"{second_name} has shape {second.shape}")
    close = np.isclose(first, second, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return
    differ = np.argwhere(~close)
    lines = [header, f"  {len(differ)} of {first.size} entries differ (by more than "
                     f"{atol:g} + {rtol:g} times the size); the first of them:"]
    width = max(len(first_name), len(second_name))
    for index in map(tuple, differ[:3]):
        at = str([int(i) for i in index])
        lines += [f"  at {at}: {first_name:<{width}} {float(first[index])!r}",
                  f"  {' ' * (len(at) + 5)}{second_name:<{width}} {float(second[index])!r}"]
    raise AssertionError("\n".join(lines))


def random_batch(seed: int, N: int = 50, D: int = 4) -> np.ndarray:
    """Columns with different means and scales, so normalisation has something to undo."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (N, D)) * rng.uniform(0.5, 4, D) + rng.normal(0, 5, D)


# ---------------------------------------------------------------------------------------
# batchnorm_forward [task 2.1]
# ---------------------------------------------------------------------------------------


@pytest.mark.task("2.1")
def test_batchnorm_forward_known_answer() -> None:
    # Column 0 is [1, 3]: mean 2, biased variance 1. Column 1 is [4, 4]: variance 0.
    x = np.array([[1.0, 4.0], [3.0, 4.0]])
    gamma, beta = np.array([2.0, 3.0]), np.array([0.5, -1.0])
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    s = 1 / np.sqrt(1 + EPS)
    np.testing.assert_allclose(out, [[0.5 - 2 * s, -1.0], [0.5 + 2 * s, -1.0]], rtol=1e-12)


@pytest.mark.task("2.1")
def test_batchnorm_train_output_has_mean_beta_and_std_gamma() -> None:
    x = random_batch(0)
    gamma, beta = np.array([1.0, 2.0, 0.5, 3.0]), np.array([0.0, -1.0, 4.0, 0.25])
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": 1e-12})
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=1e-9)


@pytest.mark.task("2.1")
def test_batchnorm_running_averages_two_steps_by_hand() -> None:
    # Running averages start at 0; each train step sets r = 0.9 * r + 0.1 * the batch's
    # statistic (biased variance). Step 1: means (2, -1), variances (1, 0), so (0.2, -0.1)
    # and (0.1, 0). Step 2: means (2, 4), variances (4, 4), so 0.9 * 0.2 + 0.1 * 2 = 0.38,
    # 0.9 * -0.1 + 0.1 * 4 = 0.31, and 0.9 * 0.1 + 0.1 * 4 = 0.49, 0.4.
    bn_param = {"mode": "train", "momentum": 0.9}
    gamma, beta = np.ones(2), np.zeros(2)
    batchnorm_forward(np.array([[1.0, -1.0], [3.0, -1.0]]), gamma, beta, bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], [0.2, -0.1], rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], [0.1, 0.0], atol=1e-15)
    batchnorm_forward(np.array([[0.0, 2.0], [4.0, 6.0]]), gamma, beta, bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], [0.38, 0.31], rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], [0.49, 0.4], rtol=1e-12)

    # Test mode uses those statistics and leaves them alone.
    bn_param["mode"] = "test"
    x = np.array([[0.38, 0.31], [0.38 + np.sqrt(0.49 + EPS), 0.31 - 2 * np.sqrt(0.4 + EPS)]])
    out, _ = batchnorm_forward(x, np.array([2.0, 1.0]), np.array([1.0, 0.0]), bn_param)
    np.testing.assert_allclose(out, [[1.0, 0.0], [3.0, -2.0]], atol=1e-12)
    np.testing.assert_allclose(bn_param["running_mean"], [0.38, 0.31], rtol=1e-12)


@pytest.mark.task("2.1")
def test_batchnorm_default_momentum_is_0_9_and_running_stats_take_x_dtype() -> None:
    x = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    bn_param = {"mode": "train"}
    batchnorm_forward(x, np.ones(2, np.float32), np.zeros(2, np.float32), bn_param)
    assert bn_param["running_mean"].dtype == np.float32
    assert bn_param["running_var"].dtype == np.float32
    np.testing.assert_allclose(bn_param["running_mean"], [0.2, 0.4], rtol=1e-6)
    np.testing.assert_allclose(bn_param["running_var"], [0.1, 0.4], rtol=1e-6)


@pytest.mark.task("2.1")
def test_batchnorm_test_mode_after_warm_up_normalises_new_batches() -> None:
    # Batches from one distribution: after many train steps the running statistics match
    # it, so a fresh batch in test mode comes out with mean ~ beta and std ~ gamma.
    rng = np.random.default_rng(1)
    mean, scale = np.array([5.0, -3.0, 0.0]), np.array([2.0, 0.5, 1.0])
    bn_param = {"mode": "train"}
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, -1.0])
    for _ in range(200):
        batchnorm_forward(rng.normal(mean, scale, (100, 3)), gamma, beta, bn_param)
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(rng.normal(mean, scale, (4000, 3)), gamma, beta, bn_param)
    # Standard errors: mean ~ gamma / sqrt(4000) ~ 0.05 at most; 0.2 is four of them
    # plus what the running average itself is off by.
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=0.2)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=0.1)


@pytest.mark.task("2.1")
def test_batchnorm_does_not_modify_x() -> None:
    x = random_batch(2)
    copy = x.copy()
    batchnorm_forward(x, np.ones(4), np.zeros(4), {"mode": "train"})
    np.testing.assert_array_equal(x, copy)


# ---------------------------------------------------------------------------------------
# batchnorm_backward, batchnorm_backward_alt [tasks 2.2, 2.3]
# ---------------------------------------------------------------------------------------

# Each backward is its own task, so each parameter carries its own task mark.
BACKWARDS = [
    pytest.param(batchnorm_backward, id="graph", marks=pytest.mark.task("2.2")),
    pytest.param(batchnorm_backward_alt, id="alt", marks=pytest.mark.task("2.3")),
]


@pytest.mark.parametrize("backward", BACKWARDS)
def test_batchnorm_backward_known_answer(backward) -> None:
    # Two rows: x_hat = (-s, s) with s = 1/sqrt(1 + eps). With dout = (1, 0) and
    # gamma = 1, dx = s * (g - mean(g) - x_hat * mean(g * x_hat)) = s * ((1, 0) - 1/2
    # - x_hat * (-s / 2)) = s * (1/2 - s^2/2, -1/2 + s^2/2).
    x = np.array([[1.0], [3.0]])
    _, cache = batchnorm_forward(x, np.ones(1), np.zeros(1), {"mode": "train"})
    dx, dgamma, dbeta = backward(np.array([[1.0], [0.0]]), cache)
    s = 1 / np.sqrt(1 + EPS)
    np.testing.assert_allclose(dx, [[s * (1 - s * s) / 2], [-s * (1 - s * s) / 2]],
                               rtol=1e-6, atol=1e-16)
    np.testing.assert_allclose(dgamma, [-s], rtol=1e-12)
    np.testing.assert_allclose(dbeta, [1.0])


@pytest.mark.parametrize("backward", BACKWARDS)
def test_batchnorm_dx_sums_to_zero_and_is_orthogonal_to_x_hat(backward) -> None:
    # The output does not change when x moves by a constant per column, nor (to first
    # order, at eps -> 0) when it is scaled per column: so dx has zero column sums and
    # is orthogonal to each centred column.
    x = random_batch(3, N=20)
    _, cache = batchnorm_forward(x, np.array([1.0, 2.0, 3.0, 4.0]), np.zeros(4),
                                 {"mode": "train", "eps": 1e-14})
    dx, _, _ = backward(np.random.default_rng(4).standard_normal(x.shape), cache)
    np.testing.assert_allclose(dx.sum(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(np.sum(dx * (x - x.mean(axis=0)), axis=0), 0, atol=1e-8)


@pytest.mark.task("2.3")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batchnorm_backward_alt_equals_graph_version(seed: int) -> None:
    x = random_batch(seed, N=30, D=6)
    rng = np.random.default_rng(seed + 10)
    gamma, beta = rng.uniform(0.5, 2, 6), rng.standard_normal(6)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.standard_normal(x.shape)
    for graph, alt, name in zip(batchnorm_backward(dout, cache),
                                batchnorm_backward_alt(dout, cache),
                                ("dx", "dgamma", "dbeta"), strict=True):
        assert_two_tasks_agree(alt, graph, "2.3", "2.2", name, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------
# layernorm [tasks 2.4, 2.5]
# ---------------------------------------------------------------------------------------


@pytest.mark.task("2.4")
def test_layernorm_forward_known_answer() -> None:
    # Row 0 is [1, 3] (mean 2, variance 1); row 1 is [0, -4] (mean -2, variance 4).
    x = np.array([[1.0, 3.0], [0.0, -4.0]])
    out, _ = layernorm_forward(x, np.array([2.0, 1.0]), np.array([0.0, 10.0]), {})
    a, b = 1 / np.sqrt(1 + EPS), 2 / np.sqrt(4 + EPS)
    np.testing.assert_allclose(out, [[-2 * a, 10 + a], [2 * b, 10 - b]], rtol=1e-12)


@pytest.mark.task("2.4")
@pytest.mark.parametrize("mode", ["train", "test", None])
def test_layernorm_rows_have_mean_0_and_std_1_in_any_mode(mode) -> None:
    x = random_batch(5, N=6, D=40)
    ln_param = {"eps": 1e-12} if mode is None else {"eps": 1e-12, "mode": mode}
    out, _ = layernorm_forward(x, np.ones(40), np.zeros(40), ln_param)
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=1), 1, rtol=1e-9)
    assert "running_mean" not in ln_param  # nothing to keep between calls


@pytest.mark.task("2.4")
def test_layernorm_of_one_example_does_not_depend_on_the_batch() -> None:
    x = random_batch(6, N=8, D=5)
    gamma, beta = np.arange(1.0, 6.0), np.arange(5.0)
    full, _ = layernorm_forward(x, gamma, beta, {})
    alone, _ = layernorm_forward(x[3:4], gamma, beta, {})
    np.testing.assert_allclose(alone, full[3:4], rtol=1e-12)


@pytest.mark.task("2.5")
def test_layernorm_dx_rows_sum_to_zero() -> None:
    x = random_batch(7, N=5, D=10)
    _, cache = layernorm_forward(x, np.linspace(0.5, 2, 10), np.zeros(10), {})
    dx, _, dbeta = layernorm_backward(np.random.default_rng(8).standard_normal(x.shape), cache)
    np.testing.assert_allclose(dx.sum(axis=1), 0, atol=1e-10)
    assert dbeta.shape == (10,)


# ---------------------------------------------------------------------------------------
# batchnorm and layernorm are the same operation on transposed data (when gamma = 1 and
# beta = 0: otherwise the scale and shift act on different axes). These call batchnorm
# too, so tasks 2.4 and 2.5 list the batchnorm tasks in their ``requires``.
# ---------------------------------------------------------------------------------------


@pytest.mark.task("2.4")
@pytest.mark.parametrize("shape", [(3, 7), (10, 2), (5, 5)])
def test_layernorm_forward_is_batchnorm_of_the_transpose(shape) -> None:
    x = random_batch(sum(shape), N=shape[0], D=shape[1])
    N, D = shape
    ln, _ = layernorm_forward(x, np.ones(D), np.zeros(D), {})
    bn, _ = batchnorm_forward(x.T, np.ones(N), np.zeros(N), {"mode": "train"})
    np.testing.assert_allclose(ln, bn.T, rtol=1e-12, atol=1e-12)


@pytest.mark.task("2.5")
@pytest.mark.parametrize("shape", [(3, 7), (10, 2)])
def test_layernorm_dx_is_batchnorm_dx_of_the_transpose(shape) -> None:
    x = random_batch(sum(shape) + 1, N=shape[0], D=shape[1])
    N, D = shape
    dout = np.random.default_rng(9).standard_normal(shape)
    _, ln_cache = layernorm_forward(x, np.ones(D), np.zeros(D), {})
    _, bn_cache = batchnorm_forward(x.T, np.ones(N), np.zeros(N), {"mode": "train"})
    ln_dx = layernorm_backward(dout, ln_cache)[0]
    bn_dx = batchnorm_backward(dout.T, bn_cache)[0]
    assert_two_tasks_agree(ln_dx, bn_dx.T, "2.5", "2.2",
                           "dx (batchnorm's taken on x.T, transposed back)",
                           rtol=1e-9, atol=1e-12)


def test_two_tasks_comparison_names_each_side_and_blames_neither() -> None:
    # The comparison helper itself (no task): within tolerance passes, a different entry
    # or shape fails with both sides named, neither called the desired one.
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert_two_tasks_agree(a, a + 1e-13, "2.3", "2.2", "dx", rtol=1e-10, atol=1e-12)
    with pytest.raises(AssertionError) as failure:
        assert_two_tasks_agree(a, np.array([[1.0, 2.5], [3.0, 4.0]]), "2.3", "2.2", "dx",
                               rtol=1e-10, atol=1e-12)
    message = str(failure.value)
    assert message.startswith(
        "dx: your batchnorm_backward_alt (2.3) and your batchnorm_backward (2.2) should "
        "agree, and do not. Either may be wrong: each one's own tests (make check "
        "TASK=2.3, TASK=2.2) tell which.\n  1 of 4 entries differ")
    assert "at [0, 1]: your batchnorm_backward_alt (2.3) 2.0\n" in message
    assert message.endswith("your batchnorm_backward (2.2)     2.5")
    assert "DESIRED" not in message and "ACTUAL" not in message
    with pytest.raises(AssertionError, match=r"\(2\.3\) has shape \(2, 2\), your "
                                             r"batchnorm_backward \(2\.2\) has shape \(2,\)"):
        assert_two_tasks_agree(a, a[0], "2.3", "2.2", "dx", rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------
# Bad inputs: given validation code, no task marker.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("forward", [batchnorm_forward, layernorm_forward],
                         ids=["batchnorm", "layernorm"])
@pytest.mark.parametrize(
    ("x", "gamma", "beta", "message"),
    [
        (np.zeros(3), np.ones(3), np.zeros(3), r"x must have shape \(N, D\).*got x\.shape = "
                                               r"\(3,\)"),
        (np.zeros((2, 3, 1)), np.ones(3), np.zeros(3), r"x must have shape \(N, D\).*"
                                                       r"got x\.shape = \(2, 3, 1\)"),
        (np.zeros((2, 3)), np.ones(4), np.zeros(3), r"gamma must have shape \(D,\) with D = 3.*"
                                                    r"got gamma\.shape = \(4,\)"),
        (np.zeros((2, 3)), np.ones(3), np.zeros((1, 3)), r"beta must have shape \(D,\) with D = 3.*"
                                                         r"got beta\.shape = \(1, 3\)"),
    ],
    ids=["x-1d", "x-3d", "gamma", "beta"],
)
def test_norm_forward_rejects_bad_shapes(forward, x, gamma, beta, message: str) -> None:
    with pytest.raises(ValueError, match=f"{forward.__name__}: {message}"):
        forward(x, gamma, beta, {"mode": "train"})


@pytest.mark.parametrize("bn_param", [{}, {"mode": "eval"}, {"mode": None}],
                         ids=["missing", "eval", "none"])
def test_batchnorm_rejects_bad_mode(bn_param) -> None:
    with pytest.raises(ValueError, match=r"batchnorm_forward: bn_param\['mode'\] must be one "
                                         r"of \('train', 'test'\)"):
        batchnorm_forward(np.zeros((2, 3)), np.ones(3), np.zeros(3), bn_param)


@pytest.mark.parametrize("forward", [batchnorm_forward, layernorm_forward],
                         ids=["batchnorm", "layernorm"])
def test_norm_forward_rejects_bad_eps_and_non_dict_param(forward) -> None:
    x, gamma, beta = np.zeros((2, 3)), np.ones(3), np.zeros(3)
    with pytest.raises(ValueError, match=r"\['eps'\] must be a finite number > 0; got -1"):
        forward(x, gamma, beta, {"mode": "train", "eps": -1})
    with pytest.raises(ValueError, match="must be a dict; got NoneType"):
        forward(x, gamma, beta, None)


def test_batchnorm_rejects_running_mean_of_the_wrong_shape() -> None:
    bn_param = {"mode": "test", "running_mean": np.zeros(4), "running_var": np.ones(3)}
    with pytest.raises(ValueError, match=r"bn_param\['running_mean'\] must have shape \(D,\) "
                                         r"with D = 3 .*; got .*shape = \(4,\)"):
        batchnorm_forward(np.zeros((2, 3)), np.ones(3), np.zeros(3), bn_param)


@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt,
                                      layernorm_backward])
def test_norm_backward_rejects_dout_that_is_not_2d(backward) -> None:
    with pytest.raises(ValueError, match=rf"{backward.__name__}: dout must have shape \(N, D\)"):
        backward(np.zeros(3), None)
