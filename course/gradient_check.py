"""Numeric gradients, the relative error, and the check lines notebooks print.

Two groups of helpers live here.

* Numeric gradients by centred differences, ``(f(x + h) - f(x - h)) / (2 h)``, one entry
  of ``x`` at a time. They change ``x`` **in place** and put every entry back exactly, so
  ``f`` may ignore its argument and read ``x`` through a closure (a model's parameter
  array, for example): ``eval_numerical_gradient(lambda _: model.loss(X, y)[0], W)``.
* Check helpers that print one verdict line per check. Notebook outputs are compared as
  exact strings, so a passing check prints only its name and the bound it met; the
  measured value, and the entry that differs most, appear only when the check fails
  (the second line below is one line when printed)::

      check passed: affine_forward output, relative error below 1e-07
      check FAILED: affine_forward output, relative error 3.33e-02 (must be below 1e-07);
      at [2, 1] got 0.31, expected 0.29

  They return a :class:`CheckResult`, truthy exactly when the check passed, which shows
  nothing when it ends a notebook cell (the verdict line says it all already).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from course._checks import expect_float_array, expect_int, expect_seed, expect_shape, invalid

__all__ = [
    "CheckResult",
    "check_close",
    "check_gradient",
    "check_model_gradients",
    "check_regularisation",
    "check_true",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "rel_error",
    "report_check",
    "worst_entry",
]

# The denominator floor of rel_error: two values that are both (almost) zero count as equal
# instead of dividing zero by zero.
_REL_ERROR_FLOOR = 1e-8


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``bool(result)`` is True exactly when it passed.

    A plain bool would be echoed as ``True``/``False`` under the verdict line when a check
    ends a notebook cell; this object displays nothing there. (A trailing ``;`` would
    not do: nbval runs cells without history, which IPython's ``;`` rule looks at.)
    """

    name: str
    passed: bool

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:
        """Show nothing in a notebook: the verdict line was already printed."""


def _require_float_array(func: str, name: str, x: object) -> np.ndarray:
    """Return ``x`` if it is a floating-point ndarray; a numeric gradient perturbs it in place,
    which is impossible for a Python scalar and silently wrong for an integer array."""
    return expect_float_array(func, name, x, "it is perturbed in place")


