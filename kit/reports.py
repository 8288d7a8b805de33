"""What grading found, as typed data, and every report made from it.

The result of grading one submission is a ``GradeResult``: notes on the submission, one
``NotebookRun`` per notebook run, and one ``CheckResult`` per graded check. A check holds
one ``Verdict`` per way of judging it: the notebook's check cell under nbval
(``notebook``), and ``hidden``, the hidden checks of the task the cell grades
(``kit.hidden``: the grader calls the task's code on inputs only it knows and judges
the answers in its own process). A check passes only if every verdict it has passes; the
JSON shows both verdicts side by side. Points belong to tasks, not to check cells
(``course/rubric.py``): a ``TaskResult`` groups the checks of one task and earns the task's
points only when every one of them passes, so ``make check`` and the grade share one
scale. A failed
verdict carries a ``Reason``: its ``kind`` (what the status line and the reports act on)
and the phrase shown to people; nothing reads the phrase back.

Reports, all made from that one type:

* ``<submission>.json``: ``to_json`` / ``from_json`` (the saved form, also what a rerun
  reads back to reuse a result: ``graded_with`` says what it was graded from,
  ``kit.submissions.Fingerprint``);
* ``<submission>.md``: ``feedback_markdown``, for the student;
* ``grades.csv``: ``grades_csv``, one row per submission with a subtotal per notebook
  and the options it was graded with (``kit grade`` writes it from every result in its
  ``--out``: ``load_results``; rows of earlier runs keep their own options);
* the terminal table: ``summary_table``;
* Gradescope's ``results.json``: ``to_gradescope``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from course.notebook_outputs import STUB_MESSAGE
from course.rubric import task_points
from course.tasks import TASKS_BY_ID, prerequisites, task_sort_key
from kit.outputs import write_atomic

TRIM = 1200  # characters of expected / actual output kept per failed check
LINE_LIMIT = 300  # characters of a failed check's first failing line (the code prints it)
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # terminal colour codes in pytest's and nbval's text


class FailureKind(str, Enum):
    """Why a verdict failed (the value is how statuses and reports name it)."""

    WRONG_OUTPUT = "wrong output"
    ERROR = "error"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    KERNEL_DIED = "kernel died"
    WALL_CLOCK = "wall-clock limit"
    RUN_ENDED = "run ended"  # the test run itself ended abnormally
    NOT_RUN = "not run"  # the run stopped before this cell
    UNREADABLE = "unreadable"  # the submission could not be read at all
    SKIPPED = "skipped"  # nbval did not grade the cell (after an earlier cell's timeout)
    NOT_A_SUBMISSION = "not a submission"  # no course/ code, no notebook: nothing was run
    HIDDEN = "hidden check"  # the grader's own check of the task failed (kit.hidden)
    FAILED = "failed"  # none of the above


# A submission's status is the first of these kinds that any of its checks failed with.
SERIOUS = (FailureKind.KERNEL_DIED, FailureKind.MEMORY, FailureKind.TIMEOUT,
           FailureKind.WALL_CLOCK)

# Failures that say nothing about the task's code: its cells were never judged (the run
# stopped or never started, nbval skipped them). Such a task is neither the likely cause
# of other failures nor a task that "may pass once the cause is fixed".
NOT_JUDGED = frozenset({FailureKind.WALL_CLOCK, FailureKind.NOT_RUN, FailureKind.RUN_ENDED,
                        FailureKind.UNREADABLE, FailureKind.SKIPPED,
                        FailureKind.NOT_A_SUBMISSION})


class NoteKind(str, Enum):
    """What a note on the submission says about it."""

    INFO = "info"
    MISSING = "missing"  # a task function or file is not in the submission
    SYNTAX_ERROR = "syntax error"  # a file does not parse: its tasks are stubs
    UNREADABLE = "unreadable"  # the submission, or a file of it, could not be read
    NOT_A_SUBMISSION = "not a submission"  # no course/ code and no notebook in it


@dataclass(frozen=True)
class Note:
    """Something the sandbox noticed about a submission, for the reports."""

    kind: NoteKind
    text: str


@dataclass(frozen=True)
class Reason:
    """Why a verdict failed: its kind, and the phrase shown to people.

    ``kind`` is None only for a reason read back from a saved report (which stores the
    phrase alone); nothing decides anything from such a reason.
    """

    kind: FailureKind | None
    text: str


@dataclass(frozen=True)
class Verdict:
    """One way of judging a check: whether it passed, why not, and the evidence."""

    passed: bool
    reason: Reason | None = None  # None when passed
    expected: str | None = None  # for a failure: what was expected, trimmed
    actual: str | None = None  # ... and what came instead
    line: str = ""  # for a failure: the first line of it a student should read


@dataclass(frozen=True)
class CheckResult:
    """One graded check of a notebook."""

    name: str  # the cell's metadata.check
    notebook: str
    heading: str  # the heading the check cell sits under, as the student sees it
    notebook_verdict: Verdict  # the check cell's outputs under nbval
    hidden: Verdict | None = None  # the hidden checks of its task (None: it has none)
    task: str | None = None  # the task the check cell belongs to (course/rubric.py)

    @property
    def verdicts(self) -> list[Verdict]:
        return [v for v in (self.notebook_verdict, self.hidden) if v is not None]

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    @property
    def reason(self) -> Reason | None:
        """The first failing verdict's reason (the notebook's first)."""
        return next((v.reason for v in self.verdicts if not v.passed), None)

    @property
    def reason_text(self) -> str:
        reason = self.reason
        return reason.text if reason is not None else ""

    @property
    def first_line(self) -> str:
        """The first line of the failure a student should read ("" when it passed)."""
        failing = next((v for v in self.verdicts if not v.passed), None)
        return "" if failing is None else failing.line


@dataclass(frozen=True)
class TaskResult:
    """One task's check cells, and the points they earn together: all or nothing."""

    task: str
    title: str
    notebook: str
    max_points: int
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def points(self) -> int:
        return self.max_points if self.passed else 0

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    @property
    def hidden_failed(self) -> bool:
        """Its hidden checks (the grader's own, on the task's code alone) failed."""
        return any(c.hidden is not None and not c.hidden.passed for c in self.checks)

    @property
    def hidden_passed(self) -> bool:
        """It has hidden checks and they passed: its own code is right."""
        return bool(self.checks) and all(c.hidden is not None and c.hidden.passed
                                         for c in self.checks)

    @property
    def not_judged(self) -> bool:
        """It failed only because its cells were never judged (``NOT_JUDGED``: the run
        ran out of time or stopped before them, nbval skipped them): nothing is known
        about its code."""
        kinds = {v.reason.kind if v.reason is not None else None
                 for c in self.failed_checks for v in c.verdicts if not v.passed}
        return bool(kinds) and kinds <= NOT_JUDGED

    @property
    def only_hidden_failed(self) -> bool:
        """Every check cell passed in the notebook, but the hidden checks failed: a bug
        the notebook does not reach, or tampering."""
        return self.hidden_failed and all(c.notebook_verdict.passed for c in self.checks)


