"""Shared pytest set-up: hypothesis profiles, ``--task`` selection and the task scoreboard.

* ``pytest --task 1.2`` runs only the tests marked ``@pytest.mark.task("1.2")``
  (repeat the option, or give a list: ``--task "1.3 1.4"`` or ``--task 1.3,1.4``).
* ``pytest --scoreboard`` replaces pytest's own report with one row per task of
  ``course.tasks``: ``TASK | STATUS | POINTS | DESCRIPTION`` (points from
  ``course.rubric``, the grade's scale) and the total. ``make check`` runs it on the task
  tests. Only the table is printed (no progress line, no warnings summary).
* A notebook task (a choice made in a notebook cell) is scored from the outputs saved in
  the student's notebook (``course.notebook_outputs``): ``PASS`` when each of its check
  cells ran and printed only ``check passed`` lines, ``FAIL`` when one printed anything
  else or stopped with an error, ``NOT RUN`` when one has no saved output, ``TODO`` while
  its stub is in the notebook. So a correct, executed submission totals what the grade
  gives it.
* A row is ``TODO`` while the task's stub is there, ``FAIL`` when a test fails on the
  task's own code, and ``BLOCKED`` when its tests stop at another task's stub or fail
  after calling another task that does not pass (which task's code a test ran is traced
  at run time, see ``CallRecorder``): a correct task is never TODO or FAIL because of
  another one. A task whose tests pass is FAIL all the same when code they ran printed
  to stdout: the grade compares what the notebooks' check cells print, so a print left
  in ``course/`` fails the check cells that call it. ``needs X first`` names the tasks
  to make pass first.
* A test whose code runs longer than ``--time-limit`` seconds (60; a loop that never
  ends) is stopped where it is (SIGALRM, where the platform has it), and the later tests
  of that task, and of tasks built on it, fail without running. A test file that cannot
  be loaded (a syntax error in ``course/``) gives its error once and no table, as does
  Ctrl-C: no row would be true.
* With ``--task`` the tests of the tasks it requires run too (their rows are not shown),
  and above the table each task that does not pass gets its first failure (the comment
  that opens the failing test, where its known values come from, then the failure, with
  hypothesis' failing input shown as shapes rather than a repr; when hypothesis found
  several distinct failures, the first in full and the others' errors) or the task that
  stopped it (and, when that task was written but fails, the first failure all the same).
* Parametrised tests' IDs show their values (``[stride=1,pad=0]``, ``[(2,3,5,5)]``,
  ``[float32(2,3)]``) where pytest's own would be ``[kwargs0]``: a failure line then says
  which case failed.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import signal
import sys
import textwrap
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from course import notebook_outputs
from course.rubric import checks_of_task, task_points
from course.tasks import TASKS, TASKS_BY_ID, Task, task_sort_key

# Property tests: enough examples to find shape bugs, few enough for a 2-core CI.
# Hypothesis' own defaults print a @reproduce_failure blob when the CI variable is set:
# off here (a failure is replayed from the saved example, or drawn again on CI, where
# examples are derandomized), so a student reads the same report everywhere.
settings.register_profile(
    "default",
    max_examples=30,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("default"),
    max_examples=300,
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


# The tree's root: task files (for their stubs) and notebooks (for notebook tasks' check
# cells) are looked up there; both are absent when this file runs on its own.
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
_TASK_ID = re.compile(r"\d+\.\d+")


@pytest.hookimpl(trylast=True)  # after the terminal plugin has registered its reporter
def pytest_configure(config: pytest.Config) -> None:
    # Registered here as well as in pyproject.toml so that this file works on its own
    # (the scoreboard tests run it in a bare folder).
    config.addinivalue_line("markers", "task(id): the test checks student task `id`")
    _take_ctrl_c()
    if config.getoption("--scoreboard", default=False):
        # The scoreboard is the whole report: pytest's progress letters (FFFF...), warnings
        # count and failure dumps are noise for a student, so its reporter is switched off.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)
        config.stash[_RECORDER_KEY] = CallRecorder(task_code_objects())


def _take_ctrl_c() -> None:
    """Give this process Python's own Ctrl-C handler when it started with SIGINT ignored.

    A shell starts a background job (``make test &`` in a script, ``nohup``) with SIGINT
    ignored, Python then leaves it ignored, and every process a test starts inherits
    that: the tests that press Ctrl-C on a child (the scoreboard's, ``kit site``'s) saw it
    ignored and failed. A signal with a handler is reset to the default across exec, so
    children start as they would from a terminal. Only the main thread may set one."""
    if (signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            and threading.current_thread() is threading.main_thread()):
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
    group.addoption(
        "--time-limit",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --scoreboard: stop a test whose code runs longer than this (0: never); "
        "later tests of its task, and of tasks built on it, then fail without running",
    )
    group.addoption(
        "--scoreboard-calls",
        default=None,
        metavar="FILE",
        help="with --scoreboard: also write to FILE, as JSON, the other tasks whose "
        "functions each task's tests called (tests/kit compares it with `requires`)",
    )


def wanted_tasks(config: pytest.Config) -> list[str]:
    """The task IDs given with ``--task``, lists split on commas and spaces, checked.

    A student types them as ``make check TASK=...`` or ``python -m course check ...``,
    never ``--task``: so the error names neither the option nor one entry point's syntax,
    only what was given and what would do (a function's name gets its task's ID)."""
    ids: list[str] = []
    problems: list[tuple[str, bool]] = []
    for value in config.getoption("--task"):
        for token in value.split():
            comma = _decimal_comma(token)
            if comma:  # "1,3": task 1.3 with a decimal comma, not tasks 1 and 3
                problems.append(comma)
                continue
            for part in token.split(","):
                if not part or part in ids:
                    continue
                problem = _task_id_problem(part)
                if problem:
                    problems.append(problem)
                else:
                    ids.append(part)
    if problems:
        lines = list(dict.fromkeys(text for text, _ in problems))  # each once
        if not all(suggested for _, suggested in problems):
            lines.append(f"The task IDs are {', '.join(t.id for t in TASKS)}; give one, or "
                         'several separated by spaces or commas ("1.3 1.4").')
        raise pytest.UsageError("\n".join(lines))
    return ids


def _decimal_comma(token: str) -> tuple[str, bool] | None:
    """The problem of ``1,3`` when no part of it is a task ID but ``1.3`` is (a decimal
    comma, as many keyboards type it); None otherwise (``1.3,1.4`` is two IDs)."""
    parts = [part for part in token.split(",") if part]
    dotted = token.replace(",", ".")
    if len(parts) == 2 and not any(p in TASKS_BY_ID for p in parts) and dotted in TASKS_BY_ID:
        return f"{token!r} is not a task ID; did you mean {dotted} (with a dot)?", True
    return None


def _task_id_problem(given: str) -> tuple[str, bool] | None:
    """What is wrong with ``given`` as a task ID (None if it is one), and whether that
    says which ID to give instead: a task's function (``relu_forward``,
    ``FullyConnectedNet.loss``, ``loss``) is answered with its task's ID, an ID with
    letters after it (``1.3a``) with the ID."""
    if given in TASKS_BY_ID:
        return None
    if _TASK_ID.fullmatch(given):
        return f"There is no task {given}.", False
    name = given.lower()
    by_function = [t for t in TASKS if t.checked_by == "pytest"
                   and (t.function.lower() == name
                        or name in t.function.lower().split("."))]
    if by_function:
        tasks = " and ".join(f"{t.id} ({t.function})" for t in by_function)
        plural = "s" if len(by_function) > 1 else ""
        ids = " or ".join(t.id for t in by_function)
        return (f"{given!r} is not a task ID, but it names task{plural} {tasks}: ask for "
                f"{ids}."), True
    start = re.match(r"\d+\.\d+", given)
    if start and start.group() in TASKS_BY_ID and not re.search(r"\d", given[start.end():]):
        return f"{given!r} is not a task ID; did you mean {start.group()}?", True
    of_notebook = [t.id for t in TASKS if t.id.split(".")[0] == given]
    if of_notebook:  # "4": the tasks of notebook 4
        return (f"{given!r} is not a task ID; the tasks of notebook {given} are "
                f"{', '.join(of_notebook)}.", True)
    words = [t for t in TASKS if t.checked_by == "pytest" and len(name) >= 3
             and name in re.split(r"[._]", t.function.lower())]
    if words:  # "affine": a word of affine_forward and affine_backward
        named = ", ".join(f"{t.id} ({t.function})" for t in words)
        return f"{given!r} is not a task ID; tasks named with it: {named}.", True
    return f"{given!r} is not a task ID.", False


def _task_ids(item: pytest.Item) -> list[str]:
    return [str(mark.args[0]) for mark in item.iter_markers("task") if mark.args]


# Longest test ID made from one value: a whole array or notebook does not belong in it.
_ID_LENGTH = 40


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Test IDs that show a parameter's value, so that a failure line says which case
    failed: ``[stride=1,pad=0]`` or ``[(2,3,5,5)]`` where pytest would write ``[kwargs0]``
    or ``[x_shape0]``. None (pytest's own ID) for what pytest already writes well: numbers,
    strings, None, classes and functions."""
    if not isinstance(val, dict | tuple | list) and not _is_numpy(val):
        return None
    try:
        text = _value_id(val)
    except Exception:  # a list that holds itself, a property that raises: pytest's own ID
        return None
    return text if len(text) <= _ID_LENGTH else text[:_ID_LENGTH - 3] + "..."


