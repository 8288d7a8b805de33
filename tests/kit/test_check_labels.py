"""A passing check line never names a property the code lacks.

Check cells of the notebooks run here against deliberately wrong code (instructor-only:
the wrong versions are near-solutions). For each bug, the lines whose label names the
broken property must print ``check FAILED``, every line that still passes must be one we
know to be true of the wrong code, and with the solution every line passes. Issue: Adam
counting ``t`` after its bias correction used to print ``check passed: adam counts the
first step as t = 1`` next to a NaN failure.
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

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "FullyConnectedNets.ipynb"


def named_check_cell(notebook: str, check: str) -> str:
    """Source of the check cell whose metadata names it ``check``."""
    cells = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4).cells
    (source,) = [c.source for c in cells if c.metadata.get("check") == check]
    return source


def check_cell_after(task_id: str) -> str:
    """Source of the first check cell after the heading that introduces ``task_id``."""
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    start = next(i for i, c in enumerate(cells)
                 if c.cell_type == "markdown" and f"[task {task_id}]" in c.source)
    return next(c.source for c in cells[start:]
                if c.cell_type == "code" and "check" in c.metadata.get("tags", []))


MEASURE = re.compile(r", [a-z ]+ below [0-9.e+-]+$")


def _failed_label(text: str, known: set[str]) -> str:
    """The label of a FAILED line: the known label it starts with, else up to ': '."""
    return next((label for label in sorted(known, key=len, reverse=True)
                 if text.startswith(label)), text.split(": ")[0])


def run_cell(source: str, namespace: dict[str, Any] | None = None,
             known: set[str] = frozenset(), **rules: Callable[..., Any]) -> dict[str, bool]:
    """Run a check cell with ``optim``'s rules replaced (and ``namespace`` added); label ->
    passed. ``known``: labels a FAILED line may start with (its detail follows)."""
    fake_optim = SimpleNamespace(**{name: getattr(optim, name) for name in optim.__all__}
                                 if hasattr(optim, "__all__") else vars(optim))
    for name, rule in rules.items():
        setattr(fake_optim, name, rule)
    namespace = {"np": np, "optim": fake_optim, **{
        name: getattr(gradient_check, name) for name in
        ("check_close", "check_true", "report_check", "check_gradient")}, **(namespace or {})}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), np.errstate(all="ignore"):
        exec(source, namespace)
    verdicts = {}
    for line in printed.getvalue().splitlines():
        if line.startswith("check passed: "):
            verdicts[MEASURE.sub("", line.removeprefix("check passed: "))] = True
        elif line.startswith("check FAILED: "):
            verdicts[_failed_label(line.removeprefix("check FAILED: "), known)] = False
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


# -- the other notebooks: (notebook, check name, names the cell uses, wrong versions) --------


def _wrong_init(cls: type, name: str, factor: float) -> type:
    """``cls`` whose initial ``name`` is ``factor`` times too large."""

    class Wrong(cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.params[name] = self.params[name] * factor

    return Wrong


def _batch_stats_in_test_mode(forward: Callable[..., Any]) -> Callable[..., Any]:
    """A spatial batchnorm that ignores the running averages in test mode."""

    def wrong(x, gamma, beta, bn_param):
        if bn_param.get("mode") == "test":
            return forward(x, gamma, beta, {"mode": "train"})
        return forward(x, gamma, beta, bn_param)

    return wrong


def _namespace(*modules: str) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for module in modules:
        imported = __import__(module, fromlist=["*"])
        names.update({k: getattr(imported, k) for k in getattr(imported, "__all__", [])})
    return names


def other_cases() -> list[tuple[str, str, dict[str, Any], set[str], set[str]]]:
    """(cell, wrong names, labels that must fail, labels still true) for the other cells."""
    from course.classifiers.cnn import ThreeLayerConvNet
    from course.classifiers.fc_net import FullyConnectedNet
    from course.layers import spatial_batchnorm_forward

    return [
        (check_cell_after("1.7"), {"FullyConnectedNet": _wrong_init(FullyConnectedNet, "W3", 1.5)},
         {"W3 std vs weight_scale = 0.05"},
         {"parameter names and shapes", "biases start at zero", "W1 std vs weight_scale = 0.05",
          "W2 std vs weight_scale = 0.05", "parameters are float32 by default"}),
        (named_check_cell("ConvolutionalNetworks", "cnn-init"),
         {"ThreeLayerConvNet": _wrong_init(ThreeLayerConvNet, "W1", 3.0)},
         {"ThreeLayerConvNet weights W1, W2 and W3 have standard deviation weight_scale"},
         {"ThreeLayerConvNet parameter shapes", "ThreeLayerConvNet biases start at zero"}),
        (named_check_cell("ConvolutionalNetworks", "spatial-batchnorm-forward"),
         {"spatial_batchnorm_forward": _batch_stats_in_test_mode(spatial_batchnorm_forward)},
         {"spatial batchnorm, test mode uses the running averages (an example alone gives "
          "its output in the batch)"},
         {"spatial batchnorm, per-channel means equal beta",
          "spatial batchnorm, per-channel standard deviations equal gamma",
          "spatial batchnorm, test mode after warm-up: per-channel means near beta"}),
        (named_check_cell("Dropout", "dropout-forward-seed"),
         {"dropout_forward": lambda x, p: (np.zeros_like(x), None)},
         {"dropout scales kept entries by 1 / p (and drops the others)"},
         {"dropout with a seed draws the same mask on every call",
          "dropout keeps the dtype of x (float32)"}),
    ]


@pytest.mark.parametrize("case", range(4))
def test_other_notebooks_lines_fail_on_the_bug_they_name(case):
    source, wrong, must_fail, still_true = other_cases()[case]
    base = _namespace("course.layers", "course.layer_utils", "course.classifiers.fc_net",
                      "course.classifiers.cnn", "course.fast_layers")
    right = run_cell(source, base)
    assert right and all(right.values()), right
    verdicts = run_cell(source, {**base, **wrong}, known=set(right))
    assert set(verdicts) == set(right), "the same lines are printed"
    for label in must_fail:
        assert verdicts.get(label) is False, (label, verdicts)
    passing = {label for label, ok in verdicts.items() if ok}
    assert passing <= still_true, passing - still_true


# -- bugs that used to pass every line of their check cell -------------------------------


def _relu_backward_passes_at_zero(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    return dout * (cache >= 0)  # the bug: x == 0 lets the gradient through


def _regularisation_bug(cls: type, kind: str) -> type:
    """``cls`` whose loss gets the L2 term wrong: "none" (no term at all), "loss only"
    (in the loss, not in the gradients) or "doubled" (reg * sum W^2, gradients 2 reg W)."""

    class Wrong(cls):  # type: ignore[misc, valid-type]
        def _loss_with_reg(self, X: np.ndarray, y: np.ndarray, reg: float) -> Any:
            saved, self.reg = self.reg, reg
            try:
                return super().loss(X, y)
            finally:
                self.reg = saved

        def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
            if y is None:
                return super().loss(X)
            if kind == "none":
                return self._loss_with_reg(X, y, 0.0)
            if kind == "loss only":
                return (self._loss_with_reg(X, y, self.reg)[0],
                        self._loss_with_reg(X, y, 0.0)[1])
            return self._loss_with_reg(X, y, 2 * self.reg)

    return Wrong


def _crop_with_negative_index(backward: Callable[..., Any]) -> Callable[..., Any]:
    """conv_backward_naive that crops dx_pad[:, :, pad:-pad, pad:-pad]: empty when pad = 0."""

    def wrong(dout: np.ndarray, cache: tuple) -> tuple:
        dx, dw, db = backward(dout, cache)
        pad = cache[3]["pad"]
        return (dx if pad else dx[:, :, 0:0, 0:0]), dw, db

    return wrong


def _eps_outside_sqrt(x, gamma, beta, bn_param):
    """Train-mode batchnorm dividing by sqrt(var) + eps instead of sqrt(var + eps)."""
    eps = bn_param.get("eps", 1e-5)
    centred = x - x.mean(axis=0)
    return gamma * centred / (np.sqrt(x.var(axis=0)) + eps) + beta, None


def _fc_reg_labels(label: str, params: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(loss and weight-gradient lines, bias lines) of check_regularisation for ``label``."""
    weights = {f"{label}: loss = data loss + reg / 2 * sum of squared weights"} | {
        f"{label}: gradient of {p} = data gradient + reg * {p}" for p in params if p[0] == "W"}
    biases = {f"{label}: gradient of {p} = data gradient (not regularised)"
              for p in params if p[0] != "W"}
    return weights, biases


