"""Tests of course.gradient_check: numeric gradients on functions with hand-derived
gradients, exact restoration of x, and the exact verdict lines the check helpers print."""

from __future__ import annotations

import numpy as np
import pytest

from course.gradient_check import (
    CheckResult,
    check_close,
    check_gradient,
    check_model_gradients,
    check_regularisation,
    check_true,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
    report_check,
)

# ---------------------------------------------------------------------------------------
# Numeric gradients against hand-derived ones
# ---------------------------------------------------------------------------------------


def test_numeric_gradient_of_sum_of_cubes_is_three_x_squared() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4))
    grad = eval_numerical_gradient(lambda v: np.sum(v**3), x, verbose=False)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8, atol=1e-9)


def test_numeric_gradient_of_a_coupled_function() -> None:
    # f(a, b) = sin(a) * exp(b): df/da = cos(a) exp(b), df/db = sin(a) exp(b).
    x = np.array([0.3, -1.2])
    grad = eval_numerical_gradient(lambda v: np.sin(v[0]) * np.exp(v[1]), x, verbose=False)
    expected = [np.cos(0.3) * np.exp(-1.2), np.sin(0.3) * np.exp(-1.2)]
    np.testing.assert_allclose(grad, expected, rtol=1e-8)


def test_numeric_gradient_array_of_a_matrix_product() -> None:
    # f(x) = A @ x with upstream df: the gradient is A.T @ df.
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 3))
    x = rng.standard_normal((3, 2))
    df = rng.standard_normal((4, 2))
    grad = eval_numerical_gradient_array(lambda v: A @ v, x, df)
    np.testing.assert_allclose(grad, A.T @ df, rtol=1e-8, atol=1e-9)


def test_numeric_gradient_array_of_an_elementwise_square() -> None:
    # f(x) = x**2 elementwise: the gradient is 2 x df.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3))
    df = rng.standard_normal((2, 3))
    grad = eval_numerical_gradient_array(lambda v: v**2, x, df)
    np.testing.assert_allclose(grad, 2 * x * df, rtol=1e-8, atol=1e-9)


def test_numeric_gradient_array_copies_a_reused_output_buffer() -> None:
    # f writes into the same buffer each time; without copying, f(x+h) - f(x-h) would be 0.
    x = np.array([1.0, 2.0])
    buffer = np.zeros(2)

    def f(v: np.ndarray) -> np.ndarray:
        np.multiply(v, 5.0, out=buffer)
        return buffer

    grad = eval_numerical_gradient_array(f, x, np.ones(2))
    np.testing.assert_allclose(grad, [5.0, 5.0], rtol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("which", ["scalar", "array", "sparse"])
def test_numeric_gradients_restore_x_exactly(dtype, which: str) -> None:
    # Values chosen so that (v + h) - h != v in floating point: restoring by subtracting h
    # would change them; the original bits must come back.
    x = np.array([[0.1, 1e6 + 0.3], [-7.77, 3.3e-7]], dtype=dtype)
    before = x.copy()
    if which == "scalar":
        eval_numerical_gradient(lambda v: float(np.sum(v)), x, verbose=False)
    elif which == "array":
        eval_numerical_gradient_array(lambda v: v * 2, x, np.ones_like(x))
    else:
        grad_check_sparse(lambda v: float(np.sum(v)), x, np.ones_like(x), num_checks=8,
                          seed=0, verbose=False)
    assert x.tobytes() == before.tobytes()


def test_numeric_gradient_perturbs_x_in_place() -> None:
    # Notebooks pass f = lambda _: model.loss(X, y)[0] and x = model.params[name]: f reads
    # x through the model, not through its argument, so x must be changed in place.
    x = np.array([1.0, -2.0, 0.5])
    grad = eval_numerical_gradient(lambda _: float(np.sum(x**2)), x, verbose=False)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-8)