def _is_numpy(val: object) -> bool:
    """A numpy object (array, dtype, scalar) or a numpy class (``np.float32``)."""
    module = val.__module__ if isinstance(val, type) else type(val).__module__
    return module.split(".")[0] == "numpy"


def _value_id(val: object) -> str:
    """A short, one-line text of a parameter: dicts as ``key=value`` pairs, tuples and
    lists in parentheses without spaces (a 1-tuple keeps its comma), numpy dtypes and
    classes and functions by name, arrays by dtype and shape, other objects by their
    class; control characters in text escaped."""
    if isinstance(val, dict):
        return ",".join(f"{_value_id(key)}={_value_id(item)}" for key, item in val.items())
    if isinstance(val, tuple | list):
        items = [_value_id(item) for item in val]
        return "(" + ",".join(items) + ("," if isinstance(val, tuple) and len(items) == 1
                                         else "") + ")"
    if isinstance(val, type) or callable(val):
        return getattr(val, "__name__", type(val).__name__)
    if hasattr(val, "shape") and hasattr(val, "dtype") and getattr(val, "ndim", 0):
        return f"{val.dtype}{_value_id(tuple(val.shape))}"
    if isinstance(val, str | bytes | int | float | complex | None) or _is_numpy(val):
        return str(val).encode("unicode_escape").decode("ascii")
    # Other objects by their class: a repr may hold a memory address, and pytest-xdist's
    # workers must collect the same IDs.
    return type(val).__name__


