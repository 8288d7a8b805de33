"""Tasks 4.1 to 4.4 are written, not delegated: the naive conv and pool layers must not
call the given fast layers (``course/own_work.py``), which compute the same results.

The first tests read your ``course/layers.py``, then run each naive layer in a fresh
Python with ``course.fast_layers`` replaced by a stand-in that refuses every call (as
the grader does); the others check the reader itself on small sources written here by
hand.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course import layers
from course.own_work import FORBIDDEN_MODULES, REFUSED, given_calls, stand_in_source
from course.tasks import TASKS_BY_ID

ROOT = Path(__file__).resolve().parents[1]


def _call_once(task_id: str) -> None:
    """Run the task's function on a tiny input: a stub fails here with its own message,
    so this test never passes on a stub (written code is judged by the reading below)."""
    x, conv = np.ones((1, 1, 2, 2)), {"stride": 1, "pad": 0}
    w, b, pool = np.ones((1, 1, 1, 1)), np.zeros(1), {"pool_height": 2, "pool_width": 2,
                                                       "stride": 2}
    calls = {"4.1": lambda: layers.conv_forward_naive(x, w, b, conv),
             "4.2": lambda: layers.conv_backward_naive(np.ones((1, 1, 2, 2)), (x, w, b, conv)),
             "4.3": lambda: layers.max_pool_forward_naive(x, pool),
             "4.4": lambda: layers.max_pool_backward_naive(np.ones((1, 1, 1, 1)), (x, pool))}
    calls[task_id]()


@pytest.mark.parametrize("task_id", [pytest.param(task_id, marks=pytest.mark.task(task_id))
                                     for task_id in sorted(FORBIDDEN_MODULES)])
def test_the_naive_layer_does_not_call_the_given_fast_layers(task_id: str) -> None:
    _call_once(task_id)
    task = TASKS_BY_ID[task_id]
    source = (ROOT / task.path).read_text(encoding="utf-8")
    found = given_calls(source, task.function, FORBIDDEN_MODULES[task_id])
    assert not found, (
        f"task {task_id} ({task.function}) reaches {FORBIDDEN_MODULES[task_id]}: "
        f"{', '.join(found)}. Write the loops yourself: the fast layers compute the same "
        "result, so the grader gives this task no points while it calls them.")
    ran = _run_with_refusing_stand_in(task_id)
    if REFUSED in ran.stderr:  # pytest.fail: the message alone, without a diff of stderr
        pytest.fail(f"task {task_id} ({task.function}) called the given fast layers while "
                    f"it ran:\n{_where_and_what(ran.stderr)}\nThe grader runs the naive "
                    "layers this same way, with a stand-in for the fast layers that refuses "
                    "every call.", pytrace=False)
    if ran.returncode != 0:
        pytest.fail(f"task {task_id} ({task.function}) failed in a fresh Python (with the "
                    f"stand-in for {FORBIDDEN_MODULES[task_id]}), though it ran here:\n"
                    f"{_where_and_what(ran.stderr)}", pytrace=False)


# Run in a fresh interpreter: the stand-in takes the module's place before course.layers
# is imported, so names bound at import time get it too.
_WITH_STAND_IN = """
import sys, types
import course
module = sys.argv[1]
stand_in = types.ModuleType(module)
exec(sys.argv[2], stand_in.__dict__)
sys.modules[module] = stand_in
setattr(course, module.rpartition(".")[2], stand_in)
sys.path.insert(0, sys.argv[3])
import test_own_work
test_own_work._call_once(sys.argv[4])
"""


def _run_with_refusing_stand_in(task_id: str) -> subprocess.CompletedProcess[str]:
    module = FORBIDDEN_MODULES[task_id]
    source = stand_in_source(module, getattr(importlib.import_module(module), "__all__", []))
    return subprocess.run(
        [sys.executable, "-c", _WITH_STAND_IN, module, source, str(Path(__file__).parent),
         task_id], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def _where_and_what(traceback: str) -> str:
    """The last line of ``course/`` code in a traceback, its code, and the error."""
    lines = traceback.replace(f'"{ROOT}/', '"').strip().splitlines()
    ours = [i for i, line in enumerate(lines) if line.strip().startswith('File "course/')]
    shown = lines[ours[-1]:ours[-1] + 2] if ours else []
    return "\n".join([*(line.rstrip() for line in shown), *lines[-1:]])


def _calls(body: str, header: str = "") -> list[str]:
    return given_calls(header + "\n\n\ndef conv_forward_naive(x, w, b, conv_param):\n"
                       + "".join(f"    {line}\n" for line in body.splitlines()),
                       "conv_forward_naive")


@pytest.mark.parametrize(("header", "body", "said"), [
    ("from course.fast_layers import conv_forward_fast",
     "return conv_forward_fast(x, w, b, conv_param)", ["conv_forward_fast (line 5)"]),
    ("from course.fast_layers import conv_forward_fast as quick",
     "return quick(x, w, b, conv_param)", ["quick (line 5)"]),
    ("from .fast_layers import conv_forward_fast", "return conv_forward_fast(x, w, b, conv_param)",
     ["conv_forward_fast (line 5)"]),
    ("from course import fast_layers as fl", "return fl.conv_forward_fast(x, w, b, conv_param)",
     ["fl (line 5)"]),
    ("import course.fast_layers", "return course.fast_layers.conv_forward_fast(x, w, b, 0)",
     ["course.fast_layers.conv_forward_fast (line 5)"]),
    ("import importlib", 'return importlib.import_module("course.fast_layers").x(x)',
     ["'course.fast_layers' (line 5)"]),
    ("", "from course.fast_layers import conv_forward_fast\nreturn conv_forward_fast(x, w, b, 0)",
     ["conv_forward_fast (line 6)"]),
])
def test_every_way_of_reaching_the_module_is_named_with_its_line(header: str, body: str,
                                                                 said: list[str]) -> None:
    # Lines: 1 the header, 2-3 blank, 4 the def, 5 the body's first line.
    assert _calls(body, header) == said


def test_a_helper_the_function_calls_counts_and_a_docstring_does_not() -> None:
    source = (
        "from course.fast_layers import conv_forward_fast\n"
        "\n"
        "def helper(x):\n"
        "    return conv_forward_fast(x, 1, 2, 3)\n"
        "\n"
        "def conv_forward_naive(x, w, b, conv_param):\n"
        '    """Slower than course.fast_layers, on purpose."""\n'
        "    return helper(x)\n"
        "\n"
        "def max_pool_forward_naive(x, pool_param):\n"
        "    return x\n"
    )
    assert given_calls(source, "conv_forward_naive") == ["conv_forward_fast (line 4)"]
    assert given_calls(source, "max_pool_forward_naive") == []


def test_code_that_does_not_parse_or_lacks_the_function_is_left_to_other_checks() -> None:
    assert given_calls("def conv_forward_naive(:\n", "conv_forward_naive") == []
    assert given_calls("x = 1\n", "conv_forward_naive") == []
