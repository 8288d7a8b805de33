"""What a hidden check is (``Case``) and the random inputs its generators share.

The generators themselves live beside this module, one file per part of the course
(``cases_fc``, ``cases_norm``, ``cases_conv``); ``kit.hidden.cases`` holds the table.
Instructor-only, like all of ``kit/``.
"""

from __future__ import annotations

from collections.abc import Callable
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


def random_params(rng: np.random.Generator, shapes: dict[str, tuple[int, ...]],
                  scale: float) -> dict[str, np.ndarray]:
    """Parameters for a loss check: weights and biases random, gammas near 1."""
    params = {}
    for name, shape in shapes.items():
        centre = 1.0 if name.startswith("gamma") else 0.0
        size = 0.3 if name.startswith(("gamma", "beta", "b")) else scale
        params[name] = centre + normal(rng, *shape, scale=size)
    return params


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
