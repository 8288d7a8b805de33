"""Tests of the update rules in ``course.optim``.

Expected values are worked out by hand in each test, with the arithmetic written
out, for two steps from ``w = [1, -2]`` with gradients ``[0.5, 4]`` then ``[1, -1]``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from course import optim

W0 = np.array([1.0, -2.0])
DW1 = np.array([0.5, 4.0])
DW2 = np.array([1.0, -1.0])

RULES = sorted(optim.UPDATE_RULES.items())
# The student task each rule belongs to (plain SGD is given, not a task).
TASK_OF_RULE = {"sgd_momentum": "1.10", "rmsprop": "1.11", "adam": "1.12", "adagrad": "1.13"}


def _task_params(names: list[str]) -> list:
    """One pytest param per rule, carrying the rule's task marker when it has one."""
    params = []
    for name in names:
        marks = [pytest.mark.task(TASK_OF_RULE[name])] if name in TASK_OF_RULE else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


ALL_RULES = _task_params([name for name, _ in RULES])
# For tests of the given code (input validation runs before the student's part).
RULE_NAMES = [name for name, _ in RULES]


# ---------------------------------------------------------------------------------
# sgd (given code)


def test_sgd_step_by_hand():
    next_w, config = optim.sgd(W0, DW1, {"learning_rate": 0.1})
    # w - lr*dw = [1 - 0.1*0.5, -2 - 0.1*4]
    np.testing.assert_allclose(next_w, [0.95, -2.4], rtol=1e-12)
    assert config == {"learning_rate": 0.1}


def test_sgd_default_learning_rate():
    next_w, config = optim.sgd(W0, DW1)
    assert config["learning_rate"] == 1e-2
    # [1 - 0.01*0.5, -2 - 0.01*4]
    np.testing.assert_allclose(next_w, [0.995, -2.04], rtol=1e-12)


# ---------------------------------------------------------------------------------
# sgd_momentum (task 1.10)


@pytest.mark.task("1.10")
def test_sgd_momentum_two_steps_by_hand():
    config = {"learning_rate": 0.1, "momentum": 0.9}
    w1, config = optim.sgd_momentum(W0, DW1, config)
    # v = 0.9*0 - 0.1*[0.5, 4] = [-0.05, -0.4];  w = [1 - 0.05, -2 - 0.4]
    np.testing.assert_allclose(config["velocity"], [-0.05, -0.4], rtol=1e-12)
    np.testing.assert_allclose(w1, [0.95, -2.4], rtol=1e-12)

    w2, config = optim.sgd_momentum(w1, DW2, config)
    # v = 0.9*[-0.05, -0.4] - 0.1*[1, -1] = [-0.045 - 0.1, -0.36 + 0.1] = [-0.145, -0.26]
    # w = [0.95 - 0.145, -2.4 - 0.26] = [0.805, -2.66]
    np.testing.assert_allclose(config["velocity"], [-0.145, -0.26], rtol=1e-12)
    np.testing.assert_allclose(w2, [0.805, -2.66], rtol=1e-12)


@pytest.mark.task("1.10")
def test_sgd_momentum_defaults():
    w1, config = optim.sgd_momentum(W0, DW1)
    assert config["learning_rate"] == 1e-2
    assert config["momentum"] == 0.9
    # First step from zero velocity: v = -0.01*[0.5, 4] = [-0.005, -0.04]
    np.testing.assert_allclose(config["velocity"], [-0.005, -0.04], rtol=1e-12)
    np.testing.assert_allclose(w1, [0.995, -2.04], rtol=1e-12)


@pytest.mark.task("1.10")
def test_sgd_momentum_uses_given_velocity():
    config = {"learning_rate": 0.5, "momentum": 0.5, "velocity": np.array([2.0, 0.0])}
    w1, config = optim.sgd_momentum(W0, DW2, config)
    # v = 0.5*[2, 0] - 0.5*[1, -1] = [0.5, 0.5];  w = [1.5, -1.5]
    np.testing.assert_allclose(config["velocity"], [0.5, 0.5], rtol=1e-12)
    np.testing.assert_allclose(w1, [1.5, -1.5], rtol=1e-12)


# ---------------------------------------------------------------------------------
# rmsprop (task 1.11)