def test_numeric_gradient_restores_x_when_f_raises() -> None:
    x = np.array([1.0, 2.0])

    def f(v: np.ndarray) -> float:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        eval_numerical_gradient(f, x, verbose=False)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_numeric_gradient_verbose_prints_one_line_per_entry(capsys) -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    eval_numerical_gradient(lambda v: float(np.sum(v**2)), x, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "numeric gradient at index (0, 0): 2.000000e+00",
        "numeric gradient at index (0, 1): 4.000000e+00",
        "numeric gradient at index (1, 0): 6.000000e+00",
        "numeric gradient at index (1, 1): 8.000000e+00",
    ]


def test_numeric_gradient_is_silent_without_verbose(capsys) -> None:
    eval_numerical_gradient(lambda v: float(np.sum(v)), np.ones(3), verbose=False)
    assert capsys.readouterr().out == ""


def test_numeric_gradient_rejects_integer_x() -> None:
    with pytest.raises(ValueError, match=r"x must be a floating-point numpy array.*int64"):
        eval_numerical_gradient(lambda v: float(np.sum(v)), np.arange(3, dtype=np.int64),
                                verbose=False)


def test_numeric_gradient_rejects_non_scalar_f() -> None:
    with pytest.raises(ValueError, match=r"f must return a scalar; got an output of shape \(2,\)"):
        eval_numerical_gradient(lambda v: v * 2, np.ones(2), verbose=False)


def test_numeric_gradient_array_rejects_df_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"df must have shape \(2, 3\) \(the shape of f's "
                                         r"output\); got df\.shape = \(3, 2\)"):
        eval_numerical_gradient_array(lambda v: v, np.ones((2, 3)), np.ones((3, 2)))


# ---------------------------------------------------------------------------------------
# grad_check_sparse
# ---------------------------------------------------------------------------------------


def _quartic(v: np.ndarray) -> float:
    return float(np.sum(v**4))


def test_grad_check_sparse_small_errors_for_the_right_gradient() -> None:
    x = np.random.default_rng(3).standard_normal((5, 6))
    errors = grad_check_sparse(_quartic, x, 4 * x**3, num_checks=12, seed=1, verbose=False)
    assert errors.shape == (12,)
    assert np.max(errors) < 1e-7


def test_grad_check_sparse_large_errors_for_a_wrong_gradient() -> None:
    x = np.random.default_rng(3).standard_normal((5, 6))
    # Twice the true gradient: every relative error is |2g - g| / (3|g|) = 1/3.
    errors = grad_check_sparse(_quartic, x, 8 * x**3, num_checks=5, seed=1, verbose=False)
    np.testing.assert_allclose(errors, 1 / 3, rtol=1e-6)


def test_grad_check_sparse_is_deterministic_with_a_seed(capsys) -> None:
    x = np.random.default_rng(4).standard_normal((7, 3))
    first = grad_check_sparse(_quartic, x, 4 * x**3 + 1e-3, num_checks=6, seed=42)
    first_out = capsys.readouterr().out
    second = grad_check_sparse(_quartic, x, 4 * x**3 + 1e-3, num_checks=6, seed=42)
    second_out = capsys.readouterr().out
    np.testing.assert_array_equal(first, second)
    assert first_out == second_out
    assert len(first_out.splitlines()) == 6


def test_grad_check_sparse_prints_the_entry_and_both_gradients(capsys) -> None:
    # A single-entry x makes the checked index certain: (0,), gradient 3 * 2^2 = 12.
    x = np.array([2.0])
    errors = grad_check_sparse(lambda v: float(v[0] ** 3), x, np.array([11.0]),
                               num_checks=1, seed=0)
    line = capsys.readouterr().out.strip()
    expected_error = abs(12.0 - 11.0) / (12.0 + 11.0)
    assert errors[0] == pytest.approx(expected_error, rel=1e-6)
    assert line == (f"index (0,): numeric 1.200000e+01, analytic 1.100000e+01, "
                    f"relative error {expected_error:.2e}")


