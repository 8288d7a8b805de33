"""Deciding a hidden check in the grader: what the worker sent against what is due.

Everything the worker sent is untrusted data (``transport.read_message`` already made
sure it is only plain values and numeric arrays). Here each output is compared with the
solution's, computed in this process by the same driver:

* an array must be a plain numeric ndarray of a real dtype (not bool), of exactly the
  expected shape, finite wherever the expected one is, within ``TOLERANCE`` in
  ``relative_error``;
* a number must be a real number (an int, a float or a 0-d array) within the tolerance;
  an integer (Adam's ``t``) must be equal;
* a dict must have exactly the expected keys, a sequence the expected length.

Dropout is judged by properties (``judge_dropout``) and random initial weights by their
statistics (``judge_init``): a correct answer is not one array there.

A failure is a ``Problem``: the output's name, what is wrong with it, never the inputs
or the expected values (the shape of the expected array is named: it is no answer; so
are the index of an array's worst entry and how many entries are off, where to look).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kit.hidden.case import Case
from kit.hidden.transport import Rejected

TOLERANCE = 1e-6
SCALE_FLOOR = 1e-4  # entries this far below an array's largest count in absolute terms
ABSOLUTE_FLOOR = 1e-10
REAL_KINDS = "iuf"
STAT_SIGMAS = 6.0  # random statistics must lie within this many standard errors


@dataclass(frozen=True)
class Problem:
    """One failed property of one output."""

    output: str
    what: str

    def __str__(self) -> str:
        return f"{self.output}: {self.what}" if self.output else self.what


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest entrywise ``|a - e| / max(|a| + |e|, 1e-4 * max|e|, 1e-10)``.

    The denominator is CS231n's ``|a| + |e|``, with a floor proportional to the array's
    largest expected entry: an entry many orders below the rest (a sum that cancels) is
    held to an absolute error instead, so rounding in a correct but differently ordered
    computation never fails it, while a wrong entry of ordinary size always does.
    """
    return _largest(entry_errors(actual, expected))


def _largest(errors: np.ndarray) -> float:
    return float(np.max(errors)) if errors.size else 0.0


