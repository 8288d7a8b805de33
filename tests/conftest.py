"""Shared pytest set-up: hypothesis profiles, ``--task`` selection and the task scoreboard.

* ``pytest --task 1.2`` runs only the tests marked ``@pytest.mark.task("1.2")``
  (repeat the option, or give a list: ``--task "1.3 1.4"`` or ``--task 1.3,1.4``).
* ``pytest --scoreboard`` replaces pytest's own report with one row per task of
  ``course.tasks``: ``TASK | STATUS | POINTS | DESCRIPTION`` (points from
  ``course.rubric``) and the total. ``make check`` runs it on the task tests. Only the table
  is printed (no progress line, no warnings summary); with ``--task`` each failing test is
  shown too, briefly, with hypothesis' failing input as shapes rather than a repr.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from course.rubric import checks_of_task, task_points
from course.tasks import TASKS, Task, task_sort_key

# Property tests: enough examples to find shape bugs, few enough for a 2-core CI.
settings.register_profile(
    "default",
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# CI (which sets CI=true) draws the same examples on every run, so a submission is judged
# on its code, not on the luck of the draw; locally each run explores new examples.
settings.register_profile(
    "ci",
    parent=settings.get_profile("default"),
    derandomize=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE",
                                     "ci" if os.environ.get("CI") else "default"))

# Tests never download: pin the embedded dataset unless a test says otherwise.
os.environ.setdefault("COURSE_DATASET", "digits")


# Where notebook tasks' check cells are looked up (absent when this file runs on its own).
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
_TASK_ID = re.compile(r"\d+\.\d+")


@pytest.hookimpl(trylast=True)  # after the terminal plugin has registered its reporter
def pytest_configure(config: pytest.Config) -> None:
    # Registered here as well as in pyproject.toml so that this file works on its own
    # (the scoreboard tests run it in a bare folder).
    config.addinivalue_line("markers", "task(id): the test checks student task `id`")
    if config.getoption("--scoreboard", default=False):
        # The scoreboard is the whole report: pytest's progress letters (FFFF...), warnings
        # count and failure dumps are noise for a student, so its reporter is switched off.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("course tasks")
    group.addoption(
        "--task",
        action="append",
        default=[],
        metavar="ID",
        help="run only the tests of this student task (e.g. 1.2); may be repeated, "
        'or a list ("1.3 1.4")',
    )
    group.addoption(
        "--scoreboard",
        action="store_true",
        default=False,
        help="print only a per-task scoreboard with points (instead of pytest's report)",
    )


def wanted_tasks(config: pytest.Config) -> list[str]:
    """The task IDs given with ``--task``, lists split on commas and spaces, checked."""
    ids: list[str] = []
    for value in config.getoption("--task"):
        for part in re.split(r"[\s,]+", value.strip()):
            if not part:
                continue
            if not _TASK_ID.fullmatch(part):
                raise pytest.UsageError(
                    f"--task: {part!r} is not a task ID; write one ID (TASK=1.3) or a list "
                    f'separated by spaces or commas (TASK="1.3 1.4")'
                )
            ids.append(part)
    known = {task.id for task in TASKS}
    unknown = sorted(set(ids) - known, key=task_sort_key)
    if unknown:
        raise pytest.UsageError(
            f"--task: unknown task ID(s) {', '.join(unknown)}; "
            f"known: {', '.join(t.id for t in TASKS)}"
        )
    return ids


def _task_ids(item: pytest.Item) -> list[str]:
    return [str(mark.args[0]) for mark in item.iter_markers("task") if mark.args]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(wanted_tasks(config))
    if wanted:
        selected, deselected = [], []
        for item in items:
            (selected if wanted & set(_task_ids(item)) else deselected).append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = selected
    config.stash[_TASK_OF_TEST] = {item.nodeid: _task_ids(item) for item in items}


_TASK_OF_TEST = pytest.StashKey[dict]()
# Outcome per test node ID for this session ("passed", "failed", "todo", "skipped").
# Module-level because pytest_runtest_logreport receives no config object.
_OUTCOMES: dict[str, str] = {}
_FAILURES: dict[str, str] = {}  # node ID -> failure text (for the --task report)
_COLLECT_ERRORS: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _OUTCOMES.clear()
    _FAILURES.clear()
    _COLLECT_ERRORS.clear()


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _COLLECT_ERRORS.append(f"{report.nodeid or 'collection'}:\n{report.longreprtext}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # A test fails if its set-up, call or tear-down fails; a failure whose traceback
    # ends in NotImplementedError is a stub the student has not written yet.
    if report.failed:
        text = str(report.longrepr) if report.longrepr else ""
        _OUTCOMES[report.nodeid] = "todo" if "NotImplementedError" in text else "failed"
        _FAILURES.setdefault(report.nodeid, text)
    elif report.nodeid not in _OUTCOMES and (report.when == "call" or report.skipped):
        _OUTCOMES[report.nodeid] = "skipped" if report.skipped else "passed"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.getoption("--scoreboard"):
        return
    print_scoreboard(session.config)
    # Asking for notebook tasks only selects no test: that is an answer, not an error.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


def _task_status(outcomes: list[str]) -> str:
    if not outcomes:
        return "NO TESTS"
    if "failed" in outcomes:
        return "FAIL"
    if "todo" in outcomes:
        return "TODO"
    if all(o == "skipped" for o in outcomes):
        return "SKIPPED"
    return "PASS"


def describe_failure(text: str, limit: int = 25) -> str:
    """A short failure report: hypothesis' drawn inputs read as ``failing input: x of shape
    (2, 3), ...`` instead of reprs (the test-case repr and hypothesis' coverage explanation
    are dropped), and only the last ``limit`` other lines are kept."""
    inputs: list[str] = []
    kept: list[str] = []
    skipping = None  # the kind of hypothesis block being dropped
    pending: tuple[str | None, str] | None = None  # a "Draw N (label): repr" being read
    for line in text.splitlines():
        bare = re.sub(r"^E {0,3}", "", line).rstrip()
        if skipping == "call":
            skipping = None if bare.strip() == ")" else skipping
            continue
        if skipping == "explanation":
            if bare.startswith(" ") or not bare:
                continue
            skipping = None
        if re.match(r"(Falsifying example|Failing test case):", bare.strip()):
            skipping = None if bare.strip().endswith(")") else "call"
            continue
        if bare.strip() == "Explanation:":
            skipping = "explanation"
            continue
        drawn = re.match(r"\s*Draw \d+(?: \((\w+)\))?: (.*)$", bare)
        if drawn:
            if pending is not None:
                inputs.append(_describe_inputs(*pending))
            pending = (drawn.group(1), drawn.group(2))
            continue
        if pending is not None and _balance(pending[1]) > 0:
            pending = (pending[0], pending[1] + "\n" + bare)  # a repr spread over lines
            continue
        if pending is not None:
            inputs.append(_describe_inputs(*pending))
            pending = None
        kept.append(line)
    if pending is not None:
        inputs.append(_describe_inputs(*pending))
    kept = kept[-limit:]
    head = [f"failing input: {', '.join(inputs)}"] if inputs else []
    return "\n".join([*head, *kept])


def _balance(text: str) -> int:
    """Open brackets minus closed ones (a repr continues on the next line while positive)."""
    return sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")


def _describe_inputs(label: str | None, text: str) -> str:
    values = _eval_repr(text)
    if values is None:
        flat = " ".join(text.split())
        flat = flat if len(flat) < 200 else flat[:200] + " ..."
        return f"{label} = {flat}" if label else flat
    if not isinstance(values, dict):
        values = {label or "value": values}
    parts = []
    for name, value in values.items():
        if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0 and value.size > 6:
            parts.append(f"{name} of shape {tuple(value.shape)}")
        elif hasattr(value, "tolist"):
            parts.append(f"{name} = {value.tolist()!r}")
        else:
            parts.append(f"{name} = {value!r}")
    return ", ".join(parts)


def _eval_repr(text: str) -> object:
    """Rebuild a dict of numpy arrays from its repr (None if it is not one: e.g. elided)."""
    import numpy as np

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    allowed = {"array": np.array, "nan": np.nan, "inf": np.inf}
    allowed.update({k: getattr(np, k) for k in ("float64", "float32", "int64", "int32", "bool_")})
    if not names <= set(allowed) or any(isinstance(n, ast.Attribute) for n in ast.walk(tree)):
        return None
    try:
        return eval(compile(tree, "<inputs>", "eval"), {"__builtins__": {}}, allowed)
    except Exception:
        return None


def _check_cell_location(key: str) -> str:
    """'cell "name" under "heading" in Notebook.ipynb' for a ``Notebook/name`` rubric key."""
    notebook, name = key.split("/", 1)
    where = f'the check cell "{name}" in notebooks/{notebook}.ipynb'
    try:
        # Beside this file in tests/ (absent when this file runs on its own, as the
        # scoreboard's tests run it): the heading rule the instructor tools use too.
        from notebook_headings import headings_by_cell

        cells = json.loads((NOTEBOOKS_DIR / f"{notebook}.ipynb").read_text())["cells"]
    except (ImportError, OSError, ValueError, KeyError):
        return where
    for cell, heading in zip(cells, headings_by_cell(cells), strict=True):
        if cell.get("metadata", {}).get("check") == name:
            return where + (f', under "{heading}"' if heading else "")
    return where


def _notebook_row(task: Task) -> str:
    keys = checks_of_task(task.id)
    cells = " and ".join(_check_cell_location(k) for k in keys) or (
        f"the check cell after it in {task.notebook}"
    )
    points = f"-/{task_points(task)}"
    return (
        f"{task.id:<6} | {'NOTEBOOK':<8} | {points:>6} | {task.title}: run the notebook; "
        f"graded by {cells}"
    )


def print_scoreboard(config: pytest.Config) -> None:
    """Write the scoreboard (and, with --task, the failures) to stdout."""
    by_task: dict[str, list[str]] = defaultdict(list)
    task_of_test = config.stash.get(_TASK_OF_TEST, {})
    for nodeid, task_ids in task_of_test.items():
        outcome = _OUTCOMES.get(nodeid)
        for task_id in task_ids:
            if outcome is not None:
                by_task[task_id].append(outcome)
    wanted = set(wanted_tasks(config))
    rows = [t for t in TASKS if not wanted or t.id in wanted]
    out = sys.stdout
    for error in _COLLECT_ERRORS:
        out.write(f"error while loading the tests: {describe_failure(error)}\n\n")
    if wanted:
        for nodeid, text in _FAILURES.items():
            if nodeid in task_of_test and _OUTCOMES.get(nodeid) == "failed":
                out.write(f"FAILED {nodeid}\n{describe_failure(text)}\n\n")
    header = f"{'TASK':<6} | {'STATUS':<8} | {'POINTS':>6} | DESCRIPTION"
    out.write(header + "\n" + "-" * (len(header) + 30) + "\n")
    earned = possible = 0
    for task in rows:
        if task.checked_by == "notebook":
            out.write(_notebook_row(task) + "\n")
            continue
        outcomes = by_task.get(task.id, [])
        status = _task_status(outcomes)
        points = task_points(task)
        got = points if status == "PASS" else 0
        earned, possible = earned + got, possible + points
        score = f"{got}/{points}"
        line = f"{task.id:<6} | {status:<8} | {score:>6} | {task.title} ({task.function})"
        # Its tests call these tasks' code first, so they cannot reach it before then.
        waiting = [r for r in task.requires if _task_status(by_task.get(r, [])) != "PASS"]
        if status == "TODO" and waiting:
            line += f"; needs {', '.join(waiting)} first"
        out.write(line + "\n")
    tested = [t for t in rows if t.checked_by == "pytest"]
    done = sum(_task_status(by_task.get(t.id, [])) == "PASS" for t in tested)
    if tested:
        out.write(
            f"Total: {earned} of {possible} points; {done} of {len(tested)} tested tasks pass.\n"
        )
    notebook_tasks = [t for t in rows if t.checked_by == "notebook"]
    if notebook_tasks:
        nb_points = sum(task_points(t) for t in notebook_tasks)
        out.write(
            f"Notebook tasks ({nb_points} points) are graded by their check cells: run the "
            "notebook and read their 'check passed' lines.\n"
        )
    if done < len(tested):
        out.write(
            "TODO = still a stub; FAIL = written but wrong. "
            "Details of one task: make check TASK=<id>\n"
        )
    out.flush()