def tasks_of(checks: Iterable[CheckResult]) -> list[TaskResult]:
    """The checks grouped by task, tasks in the course's order (``task_sort_key``: 1.9
    before 1.10), not in the order the notebooks first check them:
    ConvolutionalNetworks checks the sandwich layer of 4.6 before 4.5's initialisation,
    and a report listing 4.6 above 4.5 reads as a mistake. A check that belongs to no
    task (a tree whose rubric does not list it) earns nothing."""
    grouped: dict[str, list[CheckResult]] = {}
    for check in checks:
        if check.task is not None:
            grouped.setdefault(check.task, []).append(check)
    ordered = sorted(grouped, key=task_sort_key)
    return [TaskResult(task, TASKS_BY_ID[task].title if task in TASKS_BY_ID else "",
                       grouped[task][0].notebook, task_points(task), tuple(grouped[task]))
            for task in ordered]


@dataclass(frozen=True)
class NotebookTiming:
    """How long one notebook's run took, and how its kernel was isolated."""

    notebook: str
    seconds: float
    isolation: str | None = None  # e.g. "bwrap (cgroup v1)": the mode and the cap that held


@dataclass
class GradeResult:
    """Everything grading found about one submission."""

    submission: str
    notes: list[Note] = field(default_factory=list)
    runs: list[NotebookTiming] | None = None  # None: no sandbox could be built
    checks: list[CheckResult] = field(default_factory=list)
    status: str = "graded"
    seconds: float = 0.0
    # Why nothing was graded, for the terminal table ("" when it was): not a submission,
    # or not readable.
    why: str = ""
    # What it was graded from (``kit.submissions.Fingerprint.to_json``): a rerun into the
    # same --out reuses the result only when this still matches. None: not recorded.
    graded_with: dict[str, Any] | None = None

    @property
    def tasks(self) -> list[TaskResult]:
        return tasks_of(self.checks)

    @property
    def total(self) -> int:
        return sum(t.points for t in self.tasks)

    @property
    def max(self) -> int:
        return sum(t.max_points for t in self.tasks)

    def subtotal(self, notebook: str) -> int:
        return sum(t.points for t in self.tasks if t.notebook == notebook)

    @property
    def isolation(self) -> str:
        """How the student's code ran, over every notebook ("" when nothing ran)."""
        labels = sorted({r.isolation for r in self.runs or [] if r.isolation})
        return ", ".join(labels)