def item17_cases() -> dict[str, tuple[str, dict[str, Any], set[str], set[str]]]:
    """id -> (cell source, wrong names, labels that must fail, labels still true)."""
    from course.classifiers.cnn import ThreeLayerConvNet
    from course.classifiers.fc_net import FullyConnectedNet
    from course.layers import conv_backward_naive

    fc_params = ("W1", "W2", "W3", "b1", "b2", "b3")
    fc_reg, fc_bias = _fc_reg_labels("reg = 3.14", fc_params)
    fc_plain = {"initial loss vs log C (small weights, reg = 0)"} | {
        f"reg = 0.0: gradient of {p}" for p in fc_params}
    cnn_reg, cnn_bias = _fc_reg_labels("ThreeLayerConvNet, reg = 0.5", fc_params)
    cnn_plain = {f"ThreeLayerConvNet, reg = 0.0: gradient of {p}" for p in fc_params}
    fc_cell = named_check_cell("FullyConnectedNets", "fc-net-loss-gradients")
    conv_lines = {f"conv_backward_naive {g}, {where}" for g in ("dx", "dw", "db")
                  for where in ("stride 1, pad 0", "stride 1, pad 1", "stride 2, pad 1")}
    return {
        "relu-backward at the kink": (
            named_check_cell("FullyConnectedNets", "relu-backward"),
            {"relu_backward": _relu_backward_passes_at_zero},
            {"relu_backward, a hand-worked example with x exactly 0 (dx = 0 there)"},
            {"relu_backward dx"}),
        "fc net without L2": (
            fc_cell, {"FullyConnectedNet": _regularisation_bug(FullyConnectedNet, "none")},
            fc_reg, fc_plain | fc_bias),
        "fc net L2 in the loss only": (
            fc_cell,
            {"FullyConnectedNet": _regularisation_bug(FullyConnectedNet, "loss only")},
            fc_reg - {"reg = 3.14: loss = data loss + reg / 2 * sum of squared weights"},
            fc_plain | fc_bias | {"reg = 3.14: loss = data loss + reg / 2 * sum of squared "
                                  "weights"}),
        "fc net L2 doubled": (
            fc_cell, {"FullyConnectedNet": _regularisation_bug(FullyConnectedNet, "doubled")},
            fc_reg, fc_plain | fc_bias),
        "conv net without L2": (
            named_check_cell("ConvolutionalNetworks", "cnn-gradients"),
            {"ThreeLayerConvNet": _regularisation_bug(ThreeLayerConvNet, "none")},
            cnn_reg, cnn_plain | cnn_bias),
        "conv backward crops an empty border": (
            named_check_cell("ConvolutionalNetworks", "conv-backward-naive"),
            {"conv_backward_naive": _crop_with_negative_index(conv_backward_naive)},
            {"conv_backward_naive dx, stride 1, pad 0"},
            conv_lines - {"conv_backward_naive dx, stride 1, pad 0"}),
        "batchnorm eps outside the square root": (
            named_check_cell("BatchNormalization", "bn-train-stats"),
            {"batchnorm_forward": _eps_outside_sqrt},
            {"batchnorm train mode, hand-worked example (x - mean) / sqrt(var + eps), eps = 3"},
            {"batchnorm train mode: column means equal beta",
             "batchnorm train mode: column stds equal gamma"}),
    }