def test_grad_check_sparse_rejects_a_gradient_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"analytic_grad must have shape \(2, 3\) \(the shape "
                                         r"of x\); got analytic_grad\.shape = \(3, 2\)"):
        grad_check_sparse(_quartic, np.ones((2, 3)), np.ones((3, 2)), seed=0)


# ---------------------------------------------------------------------------------------
# rel_error
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (1.0, 3.0, 0.5),  # |1 - 3| / (1 + 3)
        ([1.0, 10.0], [1.0, 12.0], 2 / 22),  # the largest elementwise error wins
        ([0.0, 0.0], [0.0, 0.0], 0.0),  # the floor avoids 0 / 0
        (0.0, 1e-9, 0.1),  # 1e-9 / max(1e-8, 1e-9)
        ([-2.0], [2.0], 1.0),  # opposite signs: as bad as it gets
    ],
)
def test_rel_error_known_values(x, y, expected: float) -> None:
    assert rel_error(np.array(x), np.array(y)) == pytest.approx(expected, rel=1e-12)


def test_rel_error_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"rel_error: x and y must have the same shape; "
                                         r"got x\.shape = \(2, 1\), y\.shape = \(2,\)"):
        rel_error(np.zeros((2, 1)), np.zeros(2))


# ---------------------------------------------------------------------------------------
# The check lines: exact strings, since notebooks' outputs are compared as strings
# ---------------------------------------------------------------------------------------


def test_report_check_pass_line(capsys) -> None:
    assert report_check("affine_forward output", 3.2e-10, 1e-7).passed is True
    assert capsys.readouterr().out == (
        "check passed: affine_forward output, relative error below 1e-07\n")


def test_report_check_fail_line(capsys) -> None:
    assert report_check("affine_forward output", 3.41e-2, 1e-7).passed is False
    assert capsys.readouterr().out == (
        "check FAILED: affine_forward output, relative error 3.41e-02 (must be below 1e-07)\n")


def test_report_check_with_another_measure(capsys) -> None:
    assert report_check("loss", 0.25, 0.1, measure="absolute difference").passed is False
    assert report_check("loss", 0.05, 0.1, measure="absolute difference").passed is True
    assert capsys.readouterr().out.splitlines() == [
        "check FAILED: loss, absolute difference 2.50e-01 (must be below 1e-01)",
        "check passed: loss, absolute difference below 1e-01",
    ]


@pytest.mark.parametrize(("value", "shown"), [(1e-7, "1.00e-07"), (float("nan"), "nan")])
def test_report_check_fails_at_the_threshold_and_on_nan(capsys, value: float, shown: str) -> None:
    assert report_check("x", value, 1e-7).passed is False
    assert capsys.readouterr().out == (
        f"check FAILED: x, relative error {shown} (must be below 1e-07)\n")


def test_check_true_lines(capsys) -> None:
    assert check_true("scores shape", True, "never shown").passed is True
    assert check_true("scores shape", False, "got (3, 2), expected (2, 3)").passed is False
    assert capsys.readouterr().out.splitlines() == [
        "check passed: scores shape",
        "check FAILED: scores shape: got (3, 2), expected (2, 3)",
    ]


def test_check_close_pass_and_fail(capsys) -> None:
    assert check_close("out", np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-12])).passed is True
    # rel_error = 1 / (3 + 4) at the second entry.
    assert check_close("out", np.array([1.0, 3.0]), np.array([1.0, 4.0])).passed is False
    assert check_close("loss", 2.0, 2.0, threshold=1e-3).passed is True
    assert capsys.readouterr().out.splitlines() == [
        "check passed: out, relative error below 1e-07",
        "check FAILED: out, relative error 1.43e-01 (must be below 1e-07); "
        "at [1] got 3, expected 4",
        "check passed: loss, relative error below 1e-03",
    ]


def test_check_close_shape_mismatch_names_both_shapes(capsys) -> None:
    assert check_close("out", np.zeros((2, 3)), np.zeros((3, 2))).passed is False
    assert capsys.readouterr().out == (
        "check FAILED: out: shape (2, 3) does not match the expected shape (3, 2)\n")