def overall_status(checks: Iterable[CheckResult], notes: Iterable[Note]) -> str:
    """One word for the submission: the most serious failure, a note that explains many,
    or ``complete`` (every check passed) / ``graded``."""
    checks, notes = list(checks), list(notes)
    if any(n.kind is NoteKind.NOT_A_SUBMISSION for n in notes):
        return NoteKind.NOT_A_SUBMISSION.value
    kinds = {c.reason.kind for c in checks if c.reason is not None}
    for kind in SERIOUS:
        if kind in kinds:
            return kind.value
    for note_kind in (NoteKind.SYNTAX_ERROR, NoteKind.UNREADABLE):
        if any(n.kind is note_kind for n in notes):
            return note_kind.value
    return "complete" if checks and all(c.passed for c in checks) else "graded"


def trim(text: str | None, limit: int = TRIM) -> str:
    """``text`` without colour codes, cut to about ``limit`` characters (its start and its
    end kept)."""
    text = ANSI.sub("", text or "")
    return text if len(text) <= limit else text[: limit // 2] + "\n[...]\n" + text[-limit // 2:]


# -- the saved form (JSON) -----------------------------------------------------------------


def check_to_json(check: CheckResult) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": check.name,
        "notebook": check.notebook,
        "cell": check.heading,
        "task": check.task,
        "status": check.status,
        "reason": check.reason_text,
    }
    evidence = check.notebook_verdict
    if not check.passed:
        kind = _kind(check)
        data["kind"] = kind or None
        data["first_failing_line"] = check.first_line
    if not check.passed and evidence.expected is not None:
        data["expected"] = evidence.expected
        data["actual"] = evidence.actual or ""
    if check.hidden is not None:  # the two verdicts side by side
        data["notebook_status"] = "passed" if evidence.passed else "failed"
        data["hidden_status"] = "passed" if check.hidden.passed else "failed"
        if not check.hidden.passed:
            data["hidden_feedback"] = (check.hidden.actual or "").splitlines()
    return data


def task_to_json(task: TaskResult) -> dict[str, Any]:
    return {"task": task.task, "title": task.title, "notebook": task.notebook,
            "points": task.points, "max": task.max_points,
            "status": "passed" if task.passed else "failed",
            "checks": [c.name for c in task.checks]}


def to_json(result: GradeResult) -> dict[str, Any]:
    """The result as saved in ``<submission>.json``: the tasks with their points, and
    every check with its verdicts."""
    data: dict[str, Any] = {"submission": result.submission,
                            "notes": [n.text for n in result.notes]}
    if result.runs is not None:
        data["notebook_seconds"] = {r.notebook: r.seconds for r in result.runs}
    if result.isolation:
        data["isolation"] = result.isolation
    data["tasks"] = [task_to_json(t) for t in result.tasks]
    data["checks"] = [check_to_json(c) for c in result.checks]
    data.update(total=result.total, max=result.max, status=result.status,
                seconds=result.seconds)
    if result.why:
        data["status_reason"] = result.why
    if result.graded_with is not None:
        data["graded_with"] = result.graded_with
    return data


def _kind_from_json(value: Any) -> FailureKind | None:
    try:
        return FailureKind(value)
    except ValueError:
        return None