def pytest_collection_finish(session: pytest.Session) -> None:
    """With --scoreboard, one line while the tests run (the table comes at the end; the
    first run of a fresh tree takes half a minute). Not when the task selection was
    refused: pytest calls this hook even then, and nothing runs."""
    selected = _TASK_OF_TEST in session.config.stash  # set once the selection is made
    if session.config.getoption("--scoreboard") and session.items and selected:
        tasks = {t for item in session.items for t in _task_ids(item)}
        print(f"Running {len(session.items)} tests of {len(tasks)} task(s)...",
              file=sys.stderr, flush=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(wanted_tasks(config))
    if wanted:
        if config.getoption("--scoreboard"):
            # The rows of the wanted tasks say whether the tasks they call pass, so those
            # tasks' tests run too (their rows are not shown).
            wanted = wanted.union(*(_prerequisites(t) for t in wanted))
        selected, deselected = [], []
        for item in items:
            (selected if wanted & set(_task_ids(item)) else deselected).append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = selected
    config.stash[_TASK_OF_TEST] = {item.nodeid: _task_ids(item) for item in items}


def _prerequisites(task_id: str) -> set[str]:
    found: set[str] = set()
    pending = list(TASKS_BY_ID[task_id].requires)
    while pending:
        current = pending.pop()
        if current not in found:
            found.add(current)
            pending.extend(TASKS_BY_ID[current].requires)
    return found


_TASK_OF_TEST = pytest.StashKey[dict]()
# What each test did, by node ID. Module-level because pytest_runtest_logreport receives
# no config object.
_OUTCOMES: dict[str, str] = {}  # "passed", "failed" or "skipped"
_FAILURES: dict[str, str] = {}  # failure text (for the --task report)
_FAILED_FUNCTIONS: dict[str, Any] = {}  # a failed test's function (its opening comment)
_STUB_HIT: dict[str, str] = {}  # the task whose stub raised NotImplementedError in the test
_PRINTED: dict[str, str] = {}  # the first line a passing test's code printed to stdout
_CALLED: dict[str, set[str]] = {}  # the tasks whose functions the test entered
_COLLECT_ERRORS: list[str] = []
# Tasks whose code ran past pytest-timeout's limit in a test (a loop that never ends):
# later tests of those tasks, and of tasks that build on them, are failed without running,
# so one endless loop costs one timeout, not one per test. Node ID -> the task it waited for.
_TIMED_OUT: dict[str, str] = {}  # task -> the test in which its code ran out of time
_WAITED_FOR: dict[str, str] = {}  # a test not run -> the other task it would wait for
_NOT_RUN: set[str] = set()  # the tests failed without running, for a timed-out task

# A stub's message, as the release writes it: "task 1.3 (relu_forward): not written yet; ..."
_STUB_MESSAGE = notebook_outputs.STUB_MESSAGE


def pytest_sessionstart(session: pytest.Session) -> None:
    for record in (_OUTCOMES, _FAILURES, _FAILED_FUNCTIONS, _STUB_HIT, _PRINTED, _CALLED,
                   _TIMED_OUT, _WAITED_FOR, _NOT_RUN):
        record.clear()
    _COLLECT_ERRORS.clear()
    _KEYBOARD_INTERRUPT.clear()


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _COLLECT_ERRORS.append(f"{report.nodeid or 'collection'}:\n{report.longreprtext}")


def _collect_error_lines() -> list[str]:
    """Each distinct error met while loading the test files, once, with the files it
    stopped: one syntax error in course/ stops every test file that imports it."""
    by_error: dict[str, tuple[str, list[str]]] = {}
    for error in _COLLECT_ERRORS:
        where, _, text = error.partition(":\n")
        described = describe_failure(text)
        lines = described.splitlines()  # from the test file on: not importlib's frames
        start = next((i for i, line in enumerate(lines) if line.startswith("tests/")), 0)
        described = "\n".join(lines[start:])
        key = "\n".join([line for line in described.splitlines() if line.strip()][-3:])
        by_error.setdefault(key, (described, []))[1].append(where)
    lines = []
    for described, files in by_error.values():
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        lines.append(f"error while loading {len(files)} test file(s) ({shown}):\n{described}")
    return lines


_KEYBOARD_INTERRUPT: list[bool] = []  # Ctrl-C ended the run


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo) -> None:
    _KEYBOARD_INTERRUPT.append(True)


# -- which task's code a test ran ----------------------------------------------------------


class CallRecorder:
    """Notes which task functions run during a test, with ``sys.settrace``.

    The scoreboard blames a failure on the test's own task only when no other task it
    called is failing; knowing the calls takes a trace function that looks at each Python
    call (and nothing finer: it returns None, so no line events). Nothing in ``course`` is
    replaced or wrapped, so the code under test is exactly the student's.
    """

    def __init__(self, code_tasks: dict[Any, str]) -> None:
        self.code_tasks = code_tasks
        self.called: set[str] = set()
        self._previous: Any = None

    def _trace(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            task_id = self.code_tasks.get(frame.f_code)
            if task_id is not None:
                self.called.add(task_id)

    def __enter__(self) -> CallRecorder:
        self.called = set()
        self._previous = sys.gettrace()
        sys.settrace(self._trace)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(self._previous)


def task_code_objects() -> dict[Any, str]:
    """The code object of every pytest-checked task's function -> its task ID.

    Modules that do not import (a syntax error in a student file) are left out: their
    tests report the error themselves.
    """
    found: dict[Any, str] = {}
    for task in TASKS:
        if task.checked_by != "pytest" or not task.path.endswith(".py"):
            continue
        module_name = task.path.removesuffix(".py").replace("/", ".")
        try:
            owner: Any = importlib.import_module(module_name)
        except Exception:  # any import error: the tests of that module will show it
            continue
        *owners, name = task.function.split(".")
        for part in owners:
            owner = getattr(owner, part, None)
        function = getattr(owner, "__dict__", {}).get(name) if owner is not None else None
        code = getattr(function, "__code__", None)
        if code is not None:
            found[code] = task.id
    return found


_RECORDER_KEY = pytest.StashKey[CallRecorder]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    recorder = item.config.stash.get(_RECORDER_KEY, None)
    if recorder is None:
        yield
        return
    with recorder:
        yield
    _CALLED[item.nodeid] = set(recorder.called) | (
        {_WAITED_FOR[item.nodeid]} if item.nodeid in _WAITED_FOR else set())


class TimeLimitExceeded(BaseException):
    """Raised in a test whose code outlived ``--time-limit``. Not an Exception: hypothesis
    would take one for a failing example and run the test again (and again) to shrink
    it, and student code's ``except Exception`` would swallow it."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """With --scoreboard, stop a test at ``--time-limit`` seconds with TimeLimitExceeded
    (SIGALRM: where the platform has it), so an endless loop in a student's code gives a
    failure that shows where it was instead of a scoreboard that never comes. pytest-
    timeout's own alarm, when set, is put back with its time left."""
    limit = item.config.getoption("--time-limit", 0.0)
    if not item.config.getoption("--scoreboard") or not limit or not hasattr(signal,
                                                                              "SIGALRM"):
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        __tracebackhide__ = True  # the report ends in the student's code, not here
        raise TimeLimitExceeded(f"the test's code ran longer than {limit:g} s and was "
                                "stopped (a loop that never ends?)")

    started = time.monotonic()
    earlier_left, _ = signal.getitimer(signal.ITIMER_REAL)
    earlier = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, min(limit, earlier_left or limit))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, earlier)
        if earlier_left:
            left = earlier_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail, without running it, a test of a task whose code already ran out of time (or
    of a task that builds on one): each would wait out the whole timeout again."""
    if not _TIMED_OUT:
        return
    for task_id in _task_ids(item):
        if task_id not in TASKS_BY_ID:
            continue
        stuck = sorted(({task_id} | _prerequisites(task_id)) & _TIMED_OUT.keys(),
                       key=task_sort_key)
        if stuck:
            _NOT_RUN.add(item.nodeid)
            if stuck[0] != task_id:
                _WAITED_FOR[item.nodeid] = stuck[0]
            function = TASKS_BY_ID[stuck[0]].function
            pytest.fail(f"not run: the code of task {stuck[0]} ({function}) ran past the "
                        f"time limit in an earlier test (a loop that never ends?)",
                        pytrace=False)


def _stuck_task(item: pytest.Item, call: pytest.CallInfo) -> str | None:
    """The task whose function was running, innermost, when pytest-timeout stopped the
    test (None when the test did not time out). Falls back on the test's own task."""
    if call.excinfo is None or not isinstance(call.excinfo.value, TimeLimitExceeded):
        return None
    recorder = item.config.stash.get(_RECORDER_KEY, None)
    code_tasks = recorder.code_tasks if recorder is not None else {}
    stuck = None
    tb = call.excinfo.tb
    while tb is not None:
        stuck = code_tasks.get(tb.tb_frame.f_code, stuck)
        tb = tb.tb_next
    own = [t for t in _task_ids(item) if t in TASKS_BY_ID]
    return stuck or (own[0] if own else None)


