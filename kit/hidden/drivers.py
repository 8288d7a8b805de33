"""How a hidden check calls a task: the same small drivers on both sides of the sandbox.

A driver takes a case's specification (plain data: arrays, numbers, strings, dicts) and a
``resolve`` function that turns ``"course.layers:affine_forward"`` into the callable, and
returns what the task's code produced, as a tree of plain values. The worker runs each
driver on the submission's package; the grader runs the very same driver on the
solution's package to get the reference answer. So the two sides cannot differ in how
they call the code, only in the code they call.

Drivers pass fresh copies of every array (a function that writes into its input cannot
change a later step) and return only what can be compared: a forward pass's ``out``, not
its ``cache``, which belongs to the student (a backward driver hands it straight back).

This file is copied beside the worker into the sandbox, so it imports numpy and the
standard library only.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

Resolve = Callable[[str], Any]


def resolve(name: str) -> Any:
    """``"course.layers:affine_forward"`` or ``"pkg.mod:Class"`` -> the object, imported
    from whichever ``course`` the process has: the submission's in the worker, the
    solution's in the grader."""
    module_name, _, attribute = name.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def fresh(value: Any) -> Any:
    """A deep copy of a spec value, arrays included (dicts such as bn_param are mutated)."""
    return copy.deepcopy(value)


def as_list(result: Any) -> list[Any]:
    """A backward pass's gradients as a list (one gradient may come back bare)."""
    return list(result) if isinstance(result, tuple) else [result]


def _split(result: Any, what: str) -> tuple[Any, Any]:
    """``(out, cache)`` of a forward pass, or TypeError saying what came back instead."""
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(f"{what} must return a tuple (out, cache); it returned "
                        f"{type(result).__name__}")
    return result


@contextlib.contextmanager
def global_seed(seed: int | None) -> Iterator[None]:
    """Seed numpy's global random state for the block (code that draws with ``seed=None``
    uses it) and put the caller's state back afterwards."""
    if seed is None:
        yield
        return
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def _with_param(args: list[Any], index: int | None, param: dict | None) -> list[Any]:
    args = fresh(args)
    if index is not None:
        args[index] = param
    return args


def forward_steps(spec: dict, resolve: Resolve) -> dict:
    """Call a forward pass once per step, keeping one parameter dict across the steps
    (bn_param's mode and running averages): ``out`` and the reported entries after each."""
    forward = resolve(spec["forward"])
    index = spec.get("param_index")
    param = fresh(spec.get("param"))
    outs, states = [], []
    for step in spec["steps"]:
        if param is not None:
            param.update(fresh(step.get("set", {})))
        result = forward(*_with_param(step["args"], index, param))
        outs.append(fresh(_split(result, spec["forward"])[0]))  # later steps may reuse it
        if param is not None:
            states.append(fresh({key: param.get(key) for key in spec.get("report", [])}))
    return {"out": outs, "param": states}


def forward_backward(spec: dict, resolve: Resolve) -> dict:
    """A forward pass, then the backward pass on its own cache: ``out`` and the gradients."""
    forward, backward = resolve(spec["forward"]), resolve(spec["backward"])
    args = _with_param(spec["args"], spec.get("param_index"), fresh(spec.get("param")))
    out, cache = _split(forward(*args), spec["forward"])
    grads = backward(fresh(spec["dout"]), cache)
    return {"out": out, "grads": as_list(grads)}


def backward(spec: dict, resolve: Resolve) -> dict:
    """A backward pass on a cache the grader built (its layout is part of the API)."""
    grads = resolve(spec["backward"])(fresh(spec["dout"]), fresh(spec["cache"]))
    return {"grads": as_list(grads)}


def call(spec: dict, resolve: Resolve) -> dict:
    """One call; everything it returns (a loss function's ``(loss, dx)``)."""
    return {"result": resolve(spec["function"])(*fresh(spec["args"]))}


def update_steps(spec: dict, resolve: Resolve) -> dict:
    """Several steps of an update rule, its config (state) carried from step to step."""
    rule = resolve(spec["rule"])
    w, config = fresh(spec["w"]), fresh(spec["config"])
    weights, states = [], []
    for dw in spec["dws"]:
        result = rule(w, fresh(dw), config)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"{spec['rule']} must return (next_w, config)")
        w, config = result
        weights.append(w)
        if not isinstance(config, dict):
            raise TypeError(f"{spec['rule']} must return a config dict")
        states.append(fresh({key: config.get(key) for key in spec["state"]}))
        w = fresh(w)
    return {"w": weights, "state": states}


def dropout(spec: dict, resolve: Resolve) -> dict:
    """Dropout's forward pass in every mode the API has: seeded twice (must repeat),
    unseeded twice from one global seed and again after re-seeding, and test mode; each
    call's ``out`` and the mask its cache holds (``cache[1]``, None in test mode)."""
    forward = resolve(spec["forward"])
    x, p = spec["x"], spec["p"]
    found: dict[str, Any] = {}

    def run(name: str, param: dict) -> None:
        out, cache = _split(forward(fresh(x), param), spec["forward"])
        found[f"{name}_out"] = fresh(out)
        found[f"{name}_mask"] = fresh(cache[1]) \
            if isinstance(cache, tuple) and len(cache) == 2 else None

    with global_seed(spec["global_seed"]):
        run("seeded", {"mode": "train", "p": p, "seed": spec["seed"]})
        run("seeded_again", {"mode": "train", "p": p, "seed": spec["seed"]})
        run("global", {"mode": "train", "p": p})
        run("global_next", {"mode": "train", "p": p})
    with global_seed(spec["global_seed"]):
        run("global_again", {"mode": "train", "p": p})
        run("test", {"mode": "test", "p": p})
    return found


