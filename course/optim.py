"""Update rules: how a parameter moves given its gradient.

Every rule has the same signature, ``rule(w, dw, config=None) -> (next_w, config)``:

* ``w`` is the current value of one parameter (any shape) and ``dw`` the gradient of
  the loss with respect to it, shaped like ``w``;
* ``config`` is a dict holding both the rule's *hyperparameters* (``learning_rate``,
  ``momentum``, ...) and its *state* between steps (``velocity``, ``cache``, ``m``,
  ``v``, ``t``, each shaped like ``w`` except the step counter ``t``). Missing entries
  are filled with defaults, so ``config=None`` or ``{}`` starts a fresh optimizer;
* the rule returns the new value of the parameter and the same config dict, its state
  entries replaced by their new values.

Each parameter needs its own config, because the state is shaped like the parameter:
``Solver`` keeps one copy per parameter. ``UPDATE_RULES`` maps the names ``Solver``
accepts (``update_rule="adam"``) to the functions.

Every rule checks its hyperparameters before using them (``learning_rate`` a finite
number > 0; decay rates and momentum in ``[0, 1)``; ``epsilon`` > 0 and not 0 in the
parameter's dtype, so float16 parameters are refused by the rules that use it) and
returns ``next_w`` and its state arrays in the dtype of a floating-point ``w``, whatever
the dtype of the learning rate: a float32 model stays float32. Both raise ``ValueError``.

Notation in the docstrings: ``η`` is ``config["learning_rate"]``, ``ε`` is
``config["epsilon"]``; products, squares, square roots and quotients of arrays act
elementwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course._checks import expect_dict, expect_number, expect_shape, invalid

Config = dict[str, Any]
UpdateRule = Callable[[np.ndarray, np.ndarray, Config | None], tuple[np.ndarray, Config]]


def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Vanilla stochastic gradient descent: ``w ← w − η·dw``.

    Args:
        w: parameter, any shape.
        dw: gradient of the loss with respect to ``w``, the shape of ``w``.
        config: ``learning_rate`` (default ``1e-2``). No state.

    Returns:
        ``(next_w, config)``: ``next_w`` shaped like ``w``; ``config`` with its defaults
        filled in.

    Raises:
        ValueError: if ``dw`` is not shaped like ``w`` or ``config`` is not a dict.
    """
    config = _check_inputs("sgd", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    _check_learning_rate("sgd", config)
    next_w = w - config["learning_rate"] * dw
    return _keep_dtype(next_w, w), config


def sgd_momentum(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """Stochastic gradient descent with momentum.

    A velocity ``v`` (shaped like ``w``, zeros at the start) accumulates a decaying sum
    of past steps, and the parameter moves by the velocity. With ``μ`` the momentum::

        v ← μ·v − η·dw
        w ← w + v           (using the new v)

    Args:
        w: parameter, any shape.
        dw: gradient of the loss with respect to ``w``, the shape of ``w``.
        config: hyperparameters ``learning_rate`` (default ``1e-2``) and ``momentum``
            (``μ``, default ``0.9``); state ``velocity`` (default zeros like ``w``).

    Returns:
        ``(next_w, config)``. Your code must set two names: ``next_w``, the updated
        parameter, and ``v``, the new velocity (the code after it stores ``v`` in
        ``config["velocity"]``).

    Raises:
        ValueError: if ``dw`` or ``config["velocity"]`` is not shaped like ``w``.
    """
    config = _check_inputs("sgd_momentum", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    _check_learning_rate("sgd_momentum", config)
    _check_config_number("sgd_momentum", config, "momentum", "[0, 1)")
    v = _state("sgd_momentum", config, "velocity", w)

    # BEGIN SOLUTION 1.10
    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + v
    # END SOLUTION

    config["velocity"] = _keep_dtype(v, w)
    return _keep_dtype(next_w, w), config


def rmsprop(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """RMSProp: divide each step by a running root-mean-square of recent gradients.

    A cache ``s`` (shaped like ``w``, zeros at the start) keeps an exponentially
    decaying average of squared gradients; with ``ρ`` the decay rate::

        s ← ρ·s + (1 − ρ)·dw²
        w ← w − η·dw / (√s + ε)       (using the new s)

    Args:
        w: parameter, any shape.
        dw: gradient of the loss with respect to ``w``, the shape of ``w``.
        config: hyperparameters ``learning_rate`` (default ``1e-2``), ``decay_rate``
            (``ρ``, default ``0.99``) and ``epsilon`` (``ε``, default ``1e-8``, keeps
            the division finite where the cache is zero); state ``cache`` (``s``,
            default zeros like ``w``).

    Returns:
        ``(next_w, config)``. Your code must set ``next_w`` and ``cache``, the new
        value of ``s`` (the code after it stores it in ``config["cache"]``).

    Raises:
        ValueError: if ``dw`` or ``config["cache"]`` is not shaped like ``w``.
    """
    config = _check_inputs("rmsprop", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    _check_learning_rate("rmsprop", config)
    _check_config_number("rmsprop", config, "decay_rate", "[0, 1)")
    _check_epsilon("rmsprop", config, w)
    cache = _state("rmsprop", config, "cache", w)

    # BEGIN SOLUTION 1.11
    rho = config["decay_rate"]
    cache = rho * cache + (1 - rho) * dw**2
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    # END SOLUTION

    config["cache"] = _keep_dtype(cache, w)
    return _keep_dtype(next_w, w), config


def adam(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Adam: momentum on the gradient and RMSProp-style scaling, both bias-corrected.

    Two running averages start at zero: ``m`` of the gradient and ``v`` of its square,
    with decay rates ``β1`` and ``β2``. Because they start at zero they are too small in
    the first steps; dividing by ``1 − β^t`` undoes that, where ``t`` counts the steps
    taken *including this one*. So ``t`` is incremented first (the first call uses
    ``t = 1``)::

        t ← t + 1
        m ← β1·m + (1 − β1)·dw
        v ← β2·v + (1 − β2)·dw²
        m̂ = m / (1 − β1^t)
        v̂ = v / (1 − β2^t)
        w ← w − η·m̂ / (√v̂ + ε)

    Args:
        w: parameter, any shape.
        dw: gradient of the loss with respect to ``w``, the shape of ``w``.
        config: hyperparameters ``learning_rate`` (default ``1e-3``), ``beta1``
            (default ``0.9``), ``beta2`` (default ``0.999``) and ``epsilon`` (default
            ``1e-8``); state ``m`` and ``v`` (default zeros like ``w``) and ``t``
            (an int, default ``0``).

    Returns:
        ``(next_w, config)``. Your code must set ``next_w`` and the new state ``t``,
        ``m`` and ``v`` (the code after it stores them in ``config``). ``m̂`` and ``v̂``
        are not stored.

    Raises:
        ValueError: if ``dw``, ``config["m"]`` or ``config["v"]`` is not shaped like ``w``.
    """
    config = _check_inputs("adam", w, dw, config)
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    _check_learning_rate("adam", config)
    for key in ("beta1", "beta2"):
        _check_config_number("adam", config, key, "[0, 1)")
    _check_epsilon("adam", config, w)
    m = _state("adam", config, "m", w)
    v = _state("adam", config, "v", w)
    t = config.setdefault("t", 0)

    # BEGIN SOLUTION 1.12
    beta1, beta2 = config["beta1"], config["beta2"]
    t = t + 1
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    # END SOLUTION

    config["t"], config["m"], config["v"] = t, _keep_dtype(m, w), _keep_dtype(v, w)
    return _keep_dtype(next_w, w), config


def adagrad(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """AdaGrad: divide each step by the root of the *sum* of all past squared gradients.

    Unlike RMSProp the cache ``s`` (shaped like ``w``, zeros at the start) never
    forgets, so the effective step of a coordinate only shrinks::

        s ← s + dw²
        w ← w − η·dw / (√s + ε)       (using the new s)

    Args:
        w: parameter, any shape.
        dw: gradient of the loss with respect to ``w``, the shape of ``w``.
        config: hyperparameters ``learning_rate`` (default ``1e-2``) and ``epsilon``
            (default ``1e-8``); state ``cache`` (``s``, default zeros like ``w``).

    Returns:
        ``(next_w, config)``. Your code must set ``next_w`` and ``cache``, the new
        value of ``s`` (the code after it stores it in ``config["cache"]``).

    Raises:
        ValueError: if ``dw`` or ``config["cache"]`` is not shaped like ``w``.
    """
    config = _check_inputs("adagrad", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("epsilon", 1e-8)
    _check_learning_rate("adagrad", config)
    _check_epsilon("adagrad", config, w)
    cache = _state("adagrad", config, "cache", w)

    # BEGIN SOLUTION 1.13
    cache = cache + dw**2
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    # END SOLUTION

    config["cache"] = _keep_dtype(cache, w)
    return _keep_dtype(next_w, w), config


UPDATE_RULES: dict[str, UpdateRule] = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
    "adagrad": adagrad,
}


def get_update_rule(name: str) -> UpdateRule:
    """Return the update rule called ``name``; ``ValueError`` listing the valid names."""
    try:
        return UPDATE_RULES[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in UPDATE_RULES)
        raise invalid("Solver", (
            f"update_rule must be one of {valid} or a callable "
            f"rule(w, dw, config) -> (next_w, config); got {name!r}")) from None


# ---------------------------------------------------------------------------------------
# What every rule shares: checks of its arguments (course._checks' validators), the
# state arrays, and keeping the parameter's dtype.
# ---------------------------------------------------------------------------------------


def _check_inputs(rule: str, w: np.ndarray, dw: np.ndarray, config: Config | None) -> Config:
    """Validate ``w``, ``dw`` and ``config``; return the config dict to fill in."""
    expect_shape(rule, "dw", dw, np.shape(w), "(the shape of w)")
    expect_dict(rule, "config", config, allow_none=True)
    return {} if config is None else config


def _check_config_number(rule: str, config: Config, key: str, interval: str) -> None:
    """``config[key]`` must be a finite number in ``interval`` (``"[0, 1)"``, ...)."""
    expect_number(rule, f"config[{key!r}]", config[key], interval)


def _check_learning_rate(rule: str, config: Config) -> None:
    _check_config_number(rule, config, "learning_rate", "(0, inf)")


def _check_epsilon(rule: str, config: Config, w: np.ndarray) -> None:
    """epsilon must be positive and must not round to 0 in the parameter's dtype."""
    _check_config_number(rule, config, "epsilon", "(0, inf)")
    dtype = np.asarray(w).dtype
    if dtype.kind == "f" and dtype.type(config["epsilon"]) == 0:
        raise invalid(rule, (
            f"w has dtype {dtype}, in which epsilon = {config['epsilon']:g} rounds to 0 (the "
            "division by sqrt(cache) + epsilon can then be 0/0); use float32 or float64 "
            "parameters (e.g. FullyConnectedNet(dtype=np.float32))"))


def _state(rule: str, config: Config, key: str, w: np.ndarray) -> np.ndarray:
    """Return ``config[key]``, starting it at zeros shaped like ``w`` when absent.

    A state array of another shape almost always means one config dict was shared
    between two parameters, so say that rather than fail later inside numpy.
    """
    if key not in config:  # not setdefault: that would make the zeros on every call
        config[key] = np.zeros_like(w)
    value = config[key]
    expect_shape(rule, f"config[{key!r}]", value, np.shape(w),
                 "(the shape of w; each parameter needs its own config dict)")
    return value


def _keep_dtype(value: Any, w: np.ndarray) -> Any:
    """Cast an update or state array back to a float parameter's dtype.

    A numpy float64 learning rate (``np.logspace(...)[0]``, or one decayed by a numpy
    ``lr_decay``) would otherwise promote a float32 parameter to float64, so the
    dtype after training would depend on which step was last.
    """
    dtype = np.asarray(w).dtype
    if dtype.kind == "f" and isinstance(value, np.ndarray) and value.dtype != dtype:
        return value.astype(dtype)
    return value