def _stub_task(error: BaseException | None) -> str | None:
    """The task whose stub raised ``error`` (looking inside exception groups), or None."""
    if error is None:
        return None
    if isinstance(error, NotImplementedError):
        match = _STUB_MESSAGE.search(str(error))
        if match:
            return match.group(1)
    for inner in getattr(error, "exceptions", ()):  # ExceptionGroup (hypothesis, several bugs)
        found = _stub_task(inner)
        if found:
            return found
    return _stub_task(error.__cause__
                      or (None if error.__suppress_context__ else error.__context__))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.failed:  # its source is read only if the task report shows it
        _FAILED_FUNCTIONS.setdefault(item.nodeid, getattr(item, "function", None))
    if report.when == "call" and report.failed:
        stuck = _stuck_task(item, call)
        if stuck is not None:
            _TIMED_OUT.setdefault(stuck, item.nodeid)
    if report.when == "call" and report.passed and report.capstdout.strip():
        _PRINTED.setdefault(item.nodeid, report.capstdout.strip().splitlines()[0])
    if report.failed and call.excinfo is not None and item.nodeid not in _STUB_HIT:
        stub = _stub_task(call.excinfo.value)
        if stub is None and "NotImplementedError" in (report.longreprtext or ""):
            found = _STUB_MESSAGE.search(report.longreprtext)
            stub = found.group(1) if found else None
        if stub is not None:
            _STUB_HIT[item.nodeid] = stub


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # A test fails if its set-up, call or tear-down fails.
    if report.failed:
        _OUTCOMES[report.nodeid] = "failed"
        _FAILURES.setdefault(report.nodeid, str(report.longrepr) if report.longrepr else "")
    elif report.nodeid not in _OUTCOMES and (report.when == "call" or report.skipped):
        _OUTCOMES[report.nodeid] = "skipped" if report.skipped else "passed"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.getoption("--scoreboard"):
        return
    if _COLLECT_ERRORS and not _OUTCOMES:  # pytest runs no test when a file cannot load
        for line in _collect_error_lines():
            print(line + "\n")
        print("No test ran: a test file that cannot be loaded stops them all, so there is "
              "no scoreboard this time. Fix the error above, then run make check again.")
        return
    if _KEYBOARD_INTERRUPT:  # Ctrl-C: the rows would be untrue
        limit = session.config.getoption("--time-limit", 0.0)
        print("\nmake check was interrupted before its tests finished: no scoreboard this "
              "time." + (f" A test whose code never ends is stopped after {limit:g} s, and "
                         "the report names where it was." if limit else ""))
        return
    rows = task_rows(session.config)
    calls_file = session.config.getoption("--scoreboard-calls")
    if calls_file:
        _write_calls(Path(calls_file), session.config)
    print_scoreboard(session.config, rows)
    # Asking for notebook tasks only selects no test: that is an answer, not an error.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


def _write_calls(path: Path, config: pytest.Config) -> None:
    """Which other tasks' functions each task's tests called (tests/kit checks ``requires``)."""
    calls: dict[str, set[str]] = defaultdict(set)
    for nodeid, task_ids in config.stash.get(_TASK_OF_TEST, {}).items():
        for task_id in task_ids:
            calls[task_id] |= _CALLED.get(nodeid, set()) - {task_id}
    path.write_text(json.dumps({t: sorted(c, key=task_sort_key) for t, c in calls.items()},
                               indent=1))


# -- from test outcomes to a status per task -------------------------------------------


@dataclass
class Row:
    """The scoreboard's verdict on one task."""

    task: Task
    status: str  # PASS, FAIL, TODO, BLOCKED, NO TESTS, SKIPPED; NOT RUN (notebook tasks)
    needs: list[str] = field(default_factory=list)  # tasks to make pass first
    own_failures: list[str] = field(default_factory=list)  # node IDs failing on its own code
    stopped_by: dict[str, list[str]] = field(default_factory=dict)  # node ID -> its blockers
    # A notebook task's check cells as saved in the student's notebook (in rubric order).
    saved: list[notebook_outputs.SavedCheck] = field(default_factory=list)
    # Why a notebook task's notebook could not be read at all ("" when it could).
    unreadable: str = ""
    # (node ID, first line) of a passing test whose code printed to stdout: the grade's
    # check cells compare what they print, so a print left in course/ code fails them.
    printed: tuple[str, str] | None = None


def _stub_in_source(task: Task) -> bool:
    """True when the task's file still holds its stub (the release's ``raise`` line)."""
    if not task.path.endswith(".py"):
        return False
    try:
        text = (ROOT / task.path).read_text(encoding="utf-8")
    except OSError:
        return False
    return task.id in notebook_outputs.stubs_in_text(text)