def test_check_gradient_scalar_function(capsys) -> None:
    x = np.array([1.0, -2.0, 3.0])
    f = lambda v: float(np.sum(v**2))  # noqa: E731
    assert check_gradient("dx", f, x, 2 * x).passed is True
    # 1.5 times the true gradient: relative error |3x - 2x| / |5x| = 0.2 at every entry.
    assert check_gradient("dx", f, x, 3 * x).passed is False
    passed, failed = capsys.readouterr().out.splitlines()
    assert passed == "check passed: dx, relative error below 1e-07"
    # Every entry is off by 0.2 (up to the numeric gradient's rounding, which decides
    # the entry named): 3 x_i against 2 x_i.
    assert failed.startswith("check FAILED: dx, relative error 2.00e-01 (must be below 1e-07); ")
    assert failed.endswith(("at [0] got 3, expected 2", "at [1] got -6, expected -4",
                            "at [2] got 9, expected 6"))


def test_check_gradient_array_function_with_dout(capsys) -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    dout = np.array([[1.0, -1.0], [0.5, 2.0]])
    # f(x) = 3 x, so the gradient is 3 dout.
    assert check_gradient("dx", lambda v: 3 * v, x, 3 * dout, dout=dout).passed is True
    assert check_gradient("dx", lambda v: 3 * v, x, 3 * dout.T, dout=dout).passed is False
    # The transpose flips the sign of entry (0, 1) (-3 against 1.5): relative error 1.
    assert capsys.readouterr().out.splitlines() == [
        "check passed: dx, relative error below 1e-07",
        "check FAILED: dx, relative error 1.00e+00 (must be below 1e-07); "
        "at [0, 1] got 1.5, expected -3",
    ]


def test_check_gradient_with_a_looser_threshold(capsys) -> None:
    x = np.array([1.0, 2.0])
    assert check_gradient("dx", lambda v: float(np.sum(v**2)), x, 2 * x * (1 + 1e-4),
                          threshold=1e-3).passed is True
    assert capsys.readouterr().out == "check passed: dx, relative error below 1e-03\n"


class _Quadratic:
    """loss = sum(a * X) + 0.5 * sum(b**2): d/da = sum of X's rows, d/db = b, by hand."""

    def __init__(self, wrong_b: bool = False, drop_b: bool = False):
        rng = np.random.default_rng(0)
        self.params = {"a": rng.normal(size=3), "b": rng.normal(size=2)}
        self.wrong_b, self.drop_b = wrong_b, drop_b

    def loss(self, X, y):
        a, b = self.params["a"], self.params["b"]  # read at call time
        loss = float(np.sum(X @ a) + 0.5 * np.sum(b**2))
        grads = {"a": X.sum(axis=0), "b": 2 * b if self.wrong_b else b.copy()}
        if self.drop_b:
            del grads["b"]
        return loss, grads


def test_check_model_gradients_one_line_per_parameter(capsys):
    X = np.arange(6.0).reshape(2, 3)
    result = check_model_gradients("toy", _Quadratic(), X, None)
    assert result.passed is True and result.name == "toy"
    assert capsys.readouterr().out.splitlines() == [
        "check passed: toy: gradient of a, relative error below 1e-07",
        "check passed: toy: gradient of b, relative error below 1e-07",
    ]


def test_check_model_gradients_flags_a_wrong_or_missing_gradient(capsys):
    X = np.arange(6.0).reshape(2, 3)
    assert check_model_gradients("toy", _Quadratic(wrong_b=True), X, None).passed is False
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("check passed: toy: gradient of a")
    # analytic 2b vs numeric b: relative error |2b - b| / (|2b| + |b|) = 1/3
    assert lines[1].startswith(
        "check FAILED: toy: gradient of b, relative error 3.33e-01 (must be below 1e-07); at [")
    assert check_model_gradients("toy", _Quadratic(drop_b=True), X, None).passed is False
    assert capsys.readouterr().out.splitlines()[1] == (
        "check FAILED: toy: gradient of b: loss() returned no gradient for it")


