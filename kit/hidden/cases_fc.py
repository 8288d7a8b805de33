"""Hidden-check cases of notebook 1: affine, ReLU, the losses, the fully connected net
and the update rules (see ``kit.hidden.cases``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from kit.hidden.case import (
    FC_NET,
    OPTIM,
    Case,
    batch_shape,
    labels,
    layer,
    normal,
    random_params,
    with_zeros,
)


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
        # With stand-in normalisation layers (see drivers.stand_in_norm_layers): these
        # judge how the loss wires gamma, beta and the mode, not tasks 2.1 to 2.5.
        ("batchnorm wiring, reg > 0 (train mode)", float(rng.uniform(0.1, 1.0)), "batchnorm",
         6, True),
        ("layernorm wiring (train mode)", 0.0, "layernorm", 5, True),
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
                "y": labels(rng, n, kwargs["num_classes"]) if with_labels else None,
                "stand_in_norm": norm is not None}
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