def _centred_difference(
    f: Callable[[np.ndarray], object], x: np.ndarray, ix: tuple[int, ...], h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate ``f`` with ``x[ix]`` moved up by ``h`` and then down by ``h``.

    Returns copies of both outputs (``f`` may return a buffer it reuses) and restores
    ``x[ix]`` to the exact value it had, whatever rounding ``x[ix] +/- h`` suffered.
    """
    saved = x[ix].copy()
    try:
        x[ix] = saved + h
        f_plus = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = saved - h
        f_minus = np.array(f(x), dtype=np.float64, copy=True)
    finally:
        x[ix] = saved
    return f_plus, f_minus


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, verbose: bool = True, h: float = 1e-5
) -> np.ndarray:
    """Numeric gradient of a scalar function by centred differences.

    Inputs:
    - f: function taking an array shaped like ``x`` and returning a scalar.
    - x: float array of any shape; it is perturbed in place and restored exactly.
    - verbose: print one line per entry (its index and its numeric gradient).
    - h: step of the centred difference.

    Returns:
    - grad: float64 array shaped like ``x``, ``grad[i] ~ d f / d x[i]``.
    """
    x = _require_float_array("eval_numerical_gradient", "x", x)
    grad = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(*x.shape):
        f_plus, f_minus = _centred_difference(f, x, ix, h)
        if f_plus.shape != ():
            raise invalid("eval_numerical_gradient", (
                f"f must return a scalar; got an output of shape {f_plus.shape} (use "
                "eval_numerical_gradient_array)"))
        grad[ix] = (f_plus - f_minus) / (2 * h)
        if verbose:
            print(f"numeric gradient at index {ix}: {grad[ix]:.6e}")
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Numeric gradient of an array-valued function, back-propagated from ``df``.

    This is what a layer's backward pass should return for the input ``x`` when the
    gradient arriving from above is ``df``: ``grad[i] = sum_j df[j] * d f(x)[j] / d x[i]``.

    Inputs:
    - f: function taking an array shaped like ``x`` and returning an array ``out``.
    - x: float array of any shape; it is perturbed in place and restored exactly.
    - df: upstream gradient, same shape as ``out``.
    - h: step of the centred difference.

    Returns:
    - grad: float64 array shaped like ``x``.
    """
    x = _require_float_array("eval_numerical_gradient_array", "x", x)
    df = np.asarray(df, dtype=np.float64)
    grad = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(*x.shape):
        f_plus, f_minus = _centred_difference(f, x, ix, h)
        expect_shape("eval_numerical_gradient_array", "df", df, f_plus.shape,
                     "(the shape of f's output)")
        grad[ix] = np.sum((f_plus - f_minus) * df) / (2 * h)
    return grad


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    seed: int | None = None,
    verbose: bool = True,
) -> np.ndarray:
    """Compare an analytic gradient with numeric ones at a few random entries of ``x``.

    Useful when ``x`` is too large for a full numeric gradient. Entries are drawn with
    replacement from ``np.random.default_rng(seed)`` (or, with ``seed=None``, from numpy's
    global random state), so a fixed seed gives the same entries (and, when ``verbose``,
    the same printed lines) on every run.

    Inputs:
    - f: function taking an array shaped like ``x`` and returning a scalar.
    - x: float array of any shape; perturbed in place and restored exactly.
    - analytic_grad: array shaped like ``x``, the gradient to check.
    - num_checks: how many entries to check.
    - h: step of the centred difference.
    - seed: seed of the generator that picks the entries (None: numpy's global random
      state, which ``np.random.seed`` sets).
    - verbose: print one line per check with both gradients and their relative error.

    Returns:
    - errors: float64 array of shape (num_checks,), the relative error at each entry,
      ``|numeric - analytic| / max(1e-8, |numeric| + |analytic|)``.
    """
    x = _require_float_array("grad_check_sparse", "x", x)
    analytic_grad = np.asarray(analytic_grad)
    expect_shape("grad_check_sparse", "analytic_grad", analytic_grad, x.shape, "(the shape of x)")
    if x.size == 0:
        raise invalid("grad_check_sparse", f"x must have at least one entry; got x.shape = "
                                           f"{x.shape}")
    expect_int("grad_check_sparse", "num_checks", num_checks)
    expect_seed("grad_check_sparse", seed)
    if seed is None:  # numpy's global state, so np.random.seed(...) repeats the picks
        flat_picks = np.random.randint(0, x.size, size=num_checks)
    else:
        flat_picks = np.random.default_rng(seed).integers(0, x.size, size=num_checks)
    errors = np.zeros(num_checks, dtype=np.float64)
    for k, flat in enumerate(flat_picks):
        ix = np.unravel_index(flat, x.shape)
        f_plus, f_minus = _centred_difference(f, x, ix, h)
        numeric = float((f_plus - f_minus) / (2 * h))
        analytic = float(analytic_grad[ix])
        errors[k] = abs(numeric - analytic) / max(_REL_ERROR_FLOOR, abs(numeric) + abs(analytic))
        if verbose:
            index = tuple(int(i) for i in ix)
            print(f"index {index}: numeric {numeric:.6e}, analytic {analytic:.6e}, "
                  f"relative error {errors[k]:.2e}")
    return errors