class _RegularisedToy:
    """Data loss sum(W1 * x) + b1 (gradients x and 1), plus an L2 term done as ``mistake`` says."""

    def __init__(self, mistake: str | None = None) -> None:
        self.params = {"W1": np.array([1.0, -2.0]), "b1": np.array([3.0])}
        self.reg = 0.5
        self.mistake = mistake

    def loss(self, X, y):
        W, b = self.params["W1"], self.params["b1"]
        loss = float(np.sum(W * X) + b[0])
        grads = {"W1": X.copy(), "b1": np.ones(1)}
        if self.mistake != "no term":
            loss += 0.5 * self.reg * float(np.sum(W**2))
            grads["W1"] = grads["W1"] + self.reg * W
        if self.mistake == "bias too":
            grads["b1"] = grads["b1"] + self.reg * b
        return loss, grads


def test_check_regularisation_compares_with_the_model_at_reg_zero(capsys):
    X = np.array([2.0, 5.0])
    model = _RegularisedToy()
    assert check_regularisation("toy", model, X, None).passed is True
    assert model.reg == 0.5  # restored
    assert capsys.readouterr().out.splitlines() == [
        "check passed: toy: loss = data loss + reg / 2 * sum of squared weights, "
        "relative error below 1e-07",
        "check passed: toy: gradient of W1 = data gradient + reg * W1, "
        "relative error below 1e-07",
        "check passed: toy: gradient of b1 = data gradient (not regularised), "
        "relative error below 1e-07",
    ]


def test_check_regularisation_fails_the_line_of_each_mistake(capsys):
    X = np.array([2.0, 5.0])
    assert check_regularisation("toy", _RegularisedToy("no term"), X, None).passed is False
    lines = capsys.readouterr().out.splitlines()
    # 0.5 * 0.5 * (1 + 4) = 1.25 missing from the loss, 0.5 * W1 from its gradient.
    assert [line.split(":")[0] for line in lines] == ["check FAILED", "check FAILED",
                                                       "check passed"]
    assert check_regularisation("toy", _RegularisedToy("bias too"), X, None).passed is False
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("check FAILED: toy: gradient of b1 = data gradient")


def test_check_result_is_truthy_only_when_passed_and_shows_nothing_in_notebooks():
    assert bool(CheckResult("x", True)) and not bool(CheckResult("x", False))
    # IPython calls _ipython_display_ instead of printing the repr; it must return None.
    assert CheckResult("x", True)._ipython_display_() is None


def test_a_failed_check_close_names_the_entry_that_differs_most(capsys) -> None:
    """A relative error of 1 alone reads as "unrelated"; the entry shows a small value
    where 0 was expected (a batchnorm with the N - 1 variance gives 0.105573 there:
    2 * -1 / sqrt(2 + 3) + 1)."""
    expected = np.array([[2.0, 1.0], [0.0, -3.0]])
    actual = expected.copy()
    actual[1, 0] = 1 - 2 / np.sqrt(5)
    assert check_close("bn", actual, expected).passed is False
    assert check_close("scalar", 2.5, 2.0).passed is False
    nan = np.array([1.0, np.nan, 3.0])
    assert check_close("nan", nan, np.array([1.0, 2.0, 3.0])).passed is False
    assert capsys.readouterr().out.splitlines() == [
        "check FAILED: bn, relative error 1.00e+00 (must be below 1e-07); "
        "at [1, 0] got 0.105573, expected 0",
        # |2.5 - 2| / 4.5
        "check FAILED: scalar, relative error 1.11e-01 (must be below 1e-07); "
        "got 2.5, expected 2",
        "check FAILED: nan, relative error nan (must be below 1e-07); "
        "at [1] got nan, expected 2",
    ]
