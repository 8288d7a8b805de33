"""Safety suite, solutions leaking through shipped tests (issue 9, item 11).

``kit.shadows`` calls every top-level function of the shipped test files that can be
called like a task function on that task's inputs, and reports those that compute what
the solution computes. The shipped tests must have none; a planted one must be found.
"""

from __future__ import annotations

from pathlib import Path

from kit.shadows import find_shadows

REPO = Path(__file__).resolve().parents[2]

PLANTED = '''
import numpy as np


def my_relu(x):
    return np.maximum(x, 0)


def loop_affine(x, w, b):
    flat = x.reshape(x.shape[0], -1)
    out = np.zeros((x.shape[0], w.shape[1]))
    for n in range(x.shape[0]):
        out[n] = flat[n] @ w + b
    return out


def momentum_by_hand(w, dw, config=None):
    config = {} if config is None else config
    v = config.get("momentum", 0.9) * config.get("velocity", np.zeros_like(w)) \\
        - config.get("learning_rate", 1e-2) * dw
    config["velocity"] = v
    return w + v, config


def double(v):
    return 2 * v


def same(x):
    return x


def plain_sgd(w, dw, config=None):
    config = {} if config is None else config
    return w - config.get("learning_rate", 1e-2) * dw, config
'''


def test_shipped_tests_hold_no_second_implementation_of_a_task() -> None:
    shadows, _ = find_shadows(REPO)
    assert [str(s) for s in shadows] == []


def test_a_planted_second_implementation_is_found(tmp_path: Path) -> None:
    planted = tmp_path / "test_helpers.py"
    planted.write_text(PLANTED)
    shadows, _ = find_shadows(REPO, files=[planted])
    found = {(s.function, s.task_id) for s in shadows}
    assert found == {("my_relu", "1.3"), ("loop_affine", "1.1"), ("momentum_by_hand", "1.10")}
    # plain SGD agrees with momentum only on a first step from zero: not reported
    assert all(s.function != "plain_sgd" for s in shadows)
