"""A passing check line never names a property the code lacks.

The update-rule check cells of FullyConnectedNets run here against deliberately wrong
update rules (instructor-only: these are near-solutions). For each bug, the lines whose
label names the broken property must print ``check FAILED``, and with the solution every
line must pass. Issue: Adam counting ``t`` after its bias correction used to print
``check passed: adam counts the first step as t = 1`` next to a NaN failure.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import numpy as np
import pytest

from course import gradient_check, optim

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "FullyConnectedNets.ipynb"


def check_cell_after(task_id: str) -> str:
    """Source of the first check cell after the heading that introduces ``task_id``."""
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    start = next(i for i, c in enumerate(cells)
                 if c.cell_type == "markdown" and f"[task {task_id}]" in c.source)
    return next(c.source for c in cells[start:]
                if c.cell_type == "code" and "check" in c.metadata.get("tags", []))


def run_cell(source: str, **rules: Callable[..., Any]) -> dict[str, bool]:
    """Run a check cell with ``optim``'s rules replaced; label -> passed."""
    fake_optim = SimpleNamespace(**{name: getattr(optim, name) for name in optim.__all__}
                                 if hasattr(optim, "__all__") else vars(optim))
    for name, rule in rules.items():
        setattr(fake_optim, name, rule)
    namespace = {"np": np, "optim": fake_optim, **{
        name: getattr(gradient_check, name) for name in
        ("check_close", "check_true", "report_check", "check_gradient")}}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), np.errstate(all="ignore"):
        exec(source, namespace)
    verdicts = {}
    for line in printed.getvalue().splitlines():
        match = re.match(r"check (passed|FAILED): (.*?)(,| relative error|: |$)", line)
        if match:
            verdicts[match[2]] = match[1] == "passed"
    return verdicts


def _config(config: dict | None, w: np.ndarray, **defaults: Any) -> dict:
    config = dict(config or {})
    for key, value in defaults.items():
        config.setdefault(key, value)
    return config


def adam_t_after(w, dw, config=None):
    c = _config(config, w, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8,
                m=np.zeros_like(w), v=np.zeros_like(w), t=0)
    m = c["beta1"] * c["m"] + (1 - c["beta1"]) * dw
    v = c["beta2"] * c["v"] + (1 - c["beta2"]) * dw**2
    m_hat, v_hat = m / (1 - c["beta1"] ** c["t"]), v / (1 - c["beta2"] ** c["t"])
    c.update(m=m, v=v, t=c["t"] + 1)  # the bug: t counted after it was used
    return w - c["learning_rate"] * m_hat / (np.sqrt(v_hat) + c["epsilon"]), c


def adam_uncorrected(w, dw, config=None):
    c = _config(config, w, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8,
                m=np.zeros_like(w), v=np.zeros_like(w), t=0)
    m = c["beta1"] * c["m"] + (1 - c["beta1"]) * dw
    v = c["beta2"] * c["v"] + (1 - c["beta2"]) * dw**2
    c.update(m=m, v=v, t=c["t"] + 1)
    return w - c["learning_rate"] * m / (np.sqrt(v) + c["epsilon"]), c  # no bias correction


def momentum_forgets_velocity(w, dw, config=None):
    c = _config(config, w, learning_rate=1e-2, momentum=0.9, velocity=np.zeros_like(w))
    v = c["momentum"] * c["velocity"] - c["learning_rate"] * dw
    return w + v, c  # the bug: the new velocity is not stored


def rmsprop_without_decay(w, dw, config=None):
    c = _config(config, w, learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8,
                cache=np.zeros_like(w))
    c["cache"] = c["cache"] + dw**2  # the bug: a sum, as in AdaGrad
    return w - c["learning_rate"] * dw / (np.sqrt(c["cache"]) + c["epsilon"]), c


def adagrad_forgets_history(w, dw, config=None):
    c = _config(config, w, learning_rate=1e-2, epsilon=1e-8, cache=np.zeros_like(w))
    c["cache"] = dw**2  # the bug: only the latest gradient
    return w - c["learning_rate"] * dw / (np.sqrt(c["cache"]) + c["epsilon"]), c


# (task, rule, wrong version, labels that must fail, labels that may pass: still true)
MUTATIONS = [
    ("1.12", "adam", adam_t_after,
     {"adam first step", "adam second step"}, {"adam stores t = 1 in config after one call"}),
    ("1.12", "adam", adam_uncorrected, {"adam first step", "adam second step"},
     {"adam stores t = 1 in config after one call"}),
    ("1.10", "sgd_momentum", momentum_forgets_velocity, {"sgd_momentum velocity"},
     {"sgd_momentum next_w"}),
    ("1.11", "rmsprop", rmsprop_without_decay, {"rmsprop cache", "rmsprop next_w"}, set()),
    ("1.13", "adagrad", adagrad_forgets_history,
     {"adagrad cache after two steps", "adagrad second step"}, {"adagrad first step"}),
]


@pytest.mark.parametrize("task_id", sorted({m[0] for m in MUTATIONS}))
def test_every_line_passes_with_the_solution(task_id):
    verdicts = run_cell(check_cell_after(task_id))
    assert verdicts and all(verdicts.values()), verdicts


@pytest.mark.parametrize(("task_id", "rule", "wrong", "must_fail", "still_true"), MUTATIONS,
                         ids=[m[2].__name__ for m in MUTATIONS])
def test_a_bug_fails_the_lines_that_name_it(task_id, rule, wrong, must_fail, still_true):
    verdicts = run_cell(check_cell_after(task_id), **{rule: wrong})
    labels = set(verdicts)
    for prefix in must_fail:
        named = [label for label in labels if label.startswith(prefix)]
        assert named, f"no line about {prefix!r} in {sorted(labels)}"
        assert not any(verdicts[label] for label in named), verdicts
    # Every line that passes is one we checked is still true of the wrong code.
    passing = {label for label, ok in verdicts.items() if ok}
    assert passing <= still_true, passing - still_true
