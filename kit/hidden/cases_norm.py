"""Hidden-check cases of notebooks 2 and 3: batch and layer normalisation, dropout (see
``kit.hidden.cases``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kit.hidden.case import (
    Case,
    layer,
    normal,
    running_average_case,
    with_zeros,
)


def norm_data(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Columns with their own means and spreads, one of them tiny (so eps matters)."""
    spread = rng.uniform(0.5, 3.0, size=d)
    spread[0] = 1e-3
    return rng.uniform(-2, 2, size=d) + spread * rng.standard_normal((n, d))


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


