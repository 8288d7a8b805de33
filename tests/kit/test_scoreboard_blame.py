"""The scoreboard blames the right task (instructor-only: it needs every task solved).

The task tests of this tree run under ``--scoreboard`` with some tasks made wrong on
purpose by a small plugin (loaded with ``-p`` before the tests import ``course``), in
three ways: the task's stub put back, wrong values returned, or an exception raised
inside it. Every other task must then show PASS or BLOCKED, never TODO or FAIL, and a
BLOCKED row may name only a broken task after ``needs``. And ``requires`` in
``course/tasks.py`` must list what each task's tests really call (traced at run time).

Slow: each case runs the task tests (about ten seconds on a quiet machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course.tasks import TASKS, TASKS_BY_ID, prerequisites

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PYTEST_TASKS = [task for task in TASKS if task.checked_by == "pytest"]
# Every task that another task's tests call: the ones whose bugs could be blamed elsewhere.
CALLED = sorted({r for task in TASKS for r in task.requires}, key=lambda t: TASKS.index(
    TASKS_BY_ID[t]))

PLUGIN_HEAD = '''"""Breaks some tasks on purpose, before the tests import course."""
import importlib

import numpy as np


def _wrong(value):
    """Every array and number of a result made wrong: scaled and shifted."""
    if isinstance(value, tuple):
        return tuple(_wrong(v) for v in value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value * 1.5 + 0.25
    if isinstance(value, float):
        return value * 1.5 + 0.25
    return value

'''

# One replacement per task: its own def, so each has its own code object (the scoreboard
# recognises a task's function by its code).
REPLACEMENT = '''
_owner_{n} = importlib.import_module({module!r})
for _part in {owners!r}:
    _owner_{n} = getattr(_owner_{n}, _part)
_original_{n} = _owner_{n}.__dict__[{name!r}]


def _broken_{n}(*args, **kwargs):
    if {mode!r} == "stub":
        raise NotImplementedError({message!r})
    if {mode!r} == "crash":
        raise TypeError("broken on purpose for the scoreboard test")
    result = _original_{n}(*args, **kwargs)
    if {name!r} == "__init__":  # a constructor: its parameters are what it makes
        for key in args[0].params:
            args[0].params[key] = _wrong(args[0].params[key])
        return result
    return _wrong(result)


setattr(_owner_{n}, {name!r}, _broken_{n})
'''


def write_plugin(folder: Path, broken: list[str], mode: str) -> str:
    """A plugin module in ``folder`` that breaks the ``broken`` tasks; returns its name."""
    parts = [PLUGIN_HEAD]
    # course.layers first: modules that import its functions by name then get the broken
    # ones (layer_utils does, and registers the normalisation layers at import).
    ordered = sorted(broken, key=lambda t: TASKS_BY_ID[t].path != "course/layers.py")
    for n, task_id in enumerate(ordered):
        task = TASKS_BY_ID[task_id]
        *owners, name = task.function.split(".")
        message = (f"task {task.id} ({task.function}): not written yet; "
                   f"see the TODO in {task.path}")
        parts.append(REPLACEMENT.format(
            n=n, module=task.path.removesuffix(".py").replace("/", "."), owners=owners,
            name=name, mode=mode, message=message))
    (folder / "break_tasks.py").write_text("".join(parts), encoding="utf-8")
    return "break_tasks"


def scoreboard(tmp_path: Path, *args: str) -> dict[str, list[str]]:
    """Run the task tests of this tree with ``--scoreboard``: task ID -> row cells."""
    env = {**os.environ, "COURSE_DATASET": "digits",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-m", "task", "--scoreboard",
         "-p", "no:cacheprovider", "-p", "no:nbval", "-W", "ignore", "--tb=short", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    rows = {}
    for line in run.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 4 and cells[0] in TASKS_BY_ID:
            rows[cells[0]] = cells
    assert rows, f"no scoreboard (exit {run.returncode}):\n{run.stdout[-3000:]}{run.stderr}"
    return rows


def needs_of(cells: list[str]) -> set[str]:
    """The task IDs a row's description names after 'need(s)'."""
    _, _, after = cells[3].rpartition("; ")
    if "need" not in after:
        return set()
    return {word.strip(",") for word in after.split() if word.strip(",") in TASKS_BY_ID}


def test_requires_lists_what_each_tasks_tests_call(tmp_path: Path) -> None:
    calls_file = tmp_path / "calls.json"
    rows = scoreboard(tmp_path, "--scoreboard-calls", str(calls_file))
    assert {rows[t.id][1] for t in PYTEST_TASKS} == {"PASS"}, rows
    calls = json.loads(calls_file.read_text())
    problems = []
    for task in PYTEST_TASKS:
        called = set(calls.get(task.id, []))
        listed, closure = set(task.requires), prerequisites(task.id)
        if not listed <= called:
            problems.append(f"{task.id}: requires {sorted(listed - called)}, "
                            "which its tests never call")
        if not called <= closure:
            problems.append(f"{task.id}: its tests call {sorted(called - closure)}, "
                            "missing from requires")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("mode", ["stub", "wrong", "crash"])
def test_no_correct_task_is_todo_or_fail_because_of_another(tmp_path: Path, mode: str) -> None:
    rows = scoreboard(tmp_path, "-p", write_plugin(tmp_path, CALLED, mode))
    problems = []
    for task in PYTEST_TASKS:
        status, needs = rows[task.id][1], needs_of(rows[task.id])
        if task.id in CALLED:
            if status == "PASS":
                problems.append(f"{task.id} is broken ({mode}) and passes")
        elif status not in ("PASS", "BLOCKED"):
            problems.append(f"{task.id} is correct and shows {status}: {rows[task.id][3]}")
        if status == "BLOCKED" and not needs:
            problems.append(f"{task.id} is BLOCKED without naming what it needs")
        if not needs <= set(CALLED):
            problems.append(f"{task.id} needs {sorted(needs - set(CALLED))}, not broken")
    expected = "TODO" if mode == "stub" else "FAIL"
    for task_id in CALLED:  # a broken task that calls no other broken one is to blame
        calls_no_broken = not set(TASKS_BY_ID[task_id].requires) & set(CALLED)
        if calls_no_broken and rows[task_id][1] != expected:
            problems.append(f"{task_id} is broken ({mode}) and shows {rows[task_id][1]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("broken", "mode"), [("1.3", "stub"), ("2.1", "wrong")])
def test_tasks_that_call_a_broken_task_name_it(tmp_path: Path, broken: str, mode: str) -> None:
    dependents = sorted(t.id for t in PYTEST_TASKS if broken in prerequisites(t.id))
    rows = scoreboard(tmp_path, "--task", " ".join(dependents),
                      "-p", write_plugin(tmp_path, [broken], mode))
    assert set(rows) == set(dependents)  # the broken task's own row is not asked for
    blocked = [t for t in dependents if rows[t][1] == "BLOCKED"]
    assert blocked, rows
    for task_id in dependents:
        assert rows[task_id][1] in ("PASS", "BLOCKED"), rows[task_id]
        if rows[task_id][1] == "BLOCKED":
            assert rows[task_id][3].endswith(f"; needs {broken} first"), rows[task_id]
