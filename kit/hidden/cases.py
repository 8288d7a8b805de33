"""The hidden checks' inputs: a few cases per task, drawn from a secret seed.

Every task of ``course/tasks.py`` that lives in ``course/`` has a generator here
(``GENERATORS``). A generator gets a numpy ``Generator`` seeded from the grading run's
secret seed and the task's ID, and returns ``Case`` objects: random shapes inside the
task's domain and random values, plus the named edge cases students get wrong (exact
zeros at the ReLU kink, ties in max pooling and at the hinge, pad = 0 with stride > 1,
N = 1, reg = 0 and reg > 0, test mode after train mode, several optimizer steps with
their state carried over). The edge case's name is the case's ``label``: it is what the
student's feedback shows, never the inputs.

A case is data only (``spec``): the worker receives it, ``kit.hidden.drivers`` runs it.
Backward passes whose cache layout is part of the API (affine, ReLU, dropout,
convolution, max pooling) get a cache the grader builds, so they are judged on their own;
the normalisations' caches are the student's own, so those run forward then backward.

Instructor-only: never released (``kit/`` is not), and the release's leak check treats
its lines as solution text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LAYERS = "course.layers"
OPTIM = "course.optim"
FC_NET = "course.classifiers.fc_net:FullyConnectedNet"
CNN = "course.classifiers.cnn:ThreeLayerConvNet"
BN_STATE = ["running_mean", "running_var"]


@dataclass(frozen=True)
class Case:
    """One call (or short sequence of calls) of a task's code, and how to judge it.

    ``judge`` is ``"match"`` (every output equals the solution's, to the tolerance),
    ``"dropout"`` (properties of a random mask) or ``"init"`` (names, shapes, dtypes and
    the statistics of random initial weights); ``options`` are the judge's parameters.
    """

    task: str
    label: str
    driver: str
    spec: dict[str, Any]
    judge: str = "match"
    options: dict[str, Any] = field(default_factory=dict)


def layer(name: str) -> str:
    return f"{LAYERS}:{name}"


# ---------------------------------------------------------------------------------------
# Random inputs
# ---------------------------------------------------------------------------------------

def normal(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return scale * rng.standard_normal(shape)


def with_zeros(rng: np.random.Generator, x: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """``x`` with about ``fraction`` of its entries set to exactly 0 (at least one)."""
    x = x.copy()
    flat = x.reshape(-1)
    count = max(1, int(fraction * flat.size))
    flat[rng.choice(flat.size, size=count, replace=False)] = 0.0
    return x


def batch_shape(rng: np.random.Generator, n: int, dims: int) -> tuple[int, ...]:
    """``(n, d1, ..., d_dims)``, each d at least 2: a size of 1 hides mistakes that swap
    or drop that axis (the edge cases with size 1 are cases of their own)."""
    return (n, *(int(d) for d in rng.integers(2, 5, size=dims)))


def labels(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    return rng.integers(classes, size=n).astype(np.int64)


# ---------------------------------------------------------------------------------------
# Notebook 1: affine, ReLU, losses, the fully connected net, update rules
# ---------------------------------------------------------------------------------------

def _affine_inputs(rng: np.random.Generator, n: int, dims: int) -> list[np.ndarray]:
    shape = batch_shape(rng, n, dims)
    d, m = int(np.prod(shape[1:])), int(rng.integers(2, 7))
    return [normal(rng, *shape), normal(rng, d, m), normal(rng, m)]


AFFINE_SHAPES = (("random shapes", 3, 1), ("N = 1", 1, 2), ("3-d examples (N, C, H, W)", 4, 3))


def affine_forward_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("1.1", label, "forward_steps",
                 {"forward": layer("affine_forward"),
                  "steps": [{"args": _affine_inputs(rng, n + int(rng.integers(0, 3)) * (n > 1),
                                                    dims)}]})
            for label, n, dims in AFFINE_SHAPES]


def affine_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, n, dims in AFFINE_SHAPES:
        x, w, b = _affine_inputs(rng, n + int(rng.integers(0, 3)) * (n > 1), dims)
        cases.append(Case("1.2", label, "backward",
                          {"backward": layer("affine_backward"), "cache": (x, w, b),
                           "dout": normal(rng, x.shape[0], w.shape[1])},
                          options={"names": {"grads": ["dx", "dw", "db"]}}))
    return cases


def _relu_inputs(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    return [
        ("random values", normal(rng, int(rng.integers(2, 6)), int(rng.integers(2, 7)))),
        ("zero input (the ReLU kink)", with_zeros(rng, normal(rng, 5, 6), 0.3)),
        ("all inputs negative", -np.abs(normal(rng, 3, 4)) - 0.1),
        ("N = 1, 3-d examples", with_zeros(rng, normal(rng, 1, 2, 3, 2), 0.2)),
    ]


def relu_forward_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("1.3", label, "forward_steps",
                 {"forward": layer("relu_forward"), "steps": [{"args": [x]}]})
            for label, x in _relu_inputs(rng)]


def relu_backward_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("1.4", label, "backward",
                 {"backward": layer("relu_backward"), "cache": x,
                  "dout": normal(rng, *x.shape)},
                 options={"names": {"grads": ["dx"]}})
            for label, x in _relu_inputs(rng)]


def _score_cases(rng: np.random.Generator, hinge: bool) -> list[tuple[str, np.ndarray, np.ndarray]]:
    n, c = int(rng.integers(3, 9)), int(rng.integers(3, 11))
    found = [
        ("random scores", normal(rng, n, c, scale=2.0), labels(rng, n, c)),
        ("N = 1", normal(rng, 1, c), labels(rng, 1, c)),
        ("C = 2", normal(rng, n, 2), labels(rng, n, 2)),
        ("large scores (about 1e3)", 1000.0 + normal(rng, n, c, scale=30.0), labels(rng, n, c)),
    ]
    if hinge:
        # Integer scores, some a margin of exactly 0 (the kink) or exactly 1 below the
        # correct class's score.
        y = labels(rng, n, c)
        x = rng.integers(-3, 4, size=(n, c)).astype(np.float64)
        rows = np.arange(n)
        x[rows, (y + 1) % c] = x[rows, y] - 1.0
        found.append(("tie: margins of exactly 0 (the hinge's kink)", x, y))
        found.append(("every margin negative (no loss)",
                      np.where(np.arange(c) == y[:, None], 10.0, normal(rng, n, c)), y))
    else:
        found.append(("tie: equal scores in every row", np.full((n, c), float(rng.normal())),
                      labels(rng, n, c)))
        # Stability is per row: each row's own maximum must be the one subtracted.
        rows = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[:, None]
        found.append(("rows about 2e3 apart (each row needs its own maximum)",
                      1000.0 * rows + normal(rng, n, c), labels(rng, n, c)))
        spread = normal(rng, n, c)
        spread[:, 0] += 800.0
        spread[:, -1] -= 800.0
        found.append(("scores about 1.6e3 apart within each row", spread, labels(rng, n, c)))
    return found


def softmax_loss_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("1.5", label, "call", {"function": layer("softmax_loss"), "args": [x, y]},
                 options={"names": {"result": ["loss", "dx"]}})
            for label, x, y in _score_cases(rng, hinge=False)]


def svm_loss_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("1.6", label, "call", {"function": layer("svm_loss"), "args": [x, y]},
                 options={"names": {"result": ["loss", "dx"]}})
            for label, x, y in _score_cases(rng, hinge=True)]


def fc_layer_dims(kwargs: dict[str, Any]) -> list[int]:
    return [kwargs["input_dim"], *kwargs["hidden_dims"], kwargs["num_classes"]]


def weight_std(scale: Any, fan_in: int) -> float:
    """The initial weights' standard deviation the net's docstring promises."""
    if scale == "he":
        return float(np.sqrt(2.0 / fan_in))
    if scale == "xavier":
        return float(np.sqrt(1.0 / fan_in))
    return float(scale)


def fc_init_cases(rng: np.random.Generator) -> list[Case]:
    plans = [
        ("a fixed weight scale, seeded", float(rng.uniform(0.01, 0.2)), None, 0),
        ("weight_scale = 'he', batchnorm", "he", "batchnorm", None),
        ("weight_scale = 'xavier', layernorm, seed None (numpy's global state)",
         "xavier", "layernorm", None),
    ]
    cases = []
    for label, scale, norm, seed in plans:
        hidden = [int(h) for h in rng.integers(40, 90, size=int(rng.integers(1, 4)))]
        kwargs = {"hidden_dims": hidden, "input_dim": int(rng.integers(60, 120)),
                  "num_classes": int(rng.integers(30, 60)), "weight_scale": scale,
                  "normalization": norm, "dtype": str(rng.choice(["float32", "float64"])),
                  "seed": seed if seed is None else int(rng.integers(2**31))}
        dims = fc_layer_dims(kwargs)
        stds = {f"W{i}": weight_std(scale, dims[i - 1]) for i in range(1, len(dims))}
        cases.append(Case("1.7", label, "model_init",
                          {"model": FC_NET, "kwargs": kwargs,
                           "global_seed": int(rng.integers(2**31))},
                          judge="init", options={"stds": stds, "dtype": kwargs["dtype"]}))
    return cases


def random_params(rng: np.random.Generator, shapes: dict[str, tuple[int, ...]],
                  scale: float) -> dict[str, np.ndarray]:
    """Parameters for a loss check: weights and biases random, gammas near 1."""
    params = {}
    for name, shape in shapes.items():
        centre = 1.0 if name.startswith("gamma") else 0.0
        size = 0.3 if name.startswith(("gamma", "beta", "b")) else scale
        params[name] = centre + normal(rng, *shape, scale=size)
    return params


def fc_param_shapes(kwargs: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    dims, shapes = fc_layer_dims(kwargs), {}
    for i in range(1, len(dims)):
        shapes[f"W{i}"], shapes[f"b{i}"] = (dims[i - 1], dims[i]), (dims[i],)
        if kwargs["normalization"] and i < len(dims) - 1:
            shapes[f"gamma{i}"] = shapes[f"beta{i}"] = (dims[i],)
    return shapes


def fc_loss_cases(rng: np.random.Generator) -> list[Case]:
    plans = [
        ("reg = 0", 0.0, None, 4, True),
        ("reg > 0", float(rng.uniform(0.5, 3.0)), None, 5, True),
        ("N = 1, reg > 0", float(rng.uniform(0.1, 1.0)), None, 1, True),
        ("batchnorm, reg > 0 (train mode)", float(rng.uniform(0.1, 1.0)), "batchnorm", 6, True),
        ("layernorm (train mode)", 0.0, "layernorm", 5, True),
        ("class scores (y = None)", float(rng.uniform(0.1, 1.0)), None, 4, False),
    ]
    cases = []
    for label, reg, norm, n, with_labels in plans:
        example = batch_shape(rng, n, int(rng.integers(1, 3)))
        kwargs = {"hidden_dims": [int(h) for h in rng.integers(3, 9, size=int(rng.integers(1, 4)))],
                  "input_dim": int(np.prod(example[1:])), "num_classes": int(rng.integers(2, 8)),
                  "reg": reg, "normalization": norm, "dtype": "float64", "seed": 0}
        spec = {"model": FC_NET, "kwargs": kwargs,
                "params": random_params(rng, fc_param_shapes(kwargs), 0.5),
                "X": normal(rng, *example),
                "y": labels(rng, n, kwargs["num_classes"]) if with_labels else None}
        cases.append(Case("1.8", label, "model_loss", spec))
    return cases


# Update rules: (task, rule, state keys, hyperparameter ranges)
RULES: dict[str, tuple[str, list[str], dict[str, tuple[float, float]]]] = {
    "1.10": ("sgd_momentum", ["velocity"], {"learning_rate": (1e-3, 0.5), "momentum": (0.5, 0.99)}),
    "1.11": ("rmsprop", ["cache"], {"learning_rate": (1e-3, 0.5), "decay_rate": (0.5, 0.999),
                                    "epsilon": (1e-8, 1e-2)}),
    "1.12": ("adam", ["m", "v", "t"], {"learning_rate": (1e-3, 0.5), "beta1": (0.5, 0.95),
                                       "beta2": (0.8, 0.9999), "epsilon": (1e-8, 1e-2)}),
    "1.13": ("adagrad", ["cache"], {"learning_rate": (1e-3, 0.5), "epsilon": (1e-8, 1e-2)}),
}


def _update_case(rng: np.random.Generator, task: str, label: str, config: Any,
                 shape: tuple[int, ...], steps: int) -> Case:
    rule, state, _ = RULES[task]
    return Case(task, label, "update_steps",
                {"rule": f"{OPTIM}:{rule}", "w": normal(rng, *shape), "config": config,
                 "dws": [normal(rng, *shape) for _ in range(steps)], "state": state})


def update_rule_cases(task: str) -> Callable[[np.random.Generator], list[Case]]:
    def generate(rng: np.random.Generator) -> list[Case]:
        _, state, ranges = RULES[task]
        hyper = {key: float(rng.uniform(low, high)) for key, (low, high) in ranges.items()}
        given = dict(hyper)
        for key in state:  # state carried in from earlier steps
            given[key] = int(rng.integers(1, 20)) if key == "t" else \
                np.abs(normal(rng, 3, 4)) if key in ("cache", "v") else normal(rng, 3, 4)
        return [
            _update_case(rng, task, "several steps, random hyperparameters", hyper, (3, 4), 4),
            _update_case(rng, task, "config None (the defaults)", None, (5,), 3),
            _update_case(rng, task, "state from earlier steps in config", given, (3, 4), 3),
        ]
    return generate


# ---------------------------------------------------------------------------------------
# Notebook 2: batch and layer normalisation
# ---------------------------------------------------------------------------------------

def norm_data(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Columns with their own means and spreads, one of them tiny (so eps matters)."""
    spread = rng.uniform(0.5, 3.0, size=d)
    spread[0] = 1e-3
    return rng.uniform(-2, 2, size=d) + spread * rng.standard_normal((n, d))


BN_MODES = ("train", "train", "train", "test", "test")  # test mode after train mode


def running_average_case(task: str, forward: str, label: str, param: dict[str, Any],
                         data: Callable[[], np.ndarray], channels: int,
                         rng: np.random.Generator) -> Case:
    """Three train-mode calls, then two test-mode calls, with one bn_param between them:
    every ``out`` and the running averages after each call."""
    gamma, beta = 1.0 + normal(rng, channels, scale=0.3), normal(rng, channels, scale=0.3)
    steps = [{"args": [data(), gamma, beta, None], "set": {"mode": mode}} for mode in BN_MODES]
    return Case(task, label, "forward_steps",
                {"forward": layer(forward), "param_index": 3, "param": param, "steps": steps,
                 "report": BN_STATE}, options={"steps": list(BN_MODES)})


def batchnorm_forward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, n, param in [
        ("3 train steps then 2 test steps, running averages", 6,
         {"momentum": float(rng.uniform(0.5, 0.95)), "eps": float(rng.uniform(1e-4, 1e-2))}),
        ("default eps and momentum", 5, {}),
        ("N = 1 in train mode", 1, {"eps": float(rng.uniform(1e-4, 1e-2))}),
    ]:
        d = int(rng.integers(2, 7))
        cases.append(running_average_case("2.1", "batchnorm_forward", label, param,
                                          lambda n=n, d=d: norm_data(rng, n, d), d, rng))
    return cases


def _norm_backward_cases(rng: np.random.Generator, task: str, forward: str, backward: str,
                         param: dict[str, Any]) -> list[Case]:
    cases = []
    for label, n in (("random values", int(rng.integers(3, 8))), ("N = 2", 2)):
        d = int(rng.integers(2, 7))
        args = [norm_data(rng, n, d), 1.0 + normal(rng, d, scale=0.3),
                normal(rng, d, scale=0.3), None]
        cases.append(Case(task, label, "forward_backward",
                          {"forward": layer(forward), "backward": layer(backward),
                           "args": args, "param_index": 3,
                           "param": dict(param, eps=float(rng.uniform(1e-5, 1e-2))),
                           "dout": normal(rng, n, d)},
                          options={"names": {"grads": ["dx", "dgamma", "dbeta"]}}))
    return cases


def batchnorm_backward_cases(rng: np.random.Generator) -> list[Case]:
    return _norm_backward_cases(rng, "2.2", "batchnorm_forward", "batchnorm_backward",
                                {"mode": "train"})


def batchnorm_backward_alt_cases(rng: np.random.Generator) -> list[Case]:
    return _norm_backward_cases(rng, "2.3", "batchnorm_forward", "batchnorm_backward_alt",
                                {"mode": "train"})


def layernorm_forward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, n, param in [
        ("random values", int(rng.integers(2, 7)), {"eps": float(rng.uniform(1e-4, 1e-2))}),
        ("default eps, a mode in ln_param (ignored)", 4, {"mode": "test"}),
        ("N = 1", 1, {}),
    ]:
        d = int(rng.integers(2, 8))
        x = norm_data(rng, d, n).T  # rows with their own spreads, one tiny
        args = [np.ascontiguousarray(x), 1.0 + normal(rng, d, scale=0.3),
                normal(rng, d, scale=0.3), None]
        cases.append(Case("2.4", label, "forward_steps",
                          {"forward": layer("layernorm_forward"), "param_index": 3,
                           "param": param, "steps": [{"args": args}]}))
    return cases


def layernorm_backward_cases(rng: np.random.Generator) -> list[Case]:
    return _norm_backward_cases(rng, "2.5", "layernorm_forward", "layernorm_backward", {})


# ---------------------------------------------------------------------------------------
# Notebook 3: dropout
# ---------------------------------------------------------------------------------------

def dropout_forward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, p in (("random keep probability", float(rng.uniform(0.2, 0.9))),
                     ("keep probability near 1", float(rng.uniform(0.9, 0.99))),
                     ("p = 1 (keep everything)", 1.0)):
        shape = (int(rng.integers(40, 60)), int(rng.integers(50, 70)))
        cases.append(Case("3.1", label, "dropout",
                          {"forward": layer("dropout_forward"), "p": p,
                           "x": with_zeros(rng, normal(rng, *shape), 0.05),
                           "seed": int(rng.integers(2**31)),
                           "global_seed": int(rng.integers(2**31))},
                          judge="dropout", options={"p": p}))
    return cases


def dropout_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, mode in (("train mode", "train"), ("test mode", "test")):
        p = float(rng.uniform(0.2, 0.9))
        shape = (int(rng.integers(3, 8)), int(rng.integers(3, 8)))
        mask = ((rng.random(shape) < p) / p) if mode == "train" else None
        cases.append(Case("3.2", label, "backward",
                          {"backward": layer("dropout_backward"),
                           "cache": ({"mode": mode, "p": p}, mask),
                           "dout": normal(rng, *shape)},
                          options={"names": {"grads": ["dx"]}}))
    return cases


# ---------------------------------------------------------------------------------------
# Notebook 4: convolution, pooling, the conv net, spatial normalisation
# ---------------------------------------------------------------------------------------

def conv_geometry(rng: np.random.Generator, stride: int, pad: int, kernel: tuple[int, int],
                  n: int) -> tuple[tuple[int, ...], tuple[int, ...], dict[str, int]]:
    """x and w shapes for which the output size is whole: H + 2 pad - HH divisible by the
    stride (H and W drawn separately, so they differ and are often odd)."""
    hh, ww = kernel
    sizes = []
    for k in (hh, ww):
        size = k - 2 * pad + stride * int(rng.integers(1, 4))
        while size < 1:  # a big pad: step up to the first size that is an input
            size += stride
        sizes.append(size)
    c, f = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    return (n, c, *sizes), (f, c, hh, ww), {"stride": stride, "pad": pad}


def conv_plans(rng: np.random.Generator) -> list[tuple[str, int, int, tuple[int, int], int]]:
    return [
        ("random geometry", int(rng.integers(1, 3)), int(rng.integers(1, 3)),
         (int(rng.integers(2, 4)), int(rng.integers(2, 4))), 2),
        ("pad = 0 and stride 2", 2, 0, (3, 2), 2),
        ("pad = 2, stride 3", 3, 2, (3, 3), 1),
        ("1x1 filters, pad = 0, N = 1", 1, 0, (1, 1), 1),
        ("filter as large as the padded input", 1, 1, (4, 5), 2),
    ]


def _conv_inputs(rng: np.random.Generator, plan: tuple) -> list[Any]:
    _, stride, pad, kernel, n = plan
    x_shape, w_shape, conv_param = conv_geometry(rng, stride, pad, kernel, n)
    if plan[0].startswith("filter as large"):
        x_shape = (n, w_shape[1], kernel[0] - 2 * pad, kernel[1] - 2 * pad)
    return [normal(rng, *x_shape), normal(rng, *w_shape), normal(rng, w_shape[0]), conv_param]


def conv_out_shape(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                   conv_param: dict[str, int]) -> tuple[int, int, int, int]:
    s, p = conv_param["stride"], conv_param["pad"]
    return (x_shape[0], w_shape[0], 1 + (x_shape[2] + 2 * p - w_shape[2]) // s,
            1 + (x_shape[3] + 2 * p - w_shape[3]) // s)


def conv_forward_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("4.1", plan[0], "forward_steps",
                 {"forward": layer("conv_forward_naive"),
                  "steps": [{"args": _conv_inputs(rng, plan)}]})
            for plan in conv_plans(rng)]


def conv_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for plan in conv_plans(rng):
        x, w, b, conv_param = _conv_inputs(rng, plan)
        dout = normal(rng, *conv_out_shape(x.shape, w.shape, conv_param))
        cases.append(Case("4.2", plan[0], "backward",
                          {"backward": layer("conv_backward_naive"),
                           "cache": (x, w, b, conv_param), "dout": dout},
                          options={"names": {"grads": ["dx", "dw", "db"]}}))
    return cases


def pool_plans(rng: np.random.Generator) -> list[tuple[str, int, int, int, bool]]:
    """(label, pool height, pool width, stride, ties)."""
    return [
        ("random geometry", int(rng.integers(2, 4)), int(rng.integers(2, 4)),
         int(rng.integers(1, 3)), False),
        ("ties in the windows", 2, 2, 2, True),
        ("overlapping windows (stride < pool size), ties", 3, 2, 1, True),
        ("stride larger than the pool, N = 1", 2, 1, 3, False),
        ("1x1 pool", 1, 1, 1, False),
    ]


def _pool_inputs(rng: np.random.Generator, plan: tuple) -> tuple[np.ndarray, dict[str, int]]:
    label, ph, pw, stride, ties = plan
    n = 1 if "N = 1" in label else 2
    h = ph + stride * int(rng.integers(1, 4))
    w = pw + stride * int(rng.integers(1, 4))
    shape = (n, int(rng.integers(2, 4)), h, w)
    x = rng.integers(-2, 3, size=shape).astype(np.float64) if ties else normal(rng, *shape)
    return x, {"pool_height": ph, "pool_width": pw, "stride": stride}


def pool_forward_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("4.3", plan[0], "forward_steps",
                 {"forward": layer("max_pool_forward_naive"),
                  "steps": [{"args": list(_pool_inputs(rng, plan))}]})
            for plan in pool_plans(rng)]