def task_rows(config: pytest.Config) -> dict[str, Row]:
    """A Row per pytest-checked task whose tests ran (and per task of the table).

    A failing test counts against its own task only when the failure is its task's own:
    not the stub of another task (``stopped_by``), and not in a test that called a task
    which does not pass (the failure may be that task's). Those make the row BLOCKED, with
    the tasks to fix first in ``needs``; a correct task is never TODO or FAIL because of
    another one.
    """
    tests_of: dict[str, list[str]] = defaultdict(list)
    for nodeid, task_ids in config.stash.get(_TASK_OF_TEST, {}).items():
        if nodeid in _OUTCOMES:
            for task_id in task_ids:
                tests_of[task_id].append(nodeid)
    rows: dict[str, Row] = {}
    in_progress: set[str] = set()

    def status_of(task_id: str) -> str | None:
        """The status of a task, or None when its tests did not run (or on a cycle)."""
        if task_id not in rows:
            if task_id in in_progress or task_id not in TASKS_BY_ID or not tests_of[task_id]:
                return None
            in_progress.add(task_id)
            rows[task_id] = judge(TASKS_BY_ID[task_id])
            in_progress.discard(task_id)
        return rows[task_id].status

    def judge(task: Task) -> Row:
        row = Row(task, "PASS")
        outcomes = []
        for nodeid in tests_of[task.id]:
            outcome = _OUTCOMES[nodeid]
            outcomes.append(outcome)
            if outcome != "failed":
                continue
            stub = _STUB_HIT.get(nodeid)
            if stub == task.id:
                row.status = "TODO"
                continue
            blockers = [stub] if stub else [
                other for other in sorted(_CALLED.get(nodeid, set()) - {task.id},
                                          key=task_sort_key)
                if status_of(other) not in (None, "PASS", "SKIPPED")]
            if blockers:
                row.stopped_by[nodeid] = blockers
            else:
                row.own_failures.append(nodeid)
        printed = next((n for n in _own_module_first(task, tests_of[task.id])
                        if n in _PRINTED), None)
        if printed is not None:
            row.printed = (printed, _PRINTED[printed])
        if row.status != "TODO":
            if _stub_in_source(task):
                row.status = "TODO"
            elif row.own_failures or row.printed:
                row.status = "FAIL"
            elif row.stopped_by:
                row.status = "BLOCKED"
            elif not outcomes:
                row.status = "NO TESTS"
            elif all(o == "skipped" for o in outcomes):
                row.status = "SKIPPED"
        waiting = set().union(*row.stopped_by.values())
        if row.status == "TODO":  # its tests will call these once it is written
            waiting |= {r for r in task.requires if status_of(r) not in (None, "PASS")}
        row.needs = sorted(root_causes(waiting), key=task_sort_key)
        return row

    def root_causes(task_ids: set[str]) -> set[str]:
        """The tasks to fix first: a BLOCKED task stands for the tasks that block it."""
        found: set[str] = set()
        for task_id in task_ids:
            status_of(task_id)
            row = rows.get(task_id)
            if row is not None and row.status == "BLOCKED" and row.needs:
                found |= set(row.needs)
            else:
                found.add(task_id)
        return found

    for task in TASKS:
        if task.checked_by == "pytest":
            status_of(task.id)
            rows.setdefault(task.id, Row(task, "TODO" if _stub_in_source(task) else "NO TESTS"))
        else:
            rows[task.id] = notebook_task_row(task)
    return rows


def notebook_task_row(task: Task) -> Row:
    """A notebook task's row, from the outputs saved in its notebook (nothing is run).

    TODO while the task's stub is in the notebook; otherwise FAIL if a check cell of the
    task printed a ``check FAILED`` line, an error or any other line, NOT RUN if one has
    no saved output, PASS when all printed only ``check passed`` lines.
    """
    path = NOTEBOOKS_DIR / f"{task.notebook}.ipynb"
    keys = checks_of_task(task.id)
    try:
        notebook = notebook_outputs.load_notebook(path)
    except ValueError as error:
        missing = [notebook_outputs.SavedCheck(task.notebook, k.split("/", 1)[1], False, False,
                                               str(error)) for k in keys]
        return Row(task, "NOT RUN", saved=missing, unreadable=str(error))
    if task.id in notebook_outputs.stubbed_tasks(notebook):
        return Row(task, "TODO")
    found = notebook_outputs.saved_checks(notebook, task.notebook)
    saved = [found.get(k.split("/", 1)[1]) or notebook_outputs.SavedCheck(
        task.notebook, k.split("/", 1)[1], False, False, "no such check cell in the notebook")
        for k in keys]
    if any(s.ran and not s.passed for s in saved):
        status = "FAIL"
    elif not all(s.ran for s in saved):
        status = "NOT RUN"
    else:
        status = "PASS"
    return Row(task, status, saved=saved)


def opening_comment(function: Any, limit: int = 6) -> str:
    """The comment lines that open a test function's body, as written (at most ``limit``):
    where a test's known values come from ("Column 0 is [1, 3]: mean 2, biased variance
    1."). The task report shows them above the failure, which pytest's short traceback
    prints without them. "" when the body opens with code, or the source is not there."""
    try:
        lines, _ = inspect.getsourcelines(function)  # unwraps hypothesis' @given
        definition = ast.parse(textwrap.dedent("".join(lines))).body[0]  # a method too
    except (TypeError, OSError, SyntaxError, IndexError):
        return ""
    if not isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef):
        return ""
    # The comment lines right above the first statement: between it and the signature
    # (whose continuation lines, if any, are code) there is nothing else.
    opening: list[str] = []
    for line in reversed(lines[definition.lineno:definition.body[0].lineno - 1]):
        if not line.strip().startswith("#"):
            break
        opening.insert(0, line.strip())
    return "\n".join(opening[:limit])


def describe_failure(text: str, limit: int = 25) -> str:
    """A short failure report: hypothesis' drawn inputs read as ``failing input: x of shape
    (2, 3), ...`` instead of reprs (the test-case repr and hypothesis' coverage explanation
    are dropped), and only the last ``limit`` other lines are kept.

    When hypothesis found several distinct failures it raises an exception group, which
    Python prints with a ``| `` gutter on every line and the sub-failures one after the
    other; keeping the last lines of that would show the last sub-failure only, cut, with
    its reprs. So the group is taken apart first: the first failure is shown in full, the
    others by their failing input and error lines (each may be a different bug)."""
    text = text.replace(f'"{ROOT}{os.sep}', '"')  # tracebacks' paths, relative to the tree
    group = split_exception_group(text)
    if group is None:
        inputs, kept = _read_failure(text)
        return "\n".join([*_inputs_line(inputs), *kept[-limit:]])
    summary, failures = group
    first, *others = failures
    lines = [f"{summary} The first, in full:", describe_failure(first, limit)]
    if others:
        lines.append(f"The other {'one' if len(others) == 1 else len(others)}, "
                     f"{'its error' if len(others) == 1 else 'their errors'} only:")
    for other in others[:4]:
        while (inner := split_exception_group(other)) is not None:  # a group in the group
            other = inner[1][0]
        inputs, kept = _read_failure(other)
        lines += [*_inputs_line(inputs), *_error_lines(kept)]
    if len(others) > 4:
        lines.append(f"... and {len(others) - 4} more")
    return "\n".join(lines)