def _model(spec: dict, resolve: Resolve) -> Any:
    kwargs = fresh(spec["kwargs"])
    if "dtype" in kwargs:
        kwargs["dtype"] = np.dtype(kwargs["dtype"]).type
    if isinstance(kwargs.get("input_dim"), list):
        kwargs["input_dim"] = tuple(kwargs["input_dim"])
    with global_seed(spec.get("global_seed")):
        return resolve(spec["model"])(**kwargs)


def model_init(spec: dict, resolve: Resolve) -> dict:
    """Build a model twice with the same arguments (and global seed): both ``params``."""
    first = _model(spec, resolve).params
    second = _model(spec, resolve).params
    return {"params": dict(first), "again": dict(second)}


def _centring_layer(axis: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A stand-in normalisation layer: x centred over ``axis`` (0, the batch, only in train
    mode, as batchnorm's statistics; 1, the features, always, as layernorm's), then scaled
    by gamma and shifted by beta. Its gradients depend on x, gamma, beta and the mode, so
    a network that wires any of them wrongly still fails; it is not batchnorm (no
    variance), so the real layers' tasks stay out of the network's verdict."""

    def forward(x: Any, gamma: Any, beta: Any, norm_param: dict) -> tuple[Any, Any]:
        centred = axis == 1 or norm_param.get("mode", "train") == "train"
        xc = x - x.mean(axis=axis, keepdims=True) if centred else x
        return gamma * xc + beta, (xc, gamma, centred)

    def backward(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
        xc, gamma, centred = cache
        g = dout * gamma
        dx = g - g.mean(axis=axis, keepdims=True) if centred else g
        return dx, np.sum(dout * xc, axis=0), np.sum(dout, axis=0)

    return forward, backward


@contextlib.contextmanager
def stand_in_norm_layers(resolve: Resolve) -> Iterator[None]:
    """``course.layer_utils``'s "batchnorm" and "layernorm" replaced by centring stand-ins
    for the block, then put back. A network's loss (task 1.8) routes gamma, beta and the
    mode through them; judged with the real layers it would fail whenever those later
    tasks (2.1 to 2.5) are stubs or wrong, as the student's own tests avoid the same way."""
    layers = resolve("course.layer_utils:NORM_LAYERS")
    saved = dict(layers)
    layers["batchnorm"], layers["layernorm"] = _centring_layer(0), _centring_layer(1)
    try:
        yield
    finally:
        layers.clear()
        layers.update(saved)


def model_loss(spec: dict, resolve: Resolve) -> dict:
    """Build a model, give it the grader's parameters, and call ``loss`` (scores when the
    spec has no labels; else the loss and every gradient). ``spec["stand_in_norm"]``: with
    the stand-in normalisation layers of ``stand_in_norm_layers``."""
    with (stand_in_norm_layers(resolve) if spec.get("stand_in_norm")
          else contextlib.nullcontext()):
        return _model_loss(spec, resolve)


def _model_loss(spec: dict, resolve: Resolve) -> dict:
    model = _model(spec, resolve)
    model.params = {name: value.copy() for name, value in spec["params"].items()}
    result = model.loss(fresh(spec["X"]), fresh(spec.get("y")))
    if spec.get("y") is None:
        return {"scores": result}
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError("loss(X, y) must return (loss, grads)")
    loss, grads = result
    return {"loss": loss, "grads": dict(grads) if isinstance(grads, dict) else grads}


DRIVERS: dict[str, Callable[[dict, Resolve], dict]] = {
    "forward_steps": forward_steps,
    "forward_backward": forward_backward,
    "backward": backward,
    "call": call,
    "update_steps": update_steps,
    "dropout": dropout,
    "model_init": model_init,
    "model_loss": model_loss,
}


def run(driver: str, spec: dict, resolve: Resolve) -> dict:
    """Run one case's driver."""
    return DRIVERS[driver](spec, resolve)


def export_model(model: Any) -> dict:
    """A trained ``FullyConnectedNet`` as plain data for the grader to rebuild and measure
    (``kit.hidden.measure``): its class name, normalisation, dropout keep ratio, learned
    arrays and normalisation running averages. Runs where the model lives (the student's
    kernel), so the grader checks every field again."""
    dropout = getattr(model, "dropout_param", {}) or {}
    return {
        "class": type(model).__name__,
        "normalization": getattr(model, "normalization", None),
        "dropout_keep_ratio": dropout.get("p", 1.0) if getattr(model, "use_dropout", False)
        else 1.0,
        "params": dict(model.params),
        "bn_params": [{key: param.get(key) for key in ("running_mean", "running_var")}
                      for param in getattr(model, "bn_params", [])],
    }