def check_from_json(data: dict[str, Any]) -> CheckResult:
    passed = data["status"] == "passed"
    line = data.get("first_failing_line", "")
    hidden = None
    if "hidden_status" in data:
        hidden_passed = data["hidden_status"] == "passed"
        hidden = Verdict(hidden_passed, None if hidden_passed else Reason(
            FailureKind.HIDDEN, data.get("reason", "")), None,
            "\n".join(data.get("hidden_feedback", [])), "" if hidden_passed else line)
        passed = data.get("notebook_status") == "passed"
    kind = _kind_from_json(data.get("kind"))
    verdict = Verdict(passed, None if passed else Reason(kind, data.get("reason", "")),
                      data.get("expected"), data.get("actual"), "" if passed else line)
    return CheckResult(data["name"], data["notebook"], data.get("cell", ""), verdict, hidden,
                       data.get("task"))


def from_json(data: dict[str, Any]) -> GradeResult:
    """A result saved by ``to_json`` (raises KeyError/TypeError/ValueError if it is not,
    e.g. a report from before points were per task: it has no ``tasks``)."""
    runs = data.get("notebook_seconds")
    if not isinstance(data["tasks"], list):
        raise TypeError("tasks: a list expected")
    return GradeResult(
        submission=data["submission"],
        notes=[Note(NoteKind.INFO, str(text)) for text in data.get("notes", [])],
        runs=None if runs is None else [NotebookTiming(n, s, data.get("isolation"))
                                        for n, s in runs.items()],
        checks=[check_from_json(c) for c in data["checks"]],
        status=data.get("status", "graded"),
        seconds=data.get("seconds", 0.0),
        why=str(data.get("status_reason", "")),
        graded_with=data.get("graded_with") if isinstance(data.get("graded_with"), dict)
        else None,
    )


def save_result(out: Path, result: GradeResult) -> None:
    """Write ``<submission>.md`` and then ``<submission>.json`` (its presence means done)."""
    write_atomic(out / f"{result.submission}.md", feedback_markdown(result), private=True)
    write_atomic(out / f"{result.submission}.json",
                 json.dumps(to_json(result), indent=1) + "\n", private=True)