# How Python prints an exception group (hypothesis raises one for several distinct
# failures): the group's own traceback behind a "| " gutter, then each sub-exception
# behind a gutter two columns further in, between numbered rules:
#   + Exception Group Traceback (most recent call last):
#   |   File ...
#   | ExceptionGroup: Hypothesis found 2 distinct failures. (2 sub-exceptions)
#   +-+---------------- 1 ----------------
#     | Traceback (most recent call last): ...
#     +---------------- 2 ----------------
#     | ...
#     +------------------------------------
_FIRST_SUB_RULE = re.compile(r"( *)\+-\+-+ 1 -+")
_GROUP_LINE = re.compile(r"(?:\w+\.)*\w*ExceptionGroup: (.*?)(?: \(\d+ sub-exceptions?\))?")


def split_exception_group(text: str) -> tuple[str, list[str]] | None:
    """``(summary, one text per sub-failure)`` of a printed exception group, the gutter
    taken off (None when ``text`` holds none). The summary is the group's message
    ("Hypothesis found 2 distinct failures."); a sub-exception that is itself a group stays
    as one text, its own gutter and rules intact, for a second call to take apart. Python
    elides sub-exceptions beyond the 15th: the line that says so is not a failure."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _FIRST_SUB_RULE.fullmatch(line)), None)
    if start is None:
        return None
    outer = len(_FIRST_SUB_RULE.fullmatch(lines[start]).group(1))  # the group's gutter
    inner = outer + 2  # its sub-exceptions' gutter
    summary = "Several distinct failures."
    for line in lines[:start]:
        found = _GROUP_LINE.fullmatch(_ungutter(line, outer).strip())
        if found:
            summary = found.group(1)
    subs: list[list[str]] = [[]]
    next_rule = re.compile(rf" {{{inner}}}\+-+ (?:\d+|\.\.\.) -+")
    closing_rule = re.compile(rf" {{{inner}}}\+-+")
    for line in lines[start + 1:]:
        if next_rule.fullmatch(line):
            subs.append([])
        elif closing_rule.fullmatch(line):
            break
        else:
            subs[-1].append(_ungutter(line, inner))
    failures = ["\n".join(sub) for sub in subs
                if sub and not re.fullmatch(r"and \d+ more exceptions?", "\n".join(sub).strip())]
    return (summary, failures) if failures else None


def _ungutter(line: str, column: int) -> str:
    """``line`` without the ``| `` gutter at ``column`` (and the spaces before it)."""
    if line[:column].strip():
        return line
    rest = line[column:]
    if rest.startswith("|"):
        return rest[2:] if rest.startswith("| ") else rest[1:]
    return rest


def _read_failure(text: str) -> tuple[list[str], list[str]]:
    """One failure's text read: hypothesis' failing inputs (the test's arguments and its
    draws, described, see _describe_inputs) and its other lines, with hypothesis'
    test-case repr, explanation and ``@reproduce_failure`` advice left out, and no blank
    line at the end."""
    inputs: list[str] = []
    kept: list[str] = []
    skipping = None  # the kind of hypothesis block being dropped
    call: str | None = None  # a "Failing test case: test_x(...)" being read
    pending: tuple[str | None, str] | None = None  # a "Draw N (label): repr" being read
    for line in text.splitlines():
        bare = re.sub(r"^E {0,3}", "", line).rstrip()
        if call is not None:
            call += "\n" + bare
            if _balance(call) <= 0:
                inputs += _call_inputs(call)
                call = None
            continue
        if skipping == "explanation":
            if bare.startswith(" ") or not bare:
                continue
            skipping = None
        case = re.match(r"\s*(?:Falsifying example|Failing test case): (.*)$", bare)
        if case:
            call = case.group(1)
            if _balance(call) <= 0:
                inputs += _call_inputs(call)
                call = None
            continue
        if bare.strip() == "Explanation:":
            skipping = "explanation"
            continue
        if _REPRODUCE_BLOB.match(bare.strip()):  # version-bound advice (print_blob)
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
    while kept and not re.sub(r"^E\s*", "", kept[-1]).strip():  # no trailing blank ("E   ")
        kept.pop()
    return inputs, kept


def _call_inputs(call: str) -> list[str]:
    """The arguments of hypothesis' ``test_x(n=4, x=array(...))``, each described (the
    ``data=data(...)`` of a test that draws is left out: its draws follow; an object of
    the tests' registries is named, see ``_named_object``). An object's ``<...>`` repr
    reads as ``_``; a call that is still not Python is shown as it is, cut short."""
    # An object's "<function f at 0x...>" repr is no Python: read as a name, "_".
    source = re.sub(r"<[^<>\n]*>", "_", call.strip())
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError:
        return [_describe_inputs(None, source)]
    if not isinstance(tree, ast.Call):
        return [_describe_inputs(None, source)]
    described = []
    for keyword in tree.keywords:
        value = keyword.value
        if keyword.arg is None or (
            isinstance(value, ast.Call) and getattr(value.func, "id", None) == "data"
        ):
            continue
        named = _named_object(value)
        described.append(f"{keyword.arg} = {named}" if named else
                         _describe_inputs(keyword.arg, ast.get_source_segment(source, value)))
    return described


def _named_object(node: ast.AST) -> str | None:
    """``LayerCase('affine')`` for a repr such as ``LayerCase(name='affine', kind=...,
    forward=<function ...>)``: an object of the tests' registries, by its name (its
    fields are the test's fixed set-up, not the input that failed)."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        return None
    name = next((k.value.value for k in node.keywords if k.arg == "name"
                 and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)),
                None)
    return None if name is None else f"{node.func.id}({name!r})"


_REPRODUCE_BLOB = re.compile(r"You can reproduce this (?:test case|example) by temporarily "
                             r"adding @reproduce_failure")


def _inputs_line(inputs: list[str]) -> list[str]:
    return [f"failing input: {', '.join(inputs)}"] if inputs else []