def rel_error(x: np.ndarray | float, y: np.ndarray | float) -> float:
    """Largest elementwise relative error between two arrays of the same shape.

    ``max_i |x_i - y_i| / max(1e-8, |x_i| + |y_i|)``; 0 means identical, values near 1
    mean unrelated. The 1e-8 floor makes two near-zero entries count as equal.

    Inputs:
    - x, y: arrays (or scalars) of the same shape.

    Returns:
    - the error as a Python float (0.0 for empty arrays).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise invalid("rel_error", f"x and y must have the same shape; got x.shape = {x.shape}, "
                                   f"y.shape = {y.shape}")
    if x.size == 0:
        return 0.0
    scale = np.maximum(_REL_ERROR_FLOOR, np.abs(x) + np.abs(y))
    return float(np.max(np.abs(x - y) / scale))


def report_check(
    name: str, value: float, threshold: float, measure: str = "relative error",
    detail: str | None = None,
) -> CheckResult:
    """Print the verdict line of one measured check and return whether it passed.

    The check passes when ``value < threshold`` (a NaN never passes). Output, one line::

        check passed: <name>, <measure> below <threshold:.0e>
        check FAILED: <name>, <measure> <value:.2e> (must be below <threshold:.0e>)[; <detail>]

    ``detail`` (printed only on failure) says where the value came from, e.g. the entry
    that differs most.
    """
    passed = bool(value < threshold)
    if passed:
        print(f"check passed: {name}, {measure} below {threshold:.0e}")
    else:
        tail = f"; {detail}" if detail else ""
        print(f"check FAILED: {name}, {measure} {value:.2e} "
              f"(must be below {threshold:.0e}){tail}")
    return CheckResult(name, passed)


def worst_entry(actual: np.ndarray, expected: np.ndarray) -> str:
    """Where two same-shaped arrays differ most in ``rel_error``'s terms, as a phrase:
    ``at [1, 0] got 0.105573, expected 0``. A relative error of 1 alone cannot tell a
    sign flip from a small value where 0 was expected; the entry can."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    errors = np.abs(a - e) / np.maximum(_REL_ERROR_FLOOR, np.abs(a) + np.abs(e))
    errors = np.where(np.isnan(errors), np.inf, errors)  # a NaN is the worst entry
    index = np.unravel_index(int(np.argmax(errors)), a.shape)
    where = f"at [{', '.join(str(int(i)) for i in index)}] " if a.ndim else ""
    return f"{where}got {a[index]:.6g}, expected {e[index]:.6g}"


def check_true(name: str, ok: bool, detail: str) -> CheckResult:
    """Print the verdict line of a yes/no check and return ``ok`` as a bool.

    Output, one line: ``check passed: <name>`` or ``check FAILED: <name>: <detail>``
    (``detail`` says what went wrong, so it is printed only on failure).
    """
    if ok:
        print(f"check passed: {name}")
    else:
        print(f"check FAILED: {name}: {detail}")
    return CheckResult(name, bool(ok))


