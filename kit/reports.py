"""What grading found, as typed data, and every report made from it.

The result of grading one submission is a ``GradeResult``: notes on the submission, one
``NotebookRun`` per notebook run, and one ``CheckResult`` per graded check. A check holds
one ``Verdict`` per way of judging it: the notebook's check cell under nbval
(``notebook``), and ``hidden``, the hidden checks of the task the cell grades
(``kit.hidden``: the grader calls the task's code on inputs only it knows and judges
the answers in its own process). A check passes only if every verdict it has passes, and
earns its points then; the JSON shows both verdicts side by side. A failed
verdict carries a ``Reason``: its ``kind`` (what the status line and the reports act on)
and the phrase shown to people; nothing reads the phrase back.

Reports, all made from that one type:

* ``<submission>.json``: ``to_json`` / ``from_json`` (the saved form, also what a rerun
  reads back to skip a graded submission);
* ``<submission>.md``: ``feedback_markdown``, for the student;
* ``grades.csv``: ``grades_csv``, one row per submission with a subtotal per notebook;
* the terminal table: ``summary_table``;
* Gradescope's ``results.json``: ``to_gradescope``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from kit.outputs import write_atomic

TRIM = 1200  # characters of expected / actual output kept per failed check
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
    SKIPPED = "skipped"
    HIDDEN = "hidden check"  # the grader's own check of the task failed (kit.hidden)
    FAILED = "failed"  # none of the above


# A submission's status is the first of these kinds that any of its checks failed with.
SERIOUS = (FailureKind.KERNEL_DIED, FailureKind.MEMORY, FailureKind.TIMEOUT,
           FailureKind.WALL_CLOCK)


class NoteKind(str, Enum):
    """What a note on the submission says about it."""

    INFO = "info"
    MISSING = "missing"  # a task function or file is not in the submission
    SYNTAX_ERROR = "syntax error"  # a file does not parse: its tasks are stubs
    UNREADABLE = "unreadable"  # the submission, or a file of it, could not be read


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


@dataclass(frozen=True)
class CheckResult:
    """One graded check of a notebook."""

    name: str  # the cell's metadata.check
    notebook: str
    heading: str  # the heading the check cell sits under, as the student sees it
    max_points: int
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
    def points(self) -> int:
        return self.max_points if self.passed else 0

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

    @property
    def total(self) -> int:
        return sum(c.points for c in self.checks)

    @property
    def max(self) -> int:
        return sum(c.max_points for c in self.checks)

    def subtotal(self, notebook: str) -> int:
        return sum(c.points for c in self.checks if c.notebook == notebook)

    @property
    def isolation(self) -> str:
        """How the student's code ran, over every notebook ("" when nothing ran)."""
        labels = sorted({r.isolation for r in self.runs or [] if r.isolation})
        return ", ".join(labels)


def overall_status(checks: Iterable[CheckResult], notes: Iterable[Note]) -> str:
    """One word for the submission: the most serious failure, a note that explains many,
    or ``complete`` (every check passed) / ``graded``."""
    checks, notes = list(checks), list(notes)
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
        "points": check.points,
        "max": check.max_points,
        "status": check.status,
        "reason": check.reason_text,
    }
    evidence = check.notebook_verdict
    if not check.passed and evidence.expected is not None:
        data["expected"] = evidence.expected
        data["actual"] = evidence.actual or ""
    if check.hidden is not None:  # the two verdicts side by side
        data["task"] = check.task
        data["notebook_status"] = "passed" if evidence.passed else "failed"
        data["hidden_status"] = "passed" if check.hidden.passed else "failed"
        if not check.hidden.passed:
            data["hidden_feedback"] = (check.hidden.actual or "").splitlines()
    return data


def hidden_only_failures(check: CheckResult) -> bool:
    """Passed in the notebook, failed its hidden checks: a bug the notebook does not reach,
    or tampering."""
    return check.notebook_verdict.passed and check.hidden is not None \
        and not check.hidden.passed


def to_json(result: GradeResult) -> dict[str, Any]:
    """The result as saved in ``<submission>.json``."""
    data: dict[str, Any] = {"submission": result.submission,
                            "notes": [n.text for n in result.notes]}
    if result.runs is not None:
        data["notebook_seconds"] = {r.notebook: r.seconds for r in result.runs}
    if result.isolation:
        data["isolation"] = result.isolation
    data["checks"] = [check_to_json(c) for c in result.checks]
    data.update(total=result.total, max=result.max, status=result.status,
                seconds=result.seconds)
    return data


def check_from_json(data: dict[str, Any]) -> CheckResult:
    passed = data["status"] == "passed"
    hidden = None
    if "hidden_status" in data:
        hidden_passed = data["hidden_status"] == "passed"
        hidden = Verdict(hidden_passed, None if hidden_passed else Reason(
            FailureKind.HIDDEN, data.get("reason", "")), None,
            "\n".join(data.get("hidden_feedback", [])))
        passed = data.get("notebook_status") == "passed"
    verdict = Verdict(passed, None if passed else Reason(None, data.get("reason", "")),
                      data.get("expected"), data.get("actual"))
    return CheckResult(data["name"], data["notebook"], data.get("cell", ""), int(data["max"]),
                       verdict, hidden, data.get("task"))