def _data_namespace() -> dict[str, Any]:
    """What the first cells of FullyConnectedNets define and the check cells use."""
    from course.data_utils import get_data

    with contextlib.redirect_stdout(io.StringIO()):
        data = get_data("digits")
    return {"data": data, "num_classes": len(data["class_names"]),
            "input_dim": int(np.prod(data["X_train"].shape[1:]))}


@pytest.mark.parametrize("case", list(item17_cases()))
def test_each_bug_that_used_to_pass_now_fails_its_line(case: str) -> None:
    source, wrong, must_fail, still_true = item17_cases()[case]
    base = {**_namespace("course.layers", "course.layer_utils", "course.classifiers.fc_net",
                         "course.classifiers.cnn", "course.fast_layers",
                         "course.gradient_check"), **_data_namespace()}
    right = run_cell(source, base)
    assert right and all(right.values()), right
    verdicts = run_cell(source, {**base, **wrong}, known=set(right))
    assert set(verdicts) == set(right), "the same lines are printed"
    for label in must_fail:
        assert verdicts.get(label) is False, (label, verdicts)
    passing = {label for label, ok in verdicts.items() if ok}
    assert passing <= still_true, passing - still_true
    assert must_fail | still_true == set(right), "every line is accounted for"


# -- a comparison of a naive layer with the given fast one reports the naive layer's shape --


def _padded_dx(backward: Callable[..., Any]) -> Callable[..., Any]:
    """conv_backward_naive that forgets to crop the padding off dx."""

    def wrong(dout: np.ndarray, cache: tuple) -> tuple:
        dx, dw, db = backward(dout, cache)
        pad = cache[3]["pad"]
        return np.pad(dx, ((0, 0), (0, 0), (pad, pad), (pad, pad))), dw, db

    return wrong


def test_fast_matches_naive_calls_the_given_layers_shape_the_expected_one() -> None:
    # check_close names its second argument the expected one. The cell used to pass the
    # given fast layer's result first, so a naive dx of the wrong shape read "shape
    # (4, 3, 9, 9) does not match the expected shape (4, 3, 11, 11)": the right shape as
    # the wrong one, under a label that starts with conv_backward_fast.
    from course.layers import conv_backward_naive

    base = _namespace("course.layers", "course.fast_layers", "course.gradient_check")
    source = named_check_cell("ConvolutionalNetworks", "fast-matches-naive")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(source, {**base, "np": np, "conv_backward_naive": _padded_dx(conv_backward_naive)})
    failed = [line for line in printed.getvalue().splitlines() if "FAILED" in line]
    assert failed == [
        f"check FAILED: conv_backward_fast dx equals the naive layer, stride {s}: shape "
        "(4, 3, 11, 11) does not match the expected shape (4, 3, 9, 9)" for s in (1, 2)]