def check_close(
    name: str, actual: np.ndarray | float, expected: np.ndarray | float, threshold: float = 1e-7
) -> CheckResult:
    """Check that ``actual`` matches ``expected`` to within ``threshold`` in ``rel_error``.

    Inputs:
    - name: what is being checked, e.g. ``"affine_forward output"``.
    - actual, expected: arrays (or scalars); a shape mismatch fails the check with a line
      naming both shapes instead of raising.
    - threshold: the relative error must be below this.

    Returns:
    - a CheckResult, truthy when the check passed (the verdict line is printed either way).
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        detail = f"shape {actual.shape} does not match the expected shape {expected.shape}"
        return check_true(name, False, detail)
    error = rel_error(actual, expected)
    detail = worst_entry(actual, expected) if actual.size and not error < threshold else None
    return report_check(name, error, threshold, detail=detail)


def check_gradient(
    name: str,
    f: Callable[[np.ndarray], object],
    x: np.ndarray,
    analytic: np.ndarray,
    dout: np.ndarray | None = None,
    threshold: float = 1e-7,
    h: float = 1e-5,
) -> CheckResult:
    """Check an analytic gradient against the numeric gradient of ``f`` at ``x``.

    Inputs:
    - name: what is being checked, e.g. ``"affine_backward dx"``.
    - f: function of an array shaped like ``x``; returns a scalar when ``dout`` is None,
      otherwise an array shaped like ``dout``.
    - x: float array; perturbed in place and restored exactly.
    - analytic: the gradient to check, shaped like ``x``.
    - dout: upstream gradient for an array-valued ``f`` (None for a scalar ``f``).
    - threshold: the relative error must be below this.
    - h: step of the centred difference.

    Returns:
    - a CheckResult, truthy when the check passed (one verdict line is printed, as by
      ``check_close``).
    """
    if dout is None:
        numeric = eval_numerical_gradient(f, x, verbose=False, h=h)
    else:
        numeric = eval_numerical_gradient_array(f, x, dout, h=h)
    return check_close(name, analytic, numeric, threshold)


def check_model_gradients(
    label: str,
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    threshold: float = 1e-7,
    h: float = 1e-5,
) -> CheckResult:
    """Check every parameter's gradient of ``model.loss(X, y)`` against a numeric gradient.

    Prints one verdict line per parameter, in sorted name order, named
    ``<label>: gradient of <param>`` (as :func:`check_gradient` does).

    Inputs:
    - label: what is being checked, e.g. ``"reg = 0.0"``.
    - model: has ``params`` (dict of float arrays) and ``loss(X, y) -> (loss, grads)``,
      and reads ``params`` when ``loss`` is called: each array is perturbed in place.
      Use float64 parameters; float32 rounding hides the differences measured here.
    - X, y: a (small) minibatch and its labels.
    - threshold, h: as for :func:`check_gradient`.

    Returns:
    - a CheckResult named ``label``, truthy when every parameter passed. A parameter
      missing from ``grads`` fails its line.
    """
    _, grads = model.loss(X, y)

    def loss_at_current_params(_: np.ndarray) -> float:
        return model.loss(X, y)[0]

    passed = True
    for name in sorted(model.params):
        line = f"{label}: gradient of {name}"
        if name not in grads:
            result = check_true(line, False, "loss() returned no gradient for it")
        else:
            result = check_gradient(line, loss_at_current_params, model.params[name],
                                    grads[name], threshold=threshold, h=h)
        passed = passed and result.passed
    return CheckResult(label, passed)


def check_regularisation(
    label: str,
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    threshold: float = 1e-7,
) -> CheckResult:
    """Check the L2 term of ``model.loss(X, y)`` against the same model without it.

    With ``reg = model.reg`` the loss must be the data loss plus
    ``reg / 2 * sum(W ** 2)`` over the weights (the parameters whose names start with
    ``W``), each weight's gradient the data gradient plus ``reg * W``, and every other
    gradient (biases, gamma, beta) the data gradient unchanged. The data loss and
    gradients are the model's own, computed with ``model.reg = 0`` (restored afterwards),
    so this checks only the regularisation; check the data gradients numerically (at
    ``reg = 0``) as well.

    Prints one verdict line for the loss,
    ``<label>: loss = data loss + reg / 2 * sum of squared weights``, then one per
    parameter in sorted name order: ``<label>: gradient of W1 = data gradient + reg * W1``
    or ``<label>: gradient of b1 = data gradient (not regularised)``.

    Inputs:
    - label: what is being checked, e.g. ``"reg = 3.14"``.
    - model: has ``params``, a number ``reg`` and ``loss(X, y) -> (loss, grads)``.
      Use float64 parameters.
    - X, y: a (small) minibatch and its labels.
    - threshold: each relative error must be below this.

    Returns:
    - a CheckResult named ``label``, truthy when every line passed. A parameter missing
      from either ``grads`` fails its line.
    """
    reg = float(model.reg)
    total, grads = model.loss(X, y)
    model.reg = 0.0
    try:
        data_loss, data_grads = model.loss(X, y)
    finally:
        model.reg = reg
    weights = sorted(name for name in model.params if name.startswith("W"))
    penalty = 0.5 * reg * sum(float(np.sum(model.params[name] ** 2)) for name in weights)
    passed = check_close(f"{label}: loss = data loss + reg / 2 * sum of squared weights",
                         total, data_loss + penalty, threshold).passed
    for name in sorted(model.params):
        if name in weights:
            line = f"{label}: gradient of {name} = data gradient + reg * {name}"
        else:
            line = f"{label}: gradient of {name} = data gradient (not regularised)"
        if name not in grads or name not in data_grads:
            result = check_true(line, False, "loss() returned no gradient for it")
        else:
            added = reg * model.params[name] if name in weights else 0.0
            result = check_close(line, grads[name], data_grads[name] + added, threshold)
        passed = passed and result.passed
    return CheckResult(label, passed)
