"""``course._checks``: the validators every module of the package calls.

Each one lets good input through unchanged and refuses bad input with a ``ValueError``
that names the function and the argument, what was expected and what was given.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from course._checks import (
    expect_bool,
    expect_choice,
    expect_dict,
    expect_float_array,
    expect_float_dtype,
    expect_int,
    expect_labels,
    expect_ndim,
    expect_number,
    expect_real_arrays,
    expect_seed,
    expect_shape,
    invalid,
)


def _refused(call, message: str) -> None:
    """``call()`` raises ValueError with exactly ``message``."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call()


# ---------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------


def test_expect_shape_with_sizes() -> None:
    expect_shape("f", "x", np.zeros((2, 3)), (2, 3))
    _refused(lambda: expect_shape("f", "x", np.zeros((3, 2)), (2, 3), "(the shape of out)"),
             "f: x must have shape (2, 3) (the shape of out); got x.shape = (3, 2)")
    _refused(lambda: expect_shape("f", "b", np.zeros((1, 5)), (5,)),
             "f: b must have shape (5,); got b.shape = (1, 5)")


def test_expect_shape_with_named_dimensions() -> None:
    # A named dimension with a size must match it; one without may be anything.
    expect_shape("f", "w", np.zeros((12, 7)), ("D", "M"), D=12)
    _refused(lambda: expect_shape("f", "w", np.zeros((10, 5)), ("D", "M"), "(why)", D=12),
             "f: w must have shape (D, M) with D = 12 (why); got w.shape = (10, 5)")
    _refused(lambda: expect_shape("f", "w", np.zeros(12), ("D", "M"), D=12),
             "f: w must have shape (D, M) with D = 12; got w.shape = (12,)")
    _refused(lambda: expect_shape("f", "g", np.zeros((1, 4, 1)), (1, "C", 1, 1), C=4),
             "f: g must have shape (1, C, 1, 1) with C = 4; got g.shape = (1, 4, 1)")


def test_expect_shape_accepts_anything_with_a_shape() -> None:
    expect_shape("f", "y", [0, 1, 2], ("N",), N=3)  # a list: np.shape reads it


def test_expect_ndim_counts_the_layout_or_takes_a_minimum() -> None:
    expect_ndim("f", "x", np.zeros((1, 2, 3, 4)), "(N, C, H, W)")
    _refused(lambda: expect_ndim("f", "x", np.zeros((5, 5)), "(N, C, H, W)"),
             "f: x must have shape (N, C, H, W); got x.shape = (5, 5)")
    expect_ndim("f", "x", np.zeros((2, 3, 4)), "(N, d1, ..., dk)", min_ndim=2)
    _refused(lambda: expect_ndim("f", "x", np.zeros(5), "(N, d1, ..., dk)", "(at least 2-d)",
                                 min_ndim=2),
             "f: x must have shape (N, d1, ..., dk) (at least 2-d); got x.shape = (5,)")


# ---------------------------------------------------------------------------------------
# Arrays and dtypes
# ---------------------------------------------------------------------------------------


def test_expect_real_arrays_returns_arrays_and_refuses_bools_and_strings() -> None:
    x, w = expect_real_arrays("f", x=[1, 2], w=np.ones(2, dtype=np.float32))
    assert x.dtype.kind == "i" and w.dtype == np.float32
    _refused(lambda: expect_real_arrays("f", x=np.ones(2), w=np.ones(2, dtype=bool)),
             "f: w must be an array of real numbers (an int or float dtype); "
             "got w.dtype = bool")
    with pytest.raises(ValueError, match=r"got x\.dtype = <U1"):
        expect_real_arrays("f", x=np.array(["1"]))


def test_expect_float_array_returns_the_callers_own_array() -> None:
    x = np.ones(3)
    assert expect_float_array("f", "x", x) is x  # not a copy: callers write into it
    _refused(lambda: expect_float_array("f", "x", np.arange(3), "it is perturbed in place"),
             "f: x must be a floating-point numpy array (it is perturbed in place); "
             f"got ndarray of dtype {np.arange(3).dtype}")
    _refused(lambda: expect_float_array("f", "x", 1.5),
             "f: x must be a floating-point numpy array; got float")


@pytest.mark.parametrize("dtype", [np.float32, "float64", np.dtype(np.float16)])
def test_expect_float_dtype_resolves_float_dtypes(dtype) -> None:
    assert expect_float_dtype("f", dtype) == np.dtype(dtype)


@pytest.mark.parametrize(("dtype", "shown"), [(np.int32, "int32"), ("nonsense", "'nonsense'"),
                                              (bool, "bool")])
def test_expect_float_dtype_refuses_other_dtypes(dtype, shown: str) -> None:
    _refused(lambda: expect_float_dtype("f", dtype),
             "f: dtype must be a floating-point dtype such as np.float32 or np.float64; "
             f"got {shown}")


# ---------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------


