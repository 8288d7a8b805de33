"""Run every hidden check of one built sandbox and decide each task.

1. ``prepare``: draw the cases from the secret seed and compute each reference answer
   in this process, with the same driver on the solution's own ``course`` (trusted code,
   imported here; the solution is never put where the worker can see it).
2. ``execute``: write the cases (data only) and the worker into a control folder and
   launch the worker on the sandbox; it writes one result per case into the one folder it
   may write. A case that hangs or kills the worker is blamed, the task's remaining cases
   are skipped, and the worker starts again at the next task.
3. ``decide``: read each result through ``transport.read_message`` (no pickle, capped)
   and judge it (``kit.hidden.judge``); a task passes when all its cases do.

The grader process never imports the submission: the sandbox's ``course`` is only ever
imported by the worker.
"""

from __future__ import annotations

import functools
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from course.tasks import TASKS_BY_ID
from kit.hidden import drivers, transport
from kit.hidden.cases import Case, generate
from kit.hidden.judge import judge
from kit.hidden.launcher import Launched, chosen_mode, launch, open_for_sandbox_user

HERE = Path(__file__).resolve().parent
SOLUTION = HERE.parent.parent  # the solution tree: never visible to the worker
WORKER_FILES = ("worker.py", "drivers.py", "transport.py")


@dataclass(frozen=True)
class HiddenLimits:
    case_seconds: float = 10.0  # one case (the worker's alarm)
    total_seconds: float = 240.0  # every launch of one sandbox together
    startup_seconds: float = 30.0  # added to each launch's timeout: imports
    memory_mb: int = 2048  # the worker's memory
    max_pids: int = 32
    disk_mb: int | None = None  # what the worker may write (None: kit.isolation's default)
    isolation: str | None = None  # kit.isolation's mode; None: the best this machine has
    fallback: bool = True  # without any isolation, a plain subprocess (False: refuse)


@dataclass(frozen=True)
class Prepared:
    """The cases of one grading run and their reference answers (reusable across
    submissions of the run)."""

    seed: int
    cases: list[Case]
    expected: list[Any]


@dataclass
class CaseOutcome:
    task: str
    label: str
    passed: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class TaskVerdict:
    """The hidden checks' verdict on one task."""

    task: str
    function: str
    passed: bool
    cases: list[CaseOutcome]
    feedback: list[str]  # one line per failed case: task, edge case, output, property

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "function": self.function, "passed": self.passed,
                "cases": len(self.cases), "failed": sum(not c.passed for c in self.cases),
                "feedback": self.feedback}


@dataclass
class HiddenReport:
    """Everything the hidden checks decided about one sandbox."""

    tasks: dict[str, TaskVerdict]
    isolation: str
    launches: int
    seconds: float
    notes: list[str] = field(default_factory=list)  # for the instructor (worker stderr...)

    @property
    def failed(self) -> list[str]:
        return [task for task, verdict in self.tasks.items() if not verdict.passed]

    def to_json(self) -> dict[str, Any]:
        return {"isolation": self.isolation, "launches": self.launches,
                "seconds": round(self.seconds, 2), "notes": self.notes,
                "tasks": {task: v.to_json() for task, v in self.tasks.items()}}


# ---------------------------------------------------------------------------------------
# 1. Cases and reference answers
# ---------------------------------------------------------------------------------------

def new_seed() -> int:
    """A secret seed for one grading run (never written where student code runs)."""
    return secrets.randbits(63)


def reference(case: Case) -> Any:
    """The solution's answer to a case, computed here with the same driver."""
    try:
        return drivers.run(case.driver, case.spec, drivers.resolve)
    except Exception as error:
        raise RuntimeError(f"hidden check of task {case.task} ({case.label}): the solution "
                           f"itself fails on this case: {error!r}") from error


def check_solution_package() -> None:
    """The ``course`` this process imports must be the solution tree's: imported from
    anywhere else (a submission's folder as the working directory, say), the reference
    answers would be that code's, and the grader would run it."""
    import course

    found = Path(course.__file__).resolve()
    if found != (SOLUTION / "course" / "__init__.py").resolve():
        raise RuntimeError(f"the grader imports course from {found.parent}, not from the "
                           f"solution tree {SOLUTION}: run the kit from the solution tree")


def prepare(seed: int | None = None, tasks: Iterable[str] | None = None) -> Prepared:
    """The cases of a grading run (a fresh secret seed unless given) and the solution's
    answers to them."""
    check_solution_package()
    seed = new_seed() if seed is None else seed
    cases = generate(seed, tasks)
    return Prepared(seed, cases, [reference(case) for case in cases])


# ---------------------------------------------------------------------------------------
# 2. The worker
# ---------------------------------------------------------------------------------------