def _error_lines(lines: list[str], limit: int = 6) -> list[str]:
    """The lines of a traceback that name the error (those after its last frame), at most
    ``limit``: what tells one failure from another."""
    last_frame = max((i for i, line in enumerate(lines)
                      if re.match(r'\s*File ".*", line \d+', line)), default=None)
    if last_frame is None:
        return [line for line in lines if line.strip()][-limit:]
    end = last_frame + 1
    while end < len(lines) and lines[end].startswith("    "):  # the frame's code and carets
        end += 1
    error = [line for line in lines[end:] if line.strip()]
    return error[:limit] + (["..."] if len(error) > limit else [])


def _balance(text: str) -> int:
    """Open brackets minus closed ones (a repr continues on the next line while positive)."""
    return sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")


def _describe_inputs(label: str | None, text: str) -> str:
    """A drawn input as a student reads it: a large array by its shape, a small one by its
    values (with its shape too when it has two or more axes: a shape bug shows there)."""
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
        elif getattr(value, "ndim", 0) > 1:  # a small matrix: its shape may be the bug
            parts.append(f"{name} of shape {tuple(value.shape)} = {value.tolist()!r}")
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


STALE_MARGIN_S = 3  # seconds: see changed_since_saved


def changed_since_saved(notebook: Path) -> list[str]:
    """The files of course/ changed after ``notebook`` was last saved, oldest name first:
    its saved outputs came from the code before those changes (the grade runs the code as
    it is now). Empty when the notebook or course/ is not there. Files written within
    STALE_MARGIN_S of the notebook do not count: a clone or an unzipped release writes
    them all at once (zip keeps times to 2 s), and none of them is a change."""
    try:
        saved = notebook.stat().st_mtime
    except OSError:
        return []
    return sorted(str(path.relative_to(ROOT)) for path in (ROOT / "course").rglob("*.py")
                  if path.stat().st_mtime > saved + STALE_MARGIN_S)



def _stale_hint(row: Row) -> str:
    """For a notebook task scored from saved outputs older than the code: say so."""
    if row.status not in ("PASS", "FAIL") or row.unreadable:
        return ""
    changed = changed_since_saved(NOTEBOOKS_DIR / f"{row.task.notebook}.ipynb")
    if not changed:
        return ""
    more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
    return (f" (saved before {changed[0]}{more} changed: run its cells again and save "
            "to score the code as it is now)")


def _notebook_note(row: Row) -> str:
    """What a notebook task's row adds after its title: where it stands and what to do."""
    where = f"notebooks/{row.task.notebook}.ipynb"
    if row.status == "PASS":
        return f"; from the outputs saved in {where}{_stale_hint(row)}"
    if row.status == "TODO":
        return f"; still a stub in {where}"
    if row.unreadable:  # running its cells again cannot help: the file is broken
        return f"; {where} cannot be read: restore it (see make check TASK={row.task.id})"
    if row.status == "NOT RUN":
        return f"; run its cells in {where} and save the notebook"
    failed = next((s for s in row.saved if s.ran and not s.passed), None)
    reason = failed.reason if failed else ""
    return f"; {reason if len(reason) <= 90 else reason[:87] + '...'}{_stale_hint(row)}"


def _row_line(row: Row) -> str:
    task = row.task
    points = task_points(task)
    got = points if row.status == "PASS" else 0
    score = f"{got}/{points}"
    line = f"{task.id:<6} | {row.status:<8} | {score:>6} | {task.title} ({task.function})"
    if task.checked_by == "notebook":
        return line + _notebook_note(row)
    if row.needs:
        needs = ", ".join(row.needs)
        line += (f"; some of its tests need {needs} first" if row.status == "FAIL"
                 else f"; needs {needs} first")
    if row.printed and not row.own_failures:
        line += "; its code prints to stdout, which fails the grade's check cells"
    return line


# The test file that judges a notebook's layer tasks (course/layers.py) on their own:
# hand-derived answers and properties. Every layer's backward pass also meets its numeric
# gradient in test_layers.py, which test_<module>.py names. Other files compare a task
# with given code (test_fast_layers.py: the fast layers) or check its interface
# (test_cs231n_compat.py). tests/test_scoreboard.py checks that each file holding task
# tests is one or the other.
OWN_TEST_FILE_OF_NOTEBOOK = {
    "BatchNormalization": "test_normalization.py",
    "Dropout": "test_dropout.py",
    "ConvolutionalNetworks": "test_conv.py",
}
CROSS_CHECK_TEST_FILES = frozenset({"test_fast_layers.py", "test_cs231n_compat.py"})


def own_test_files(task: Task) -> set[str]:
    """The names of the test files that judge ``task``'s code on its own (known answers,
    numeric gradients, properties): ``test_<module>.py`` of its module, and its notebook's
    file for the layers (test_conv.py for a pooling task)."""
    own = {f"test_{Path(task.path).stem}.py"}
    if task.notebook in OWN_TEST_FILE_OF_NOTEBOOK:
        own.add(OWN_TEST_FILE_OF_NOTEBOOK[task.notebook])
    return own


def _own_module_first(task: Task, nodeids: list[str]) -> list[str]:
    """nodeids with those of the task's own test files first (``own_test_files``), each
    group in its order but for its known-answer tests, which come first: the own files
    judge the student's code on its own, where the others compare it with given code,
    the fast layers say, whose failure reads as if the given code were wrong."""
    own = own_test_files(task)
    # Within a group, the hand-derived known answers first: their opening comment says
    # where the expected values come from, which a property test's failure cannot.
    return sorted(nodeids, key=lambda nodeid: (
        nodeid.split("::")[0].rsplit("/")[-1] not in own, "known_answer" not in nodeid))


def _failure_block(nodeid: str) -> str:
    """A failed test as the task report shows it: its id, the comment that opens it
    (where its known values come from), then the failure."""
    about = opening_comment(_FAILED_FUNCTIONS.get(nodeid))
    return "\n".join(part for part in (f"FAILED {nodeid}", about,
                                        describe_failure(_FAILURES.get(nodeid, ""))) if part)