def from_json(data: dict[str, Any]) -> GradeResult:
    """A result saved by ``to_json`` (raises KeyError/TypeError/ValueError if it is not)."""
    runs = data.get("notebook_seconds")
    return GradeResult(
        submission=data["submission"],
        notes=[Note(NoteKind.INFO, str(text)) for text in data.get("notes", [])],
        runs=None if runs is None else [NotebookTiming(n, s, data.get("isolation"))
                                        for n, s in runs.items()],
        checks=[check_from_json(c) for c in data["checks"]],
        status=data.get("status", "graded"),
        seconds=data.get("seconds", 0.0),
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


# -- for people ----------------------------------------------------------------------------

_TABLE_HEAD = ["| check | under heading | points | result |", "| --- | --- | --- | --- |"]


def feedback_markdown(result: GradeResult) -> str:
    """The student's report: the score, notes, and one table row per check."""
    lines = [f"# Grading report: {result.submission}", "",
             f"**Score: {result.total} / {result.max}** ({result.status})", ""]
    if result.notes:
        lines += ["Notes on the submission:", ""] + [f"- {n.text}" for n in result.notes] + [""]
    notebook = None
    for check in result.checks:
        if check.notebook != notebook:
            notebook = check.notebook
            lines += [f"## {notebook}", "", *_TABLE_HEAD]
        verdict = "passed" if check.passed else check.reason_text or "failed"
        lines.append(f"| `{check.name}` | {check.heading} | {check.points}/{check.max_points} "
                     f"| {verdict} |")
        evidence = check.notebook_verdict
        if not check.passed and evidence.expected is not None:
            lines += ["", f"<details><summary>{check.name}: expected vs your output</summary>",
                      "", "Expected:", "", "```", evidence.expected.rstrip(), "```", "",
                      "Yours:", "", "```", (evidence.actual or "").rstrip(), "```",
                      "</details>", "", *_TABLE_HEAD]
        if check.hidden is not None and not check.hidden.passed:
            lines += ["", f"<details><summary>{check.name}: what the hidden checks found "
                          "(their inputs stay hidden)</summary>", "",
                      *(f"- {line}" for line in (check.hidden.actual or "").splitlines()),
                      "</details>", "", *_TABLE_HEAD]
    return "\n".join(lines) + "\n"


def grades_csv(results: Iterable[GradeResult], notebooks: list[str]) -> str:
    """``grades.csv``: submission, total, max, status and a subtotal per notebook."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "total", "max", "status", *notebooks, "isolation",
                     "hidden_check_failures"])
    for result in sorted(results, key=lambda r: r.submission):
        writer.writerow([result.submission, result.total, result.max, result.status,
                         *(result.subtotal(n) for n in notebooks), result.isolation,
                         sum(hidden_only_failures(c) for c in result.checks)])
    return buffer.getvalue()


def hidden_summary(results: Iterable[GradeResult]) -> str | None:
    """One line for the instructor: the checks the notebook passed but the hidden checks
    failed, over the batch (None when there are none)."""
    counts = {r.submission: sum(hidden_only_failures(c) for c in r.checks) for r in results}
    checks, submissions = sum(counts.values()), sum(1 for n in counts.values() if n)
    if not checks:
        return None
    return (f"{checks} check(s) passed in the notebook but failed hidden checks, in "
            f"{submissions} submission(s): bugs the notebook does not reach, or tampering "
            f"(hidden_check_failures in grades.csv)")


def summary_table(results: list[GradeResult]) -> str:
    """The table ``kit grade`` prints at the end: score, status and time per submission."""
    width = max([10, *(len(r.submission) for r in results)])
    lines = [f"{'SUBMISSION':<{width}} | {'SCORE':>9} | {'STATUS':<13} | {'SECONDS':>7} | "
             "ISOLATION", "-" * (width + 62)]
    for r in sorted(results, key=lambda r: r.submission):
        score = f"{r.total}/{r.max}"
        lines.append(f"{r.submission:<{width}} | {score:>9} | {r.status:<13} | "
                     f"{r.seconds:>7} | {r.isolation or '-'}")
    return "\n".join(lines)


def to_gradescope(result: GradeResult, seconds: float) -> dict[str, Any]:
    """The result in Gradescope's ``results.json`` format: one test per check."""
    tests = []
    for check in result.checks:
        output = "passed" if check.passed else check.reason_text or "failed"
        evidence = check.notebook_verdict
        if not check.passed and evidence.expected is not None:
            output += (f"\n\nExpected:\n{evidence.expected.rstrip()}\n\n"
                       f"Your output:\n{(evidence.actual or '').rstrip()}")
        if check.hidden is not None and not check.hidden.passed:
            output += f"\n\nHidden checks:\n{(check.hidden.actual or '').rstrip()}"
        tests.append({
            "name": f"{check.notebook}/{check.name}"
                    + (f" ({check.heading})" if check.heading else ""),
            "score": check.points,
            "max_score": check.max_points,
            "status": check.status,
            "output": output,
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
