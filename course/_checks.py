"""Input validation for the whole package: one set of checks, one way of saying what is wrong.

Every check raises ``ValueError`` with a message that names the function, the argument,
what was expected and what was given::

    affine_forward: b must have shape (M,) with M = 5 (the columns of w); got b.shape = (1, 5)
    Solver: batch_size must be a positive int; got 0
    sgd: config['learning_rate'] must be a finite number > 0; got -0.1

The layers, the update rules, the Solver, the networks and the data loaders call these
checks *outside* the solution regions, so the student release keeps them: a shape
mistake then fails loudly where the bad array arrived, not three layers later.

The first section holds the general checks (shapes, real-number arrays, ints, finite
numbers, dtypes, seeds, choices, labels); the second the composite checks of the layers
(losses, normalisation, convolution and pooling geometry), built from the first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = [
    "conv_geometry",
    "expect_bool",
    "expect_choice",
    "expect_dict",
    "expect_float_array",
    "expect_float_dtype",
    "expect_int",
    "expect_labels",
    "expect_ndim",
    "expect_number",
    "expect_real_arrays",
    "expect_seed",
    "expect_shape",
    "group_norm_inputs",
    "int_param",
    "invalid",
    "norm_eps",
    "norm_inputs",
    "pool_geometry",
    "scores_and_labels",
    "spatial_norm_inputs",
]


def invalid(func: str, text: str) -> ValueError:
    """The error of every check: ``"<func>: <text>"`` (``text`` alone when func is empty).

    Returned, not raised, so that a caller with a message no check below covers writes
    ``raise invalid(func, ...)`` and linters still see the raise.
    """
    return ValueError(f"{func}: {text}" if func else text)


def _shape_text(dims: Sequence[int | str]) -> str:
    """``(2, 3)``, ``(N, D)``, and ``(M,)`` with the comma a 1-tuple needs."""
    items = [str(d) for d in dims]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


# ---------------------------------------------------------------------------------------
# General checks
# ---------------------------------------------------------------------------------------


def expect_shape(func: str, name: str, arr: Any, expected: Sequence[int | str],
                 meaning: str = "", **sizes: int) -> None:
    """``arr``'s shape must be ``expected``.

    ``expected`` holds sizes (``(2, 3)``) or dimension names (``("D", "M")``, the names
    ``course/layers.py``'s docstring lists). A named dimension must have the size given for it in
    ``sizes`` and may have any size when it has none there::

        expect_shape("affine_forward", "w", w, ("D", "M"),
                     "(the product of x's non-batch dims)", D=12)
        -> affine_forward: w must have shape (D, M) with D = 12 (the product of x's
           non-batch dims); got w.shape = (10, 5)

    ``meaning`` says where the expected sizes come from.
    """
    _require_shape(func, name, np.shape(arr), expected, meaning, sizes)


def _require_shape(func: str, name: str, shape: tuple[int, ...],
                   expected: Sequence[int | str], meaning: str, sizes: dict[str, int]) -> None:
    """``expect_shape`` for a shape already in hand (the geometry checks get shapes)."""
    shape = tuple(shape)
    wanted = [sizes.get(d) if isinstance(d, str) else d for d in expected]
    if len(shape) == len(wanted) and all(
            w is None or w == s for w, s in zip(wanted, shape, strict=True)):
        return
    known = ", ".join(f"{d} = {sizes[d]}" for d in expected if isinstance(d, str) and d in sizes)
    text = _shape_text(expected) + (f" with {known}" if known else "")
    text += f" {meaning}" if meaning else ""
    raise invalid(func, f"{name} must have shape {text}; got {name}.shape = {shape}")


def expect_ndim(func: str, name: str, arr: Any, layout: str, meaning: str = "",
                min_ndim: int | None = None) -> None:
    """``arr`` must have one dimension per name in ``layout`` (``"(N, C, H, W)"``: 4).

    A layout with ``...`` (``"(N, d1, ..., dk)"``) gives ``min_ndim``, the fewest
    dimensions it allows.
    """
    ndim = np.ndim(arr)
    if min_ndim is None:
        ok = ndim == len([d for d in layout.strip("()").split(",") if d.strip()])
    else:
        ok = ndim >= min_ndim
    if not ok:
        text = f"{layout} {meaning}" if meaning else layout
        raise invalid(func, f"{name} must have shape {text}; got {name}.shape = {np.shape(arr)}")


def expect_real_arrays(func: str, **arrays: Any) -> tuple[np.ndarray, ...]:
    """Each named input as an array; it must hold real numbers (an int or float dtype).

    Bool arrays would compute logical results (``True + True`` is ``True`` in a matrix
    product) and string or object arrays fail deep inside numpy; say which input it was.
    """
    result = []
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "iuf":
            raise invalid(func, f"{name} must be an array of real numbers (an int or float "
                                f"dtype); got {name}.dtype = {arr.dtype}")
        result.append(arr)
    return tuple(result)


def expect_float_array(func: str, name: str, value: Any, why: str = "") -> np.ndarray:
    """``value`` itself must be a floating-point numpy array (not converted: a caller that
    writes into it needs the caller's own array). ``why`` says why."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value
    given = f"ndarray of dtype {value.dtype}" if isinstance(value, np.ndarray) else \
        type(value).__name__
    reason = f" ({why})" if why else ""
    raise invalid(func, f"{name} must be a floating-point numpy array{reason}; got {given}")


def _is_int(value: Any) -> bool:
    """Python and numpy ints; not bools (``True`` is no batch size)."""
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def expect_int(func: str, name: str, value: Any, minimum: int = 1,
               allow_none: bool = False) -> int | None:
    """``value`` must be an int ``>= minimum`` (or None, when allowed); returned as an int."""
    if allow_none and value is None:
        return None
    if _is_int(value) and value >= minimum:
        return int(value)
    wanted = "a positive int" if minimum == 1 else f"an int >= {minimum}"
    wanted += " or None" if allow_none else ""
    raise invalid(func, f"{name} must be {wanted}; got {value!r}")


def _interval_text(interval: str) -> str:
    """``"(0, inf)"`` -> ``"> 0"``, ``"[0, inf)"`` -> ``">= 0"``, else the interval itself."""
    low, high = (float(end) for end in interval[1:-1].split(","))
    if math.isinf(high):
        return f"{'>' if interval[0] == '(' else '>='} {low:g}"
    return f"in {interval}"


def _in_interval(value: float, interval: str) -> bool:
    low, high = (float(end) for end in interval[1:-1].split(","))
    above = value > low if interval[0] == "(" else value >= low
    below = value < high if interval[-1] == ")" else value <= high
    return above and below


def expect_number(func: str, name: str, value: Any, interval: str = "(0, inf)",
                  alternative: str = "") -> Any:
    """``value`` must be a finite real number in ``interval``, written as in maths:
    ``"(0, inf)"`` (positive), ``"[0, inf)"``, ``"(0, 1]"``, ``"[0, 1)"``.

    A string or None would fail deep in training, inf or nan is never meant, and a
    negative learning rate would climb the loss. ``alternative`` names what else the
    caller accepts (``"one of ('he', 'xavier')"``), for the message. Returns ``value``.
    """
    ok = (isinstance(value, Real) and not isinstance(value, (bool, np.bool_))
          and math.isfinite(value) and _in_interval(float(value), interval))
    if not ok:
        wanted = f"a finite number {_interval_text(interval)}"
        wanted += f" or {alternative}" if alternative else ""
        raise invalid(func, f"{name} must be {wanted}; got {value!r}")
    return value


def expect_float_dtype(func: str, dtype: Any, name: str = "dtype") -> np.dtype:
    """``dtype`` as a numpy floating-point dtype (``np.float32``, ``"float64"``, ...)."""
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    if resolved is None or resolved.kind != "f":
        given = resolved if resolved is not None else repr(dtype)
        raise invalid(func, f"{name} must be a floating-point dtype such as np.float32 or "
                            f"np.float64; got {given}")
    return resolved


def expect_seed(func: str, seed: Any, name: str = "seed") -> None:
    """A seed is None (numpy's global random state), a non-negative int, or a Generator."""
    if seed is None or isinstance(seed, np.random.Generator) or (_is_int(seed) and seed >= 0):
        return
    raise invalid(func, f"{name} must be None, a non-negative int or a numpy Generator; "
                        f"got {seed!r}")


def expect_choice(func: str, name: str, value: Any, choices: Sequence[str | None]) -> None:
    """``value`` must be one of ``choices`` (strings, and None where None is a choice).

    Compared by type as well as value, so an array or a number never matches by accident.
    """
    if any(value is c or (isinstance(value, str) and value == c) for c in choices):
        return
    raise invalid(func, f"{name} must be one of {tuple(choices)!r}; got {value!r}")


def expect_dict(func: str, name: str, value: Any, allow_none: bool = False) -> dict | None:
    """``value`` must be a dict (the layers and update rules write their state into it),
    or None when allowed."""
    if isinstance(value, dict) or (allow_none and value is None):
        return value
    wanted = "a dict or None" if allow_none else "a dict"
    raise invalid(func, f"{name} must be {wanted}; got {type(value).__name__}")


def expect_bool(func: str, name: str, value: Any) -> None:
    """``value`` must be ``True`` or ``False`` (1 and ``"no"`` are refused, not guessed)."""
    if not isinstance(value, bool):
        raise invalid(func, f"{name} must be True or False; got {value!r}")


def expect_labels(func: str, name: str, y: np.ndarray, num_classes: int | None = None,
                  meaning: str = "") -> None:
    """``y`` must hold integer class labels, in ``[0, num_classes)`` when that is given.

    A label no score column can match would silently count as a wrong prediction, or
    index past the scores. ``meaning`` says where ``num_classes`` comes from.
    """
    if not np.issubdtype(y.dtype, np.integer):
        raise invalid(func, f"{name} must hold integer class labels; got {name}.dtype = "
                            f"{y.dtype}")
    if y.size == 0:
        return
    if num_classes is None:
        if y.min() < 0:
            raise invalid(func, f"{name} must hold class labels >= 0; got label {y.min()}")
        return
    bad = (y < 0) | (y >= num_classes)
    if np.any(bad):
        where = f" {meaning}" if meaning else ""
        raise invalid(func, f"{name} must hold labels in [0, C) with C = {num_classes}"
                            f"{where}; got label {y[bad][0]}")


# ---------------------------------------------------------------------------------------
# Composite checks of the layers (course.layers and course.fast_layers)
# ---------------------------------------------------------------------------------------


def scores_and_labels(func: str, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """A loss's inputs: ``x`` as an (N, C) array of scores with N, C >= 1 and ``y`` as an
    (N,) array of integer labels in [0, C)."""
    (x,) = expect_real_arrays(func, x=x)
    y = np.asarray(y)
    expect_ndim(func, "x", x, "(N, C)", "(one row of class scores per example)")
    N, C = x.shape
    if N == 0 or C == 0:
        raise invalid(func, f"x must have shape (N, C) with N >= 1 and C >= 1; got x.shape = "
                            f"{x.shape}")
    expect_shape(func, "y", y, ("N",), "(one label per row of x)", N=N)
    expect_labels(func, "y", y, C, "(the columns of x)")
    return x, y


def norm_inputs(func: str, x: Any, gamma: Any, beta: Any, param: Any,
                param_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch or layer normalisation's inputs: x (N, D), gamma and beta (D,), a param dict."""
    x, gamma, beta = np.asarray(x), np.asarray(gamma), np.asarray(beta)
    expect_ndim(func, "x", x, "(N, D)", "(one row per example)")
    D = x.shape[1]
    expect_shape(func, "gamma", gamma, ("D",), "(the columns of x)", D=D)
    expect_shape(func, "beta", beta, ("D",), "(the columns of x)", D=D)
    expect_dict(func, param_name, param)
    return x, gamma, beta


def norm_eps(func: str, param: dict, param_name: str) -> float:
    """``param["eps"]`` (default 1e-5), which must be a positive number."""
    return float(expect_number(func, f"{param_name}['eps']", param.get("eps", 1e-5)))


def spatial_norm_inputs(func: str, x: Any, gamma: Any,
                        beta: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spatial batch normalisation's inputs: x (N, C, H, W), gamma and beta (C,)."""
    x, gamma, beta = np.asarray(x), np.asarray(gamma), np.asarray(beta)
    expect_ndim(func, "x", x, "(N, C, H, W)")
    C = x.shape[1]
    expect_shape(func, "gamma", gamma, ("C",), "(the channels of x)", C=C)
    expect_shape(func, "beta", beta, ("C",), "(the channels of x)", C=C)
    return x, gamma, beta


def group_norm_inputs(func: str, x: Any, gamma: Any, beta: Any,
                      G: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group normalisation's inputs: x (N, C, H, W), gamma/beta (1, C, 1, 1), G divides C."""
    x, gamma, beta = np.asarray(x), np.asarray(gamma), np.asarray(beta)
    expect_ndim(func, "x", x, "(N, C, H, W)")
    C = x.shape[1]
    expect_shape(func, "gamma", gamma, (1, "C", 1, 1), "(the channels of x)", C=C)
    expect_shape(func, "beta", beta, (1, "C", 1, 1), "(the channels of x)", C=C)
    if not (_is_int(G) and G >= 1 and C % G == 0):
        raise invalid(func, f"G must be a positive int that divides C = {C} (the channels "
                            f"of x); got G = {G!r}")
    return x, gamma, beta


def int_param(func: str, params: Any, key: str, minimum: int, params_name: str) -> int:
    """``params[key]`` as an int ``>= minimum``; ``params`` must be a dict holding ``key``."""
    if not isinstance(params, dict) or key not in params:
        raise invalid(func, f"{params_name} must be a dict with key {key!r}; got {params!r}")
    return expect_int(func, f"{params_name}[{key!r}]", params[key], minimum)  # type: ignore[return-value]


def conv_geometry(func: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                  b_shape: tuple[int, ...], conv_param: Any) -> tuple[int, int, int, int]:
    """Validate a convolution's shapes and return ``(stride, pad, H_out, W_out)``.

    ``H_out = 1 + (H + 2 * pad - HH) / stride`` must be a whole number (and the same for
    the width), the filter must fit inside the padded input, and the channels of x and w
    must agree. Anything else raises ValueError showing the numbers.
    """
    _N, C, H, W = x_shape
    F = w_shape[0]
    stride = int_param(func, conv_param, "stride", 1, "conv_param")
    pad = int_param(func, conv_param, "pad", 0, "conv_param")
    _require_shape(func, "w", w_shape, ("F", "C", "HH", "WW"), "(the channels of x)", {"C": C})
    _require_shape(func, "b", b_shape, ("F",), "(the filters of w)", {"F": F})
    sizes = []
    HH, WW = w_shape[2:]
    for axis, size, k in (("height", H, HH), ("width", W, WW)):
        padded = size + 2 * pad
        if k > padded:
            raise invalid(func, f"filter {axis} {k} is larger than the padded input {axis} "
                                f"{size} + 2*{pad} = {padded}")
        if (padded - k) % stride:
            raise invalid(func, f"output {axis} 1 + ({size} + 2*{pad} - {k}) / {stride} is "
                                f"not an integer; choose stride and pad so that {stride} "
                                f"divides {padded - k}")
        sizes.append(1 + (padded - k) // stride)
    return stride, pad, sizes[0], sizes[1]


def pool_geometry(func: str, x_shape: tuple[int, ...],
                  pool_param: Any) -> tuple[int, int, int, int, int]:
    """Validate a max pool's geometry; return ``(ph, pw, stride, H_out, W_out)``.

    No padding: ``H_out = 1 + (H - ph) / stride`` must be a whole number and the window
    must fit inside the input (likewise for the width); otherwise ValueError.
    """
    _, _, H, W = x_shape
    ph = int_param(func, pool_param, "pool_height", 1, "pool_param")
    pw = int_param(func, pool_param, "pool_width", 1, "pool_param")
    stride = int_param(func, pool_param, "stride", 1, "pool_param")
    sizes = []
    for axis, size, k in (("height", H, ph), ("width", W, pw)):
        if k > size:
            raise invalid(func, f"pool {axis} {k} is larger than the input {axis} {size}")
        if (size - k) % stride:
            raise invalid(func, f"output {axis} 1 + ({size} - {k}) / {stride} is not an "
                                f"integer; choose a stride that divides {size - k}")
        sizes.append(1 + (size - k) // stride)
    return ph, pw, stride, sizes[0], sizes[1]