def _stopped_at(row: Row, record: dict[str, str]) -> tuple[list[str], int, str]:
    """The other tasks ``record`` (node ID -> task: a stub hit, a time-out waited for)
    names for the row's stopped tests, how many tests, and those tasks with functions."""
    tasks = sorted({record[n] for n in row.stopped_by if n in record}, key=task_sort_key)
    count = sum(n in record for n in row.stopped_by)
    return tasks, count, ", ".join(f"{t} ({TASKS_BY_ID[t].function})" for t in tasks)


def _task_report(row: Row, rows: dict[str, Row]) -> str:
    """What ``make check TASK=<id>`` says above the table about one task that does not pass."""
    task = row.task
    lines: list[str] = []
    if row.status == "TODO":
        lines.append(f"task {task.id} ({task.function}) is still a stub: write it in "
                     f"{task.path} (its TODO line says where).")
    if task.checked_by == "notebook" and row.status != "PASS":
        lines += [f"task {task.id}, {_check_cell_location(f'{s.notebook}/{s.name}')}: "
                  f"{'passed' if s.passed else s.reason}" for s in row.saved]
        if row.unreadable:
            lines.append(f"notebooks/{task.notebook}.ipynb is not a notebook Jupyter can "
                         "open any more (an editor may have cut it short). Restore it: from "
                         "a copy of your own, or the release's version (git checkout -- "
                         f"notebooks/{task.notebook}.ipynb in a git clone), then run its "
                         "cells again and save.")
        elif row.status in ("NOT RUN", "FAIL"):
            lines.append(f"task {task.id} is scored from the outputs saved in "
                         f"notebooks/{task.notebook}.ipynb: run its cells, then save the "
                         "notebook (make check runs no notebook).")
    if row.printed and row.status == "FAIL":
        nodeid, first_line = row.printed
        shown = first_line if len(first_line) <= 80 else first_line[:77] + "..."
        lines.append(f"task {task.id} ({task.function}): code its tests ran printed to "
                     f"stdout ({shown!r}, in {nodeid}). The notebooks' check cells print "
                     "only their verdicts, and the grade compares what each prints with "
                     "the reference: a print left in course/ code fails every check cell "
                     "that calls it. Remove it (print to sys.stderr while you debug: that "
                     "is not compared).")
    own_failures = row.own_failures
    if task.id in _TIMED_OUT:  # where its code was stopped, whichever task's test it was
        stopped = _TIMED_OUT[task.id]
        skipped = sum(n in _NOT_RUN for n in own_failures)
        lines.append(f"task {task.id} ({task.function}): its code ran longer than the time "
                     f"limit and was stopped (a loop that never ends?); "
                     f"{skipped} more of its tests were then not run.\n"
                     f"{_failure_block(stopped)}")
        own_failures = [n for n in own_failures if n not in _NOT_RUN and n != stopped]
    if own_failures:
        first, *others = _own_module_first(task, own_failures)
        lines.append(_failure_block(first))
        if others:
            shown = "\n".join(f"  {nodeid}" for nodeid in others[:10])
            more = f"\n  ... and {len(others) - 10} more" if len(others) > 10 else ""
            lines.append(f"{len(others)} more failing test(s) of task {task.id}:\n{shown}{more}")
    stubbed, count, names = _stopped_at(row, _STUB_HIT)
    if stubbed:
        lines.append(f"task {task.id}: {count} of its tests stopped at the stub of "
                     f"{names}, which they call: write {' and '.join(stubbed)} first.")
    waited, count, names = _stopped_at(row, _WAITED_FOR)
    if waited:
        lines.append(f"task {task.id}: {count} of its tests were not run: they build on "
                     f"{names}, whose code ran past the time limit in an earlier test. "
                     f"Make it end first (make check TASK={waited[0]}).")
    failing = sorted(set(row.needs) - set(stubbed) - set(waited), key=task_sort_key)
    called = [n for n in row.stopped_by if n not in _STUB_HIT and n not in _WAITED_FOR]
    if failing and called:
        names = ", ".join(f"{t} ({TASKS_BY_ID[t].function}, {rows[t].status})"
                          for t in failing if t in rows)
        lines.append(f"task {task.id}: {len(called)} of its tests failed after calling code "
                     f"of tasks that do not pass yet: {names}. The failures may be theirs: "
                     f"make those pass first (make check TASK={failing[0]}).")
        # The failure itself may still be this task's own mistake: show the first one.
        first = next((n for n in _own_module_first(task, called) if n in _FAILURES), None)
        if first is not None:
            lines.append(f"The first of them (its cause may be in either task):\n"
                         f"{_failure_block(first)}")
    return "\n".join(lines)


def print_scoreboard(config: pytest.Config, rows: dict[str, Row]) -> None:
    """Write the scoreboard (and, with --task, what stops each task) to stdout."""
    wanted = set(wanted_tasks(config))
    shown = [t for t in TASKS if not wanted or t.id in wanted]
    out = sys.stdout
    for line in _collect_error_lines():
        out.write(line + "\n\n")
    if wanted:
        for task in shown:
            row = rows.get(task.id)
            report = _task_report(row, rows) if row is not None else ""
            if report:
                out.write(report + "\n\n")
    header = f"{'TASK':<6} | {'STATUS':<8} | {'POINTS':>6} | DESCRIPTION"
    out.write(header + "\n" + "-" * (len(header) + 30) + "\n")
    for task in shown:
        out.write(_row_line(rows[task.id]) + "\n")
    shown_rows = [rows[t.id] for t in shown]
    done = sum(row.status == "PASS" for row in shown_rows)
    earned = sum(task_points(row.task) for row in shown_rows if row.status == "PASS")
    possible = sum(task_points(row.task) for row in shown_rows)
    out.write(f"Total: {earned} of {possible} points; {done} of {len(shown_rows)} tasks "
              "pass.\n")
    notebook_tasks = [t.id for t in shown if t.checked_by == "notebook"]
    if notebook_tasks:
        out.write(f"Notebook task{'s' if len(notebook_tasks) > 1 else ''} "
                  f"{', '.join(notebook_tasks)}: scored from the outputs saved in your "
                  "notebooks (run the cells, then save).\n")
    if done < len(shown_rows):
        out.write(
            "TODO = still a stub; FAIL = written but wrong; BLOCKED = its tests stopped in "
            "a task that does not pass yet (fix the one after 'needs' first); NOT RUN = a "
            "notebook task whose check cell has no saved output.\n"
            + ("" if wanted else "Details of one task: make check TASK=<id>\n")
        )
    out.flush()