def result_path(results: Path, index: int) -> Path:
    return results / f"case-{index:04d}.npz"


RESULT_NAME = re.compile(r"case-\d{4}\.npz")


def drop_what_is_not_a_result(results: Path) -> None:
    """Remove from the results folder (the grader's, the worker's home) all but the case
    results: files the student's code wrote there would otherwise count against the
    disk cap of every later launch, and stay on the disk until the end of the batch."""
    for entry in list(results.iterdir()):
        if RESULT_NAME.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _worker_env(results: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(results), "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _write_control(control: Path, cases: list[Case]) -> None:
    control.mkdir()
    for name in WORKER_FILES:
        shutil.copy(HERE / name, control / name)
    transport.write_message(control / "request.npz", {"cases": [
        {"task": case.task, "driver": case.driver, "spec": case.spec} for case in cases]})


WATCHDOG_EXIT = 124  # worker.Watchdog.EXIT_STATUS


def _why(launched: Launched, limits: HiddenLimits) -> str:
    if launched.timed_out or launched.returncode == WATCHDOG_EXIT:
        return (f"timeout: the case ran longer than {limits.case_seconds:g} s and ignored "
                f"its alarm")
    if launched.memory_exceeded:
        return f"memory: the case needed more than the {limits.memory_mb} MB the worker has"
    if launched.disk_reason:  # "disk: wrote more than N MB": the sandbox's disk cap
        return launched.disk_reason
    code = launched.returncode
    if code is not None and (code < 0 or code > 128):  # signal N: -N, or 128 + N from bwrap
        signal_number = -code if code < 0 else code - 128
        return f"the worker process was killed by signal {signal_number} (memory or a crash)"
    return f"the worker process ended with status {code} in the middle of this case"


def execute(box: Path, cases: list[Case], limits: HiddenLimits,
            workdir: Path) -> tuple[dict[int, str], list[Launched]]:
    """Run the worker until every case has a result or a blame; return the blames."""
    control, results = workdir / "control", workdir / "results"
    _write_control(control, cases)
    results.mkdir()
    if chosen_mode(limits.isolation) == "user":
        open_for_sandbox_user(box, workdir)
    blamed: dict[int, str] = {}
    launches: list[Launched] = []
    deadline = time.monotonic() + limits.total_seconds
    start = 0
    while start < len(cases):
        left = deadline - time.monotonic()
        if left <= 0:
            blamed.update({i: "not run: the hidden checks' time budget was used up"
                           for i in range(start, len(cases))
                           if not result_path(results, i).exists()})
            break
        timeout = min(left, limits.startup_seconds
                      + 2 * limits.case_seconds * (len(cases) - start))
        argv = [sys.executable, "-I", str(control / "worker.py"), str(control), str(box),
                str(results), str(start), str(limits.case_seconds),
                str(limits.memory_mb)]
        # Only the package: the sandbox's notebooks hold reference outputs.
        launched = launch(argv, readable=[control, box / "course"], writable=[results],
                          cwd=results, env=_worker_env(results), memory_mb=limits.memory_mb,
                          max_pids=limits.max_pids, timeout=timeout, protect=[SOLUTION],
                          mode=limits.isolation, fallback=limits.fallback,
                          disk_mb=limits.disk_mb)
        launches.append(launched)
        drop_what_is_not_a_result(results)
        missing = next((i for i in range(start, len(cases))
                        if not result_path(results, i).exists()), None)
        if missing is None:
            break
        blamed[missing] = _why(launched, limits)
        start = _next_task_start(cases, missing, blamed)
    return blamed, launches


def _next_task_start(cases: list[Case], culprit: int, blamed: dict[int, str]) -> int:
    """Skip the culprit's task: its later cases likely repeat what stopped the worker."""
    task = cases[culprit].task
    index = culprit + 1
    while index < len(cases) and cases[index].task == task:
        blamed[index] = "not run: an earlier case of this task stopped the worker"
        index += 1
    return index


# ---------------------------------------------------------------------------------------
# 3. Verdicts
# ---------------------------------------------------------------------------------------

# What a message of the student's code could show of a hidden input: bracketed values (an
# array's repr) and non-integer numbers. Shapes (tuples of ints) and names stay readable,
# and so do the course's task IDs after "task " (every stub's message names its task:
# "task 1.1 (affine_forward): not written yet"); any other "task 0.37" is masked.
ARRAY_TEXT = re.compile(r"\[[^\[\]]*\]")
FLOAT_TEXT = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?")
TASK_TEXT = re.compile(r"(?<![\w.])task (\d+\.\d+)(?![\w.])")


def masked(message: str) -> str:
    """An error message of the student's code with any value it might quote hidden."""
    for _ in range(4):  # nested brackets, innermost first
        message = ARRAY_TEXT.sub("[...]", message)
    pieces, end = [], 0
    for found in TASK_TEXT.finditer(message):
        if found.group(1) in TASKS_BY_ID:
            pieces += [FLOAT_TEXT.sub("<number>", message[end:found.start()]), found.group()]
            end = found.end()
    return "".join([*pieces, FLOAT_TEXT.sub("<number>", message[end:])])


def decide_case(case: Case, expected: Any, path: Path, blame: str | None) -> CaseOutcome:
    if blame is not None:
        return CaseOutcome(case.task, case.label, False, [blame])
    try:
        result = transport.read_message(path)
    except transport.MessageError as error:
        return CaseOutcome(case.task, case.label, False, [f"unreadable result: {error}"])
    if not isinstance(result, dict) or result.get("ok") not in (True, False):
        return CaseOutcome(case.task, case.label, False, ["malformed result"])
    if result["ok"] is False:
        error = result.get("error")
        error = masked(error) if isinstance(error, str) else "unknown"
        said = error if error.startswith("timeout:") else f"error: {error}"
        return CaseOutcome(case.task, case.label, False, [said])
    problems = judge(case, expected, result.get("outputs"))
    return CaseOutcome(case.task, case.label, not problems, [str(p) for p in problems])


def task_functions() -> dict[str, str]:
    from course.tasks import TASKS  # the solution's table

    return {task.id: task.function for task in TASKS}


def own_work_outcomes(box: Path, tasks: Iterable[str]) -> list[CaseOutcome]:
    """A failed outcome for each of ``tasks`` whose function calls given code it may not
    (``course.own_work``: a naive layer that calls the fast one), read from the
    submission's source as text on the grader's side, never imported or run."""
    from course.own_work import FORBIDDEN_MODULES, given_calls
    from kit import markers

    outcomes = []
    for task_id in sorted(set(tasks) & FORBIDDEN_MODULES.keys()):
        task = TASKS_BY_ID[task_id]
        try:
            source = (box / task.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # no such file: the task's cases fail on their own
        found = given_calls(source, task.function, FORBIDDEN_MODULES[task_id],
                            parse=markers.parse_python)  # kit grade runs threads
        if found:
            outcomes.append(CaseOutcome(task_id, "written, not delegated", False, [
                f"calls the given {FORBIDDEN_MODULES[task_id]}: {', '.join(found)}; the "
                "task is to write it, so it gets no points while it calls them"]))
    return outcomes


def verdicts(cases: list[Case], outcomes: list[CaseOutcome],
             rules: Iterable[CaseOutcome] = ()) -> dict[str, TaskVerdict]:
    """One verdict per task, in table order; feedback names the task, the edge case and
    the output's failed property, and a prerequisite that failed too. ``rules``: more
    outcomes of the tasks, decided without running anything (``own_work_outcomes``)."""
    from course.tasks import prerequisites

    functions = task_functions()
    by_task: dict[str, list[CaseOutcome]] = {}
    for case, outcome in zip(cases, outcomes, strict=True):
        by_task.setdefault(case.task, []).append(outcome)
    for outcome in rules:
        if outcome.task in by_task:  # only tasks this run checks
            by_task[outcome.task].append(outcome)
    failed = {task for task, found in by_task.items() if not all(o.passed for o in found)}
    result = {}
    for task, found in by_task.items():
        name = functions.get(task, "?")
        lines = _feedback_lines(task, name, [o for o in found if not o.passed])
        culprits = sorted(prerequisites(task) & failed)
        if lines and culprits:
            lines.append(f"task {task} calls the code of task(s) {', '.join(culprits)}, "
                         f"which failed hidden checks of their own")
        result[task] = TaskVerdict(task, name, not lines, found, lines)
    return result


def without_other_task(box: Path, folder: Path, task_id: str) -> Path:
    """A copy of the sandbox's ``course/`` in ``folder`` in which the function task
    ``task_id`` may not call (``course.own_work.FORBIDDEN_FUNCTIONS``: 2.2 and 2.3, the
    two batchnorm backward passes) refuses to run (``course.own_work.without_function``):
    the task's cases run there, so one that calls the other task's function fails however
    the call is spelled. The file is rewritten on the grader's side, as text."""
    from course.own_work import FORBIDDEN_FUNCTIONS, without_function
    from kit import markers

    _copy_course(box, folder)
    target = folder / TASKS_BY_ID[task_id].path
    try:
        source = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return folder  # no such file: the task's cases fail on their own
    _replace_file(target, without_function(source, FORBIDDEN_FUNCTIONS[task_id],
                                           parse=markers.parse_python))
    return folder


def _copy_course(box: Path, folder: Path) -> None:
    """The sandbox's ``course/`` copied into ``folder``, links kept as links."""
    shutil.copytree(box / "course", folder / "course", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))


def _replace_file(target: Path, text: str) -> None:
    """``target`` rewritten as ``text``: a link the copy kept is replaced, not followed."""
    target.unlink(missing_ok=True)
    target.write_text(text, encoding="utf-8")


def without_given_layers(box: Path, folder: Path) -> Path:
    """A copy of the sandbox's ``course/`` in ``folder``, in which each module of
    ``course.own_work.FORBIDDEN_MODULES`` is the stand-in that refuses every call
    (``course.own_work.stand_in_source``): the naive layers' cases run there, so one that
    reaches the given fast layers fails however the call is spelled. The stand-in lists
    the solution's own names of the module (trusted code, imported here)."""
    import importlib

    from course.own_work import FORBIDDEN_MODULES, stand_in_source

    _copy_course(box, folder)
    for module in sorted(set(FORBIDDEN_MODULES.values())):
        exported = getattr(importlib.import_module(module), "__all__", [])
        _replace_file(folder.joinpath(*module.split(".")).with_suffix(".py"),
                      stand_in_source(module, exported))
    return folder


def _feedback_lines(task: str, name: str, failed: list[CaseOutcome]) -> list[str]:
    """One line per distinct problem of a task's failed cases, naming the cases that had
    it: a problem every case shares (a refused call, an error at import) reads once."""
    by_problem: dict[str, list[str]] = {}
    for outcome in failed:
        by_problem.setdefault(outcome.problems[0] if outcome.problems else "?",
                              []).append(outcome.label)
    lines = []
    for problem, labels in by_problem.items():
        cases = labels[0] if len(labels) == 1 else f"{len(labels)} cases ({', '.join(labels)})"
        lines.append(f"task {task} ({name}), {cases}: {problem}")
    return lines


def run_prepared(box: Path, prepared: Prepared, limits: HiddenLimits = HiddenLimits(),
                 workdir: Path | None = None) -> HiddenReport:
    """The hidden checks of ``prepared`` on the sandbox ``box`` (its ``course/``). The
    cases of the tasks that may not call given code (``course.own_work``) run on a copy
    without it (``without_given_layers``), in a launch of their own, and so do those of
    each task that may not call another task's function (``without_other_task``)."""
    from course.own_work import FORBIDDEN_FUNCTIONS, FORBIDDEN_MODULES

    started = time.monotonic()
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="kit-hidden-")) if workdir is None else workdir
    box = Path(box).resolve()
    cases = prepared.cases
    ruled = FORBIDDEN_MODULES.keys() | FORBIDDEN_FUNCTIONS.keys()
    groups: list[tuple[str, Callable[[Path], Path] | None, list[int]]] = [
        ("all", None, [i for i, case in enumerate(cases) if case.task not in ruled]),
        ("own-work", lambda folder: without_given_layers(box, folder),
         [i for i, case in enumerate(cases) if case.task in FORBIDDEN_MODULES])]
    groups += [(f"own-work-{task}", functools.partial(without_other_task, box, task_id=task),
                [i for i, case in enumerate(cases) if case.task == task])
               for task in sorted(FORBIDDEN_FUNCTIONS)]
    by_index: dict[int, CaseOutcome] = {}
    launches: list[Launched] = []
    if chosen_mode(limits.isolation) == "user":
        workdir.chmod(0o711)  # the sandbox user passes through to its groups' folders
    try:
        for name, copy, indices in groups:
            if not indices:
                continue
            folder = workdir / name
            folder.mkdir()
            group_box = box if copy is None else copy(folder / "box")
            left = limits.total_seconds - (time.monotonic() - started)
            blamed, launched = execute(group_box, [cases[i] for i in indices],
                                       replace(limits, total_seconds=max(left, 0.0)), folder)
            launches += launched
            for j, i in enumerate(indices):
                by_index[i] = decide_case(cases[i], prepared.expected[i],
                                          result_path(folder / "results", j), blamed.get(j))
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    outcomes = [by_index[i] for i in range(len(cases))]
    notes = [f"worker stderr: {launched.stderr[-600:]}" for launched in launches
             if launched.returncode not in (0, None) and launched.stderr]
    isolation = launches[0].isolation if launches else "none"
    rules = own_work_outcomes(box, {case.task for case in prepared.cases})
    return HiddenReport(verdicts(prepared.cases, outcomes, rules), isolation, len(launches),
                        time.monotonic() - started, notes)


def run_hidden_checks(box: Path, *, seed: int | None = None,
                      tasks: Iterable[str] | None = None,
                      limits: HiddenLimits = HiddenLimits()) -> HiddenReport:
    """Draw the cases (a fresh secret seed unless given), compute the references and
    judge the sandbox ``box``: the one call the grader needs per submission."""
    return run_prepared(box, prepare(seed, tasks), limits)
