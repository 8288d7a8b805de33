"""Tests of course.layers: generic property tests driven by tests/layer_registry.py, then
hand-derived known answers, loss-specific properties and bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from layer_registry import LayerCase, assert_gradient_close, cases
from scipy.special import logsumexp
from scipy.special import softmax as scipy_softmax

from course.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from course.layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
    svm_loss,
)

# ---------------------------------------------------------------------------------------
# Generic tests over the registry
# ---------------------------------------------------------------------------------------


# Forward passes against independent loop references: instructor-only, in
# tests/kit/test_task_references.py (a second implementation must not ship). Here they
# are checked on hand-derived known answers below.


@pytest.mark.parametrize("case", cases("layer", "backward"))
@given(data=st.data())
def test_backward_matches_numeric_gradient(case: LayerCase, data: st.DataObject) -> None:
    inputs = data.draw(case.inputs, label="inputs")
    out, cache = case.forward(**inputs)
    dout = np.random.default_rng(0).standard_normal(np.shape(out))
    grads = case.backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert len(grads) == len(case.differentiable)

    for name, analytic in zip(case.differentiable, grads, strict=True):
        # The numeric gradient perturbs inputs[name] in place, so f can ignore its argument.
        def f(_: np.ndarray) -> np.ndarray:
            return case.forward(**inputs)[0]

        numeric = eval_numerical_gradient_array(f, inputs[name], dout)
        assert_gradient_close(analytic, numeric, f"{case.name}: d{name}")


@pytest.mark.parametrize("case", cases("loss", "backward"))
@given(data=st.data())
def test_loss_gradient_matches_numeric_gradient(case: LayerCase, data: st.DataObject) -> None:
    inputs = data.draw(case.inputs, label="inputs")
    x, y = inputs["x"], inputs["y"]
    _, dx = case.forward(x, y)
    numeric = eval_numerical_gradient(lambda _: case.forward(x, y)[0], x, verbose=False)
    assert_gradient_close(dx, numeric, f"{case.name}: dx")


# ---------------------------------------------------------------------------------------
# Affine: hand-derived answers
# ---------------------------------------------------------------------------------------


@pytest.mark.task("1.1")
def test_affine_forward_known_answer() -> None:
    # Two examples of shape (1, 2); flattened rows are [1, 2] and [3, 4].
    x = np.array([[[1.0, 2.0]], [[3.0, 4.0]]])
    w = np.array([[1.0, 0.0, -1.0],
                  [2.0, 1.0, 0.0]])
    b = np.array([0.5, 0.0, -1.0])
    out, _ = affine_forward(x, w, b)
    # Row 1: [1 + 4, 2, -1] + b; row 2: [3 + 8, 4, -3] + b.
    np.testing.assert_allclose(out, [[5.5, 2.0, -2.0], [11.5, 4.0, -4.0]])


@pytest.mark.task("1.2")
def test_affine_backward_known_answer() -> None:
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    w = np.array([[1.0, -2.0], [0.5, 4.0]])
    b = np.zeros(2)
    dout = np.array([[1.0, 0.0], [2.0, 1.0]])
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    # dx = dout @ w.T, dw = x.T @ dout, db = column sums of dout, worked out by hand.
    np.testing.assert_allclose(dx, [[1.0, 0.5], [0.0, 5.0]])
    np.testing.assert_allclose(dw, [[7.0, 3.0], [0.0, -1.0]])
    np.testing.assert_allclose(db, [3.0, 1.0])


@pytest.mark.task("1.2")
def test_affine_backward_dx_keeps_the_shape_of_x() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5))
    w = rng.standard_normal((60, 7))
    out, cache = affine_forward(x, w, np.zeros(7))
    dx, dw, db = affine_backward(np.ones_like(out), cache)
    assert (dx.shape, dw.shape, db.shape) == ((2, 3, 4, 5), (60, 7), (7,))


# ---------------------------------------------------------------------------------------
# ReLU: hand-derived answers
# ---------------------------------------------------------------------------------------


@pytest.mark.task("1.3")
def test_relu_forward_known_answer() -> None:
    x = np.array([[-2.0, 0.0, 3.0], [0.5, -0.1, 7.0]])
    out, _ = relu_forward(x)
    np.testing.assert_array_equal(out, [[0.0, 0.0, 3.0], [0.5, 0.0, 7.0]])


@pytest.mark.task("1.3")
def test_relu_forward_keeps_dtype_and_does_not_modify_x() -> None:
    x = np.array([-1.0, 2.0], dtype=np.float32)
    out, _ = relu_forward(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(x, [-1.0, 2.0])


@pytest.mark.task("1.4")
def test_relu_backward_known_answer() -> None:
    x = np.array([[-2.0, 0.0, 3.0], [0.5, -0.1, 7.0]])
    dout = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
    _, cache = relu_forward(x)
    # Gradient passes where x > 0; at the kink x == 0 the convention is 0.
    np.testing.assert_array_equal(relu_backward(dout, cache),
                                  [[0.0, 0.0, 30.0], [40.0, 0.0, 60.0]])


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------


@pytest.mark.task("1.5")
def test_softmax_loss_known_answer() -> None:
    # Equal scores: p = 1/2 each, loss = log 2, dx = p - onehot.
    loss, dx = softmax_loss(np.array([[0.0, 0.0]]), np.array([0]))
    assert loss == pytest.approx(np.log(2.0))
    np.testing.assert_allclose(dx, [[-0.5, 0.5]])


@pytest.mark.task("1.5")
def test_softmax_loss_gradient_matches_scipy_formula() -> None:
    rng = np.random.default_rng(5)
    x = 3 * rng.standard_normal((6, 4))
    y = rng.integers(0, 4, size=6)
    _, dx = softmax_loss(x, y)
    # d loss / d x = (softmax(x) - onehot(y)) / N, with scipy's softmax.
    expected = (scipy_softmax(x, axis=1) - np.eye(4)[y]) / 6
    np.testing.assert_allclose(dx, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.task("1.6")
def test_svm_loss_known_answer() -> None:
    # Correct class 0 scores 1; classes 1 and 2 violate the margin by 2 and 3.
    loss, dx = svm_loss(np.array([[1.0, 2.0, 3.0], [5.0, 0.0, 4.5]]), np.array([0, 0]))
    # Example 2: margins 0 - 5 + 1 < 0 and 4.5 - 5 + 1 = 0.5, so its loss is 0.5.
    assert loss == pytest.approx((5.0 + 0.5) / 2)
    np.testing.assert_allclose(dx, [[-1.0, 0.5, 0.5], [-0.5, 0.0, 0.5]])


@pytest.mark.parametrize(
    ("loss_fn", "reference"),
    [
        pytest.param(softmax_loss, "softmax", marks=pytest.mark.task("1.5"), id="softmax"),
        pytest.param(svm_loss, "svm", marks=pytest.mark.task("1.6"), id="svm"),
    ],
)
def test_loss_does_not_overflow_on_huge_scores(loss_fn, reference: str) -> None:
    rng = np.random.default_rng(11)
    x = 1e4 * rng.standard_normal((5, 7))
    y = rng.integers(0, 7, size=5)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dx = loss_fn(x, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    if reference == "softmax":
        expected = np.mean(logsumexp(x, axis=1) - x[np.arange(5), y])
        np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=1e-12)  # rows of p - onehot
    else:
        expected = np.mean([sum(max(0.0, x[n, j] - x[n, y[n]] + 1) for j in range(7)
                                if j != y[n]) for n in range(5)])
    assert loss == pytest.approx(expected, rel=1e-10)


@pytest.mark.task("1.5")
@pytest.mark.parametrize("C", [3, 10, 100])
def test_softmax_initial_loss_is_log_C(C: int) -> None:
    # Near-equal scores give p ~ 1/C for every class, hence loss ~ log C.
    rng = np.random.default_rng(C)
    x = 1e-4 * rng.standard_normal((50, C))
    loss, _ = softmax_loss(x, rng.integers(0, C, size=50))
    assert loss == pytest.approx(np.log(C), abs=1e-3)


@pytest.mark.task("1.6")
@pytest.mark.parametrize("C", [3, 10])
def test_svm_initial_loss_is_C_minus_1(C: int) -> None:
    # Near-equal scores: every one of the C - 1 wrong classes has margin ~ 1.
    rng = np.random.default_rng(C)
    x = 1e-4 * rng.standard_normal((50, C))
    loss, _ = svm_loss(x, rng.integers(0, C, size=50))
    assert loss == pytest.approx(C - 1, abs=1e-2)


# ---------------------------------------------------------------------------------------
# Bad inputs: validation is given code (outside the solution regions), so these tests
# carry no task marker; they pass in the student release too.
# ---------------------------------------------------------------------------------------


def test_affine_forward_rejects_1d_x() -> None:
    with pytest.raises(ValueError, match=r"affine_forward: x must have shape \(N, d1, \.\.\., "
                                         r"dk\).*got x\.shape = \(5,\)"):
        affine_forward(np.zeros(5), np.zeros((5, 2)), np.zeros(2))


def test_affine_forward_rejects_w_with_wrong_D() -> None:
    message = (r"affine_forward: w must have shape \(D, M\) with D = 12 \(the product of x's "
               r"non-batch dims\); got w\.shape = \(10, 5\)")
    with pytest.raises(ValueError, match=message):
        affine_forward(np.zeros((2, 3, 4)), np.zeros((10, 5)), np.zeros(5))


def test_affine_forward_rejects_1d_w() -> None:
    with pytest.raises(ValueError, match=r"w must have shape \(D, M\).*got w\.shape = \(12,\)"):
        affine_forward(np.zeros((2, 12)), np.zeros(12), np.zeros(1))


def test_affine_forward_rejects_b_with_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"affine_forward: b must have shape \(M,\) with M = 5.*"
                                         r"got b\.shape = \(1, 5\)"):
        affine_forward(np.zeros((2, 3)), np.zeros((3, 5)), np.zeros((1, 5)))


def test_affine_backward_rejects_dout_with_wrong_shape() -> None:
    _, cache = affine_forward(np.zeros((2, 3)), np.zeros((3, 5)), np.zeros(5))
    with pytest.raises(ValueError, match=r"affine_backward: dout must have shape \(N, M\) with "
                                         r"N = 2, M = 5.*got dout\.shape = \(5, 2\)"):
        affine_backward(np.zeros((5, 2)), cache)


def test_relu_backward_rejects_dout_with_wrong_shape() -> None:
    _, cache = relu_forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"relu_backward: dout must have shape \(2, 3\).*"
                                         r"got dout\.shape = \(3, 2\)"):
        relu_backward(np.zeros((3, 2)), cache)


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss], ids=["softmax", "svm"])
@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros(3), np.array([0]), r"x must have shape \(N, C\).*got x\.shape = \(3,\)"),
        (np.zeros((2, 3)), np.array([0, 1, 2]),
         r"y must have shape \(N,\) with N = 2.*got y\.shape = \(3,\)"),
        (np.zeros((2, 3)), np.array([[0], [1]]),
         r"y must have shape \(N,\) with N = 2.*got y\.shape = \(2, 1\)"),
        (np.zeros((2, 3)), np.array([0, 3]),
         r"y must hold labels in \[0, C\) with C = 3.*got label 3"),
        (np.zeros((2, 3)), np.array([-1, 0]),
         r"y must hold labels in \[0, C\) with C = 3.*got label -1"),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), r"y must hold integer.*got y\.dtype = float64"),
    ],
    ids=["x-1d", "y-too-long", "y-2d", "label-too-big", "label-negative", "y-float"],
)
def test_losses_reject_bad_input(loss_fn, x, y, message: str) -> None:
    with pytest.raises(ValueError, match=f"{loss_fn.__name__}: {message}"):
        loss_fn(x, y)