def test_expect_int_returns_python_ints() -> None:
    value = expect_int("f", "n", np.int64(3))
    assert value == 3 and type(value) is int
    assert expect_int("f", "n", 0, minimum=0) == 0
    assert expect_int("f", "n", None, allow_none=True) is None


@pytest.mark.parametrize(("value", "minimum", "allow_none", "wanted"), [
    (0, 1, False, "a positive int"),
    (True, 1, False, "a positive int"),  # a bool is not a count
    (2.0, 1, False, "a positive int"),
    (-1, 0, False, "an int >= 0"),
    ("3", 1, True, "a positive int or None"),
])
def test_expect_int_refuses(value, minimum: int, allow_none: bool, wanted: str) -> None:
    _refused(lambda: expect_int("f", "n", value, minimum, allow_none),
             f"f: n must be {wanted}; got {value!r}")


@pytest.mark.parametrize(("interval", "inside", "outside", "wanted"), [
    ("(0, inf)", [1e-12, 3, 1e300], [0, -1.0], "> 0"),
    ("[0, inf)", [0, 0.0, 2], [-1e-12], ">= 0"),
    ("(0, 1]", [1, 0.5], [0, 1.5], "in (0, 1]"),
    ("[0, 1)", [0, 0.999], [1, -0.1], "in [0, 1)"),
    ("[0, 1]", [0, 1], [1.01], "in [0, 1]"),
])
def test_expect_number_reads_the_interval(interval: str, inside, outside,
                                          wanted: str) -> None:
    for value in inside:
        assert expect_number("f", "r", value, interval) is value
    for value in outside:
        _refused(lambda value=value: expect_number("f", "r", value, interval),
                 f"f: r must be a finite number {wanted}; got {value!r}")


@pytest.mark.parametrize("value", [float("inf"), float("nan"), True, "0.1", None,
                                   np.array([0.1])])
def test_expect_number_refuses_what_is_not_one_finite_number(value) -> None:
    with pytest.raises(ValueError, match=r"^f: r must be a finite number > 0; got "):
        expect_number("f", "r", value)


def test_expect_number_names_the_alternative() -> None:
    _refused(lambda: expect_number("f", "scale", -1.0, alternative="one of ('he',)"),
             "f: scale must be a finite number > 0 or one of ('he',); got -1.0")


@pytest.mark.parametrize("seed", [None, 0, 7, np.int64(3), np.random.default_rng(0)])
def test_expect_seed_accepts(seed) -> None:
    expect_seed("f", seed)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "abc"])
def test_expect_seed_refuses(seed) -> None:
    _refused(lambda: expect_seed("f", seed),
             f"f: seed must be None, a non-negative int or a numpy Generator; got {seed!r}")


# ---------------------------------------------------------------------------------------
# Choices, dicts, flags, labels, and the error itself
# ---------------------------------------------------------------------------------------


def test_expect_choice_compares_by_type_and_value() -> None:
    expect_choice("f", "mode", None, (None, "train"))
    expect_choice("f", "mode", "train", (None, "train"))
    _refused(lambda: expect_choice("f", "mode", "eval", ("train", "test")),
             "f: mode must be one of ('train', 'test'); got 'eval'")
    # An array never matches by accident (and no "truth value of an array" error either).
    with pytest.raises(ValueError, match=r"^f: mode must be one of \(None, 'train'\); got array"):
        expect_choice("f", "mode", np.array(["train"]), (None, "train"))


def test_expect_dict_and_expect_bool() -> None:
    param = {"mode": "train"}
    assert expect_dict("f", "param", param) is param
    assert expect_dict("f", "config", None, allow_none=True) is None
    _refused(lambda: expect_dict("f", "param", None), "f: param must be a dict; got NoneType")
    _refused(lambda: expect_dict("f", "config", [0.1], allow_none=True),
             "f: config must be a dict or None; got list")
    expect_bool("f", "verbose", False)
    _refused(lambda: expect_bool("f", "verbose", 1), "f: verbose must be True or False; got 1")


def test_expect_labels() -> None:
    expect_labels("f", "y", np.array([0, 2, 1]), 3)
    expect_labels("f", "y", np.array([5]))  # without C, only the sign is known
    _refused(lambda: expect_labels("f", "y", np.array([0.0, 1.0]), 3),
             "f: y must hold integer class labels; got y.dtype = float64")
    _refused(lambda: expect_labels("f", "y", np.array([0, 3, 4]), 3, "(the columns of x)"),
             "f: y must hold labels in [0, C) with C = 3 (the columns of x); got label 3")
    _refused(lambda: expect_labels("f", "y", np.array([1, -2])),
             "f: y must hold class labels >= 0; got label -2")


def test_invalid_prefixes_the_function_name_when_there_is_one() -> None:
    assert str(invalid("f", "x is wrong")) == "f: x is wrong"
    assert str(invalid("", "x is wrong")) == "x is wrong"
    assert isinstance(invalid("f", "x"), ValueError)