@pytest.mark.task("1.11")
def test_rmsprop_two_steps_by_hand():
    eps = 1e-8
    config = {"learning_rate": 0.1, "decay_rate": 0.99, "epsilon": eps}
    w1, config = optim.rmsprop(W0, DW1, config)
    # cache = 0.99*0 + 0.01*[0.25, 16] = [0.0025, 0.16], whose roots are [0.05, 0.4]
    np.testing.assert_allclose(config["cache"], [0.0025, 0.16], rtol=1e-12)
    # w = w - 0.1*dw/(sqrt(cache) + eps): each coordinate moves by about 0.1*10 = 1
    expected_w1 = [1 - 0.1 * 0.5 / (0.05 + eps), -2 - 0.1 * 4 / (0.4 + eps)]
    # (atol: the first coordinate is 1 - 0.99999980, which cancels to about 2e-7)
    np.testing.assert_allclose(w1, expected_w1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(w1, [0.0, -3.0], atol=1e-6)

    w2, config = optim.rmsprop(w1, DW2, config)
    # cache = 0.99*[0.0025, 0.16] + 0.01*[1, 1] = [0.002475 + 0.01, 0.1584 + 0.01]
    np.testing.assert_allclose(config["cache"], [0.012475, 0.1684], rtol=1e-12)
    expected_w2 = [
        expected_w1[0] - 0.1 * 1 / (np.sqrt(0.012475) + eps),
        expected_w1[1] - 0.1 * -1 / (np.sqrt(0.1684) + eps),
    ]
    np.testing.assert_allclose(w2, expected_w2, rtol=1e-12, atol=1e-14)


@pytest.mark.task("1.11")
def test_rmsprop_defaults():
    w1, config = optim.rmsprop(W0, DW1)
    assert config["learning_rate"] == 1e-2
    assert config["decay_rate"] == 0.99
    assert config["epsilon"] == 1e-8
    np.testing.assert_allclose(config["cache"], [0.0025, 0.16], rtol=1e-12)
    # Same cache as above, lr 0.01: each coordinate moves by about 0.01*10 = 0.1
    np.testing.assert_allclose(w1, [0.9, -2.1], atol=1e-6)


# ---------------------------------------------------------------------------------
# adam (task 1.12)


@pytest.mark.task("1.12")
def test_adam_first_step_by_hand():
    eps = 1e-8
    w1, config = optim.adam(W0, DW1, {"learning_rate": 0.1})
    # t is incremented before use, so the first step uses t = 1.
    assert config["t"] == 1
    # m = 0.1*dw = [0.05, 0.4];  v = 0.001*dw^2 = [0.00025, 0.016]
    np.testing.assert_allclose(config["m"], [0.05, 0.4], rtol=1e-12)
    np.testing.assert_allclose(config["v"], [0.00025, 0.016], rtol=1e-12)
    # m_hat = m/(1 - 0.9) = dw and v_hat = v/(1 - 0.999) = dw^2, so the step is
    # lr*dw/(|dw| + eps): almost exactly lr against the sign of the gradient.
    expected = [1 - 0.1 * 0.5 / (0.5 + eps), -2 - 0.1 * 4 / (4 + eps)]
    np.testing.assert_allclose(w1, expected, rtol=1e-12)


@pytest.mark.task("1.12")
def test_adam_second_step_by_hand():
    eps = 1e-8
    w1, config = optim.adam(W0, DW1, {"learning_rate": 0.1})
    w2, config = optim.adam(w1, DW2, config)
    assert config["t"] == 2
    # m = 0.9*[0.05, 0.4] + 0.1*[1, -1] = [0.045 + 0.1, 0.36 - 0.1] = [0.145, 0.26]
    # v = 0.999*[0.00025, 0.016] + 0.001*[1, 1] = [0.00124975, 0.016984]
    np.testing.assert_allclose(config["m"], [0.145, 0.26], rtol=1e-12)
    np.testing.assert_allclose(config["v"], [0.00124975, 0.016984], rtol=1e-12)
    # bias corrections at t = 2: 1 - 0.9^2 = 0.19 and 1 - 0.999^2 = 0.001999
    m_hat = np.array([0.145, 0.26]) / 0.19
    v_hat = np.array([0.00124975, 0.016984]) / 0.001999
    np.testing.assert_allclose(w2, w1 - 0.1 * m_hat / (np.sqrt(v_hat) + eps), rtol=1e-12)


@pytest.mark.task("1.12")
def test_adam_constant_gradient_steps_by_learning_rate():
    # With a constant gradient g, m = (1 - 0.9^t)*g and v = (1 - 0.999^t)*g^2, so the
    # corrected m_hat = g and v_hat = g^2 at every t: each step is lr*g/(|g| + eps).
    # A wrong t (0, or t + 1) breaks this from the first step.
    lr, eps = 0.1, 1e-8
    w, config = W0, None
    for t in range(1, 4):
        w, config = optim.adam(w, DW1, config if config else {"learning_rate": lr})
        assert config["t"] == t
        np.testing.assert_allclose(config["m"], (1 - 0.9**t) * DW1, rtol=1e-12)
    step = lr * DW1 / (np.abs(DW1) + eps)
    np.testing.assert_allclose(w, W0 - 3 * step, rtol=1e-12)


@pytest.mark.task("1.12")
def test_adam_defaults():
    _, config = optim.adam(W0, DW1)
    assert config["learning_rate"] == 1e-3
    assert config["beta1"] == 0.9
    assert config["beta2"] == 0.999
    assert config["epsilon"] == 1e-8
    assert config["t"] == 1


@pytest.mark.task("1.12")
def test_adam_continues_from_given_t():
    # A config restored mid-run (t = 9, state matching a constant gradient g) must
    # step with t = 10: m = 0.1*g + 0.9*(1 - 0.9^9)*g = (1 - 0.9^10)*g, so m_hat = g.
    g = DW1
    config = {
        "learning_rate": 0.1, "t": 9,
        "m": (1 - 0.9**9) * g, "v": (1 - 0.999**9) * g**2,
    }
    w1, config = optim.adam(W0, g, config)
    assert config["t"] == 10
    np.testing.assert_allclose(w1, W0 - 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12)


# ---------------------------------------------------------------------------------
# adagrad (task 1.13)


@pytest.mark.task("1.13")
def test_adagrad_two_steps_by_hand():
    eps = 1e-8
    w1, config = optim.adagrad(W0, DW1, {"learning_rate": 0.1})
    # cache = 0 + [0.25, 16];  w = w - 0.1*dw/(|dw| + eps): a step of about 0.1
    np.testing.assert_allclose(config["cache"], [0.25, 16.0], rtol=1e-12)
    expected_w1 = [1 - 0.1 * 0.5 / (0.5 + eps), -2 - 0.1 * 4 / (4 + eps)]
    np.testing.assert_allclose(w1, expected_w1, rtol=1e-12)

    w2, config = optim.adagrad(w1, DW2, config)
    # cache = [0.25 + 1, 16 + 1] = [1.25, 17]: the sum never decays
    np.testing.assert_allclose(config["cache"], [1.25, 17.0], rtol=1e-12)
    expected_w2 = [
        expected_w1[0] - 0.1 * 1 / (np.sqrt(1.25) + eps),
        expected_w1[1] - 0.1 * -1 / (np.sqrt(17.0) + eps),
    ]
    np.testing.assert_allclose(w2, expected_w2, rtol=1e-12)


@pytest.mark.task("1.13")
def test_adagrad_defaults():
    w1, config = optim.adagrad(W0, DW1)
    assert config["learning_rate"] == 1e-2
    assert config["epsilon"] == 1e-8
    np.testing.assert_allclose(w1, [0.99, -2.01], atol=1e-9)


# ---------------------------------------------------------------------------------
# Every rule


@pytest.mark.parametrize("name", ALL_RULES)
def test_given_hyperparameters_are_kept(name):
    rule = optim.UPDATE_RULES[name]
    config = {"learning_rate": 0.123}
    _, returned = rule(W0, DW1, config)
    assert returned is config  # mutated in place and returned, as Solver expects
    assert returned["learning_rate"] == 0.123


@pytest.mark.parametrize("name", RULE_NAMES)
def test_shape_mismatch_is_a_value_error(name):
    rule = optim.UPDATE_RULES[name]
    with pytest.raises(ValueError, match=rf"{name}: dw must have shape \(2,\) \(the shape of w\); "
                                         r"got dw\.shape = \(3,\)"):
        rule(W0, np.ones(3))


@pytest.mark.parametrize("name", _task_params(["sgd_momentum", "rmsprop", "adam", "adagrad"]))
def test_config_shared_between_parameters_is_a_value_error(name):
    rule = optim.UPDATE_RULES[name]
    _, config = rule(W0, DW1)
    with pytest.raises(ValueError, match="each parameter needs its own config"):
        rule(np.ones((3, 2)), np.ones((3, 2)), config)


@pytest.mark.parametrize("name", RULE_NAMES)
def test_config_must_be_a_dict(name):
    with pytest.raises(ValueError, match="config must be a dict or None; got list"):
        optim.UPDATE_RULES[name](W0, DW1, [0.1])


@pytest.mark.parametrize("name", ALL_RULES)
def test_float32_stays_float32(name):
    # The kit trains in float32 by default; a rule must not silently upcast.
    w = W0.astype(np.float32)
    next_w, _ = optim.UPDATE_RULES[name](w, DW1.astype(np.float32))
    assert next_w.dtype == np.float32
    assert next_w.shape == w.shape


def test_get_update_rule():
    assert optim.get_update_rule("adam") is optim.adam
    with pytest.raises(ValueError) as info:
        optim.get_update_rule("adamw")
    message = str(info.value)
    assert "'adamw'" in message
    for name in ("sgd", "sgd_momentum", "rmsprop", "adam", "adagrad"):
        assert repr(name) in message


# A convex quadratic f(w) = sum(a*(w - c)^2)/2 with a > 0; its gradient is a*(w - c).
@st.composite
def quadratics(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    values = st.floats(-10, 10, allow_nan=False)
    w = draw(hnp.arrays(np.float64, shape, elements=values))
    c = draw(hnp.arrays(np.float64, shape, elements=values))
    a = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.5, 2)))
    return w, c, a


@pytest.mark.parametrize("name", ALL_RULES)
@given(problem=quadratics())
def test_small_steps_decrease_a_convex_quadratic(name, problem):
    w, c, a = problem
    gap = np.abs(w - c).min()
    assume(gap > 1e-3)
    # Small enough that no rule overshoots the minimum of any coordinate in 3 steps
    # (the largest first step, RMSProp's, is about 10*lr), so every term shrinks.
    lr = 1e-3 * gap
    rule = optim.UPDATE_RULES[name]

    def f(x):
        return 0.5 * np.sum(a * (x - c) ** 2)

    config = {"learning_rate": lr}
    for _ in range(3):
        next_w, config = rule(w, a * (w - c), config)
        assert f(next_w) < f(w)
        w = next_w