def load_result(out: Path, name: str) -> GradeResult | None:
    """The saved result of ``name`` in ``out``, or None if there is none (or it is broken)."""
    try:
        return from_json(json.loads((out / f"{name}.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def load_results(out: Path) -> list[GradeResult]:
    """Every readable result saved in ``out`` (``<submission>.json``), by name."""
    found = (load_result(out, path.stem) for path in sorted(out.glob("*.json")))
    return [result for result in found if result is not None]


# -- for people ----------------------------------------------------------------------------

# What each result of a check means, for the student (shown once per report).
MEANINGS: dict[str, str] = {
    "passed": "the check cell printed what the reference printed and, for a task with "
              "hidden checks, the grader's own checks of the task passed too.",
    FailureKind.WRONG_OUTPUT.value:
        "the cell ran but printed something else than the reference; the first line "
        "that differs (usually a `check FAILED` line) is in the row.",
    FailureKind.ERROR.value: "the cell raised an exception; its last line is in the row.",
    FailureKind.HIDDEN.value:
        "the notebook's check passed, but the grader called the task's code on inputs "
        "it keeps to itself (edge cases included) and the answer was wrong: a bug the "
        "notebook's inputs do not reach. The row says which output and which property.",
    FailureKind.TIMEOUT.value: "the cell ran longer than the time limit per cell.",
    FailureKind.MEMORY.value: "the code needed more memory than the limit.",
    FailureKind.KERNEL_DIED.value: "the Python process running the notebook ended.",
    FailureKind.WALL_CLOCK.value: "the notebooks together ran out of time before this cell.",
    FailureKind.NOT_RUN.value: ("the cell never ran: the kernel died (the row names the "
                                "cell it died in; the notes say how often the grader "
                                "restarted it), or the run stopped before it."),
    FailureKind.RUN_ENDED.value: "the run itself ended abnormally.",
    FailureKind.UNREADABLE.value: "the submission could not be read.",
    FailureKind.SKIPPED.value:
        "the cell was not graded: an earlier cell of the notebook ran longer than the "
        "time limit per cell (the row names it), and after a timeout the grader's run "
        "grades no later cell of that notebook. Make that cell faster.",
    FailureKind.NOT_A_SUBMISSION.value:
        "nothing was run: the hand-in holds no course/ folder with .py files and no "
        "notebook of the course (see the note at the top).",
    FailureKind.FAILED.value: "the check did not pass.",
}

STATUS_MEANINGS = {
    "complete": "every check passed",
    "graded": "graded; some checks did not pass",
    "not a submission": "not a submission: nothing was graded",
}


def first_failing_line(expected: str, actual: str) -> str:
    """The line of a failed cell's output a student should read first: its first
    ``FAILED`` line, else its last exception line, else the first line the reference did
    not print ("" if none); at most ``LINE_LIMIT`` characters."""
    return _first_failing_line(expected, actual)[:LINE_LIMIT]


def _first_failing_line(expected: str, actual: str) -> str:
    lines = [line.rstrip() for line in ANSI.sub("", actual or "").splitlines()]
    flagged = next((line for line in lines if "FAILED" in line), None)
    if flagged is not None:
        return flagged.strip()
    errors = [line for line in lines if re.match(r"\w+(Error|Exception)?: ", line)]
    if errors:
        return errors[-1].strip()
    wanted = {line.rstrip() for line in (expected or "").splitlines()}
    return next((line.strip() for line in lines if line.strip() and line not in wanted), "")


def _kind(check: CheckResult) -> str:
    """The value of the kind a check failed with, "passed", or "" if unknown."""
    if check.passed:
        return "passed"
    reason = check.reason
    return reason.kind.value if reason is not None and reason.kind is not None else ""


def _cell(text: str, limit: int = 150) -> str:
    """``text`` as a Markdown table cell: one line, pipes escaped, cut at ``limit``."""
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.replace("|", "\\|")


def _code_span(text: str) -> str:
    """``text`` as Markdown inline code, fenced by one more backtick than the longest run of
    backticks inside it (a heading such as "Training with `Solver`" in an error line)."""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def likely_causes(tasks: list[TaskResult]) -> list[tuple[TaskResult, list[str]]]:
    """Where several tasks fail for one bug, the task to fix first, with the failed tasks
    that may pass once it is fixed.

    A failed task is a likely cause when no failed task it builds on (``requires`` in
    ``course/tasks.py``) failed and its own code is not known to be right (its hidden
    checks failed, or it has none). A failed task depends on such a cause when it builds
    on it, or when its own code is known to be right (its hidden checks passed) and the
    cause is an earlier task (``tasks`` in the course's order, as ``tasks_of`` gives
    them): its check cells call earlier tasks' code (a sandwich layer, a network; the
    networks of notebooks 2 and 3 are notebook 1's, with their layers).

    A task whose cells were never judged (``TaskResult.not_judged``: the wall-clock limit,
    a skipped cell, an unreadable submission) plays no part: its failure says nothing
    about its code, so blaming it, or promising it may pass once another task is fixed,
    would be false.
    """
    failed = [t for t in tasks if not t.passed and not t.not_judged]
    failed_ids = {t.task for t in failed}
    needs = {t.task: prerequisites(t.task) & failed_ids if t.task in TASKS_BY_ID else set()
             for t in failed}
    causes = [t for t in failed if not needs[t.task] and not t.hidden_passed]
    order = {t.task: i for i, t in enumerate(tasks)}
    found = []
    for cause in causes:
        dependants = [t.task for t in failed if t is not cause and (
            cause.task in needs[t.task]
            or (t.hidden_passed and order[cause.task] < order[t.task]))]
        found.append((cause, dependants))
    return found


def _not_written(task: TaskResult) -> bool:
    """A failed check of ``task`` stopped at the task's own stub ("not written yet")."""
    return any(found.group(1) == task.task for check in task.failed_checks
               for found in STUB_MESSAGE.finditer(check.first_line))


def _out_of_time(tasks: list[TaskResult]) -> list[str]:
    """A line for the tasks that earned nothing only because the wall-clock limit came
    before their check cells ran (none: [])."""
    late = [t.task for t in tasks if not t.passed and t.not_judged and any(
        c.reason is not None and c.reason.kind is FailureKind.WALL_CLOCK
        for c in t.failed_checks)]
    if not late:
        return []
    return [f"- **Time ran out before task(s) {', '.join(late)} could be judged**: the "
            "notebooks reached the grader's time limit for all of them together before "
            "those check cells ran, so they earn nothing this time whatever their code. "
            "The time went to the cells before them: make those faster."]


def _start_here(tasks: list[TaskResult]) -> list[str]:
    lines = _out_of_time(tasks)
    for root, dependants in likely_causes(tasks):
        if dependants:
            state, then = (("is not written yet", "written") if _not_written(root)
                           else ("fails its own checks", "fixed"))
            lines.append(f"- **Start with task {root.task}** ({root.title}): it {state}, "
                         f"and the failing task(s) {', '.join(dependants)} call its code, "
                         f"so they may pass once it is {then}.")
    return ["## Likely cause", "", *lines, ""] if lines else []


def _result_text(check: CheckResult) -> str:
    """The result column: the reason, without the error line the next column shows."""
    if check.passed:
        return "passed"
    reason = check.reason
    if reason is not None and reason.kind is FailureKind.ERROR and check.first_line:
        return FailureKind.ERROR.value
    return check.reason_text or "failed"


def _notebook_section(notebook: str, tasks: list[TaskResult]) -> list[str]:
    earned = sum(t.points for t in tasks)
    possible = sum(t.max_points for t in tasks)
    lines = [f"## {notebook}: {earned} / {possible}", "",
             "| task | points | check | result | first failing line |",
             "| --- | --- | --- | --- | --- |"]
    details: list[str] = []
    for task in tasks:
        for position, check in enumerate(task.checks):
            label = f"{task.task} {task.title}" if position == 0 else ""
            points = f"{task.points}/{task.max_points}" if position == 0 else ""
            line = _code_span(_cell(check.first_line)) if check.first_line else ""
            lines.append(f"| {_cell(label)} | {points} | `{check.name}` | "
                         f"{_cell(_result_text(check))} | {line} |")
            details += _evidence(check)
    return [*lines, "", *details]


def _evidence(check: CheckResult) -> list[str]:
    """The expected and actual output of a failed check, folded (after the table)."""
    found = []
    evidence = check.notebook_verdict
    if not evidence.passed and evidence.expected is not None:
        found += [f"<details><summary>{check.name}: expected vs your output</summary>", "",
                  "Expected:", "", "```", evidence.expected.rstrip(), "```", "",
                  "Yours:", "", "```", (evidence.actual or "").rstrip(), "```", "</details>",
                  ""]
    if check.hidden is not None and not check.hidden.passed:
        found += [f"<details><summary>{check.name}: what the hidden checks found (their "
                  "inputs stay hidden)</summary>", "",
                  *(f"- {line}" for line in (check.hidden.actual or "").splitlines()),
                  "", "</details>", ""]
    return found


def _meanings(checks: list[CheckResult]) -> list[str]:
    seen = [kind for kind in MEANINGS if any(_kind(c) == kind for c in checks)]
    return ["## What the results mean", "",
            *(f"- **{kind}**: {MEANINGS[kind]}" for kind in seen), ""] if seen else []


def feedback_markdown(result: GradeResult) -> str:
    """The student's report: the score, notes, the likely cause when several tasks fail
    for one, one table per notebook (a row per check, its task and points on the task's
    first row, the first failing line), then the evidence and what each result means."""
    status = STATUS_MEANINGS.get(result.status, result.status)
    lines = [f"# Grading report: {result.submission}", "",
             f"**Score: {result.total} / {result.max}** ({status})", "",
             "Points belong to tasks: a task earns its points when every check cell of "
             "the task passes and, for a task with hidden checks, the grader's own checks "
             "of it pass too; otherwise it earns none. For correct code whose notebooks "
             "ran, the points are those `make check` shows. A check cell that also runs "
             "earlier tasks' code (a network built from the layers) fails with them, "
             "which the tests `make check` runs for its task do not: a bug in one task "
             "can cost a later one here.", ""]
    if result.notes:
        lines += ["Notes on the submission:", ""] + [f"- {n.text}" for n in result.notes] + [""]
    if result.status == NoteKind.NOT_A_SUBMISSION.value:
        # Every task failed the same way: a table of them would only repeat the note.
        lines += ["Nothing was run. Hand in the zip `make handin` writes in your copy of "
                  "the assignment: it holds your `course/` folder and your notebooks.", ""]
        return "\n".join(lines).rstrip() + "\n"
    tasks = result.tasks
    lines += _start_here(tasks)
    for notebook in dict.fromkeys(t.notebook for t in tasks):
        lines += _notebook_section(notebook, [t for t in tasks if t.notebook == notebook])
    unowned = [c for c in result.checks if c.task is None]
    if unowned:
        lines += ["## Checks that belong to no task (no points)", ""]
        lines += [f"- `{c.notebook}/{c.name}`: {'passed' if c.passed else c.reason_text}"
                  for c in unowned] + [""]
    lines += _meanings(result.checks)
    return "\n".join(lines).rstrip() + "\n"


def grades_csv(results: Iterable[GradeResult], notebooks: list[str],
               options: Callable[[GradeResult], str] | None = None) -> str:
    """``grades.csv``: submission, total, max, status, a subtotal per notebook, how the
    code was isolated, the tasks only hidden checks failed, and the options each row was
    graded with (``options``: a result's options as text; rows of one file may come
    from runs with different options)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "total", "max", "status", *notebooks, "isolation",
                     "hidden_check_failures", "options"])
    for result in sorted(results, key=lambda r: r.submission):
        writer.writerow([result.submission, result.total, result.max, result.status,
                         *(result.subtotal(n) for n in notebooks), result.isolation,
                         sum(t.only_hidden_failed for t in result.tasks),
                         options(result) if options is not None else ""])
    return buffer.getvalue()


def hidden_summary(results: Iterable[GradeResult]) -> str | None:
    """One line for the instructor: the tasks whose check cells all passed in the notebook
    but whose hidden checks failed, over the batch (None when there are none)."""
    counts = {r.submission: sum(t.only_hidden_failed for t in r.tasks) for r in results}
    tasks, submissions = sum(counts.values()), sum(1 for n in counts.values() if n)
    if not tasks:
        return None
    return (f"{tasks} task(s) passed every check cell in the notebook but failed their "
            f"hidden checks, in {submissions} submission(s): bugs the notebooks do not "
            "reach, or tampering (hidden_check_failures in grades.csv)")


def summary_table(results: list[GradeResult]) -> str:
    """The table ``kit grade`` prints at the end: score, status, time and isolation per
    submission, and, when some submission was not graded (not a submission, unreadable),
    a column saying why. Each column is as wide as its widest entry."""
    ordered = sorted(results, key=lambda r: r.submission)
    header = ["SUBMISSION", "SCORE", "STATUS", "SECONDS", "ISOLATION"]
    rows = [[r.submission, f"{r.total}/{r.max}", r.status, str(r.seconds),
             r.isolation or "-"] for r in ordered]
    if any(r.why for r in ordered):
        header.append("WHY")
        for row, result in zip(rows, ordered, strict=True):
            row.append(result.why or "-")
    right = {1, 3}  # scores and seconds line up on the right
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [cell.rjust(width) if i in right else cell.ljust(width)
                  for i, (cell, width) in enumerate(zip(cells, widths, strict=True))]
        return " | ".join(padded).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def _indented(text: str) -> list[str]:
    return [f"        {line}" for line in text.rstrip().splitlines()]


def to_gradescope(result: GradeResult, seconds: float) -> dict[str, Any]:
    """The result in Gradescope's ``results.json`` format: one test per task, its output
    the verdict of each of the task's check cells."""
    tests = []
    for task in result.tasks:
        output = []
        for check in task.checks:
            verdict = "passed" if check.passed else check.reason_text or "failed"
            output.append(f"{check.notebook}/{check.name}: {verdict}")
            if check.first_line:
                output.append(f"    first failing line: {check.first_line}")
            evidence = check.notebook_verdict
            if not evidence.passed and evidence.expected is not None:
                output += ["    expected:", *_indented(evidence.expected),
                           "    your output:", *_indented(evidence.actual or "")]
            if check.hidden is not None and not check.hidden.passed:
                output += [f"    {line}" for line in (check.hidden.actual or "").splitlines()]
        tests.append({
            "name": f"task {task.task}: {task.title}",
            "score": task.points,
            "max_score": task.max_points,
            "status": "passed" if task.passed else "failed",
            "output": "\n".join(output),
            "visibility": "visible",
        })
    notes = "\n".join(n.text for n in result.notes)
    return {
        "score": result.total,
        "execution_time": round(seconds, 1),
        "output": (notes + "\n" if notes else "") + f"Status: {result.status}",
        "tests": tests,
        "extra_data": {"isolation": result.isolation},
    }
