"""Shared pytest set-up: hypothesis profiles, ``--task`` selection and the task scoreboard.

* ``pytest --task 1.2`` runs only the tests marked ``@pytest.mark.task("1.2")``
  (repeat the option for several tasks).
* ``pytest --scoreboard`` ends the run with one row per task of ``course.tasks``:
  ``TASK | STATUS | TESTS | DESCRIPTION``. ``make check`` runs it on the task tests.
"""

from __future__ import annotations

import os
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, settings

from course.tasks import TASKS, task_sort_key

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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Tests never download: pin the embedded dataset unless a test says otherwise.
os.environ.setdefault("COURSE_DATASET", "digits")


def pytest_configure(config: pytest.Config) -> None:
    # Registered here as well as in pyproject.toml so that this file works on its own
    # (the scoreboard tests run it in a bare folder).
    config.addinivalue_line("markers", "task(id): the test checks student task `id`")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("course tasks")
    group.addoption(
        "--task",
        action="append",
        default=[],
        metavar="ID",
        help="run only the tests of this student task (e.g. 1.2); may be repeated",
    )
    group.addoption(
        "--scoreboard",
        action="store_true",
        default=False,
        help="print a per-task scoreboard at the end of the run",
    )


def _task_ids(item: pytest.Item) -> list[str]:
    return [str(mark.args[0]) for mark in item.iter_markers("task") if mark.args]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(config.getoption("--task"))
    if wanted:
        known = {task.id for task in TASKS}
        unknown = sorted(wanted - known, key=task_sort_key)
        if unknown:
            raise pytest.UsageError(
                f"--task: unknown task ID(s) {', '.join(unknown)}; "
                f"known: {', '.join(t.id for t in TASKS)}"
            )
        selected, deselected = [], []
        for item in items:
            (selected if wanted & set(_task_ids(item)) else deselected).append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = selected
    config.stash[_TASK_OF_TEST] = {item.nodeid: _task_ids(item) for item in items}


_TASK_OF_TEST = pytest.StashKey[dict]()
# Outcome per test node ID for this session ("passed", "failed", "todo", "skipped").
# A module-level dict because pytest_runtest_logreport receives no config object.
_OUTCOMES: dict[str, str] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    _OUTCOMES.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # A test fails if its set-up, call or tear-down fails; a failure whose traceback
    # ends in NotImplementedError is a stub the student has not written yet.
    if report.failed:
        text = str(report.longrepr) if report.longrepr else ""
        _OUTCOMES[report.nodeid] = "todo" if "NotImplementedError" in text else "failed"
    elif report.nodeid not in _OUTCOMES and (report.when == "call" or report.skipped):
        _OUTCOMES[report.nodeid] = "skipped" if report.skipped else "passed"


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


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not config.getoption("--scoreboard"):
        return
    by_task: dict[str, list[str]] = defaultdict(list)
    for nodeid, task_ids in config.stash.get(_TASK_OF_TEST, {}).items():
        outcome = _OUTCOMES.get(nodeid)
        for task_id in task_ids:
            if outcome is not None:
                by_task[task_id].append(outcome)
    wanted = set(config.getoption("--task"))
    rows = [t for t in TASKS if not wanted or t.id in wanted]
    tw = terminalreporter
    tw.section("task scoreboard")
    header = f"{'TASK':<6} | {'STATUS':<8} | {'TESTS':>7} | DESCRIPTION"
    tw.write_line(header)
    tw.write_line("-" * len(header.expandtabs()) + "-" * 30)
    for task in rows:
        if task.checked_by == "notebook":
            tw.write_line(
                f"{task.id:<6} | {'NOTEBOOK':<8} | {'-':>7} | {task.title} "
                f"(checked by the check cell after it in {task.notebook})"
            )
            continue
        outcomes = by_task.get(task.id, [])
        passed = sum(o == "passed" for o in outcomes)
        status = _task_status(outcomes)
        colour = {"PASS": {"green": True}, "FAIL": {"red": True}, "TODO": {"yellow": True}}
        line = (
            f"{task.id:<6} | {status:<8} | {passed:>3}/{len(outcomes):<3} | "
            f"{task.title} ({task.function})"
        )
        # Its tests call these tasks' code first, so they cannot reach it before then.
        waiting = [r for r in task.requires if _task_status(by_task.get(r, [])) != "PASS"]
        if status == "TODO" and waiting:
            line += f"; needs {', '.join(waiting)} first"
        tw.write_line(line, **colour.get(status, {}))
    tested = [t for t in rows if t.checked_by == "pytest"]
    done = sum(_task_status(by_task.get(t.id, [])) == "PASS" for t in tested)
    tw.write_line(
        f"{done} of {len(tested)} tested tasks pass. "
        "TODO = still a stub; run one task with: make check TASK=<id>"
    )