def entry_errors(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Each entry's term of ``relative_error``, shaped like ``expected``; 0 where the
    expected entry is not finite (no comparison is made there)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    errors = np.zeros(e.shape)
    finite = np.isfinite(e)
    if not finite.any():
        return errors
    floor = max(SCALE_FLOOR * float(np.max(np.abs(e[finite]))), ABSOLUTE_FLOOR)
    with np.errstate(invalid="ignore", over="ignore"):
        errors[finite] = np.abs(a[finite] - e[finite]) / np.maximum(
            np.abs(a[finite]) + np.abs(e[finite]), floor)
    return errors


def _where_it_is_off(errors: np.ndarray) -> str:
    """`` at [0, 2, 1]; 24 of 600 entries are off``: where to look, never a value, in the
    notebook checks' way of naming an entry; the first of equal worst entries (row-major
    order). Nothing for a single entry."""
    if errors.size <= 1:
        return ""
    off = int(np.count_nonzero(~(errors < TOLERANCE)))
    worst = np.unravel_index(int(np.argmax(errors)), errors.shape)
    return (f" at [{', '.join(str(int(i)) for i in worst)}]; "
            f"{off} of {errors.size} entries are off")


# ---------------------------------------------------------------------------------------
# Naming outputs in feedback
# ---------------------------------------------------------------------------------------

STEP_OUTPUTS = {"out": "out", "w": "next_w", "param": "bn_param", "state": "config"}


def output_name(case: Case, path: tuple[Any, ...]) -> str:
    """``("grads", 1)`` -> ``dw``; ``("out", 3)`` -> ``out of call 4 (test mode)``..."""
    if not path:
        return "the result"
    head, rest = path[0], list(path[1:])
    names = case.options.get("names", {})
    if head in names and rest and isinstance(rest[0], int) and rest[0] < len(names[head]):
        text = names[head][rest.pop(0)]
    elif head in STEP_OUTPUTS and rest and isinstance(rest[0], int):
        step = rest.pop(0)
        modes = case.options.get("steps")
        mode = f" ({modes[step]} mode)" if modes and step < len(modes) else ""
        label = STEP_OUTPUTS[head]
        if rest and isinstance(rest[0], str):
            label += f"[{rest.pop(0)!r}]"
        text = f"{label} after call {step + 1}{mode}" if _is_sequence(case) else label
    else:
        text = str(head)
    for part in rest:
        text += f"[{part!r}]"
    return text


def _is_sequence(case: Case) -> bool:
    steps = case.spec.get("steps") or case.spec.get("dws") or []
    return len(steps) > 1


# ---------------------------------------------------------------------------------------
# Matching the solution
# ---------------------------------------------------------------------------------------

def compare(case: Case, expected: Any, actual: Any, path: tuple[Any, ...] = ()) -> list[Problem]:
    """Every problem of ``actual`` against ``expected`` (the first per output)."""
    name = output_name(case, path)
    if isinstance(actual, Rejected):
        return [Problem(name, f"the code returned {actual.why}")]
    if isinstance(expected, dict):
        return _compare_dict(case, expected, actual, path, name)
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            got = f"{len(actual)} values" if isinstance(actual, (list, tuple)) \
                else _kind(actual)
            return [Problem(name, f"expected {len(expected)} values, got {got}")]
        problems = []
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problems += compare(case, e, a, (*path, index))
        return problems
    if isinstance(expected, np.ndarray):
        return _compare_array(name, expected, actual)
    if isinstance(expected, (bool, int, float, np.number)):
        return _compare_number(name, expected, actual)
    if expected is None:
        return [] if actual is None else [Problem(name, f"expected None, got {_kind(actual)}")]
    raise TypeError(f"reference output of unexpected type {type(expected).__name__}")


def _compare_dict(case: Case, expected: dict, actual: Any, path: tuple[Any, ...],
                  name: str) -> list[Problem]:
    if not isinstance(actual, dict):
        return [Problem(name, f"expected a dict, got {_kind(actual)}")]
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    problems = []
    if missing:
        problems.append(Problem(name, f"missing {', '.join(map(repr, missing))}"))
    if extra:
        problems.append(Problem(name, f"unexpected {', '.join(map(repr, extra[:5]))}"))
    for key in expected:
        if key in actual:
            problems += compare(case, expected[key], actual[key], (*path, key))
    return problems


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return "None" if value is None else f"a {type(value).__name__}"


def _compare_array(name: str, expected: np.ndarray, actual: Any) -> list[Problem]:
    if not isinstance(actual, np.ndarray):
        return [Problem(name, f"expected a numpy array, got {_kind(actual)}")]
    if actual.dtype.kind not in REAL_KINDS:
        return [Problem(name, f"dtype {actual.dtype} is not a real number type")]
    if actual.shape != expected.shape:
        return [Problem(name, f"shape {actual.shape}, expected {expected.shape}")]
    bad = ~np.isfinite(actual.astype(np.float64)) & np.isfinite(expected.astype(np.float64))
    if bad.any():
        return [Problem(name, f"{int(bad.sum())} entries are NaN or infinite")]
    errors = entry_errors(actual, expected)
    error = _largest(errors)
    if not error < TOLERANCE:
        return [Problem(name, f"largest relative error {error:.2e} (must be below "
                              f"{TOLERANCE:.0e}){_where_it_is_off(errors)}")]
    return []


def _compare_number(name: str, expected: Any, actual: Any) -> list[Problem]:
    if isinstance(actual, np.ndarray) and actual.shape == () and actual.dtype.kind in REAL_KINDS:
        actual = actual.item()
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        return [Problem(name, f"expected a number, got {_kind(actual)}")]
    if isinstance(expected, (int, np.integer)) and not isinstance(expected, bool):
        return [] if actual == expected else [Problem(name, f"{actual!r}, expected an integer "
                                                            f"that differs")]
    if not np.isfinite(actual):
        return [Problem(name, "NaN or infinite")]
    error = relative_error(np.array(actual), np.array(float(expected)))
    if not error < TOLERANCE:
        return [Problem(name, f"relative error {error:.2e} (must be below {TOLERANCE:.0e})")]
    return []


# ---------------------------------------------------------------------------------------
# Dropout: properties of a random mask
# ---------------------------------------------------------------------------------------

def _array_or_problem(found: dict, key: str, shape: tuple[int, ...], label: str,
                      problems: list[Problem]) -> np.ndarray | None:
    problems_before = len(problems)
    value = found.get(key)
    if isinstance(value, Rejected):
        problems.append(Problem(label, f"the code returned {value.why}"))
    elif not isinstance(value, np.ndarray) or value.dtype.kind not in REAL_KINDS:
        problems.append(Problem(label, f"expected a numpy array of numbers, got {_kind(value)}"))
    elif value.shape != shape:
        problems.append(Problem(label, f"shape {value.shape}, expected {shape}"))
    elif not np.isfinite(value).all():
        problems.append(Problem(label, "NaN or infinite entries"))
    return value.astype(np.float64) if len(problems) == problems_before else None


def judge_dropout(case: Case, expected: dict, actual: Any) -> list[Problem]:
    """Mask values 0 or 1/p, out = x * mask, keep rate within binomial bounds, a seed
    repeats the mask, numpy's global state drives unseeded masks, test mode is x."""
    if not isinstance(actual, dict):
        return [Problem("", f"expected the driver's dict, got {_kind(actual)}")]
    p = case.options["p"]
    x = case.spec["x"]
    problems: list[Problem] = []
    get = {key: _array_or_problem(actual, key, x.shape, label, problems) for key, label in (
        ("seeded_out", "out (train mode, seeded)"),
        ("seeded_mask", "mask stored in the cache (train mode, seeded)"),
        ("seeded_again_out", "out of a second call with the same seed"),
        ("global_out", "out (train mode, no seed)"),
        ("global_next_out", "out of the next call without a seed"),
        ("global_again_out", "out after np.random.seed(...) again"),
        ("test_out", "out (test mode)"),
    )}
    if problems:
        return problems
    out, mask = get["seeded_out"], get["seeded_mask"]
    kept = mask != 0
    if np.abs(mask[kept] - 1.0 / p).max(initial=0.0) > TOLERANCE / p:
        problems.append(Problem("mask", "kept entries must be 1/p (p: the keep probability)"))
    if relative_error(out, x * mask) >= TOLERANCE:
        problems.append(Problem("out", "is not x times the mask stored in the cache"))
    n, rate = x.size, float(kept.mean())
    bound = STAT_SIGMAS * np.sqrt(p * (1 - p) / n) + 0.5 / n
    if abs(rate - p) > bound:
        problems.append(Problem("mask", "keeps a share of the entries too far from p for "
                                        "chance (p: the keep probability)"))
    if not np.array_equal(get["seeded_again_out"], out):
        problems.append(Problem("out", "the same seed did not repeat the mask"))
    if not np.array_equal(get["global_again_out"], get["global_out"]):
        problems.append(Problem("out", "without a seed the mask must come from numpy's "
                                       "global random state (np.random.seed repeats it)"))
    if p < 1 and np.array_equal(get["global_next_out"], get["global_out"]):
        problems.append(Problem("out", "two calls without a seed drew the same mask"))
    if relative_error(get["test_out"], x) >= TOLERANCE:
        problems.append(Problem("out (test mode)", "must equal x"))
    if actual.get("test_mask") is not None:
        problems.append(Problem("cache (test mode)", "the mask must be None"))
    return problems


# ---------------------------------------------------------------------------------------
# Initial parameters: names, shapes, dtypes and statistics
# ---------------------------------------------------------------------------------------

def judge_init(case: Case, expected: dict, actual: Any) -> list[Problem]:
    """Names and shapes as the solution's; every parameter of the requested dtype;
    biases, gammas and betas equal to the solution's; each weight matrix's mean and
    standard deviation within ``STAT_SIGMAS`` standard errors of 0 and the promised std;
    the same arguments (and seed) give the same parameters again."""
    if not isinstance(actual, dict) or not isinstance(actual.get("params"), dict):
        return [Problem("params", f"expected a dict, got {_kind(actual)}")]
    params, reference = actual["params"], expected["params"]
    problems = _compare_dict_shape(params, reference)
    if problems:
        return problems
    dtype = np.dtype(case.options["dtype"])
    for name, value in params.items():
        label = f"params[{name!r}]"
        if value.dtype != dtype:
            problems.append(Problem(label, f"dtype {value.dtype}, expected {dtype}"))
        elif name in case.options["stds"]:
            problems += _weight_stats(label, value, case.options["stds"][name])
        else:
            problems += _compare_array(label, reference[name], value)
    again = actual.get("again")
    if not problems and not (isinstance(again, dict) and set(again) == set(params) and all(
            isinstance(again[k], np.ndarray) and np.array_equal(again[k], params[k])
            for k in params)):
        problems.append(Problem("params", "the same arguments and seed did not give the same "
                                          "parameters"))
    return problems


def _compare_dict_shape(params: dict, reference: dict) -> list[Problem]:
    problems = []
    missing, extra = sorted(set(reference) - set(params)), sorted(set(params) - set(reference))
    if missing or extra:
        problems.append(Problem("params", f"names {sorted(params)[:12]}, expected "
                                          f"{sorted(reference)}"))
        return problems
    for name, value in params.items():
        label = f"params[{name!r}]"
        if isinstance(value, Rejected):
            problems.append(Problem(label, f"the code returned {value.why}"))
        elif not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            problems.append(Problem(label, f"expected a float array, got {_kind(value)}"))
        elif value.shape != reference[name].shape:
            problems.append(Problem(label, f"shape {value.shape}, expected "
                                           f"{reference[name].shape}"))
        elif not np.isfinite(value).all():
            problems.append(Problem(label, "NaN or infinite entries"))
    return problems


def _weight_stats(label: str, value: np.ndarray, std: float) -> list[Problem]:
    """Mean near 0 and standard deviation near ``std``, for iid normal draws: the sample
    mean's standard error is std / sqrt(n), the sample std's about std / sqrt(2 n)."""
    n = value.size
    sample = value.astype(np.float64)
    mean, spread = float(sample.mean()), float(sample.std())
    problems = []
    if abs(mean) > STAT_SIGMAS * std / np.sqrt(n):
        problems.append(Problem(label, f"mean {mean:.3g} is not about 0"))
    if abs(spread / std - 1) > STAT_SIGMAS / np.sqrt(2 * n):
        problems.append(Problem(label, f"standard deviation off by {spread / std - 1:+.1%} "
                                       f"from what the arguments ask for"))
    return problems


JUDGES = {"dropout": judge_dropout, "init": judge_init}


def judge(case: Case, expected: Any, actual: Any) -> list[Problem]:
    """Every problem of one case's outputs (empty: the case passed)."""
    special = JUDGES.get(case.judge)
    if special is not None:
        return special(case, expected, actual)
    return compare(case, expected, actual)
