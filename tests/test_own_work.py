"""Tasks 4.1 to 4.4 are written, not delegated: the naive conv and pool layers must not
call the given fast layers (``course/own_work.py``), which compute the same results; nor
may the two batchnorm backward passes (2.2 and 2.3) call each other.

The first tests read your ``course/layers.py``, then run each naive layer in a fresh
Python with ``course.fast_layers`` replaced by a stand-in that refuses every call (as
the grader does); the batchnorm ones run each backward pass on a copy of your
``course/`` in which the other one refuses to run; the others check the reader and the
rewriting themselves on small sources written here by hand.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course import layers
from course.own_work import (
    FORBIDDEN_FUNCTIONS,
    FORBIDDEN_MODULES,
    REFUSED,
    REFUSED_FUNCTION,
    given_calls,
    stand_in_source,
    without_function,
)
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
             "4.4": lambda: layers.max_pool_backward_naive(np.ones((1, 1, 1, 1)), (x, pool)),
             "2.2": lambda: layers.batchnorm_backward(np.ones((3, 2)), _batchnorm_cache()),
             "2.3": lambda: layers.batchnorm_backward_alt(np.ones((3, 2)), _batchnorm_cache())}
    calls[task_id]()


def _batchnorm_cache():
    """Your batchnorm forward pass's cache (its layout is yours) for a small batch."""
    x = np.array([[1.0, 2.0], [3.0, 5.0], [6.0, 4.0]])
    return layers.batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": "train"})[1]


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


@pytest.mark.parametrize("task_id", [pytest.param(task_id, marks=pytest.mark.task(task_id))
                                     for task_id in sorted(FORBIDDEN_FUNCTIONS)])
def test_a_batchnorm_backward_pass_does_not_call_the_other(task_id: str,
                                                          tmp_path: Path) -> None:
    _call_once(task_id)
    task, other = TASKS_BY_ID[task_id], FORBIDDEN_FUNCTIONS[task_id]
    shutil.copytree(ROOT / "course", tmp_path / "course",
                    ignore=shutil.ignore_patterns("__pycache__"))
    copy = tmp_path / task.path
    copy.write_text(without_function(copy.read_text(encoding="utf-8"), other),
                    encoding="utf-8")
    ran = subprocess.run(
        [sys.executable, "-c", _IN_THE_COPY, str(Path(__file__).parent), task_id],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    if REFUSED_FUNCTION in ran.stderr:
        pytest.fail(f"task {task_id} ({task.function}) called {other} (another task's "
                    f"function) while it ran:\n"
                    f"{_where_and_what(ran.stderr, tmp_path, task.function)}\n"
                    f"Write this task's own computation: the grader runs {task.function} with "
                    f"{other} refusing to run, as here, and gives it no points while it "
                    "calls it.", pytrace=False)
    if ran.returncode != 0:
        pytest.fail(f"task {task_id} ({task.function}) failed in a fresh Python (with {other} "
                    f"refusing to run), though it ran here:\n"
                    f"{_where_and_what(ran.stderr, tmp_path)}", pytrace=False)


# Run in the copy of course/ (the working folder comes first on sys.path).
_IN_THE_COPY = """
import sys
sys.path.insert(1, sys.argv[1])
import test_own_work
test_own_work._call_once(sys.argv[2])
"""


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


def _where_and_what(traceback: str, root: Path = ROOT, caller: str | None = None) -> str:
    """The last line of ``course/`` code in a traceback (of a tree at ``root``), or of the
    function ``caller`` when given (where the call was made), its code, and the error."""
    lines = traceback.replace(f'"{root}/', '"').strip().splitlines()
    ours = [i for i, line in enumerate(lines) if line.strip().startswith('File "course/')
            and (caller is None or line.rstrip().endswith(f", in {caller}"))]
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


_TWO_TASKS = '''import numpy as np


def graph(x):
    """The long way."""
    y = x * 2
    return y


def closed(x): return graph(x)


_ALIAS = graph


def after(x):
    return x
'''


def _run(source: str, name: str, *args):
    namespace: dict = {}
    exec(compile(source, "layers.py", "exec"), namespace)
    return namespace[name](*args)


@pytest.mark.parametrize("function", ["graph", "closed"])
def test_a_refused_function_refuses_however_it_is_reached(function: str) -> None:
    rewritten = without_function(_TWO_TASKS, function)
    with pytest.raises(RuntimeError, match=f"^{function} {REFUSED_FUNCTION}"):
        _run(rewritten, function, 3)
    if function == "graph":  # through the other function and a module-level alias too
        for caller in ("closed", "_ALIAS"):
            with pytest.raises(RuntimeError, match=REFUSED_FUNCTION):
                _run(rewritten, caller, 3)
    # The rest of the file is as it was, at the same lines.
    assert _run(rewritten, "after", 5) == 5
    assert len(rewritten.splitlines()) == len(_TWO_TASKS.splitlines())
    assert rewritten.splitlines()[-2:] == _TWO_TASKS.splitlines()[-2:]


def test_a_source_without_the_function_or_that_does_not_parse_is_left_as_it_is() -> None:
    assert without_function(_TWO_TASKS, "missing") == _TWO_TASKS
    assert without_function("def graph(:\n", "graph") == "def graph(:\n"


def test_a_header_with_non_ascii_names_keeps_the_body_where_ast_says() -> None:
    # ast's columns count UTF-8 bytes: a one-line def whose header has a 2-byte letter.
    source = "def graph(é): return é * 2\n"
    with pytest.raises(RuntimeError, match=REFUSED_FUNCTION):
        _run(without_function(source, "graph"), "graph", 1)