def pool_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for plan in pool_plans(rng):
        x, pool_param = _pool_inputs(rng, plan)
        n, c, h, w = x.shape
        stride = pool_param["stride"]
        out = (n, c, 1 + (h - pool_param["pool_height"]) // stride,
               1 + (w - pool_param["pool_width"]) // stride)
        cases.append(Case("4.4", plan[0], "backward",
                          {"backward": layer("max_pool_backward_naive"),
                           "cache": (x, pool_param), "dout": normal(rng, *out)},
                          options={"names": {"grads": ["dx"]}}))
    return cases


def _cnn_kwargs(rng: np.random.Generator, filter_size: int, reg: float,
                dtype: str = "float64") -> dict[str, Any]:
    return {"input_dim": [int(rng.integers(2, 4)), 2 * int(rng.integers(2, 4)),
                          2 * int(rng.integers(2, 4))],
            "num_filters": int(rng.integers(2, 5)), "filter_size": filter_size,
            "hidden_dim": int(rng.integers(3, 9)), "num_classes": int(rng.integers(2, 7)),
            "weight_scale": float(rng.uniform(0.05, 0.5)), "reg": reg, "dtype": dtype,
            "seed": 0}


def cnn_param_shapes(kwargs: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    c, h, w = kwargs["input_dim"]
    f, k, hidden = kwargs["num_filters"], kwargs["filter_size"], kwargs["hidden_dim"]
    return {"W1": (f, c, k, k), "b1": (f,), "W2": (f * (h // 2) * (w // 2), hidden),
            "b2": (hidden,), "W3": (hidden, kwargs["num_classes"]),
            "b3": (kwargs["num_classes"],)}


def cnn_init_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, size, seed in (("seeded", int(rng.choice([3, 5])), 0),
                              ("seed None (numpy's global state), 1x1 filters", 1, None)):
        kwargs = {"input_dim": [int(rng.integers(2, 4)), 2 * int(rng.integers(3, 6)),
                                2 * int(rng.integers(3, 6))],
                  "num_filters": int(rng.integers(6, 12)), "filter_size": size,
                  "hidden_dim": int(rng.integers(40, 80)), "num_classes": int(rng.integers(20, 40)),
                  "weight_scale": float(rng.uniform(1e-3, 0.2)),
                  "dtype": str(rng.choice(["float32", "float64"])),
                  "seed": seed if seed is None else int(rng.integers(2**31))}
        stds = {name: kwargs["weight_scale"] for name in ("W1", "W2", "W3")}
        cases.append(Case("4.5", label, "model_init",
                          {"model": CNN, "kwargs": kwargs,
                           "global_seed": int(rng.integers(2**31))},
                          judge="init", options={"stds": stds, "dtype": kwargs["dtype"]}))
    return cases


def cnn_loss_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, size, reg, n, with_labels in (
        ("reg = 0", 3, 0.0, 3, True),
        ("reg > 0, 5x5 filters", 5, float(rng.uniform(0.1, 2.0)), 2, True),
        ("N = 1, 1x1 filters, reg > 0", 1, float(rng.uniform(0.1, 2.0)), 1, True),
        ("class scores (y = None)", 3, 0.5, 2, False),
    ):
        kwargs = _cnn_kwargs(rng, size, reg)
        spec = {"model": CNN, "kwargs": kwargs,
                "params": random_params(rng, cnn_param_shapes(kwargs), 0.5),
                "X": normal(rng, n, *kwargs["input_dim"]),
                "y": labels(rng, n, kwargs["num_classes"]) if with_labels else None}
        cases.append(Case("4.6", label, "model_loss", spec))
    return cases


def spatial_data(rng: np.random.Generator, n: int, c: int, h: int, w: int) -> np.ndarray:
    """Channels with their own means and spreads, one of them tiny (so eps matters)."""
    spread = rng.uniform(0.5, 3.0, size=c)
    spread[0] = 1e-3
    centre = rng.uniform(-2, 2, size=c)
    return centre[None, :, None, None] + spread[None, :, None, None] * \
        rng.standard_normal((n, c, h, w))


def spatial_batchnorm_forward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, n, param in (
        ("3 train steps then 2 test steps, running averages", 2,
         {"momentum": float(rng.uniform(0.5, 0.95)), "eps": float(rng.uniform(1e-4, 1e-2))}),
        ("N = 1, default eps and momentum", 1, {}),
    ):
        c, h, w = (int(v) for v in rng.integers(2, 5, size=3))
        cases.append(running_average_case(
            "4.7", "spatial_batchnorm_forward", label, param,
            lambda n=n, c=c, h=h, w=w: spatial_data(rng, n, c, h, w), c, rng))
    return cases


def spatial_batchnorm_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label in ("random values", "one pixel per image (H = W = 1)"):
        n, c = int(rng.integers(2, 4)), int(rng.integers(2, 5))
        h, w = (1, 1) if label.startswith("one pixel") else \
            (int(rng.integers(2, 5)), int(rng.integers(2, 5)))
        args = [spatial_data(rng, n, c, h, w), 1.0 + normal(rng, c, scale=0.3),
                normal(rng, c, scale=0.3), None]
        cases.append(Case("4.8", label, "forward_backward",
                          {"forward": layer("spatial_batchnorm_forward"),
                           "backward": layer("spatial_batchnorm_backward"), "args": args,
                           "param_index": 3,
                           "param": {"mode": "train", "eps": float(rng.uniform(1e-5, 1e-2))},
                           "dout": normal(rng, n, c, h, w)},
                          options={"names": {"grads": ["dx", "dgamma", "dbeta"]}}))
    return cases


def _groupnorm_args(rng: np.random.Generator, groups: str) -> list[Any]:
    g = int(rng.integers(2, 4))
    per_group = int(rng.integers(2, 4))
    if groups == "G = 1":
        g = 1
    elif groups == "G = C":
        per_group = 1
    c = g * per_group
    n, h, w = int(rng.integers(2, 4)), int(rng.integers(2, 4)), int(rng.integers(2, 5))
    return [spatial_data(rng, n, c, h, w), 1.0 + normal(rng, 1, c, 1, 1, scale=0.3),
            normal(rng, 1, c, 1, 1, scale=0.3), g,
            {"eps": float(rng.uniform(1e-5, 1e-2))}]


GROUP_PLANS = ("random groups", "G = 1 (layer normalisation)", "G = C (instance normalisation)")


def groupnorm_forward_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("4.9", label, "forward_steps",
                 {"forward": layer("spatial_groupnorm_forward"),
                  "steps": [{"args": _groupnorm_args(rng, label.split(" (")[0])}]})
            for label in GROUP_PLANS]


def groupnorm_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label in GROUP_PLANS:
        args = _groupnorm_args(rng, label.split(" (")[0])
        cases.append(Case("4.10", label, "forward_backward",
                          {"forward": layer("spatial_groupnorm_forward"),
                           "backward": layer("spatial_groupnorm_backward"), "args": args,
                           "dout": normal(rng, *args[0].shape)},
                          options={"names": {"grads": ["dx", "dgamma", "dbeta"]}}))
    return cases


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[np.random.Generator], list[Case]]] = {
    "1.1": affine_forward_cases,
    "1.2": affine_backward_cases,
    "1.3": relu_forward_cases,
    "1.4": relu_backward_cases,
    "1.5": softmax_loss_cases,
    "1.6": svm_loss_cases,
    "1.7": fc_init_cases,
    "1.8": fc_loss_cases,
    **{task: update_rule_cases(task) for task in RULES},
    "2.1": batchnorm_forward_cases,
    "2.2": batchnorm_backward_cases,
    "2.3": batchnorm_backward_alt_cases,
    "2.4": layernorm_forward_cases,
    "2.5": layernorm_backward_cases,
    "3.1": dropout_forward_cases,
    "3.2": dropout_backward_cases,
    "4.1": conv_forward_cases,
    "4.2": conv_backward_cases,
    "4.3": pool_forward_cases,
    "4.4": pool_backward_cases,
    "4.5": cnn_init_cases,
    "4.6": cnn_loss_cases,
    "4.7": spatial_batchnorm_forward_cases,
    "4.8": spatial_batchnorm_backward_cases,
    "4.9": groupnorm_forward_cases,
    "4.10": groupnorm_backward_cases,
}


def task_rng(seed: int, task: str) -> np.random.Generator:
    """The task's own generator: adding or changing one task's cases leaves the others'."""
    return np.random.default_rng([seed, *(int(part) for part in task.split("."))])


def generate(seed: int, tasks: Iterable[str] | None = None) -> list[Case]:
    """Every case of the chosen tasks (default: all), in task-table order."""
    chosen = list(GENERATORS) if tasks is None else [t for t in GENERATORS if t in set(tasks)]
    return [case for task in chosen for case in GENERATORS[task](task_rng(seed, task))]
