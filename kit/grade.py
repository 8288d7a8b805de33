"""``python -m kit grade SUBMISSION... [--out DIR] [--jobs N] [--timeout S] [--memory MB]
[--disk MB]``

Regrade submissions by running the reference notebooks against each student's code.

Each submission (a folder or a ``.zip``) goes through three phases:

1. **sanitize** (``kit.sandbox``): a fresh sandbox with the pristine reference notebooks
   and the pristine ``course/``, the student's task code merged in; experiment cells, and
   the checks not selected, are tagged for nbval to skip;
2. **execute** (``kit.nbval_runner``): nbval runs each notebook in its own process with
   settings the grader controls, a per-cell timeout, a wall-clock limit for the
   submission and an address-space limit; the notebook's kernel, which runs the
   student's code, runs isolated (``kit.isolation``: bubblewrap, no network, no view of
   the solution or the reports, one memory and process cap over all its processes; a
   sandbox user where namespaces are forbidden; ``--no-isolation`` only for code you
   trust). Per-cell results come signed through a pipe the student's code cannot reach
   (``kit/nbval_report.py``), never from stdout;
3. **score**: each selected check cell's result is its named check, which belongs to one
   task (``CHECKS`` in ``course/rubric.py``); a task earns its points (``TASK_POINTS``,
   the scale ``make check`` shows) only when every check cell of it passes, and none
   otherwise (``kit.reports`` holds the typed result). The outputs a student will read
   are capped and any solution line in them withheld (``kit.redact``).

Beside the notebooks, the **hidden checks** (``kit.hidden``) call each task's code in an
isolated worker on inputs drawn from the batch's secret seed and judge the answers in the
grader's own process; a check cell of task X passes only if nbval passes it and task X
passes its hidden checks (``failed: hidden check`` otherwise, both verdicts side by side
in the JSON, a count per submission in ``grades.csv``), so a task whose hidden checks fail
earns nothing. The notebook-cell tasks (``kit.hidden.measure.NOTEBOOK_TASKS``) get a
verdict of the same kind: sanitize inserts an export cell after the task's cell
(``export_step``), ``execute`` gives the kernel the export folder, and
``judge_notebook_tasks`` measures what was exported with the solution's code and adds the
verdicts to the hidden checks' report. The grading kernel's data carries no test labels
(``kit.sandbox.WITHHOLD_TEST_LABELS``).

Before running anything, a submission is named (its file or folder name; when those
clash, as every ``handin.zip`` of an LMS download does, the name of the folder holding
it) and looked at: a zip or folder with no ``course/`` package with ``.py`` files and no
notebook of the course is ``not a submission`` (the reason in the terminal table and the
reports) and nothing is run for it (``kit.submissions``).

Writes into ``--out`` (atomically: temp file + rename): ``grades.csv`` (one row per
submission graded into ``--out``, by this run or an earlier one: ``submission, total,
max, status`` and a subtotal per notebook), one
``<submission>.json`` (every task: points, max, status, its checks; every check: name,
notebook, task, status, reason, and for a failed check its first failing line and the
expected vs actual output, trimmed) and one ``<submission>.md`` for the student (one
table per notebook with a task column, the likely cause when several tasks fail for one,
what each result means). A submission already graded in ``--out`` keeps its result
when it was graded from the same content (sha256 of the zip, or of the folder's files),
with the same options (checks, notebooks, limits) and by the same kit and reference
material; the batch says so per submission, and regrades a stale result saying why
(``--force`` regrades all). So a killed batch resumes where it stopped, and neither a
replaced zip nor a quick ``--only`` trial keeps a grade it no longer deserves. ``--out``
must be new, empty, or made by ``kit grade``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.rubric import CHECKS
from kit import cli, hidden, isolation, outputs
from kit import notebooks as nbs
from kit import reports as rp
from kit import sandbox as sb
from kit import submissions as subs
from kit.errors import KitError
from kit.hidden import measure
from kit.hidden.cases import GENERATORS as HIDDEN_TASKS
from kit.nbval_runner import CellRecord, Limits, NotebookRun, run_notebook
from kit.notebooks import CodeCell
from kit.redact import Redactor

ROOT = sb.ROOT
OUT_STAMP = outputs.Stamp(".kit-grade", "python -m kit grade",
                          legacy=("reports written by python -m kit grade\n",))

DEFAULT_LIMITS = Limits()


def reference_notebooks(root: Path = ROOT, names: Iterable[str] | None = None) -> dict[str, Any]:
    """Every notebook of the tree (``notebooks/*.ipynb``) as loaded JSON, by name, in
    course order; only ``names`` if given."""
    wanted = None if names is None else set(names)
    return {p.stem: nbs.load_json(p) for p in nbs.find_notebooks(root / "notebooks")
            if wanted is None or p.stem in wanted}


def submission_name(path: Path) -> str:
    """The report name of a submission graded alone (a batch: ``subs.assign_names``)."""
    return subs.base_name(path)


def course_notebooks(root: Path = ROOT) -> list[str]:
    """The names of the tree's notebooks: a submission holding one of them is one."""
    return [p.stem for p in nbs.find_notebooks(root / "notebooks")]


# -- which checks are graded (decided once) ------------------------------------------------


@dataclass(frozen=True)
class GradedCheck:
    notebook: str
    index: int  # nbval's code-cell index
    name: str
    heading: str

    @property
    def task(self) -> str | None:
        """The task the check cell belongs to (``CHECKS`` of ``course/rubric.py``)."""
        return CHECKS.get(f"{self.notebook}/{self.name}")


@dataclass(frozen=True)
class Selection:
    """The checks graded, by notebook; ``partial`` when only some were asked for (then the
    other check cells and the training-log cells are not run either)."""

    checks: dict[str, list[GradedCheck]]
    partial: bool

    def indices(self, notebook: str) -> set[int]:
        return {c.index for c in self.checks.get(notebook, [])}


def select_checks(references: Mapping[str, Any], only: set[str] | None = None) -> Selection:
    """The check cells of ``references`` to grade: all, or those ``only`` names (as
    ``name`` or ``Notebook/name``)."""
    checks: dict[str, list[GradedCheck]] = {}
    for notebook, reference in references.items():
        checks[notebook] = [
            GradedCheck(notebook, c.index, nbs.check_name(c.cell, c.index), c.heading)
            for c in nbs.code_cells(reference) if nbs.is_check(c.cell)
            and (only is None or nbs.check_name(c.cell, c.index) in only
                 or f"{notebook}/{nbs.check_name(c.cell, c.index)}" in only)
        ]
    return Selection(checks, only is not None)


# -- phase 1: sanitize ---------------------------------------------------------------------


def export_step(notebook: str, task_cells: Mapping[str, str], exports: Path) -> nbs.Step:
    """Insert, after the cell of each notebook task (``task_cells``: task -> the cell ID),
    the kit's export cell (``kit.hidden.measure``), writing into ``exports/<notebook>``."""
    folder = exports / notebook

    def insert_export_cells(nb: Any) -> None:
        for task, cell_id in task_cells.items():
            cell = sb.kit_cell(f"export-{task.replace('.', '-')}", measure.export_cell(
                task, folder, measure.export_path(folder, task)))
            if not sb.insert_after(nb, cell_id, cell):
                raise ValueError(f"{notebook}: no cell {cell_id} for task {task}'s export")

    return nbs.Step("export what the notebook tasks chose, for the grader to judge",
                    insert_export_cells)


def sanitize_steps(notebook: str, selection: Selection, exports: nbs.Step | None = None,
                   keep: frozenset[str] = frozenset()) -> list[nbs.Step]:
    """What makes a spliced reference notebook ready to grade, step by step (``exports``:
    the step inserting the notebook tasks' export cells, if it has any; ``keep``: IDs of
    the notebook tasks' own cells, run even when only some checks are asked for)."""
    graded = selection.indices(notebook)

    def skip_unselected_checks(nb: Any) -> None:
        for c in nbs.code_cells(nb):
            if nbs.is_check(c.cell) and c.index not in graded:
                sb.skip_cell(c.cell)

    def skip_training_logs(nb: Any) -> None:
        for c in nbs.code_cells(nb):
            if nbs.has_tag(c.cell, nbs.NBVAL_IGNORE_OUTPUT) and not nbs.is_check(c.cell) \
                    and c.cell.get("id") not in keep:
                sb.skip_cell(c.cell)

    steps = [nbs.Step("skip experiment cells", sb.skip_experiments)]
    if selection.partial:
        steps += [nbs.Step("skip the check cells not selected", skip_unselected_checks),
                  nbs.Step("skip training logs (only some checks asked for)",
                           skip_training_logs)]
    return steps + ([exports] if exports is not None else [])


def notebook_tasks(selection: Selection, root: Path = ROOT) -> dict[str, list[str]]:
    """Notebook -> the notebook-cell tasks of its selected checks that the grader judges
    itself (``kit.hidden.measure.NOTEBOOK_TASKS``; only for this tree, as the hidden
    checks)."""
    if root.resolve() != ROOT.resolve():
        return {}
    found: dict[str, list[str]] = {}
    for notebook, checks in selection.checks.items():
        for task in dict.fromkeys(c.task for c in checks):
            spec = measure.NOTEBOOK_TASKS.get(task or "")
            if spec is not None and spec.notebook == notebook:
                found.setdefault(notebook, []).append(task)
    return found


def sanitize(submission: Path, references: Mapping[str, Any], selection: Selection,
             root: Path = ROOT, exports: Path | None = None) -> sb.Sandbox:
    """Phase 1: the sandbox to grade in (raises ``sb.SubmissionError`` if unreadable).
    ``exports``: the folder for the notebook tasks' exports (None: none are made)."""
    tasks = notebook_tasks(selection, root) if exports is not None else {}

    def prepare(name: str, nb: Any) -> None:
        step, cells = None, {}
        if exports is not None and tasks.get(name):
            cells = sb.task_cell_ids(references[name], name, tasks[name], root)
            cells = {t: cells[t] for t in tasks[name] if t in cells}
            step = export_step(name, cells, exports)
        nbs.run_steps(nb, sanitize_steps(name, selection, step, frozenset(cells.values())))

    return sb.build(submission, references, root=root, prepare=prepare,
                    withhold_test_labels=True)


# -- phase 2: execute ----------------------------------------------------------------------


def execute(box: sb.Sandbox, names: Iterable[str], limits: Limits, deadline: float,
            dataset: str = "digits", exports: Path | None = None) -> dict[str, NotebookRun]:
    """Phase 2: run each notebook of the sandbox under nbval, the sandbox restored to its
    built state before each run (code run for one notebook may rewrite files). A notebook
    with export cells gets ``exports/<name>`` as a writable folder of its kernel, holding
    the helpers they import; its records are numbered as in the reference notebook."""
    runs: dict[str, NotebookRun] = {}
    workdir = Path(tempfile.mkdtemp(prefix="kit-grade-run-"))
    try:
        for name in names:
            box.restore()
            folder = _export_folder(box, name, exports)
            run = run_notebook(box.root, name, limits, deadline, workdir, dataset, folder)
            runs[name] = _renumbered(run, box.notebooks.get(name))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return runs


def _export_folder(box: sb.Sandbox, name: str, exports: Path | None) -> Path | None:
    """``exports/<name>`` with the export cells' helpers, if the notebook has such cells."""
    notebook = box.notebooks.get(name)
    if exports is None or notebook is None \
            or not any(sb.is_kit_cell(c) for c in notebook["cells"]):
        return None
    folder = exports / name
    folder.mkdir(parents=True, exist_ok=True)
    measure.install_helpers(folder)
    return folder


def _renumbered(run: NotebookRun, notebook: Any | None) -> NotebookRun:
    """The run's records keyed by the reference notebook's code-cell numbers (the checks'),
    the kit's own cells dropped."""
    if notebook is None or not any(sb.is_kit_cell(c) for c in notebook["cells"]):
        return run
    mapping = sb.reference_indices(notebook)
    run.records = {mapping[i]: dataclasses.replace(record, cell=mapping[i])
                   for i, record in run.records.items() if i in mapping}
    run.deaths = [dataclasses.replace(d, cell=mapping.get(d.cell, -1)) for d in run.deaths]
    return run


def judge_notebook_tasks(exports: Path, tasks: Mapping[str, list[str]],
                         report: hidden.HiddenReport | None,
                         dataset: str = "digits") -> hidden.HiddenReport | None:
    """The grader's verdicts on the notebook tasks (``kit.hidden.measure``: the exports
    judged with the solution's code on data loaded here), added to the hidden checks'
    report so that scoring treats them as any task's hidden verdict."""
    wanted = [(notebook, task) for notebook, found in tasks.items() for task in found]
    if not wanted:
        return report
    started = time.monotonic()
    data = measure.grader_data(dataset)
    verdicts = {task: measure.task_verdict(task, measure.export_path(exports / notebook, task),
                                           data, dataset) for notebook, task in wanted}
    if report is None:
        report = hidden.HiddenReport({}, "none", 0, 0.0)
    report.tasks.update(verdicts)
    report.seconds += time.monotonic() - started
    return report


# -- phase 3: score ------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def redactor(root: Path = ROOT) -> Redactor:
    """The solution lines of the tree at ``root``, read once per process."""
    return Redactor.for_tree(root)


def for_student(text: str, root: Path = ROOT) -> str:
    """Output a student will read: no colour codes, no solution line, capped."""
    return redactor(root).redact(rp.ANSI.sub("", text or ""), rp.TRIM)


def failed_cell_verdict(reason: rp.Reason, record: CellRecord, root: Path = ROOT
                        ) -> rp.Verdict:
    """The verdict on a check cell that failed: the trimmed evidence, and its first failing
    line read from the whole (redacted) output, so trimming never hides it."""
    actual = record.actual or record.message
    whole = redactor(root).redact(rp.ANSI.sub("", actual), 1_000_000)
    return rp.Verdict(False, reason, for_student(record.expected, root),
                      for_student(actual, root),
                      rp.first_failing_line(record.expected, whole))


def hidden_verdict(task: str | None, report: hidden.HiddenReport | None) -> rp.Verdict | None:
    """The hidden checks' verdict on the task a check grades (None: it has none)."""
    if report is None or task not in report.tasks:
        return None
    verdict = report.tasks[task]
    if verdict.passed:
        return rp.Verdict(True)
    return rp.Verdict(False, rp.Reason(rp.FailureKind.HIDDEN, "failed: hidden check"),
                      None, "\n".join(verdict.feedback), verdict.feedback[0])


NBVAL_HEADER = "Notebook cell execution failed"  # how nbval's report of a failed cell starts


def whole_reason(reason: rp.Reason | None, record: CellRecord | None, limits: Limits
                 ) -> rp.Reason | None:
    """``reason`` (``reason_of``'s), or, when it could only say "failed", what the cell's
    own output shows.

    ``reason_of`` reads what happened from the start of nbval's message ("Timeout of 60
    seconds exceeded", "Cell execution caused an exception"), but the report plugin
    (``kit/nbval_report.py``) keeps only the message's last 6000 characters: a long
    traceback, such as the one of a cell interrupted at its timeout deep in the student's
    code, pushes that start out. Then the cell's output still ends with the exception:
    ``KeyboardInterrupt`` is how nbval stops a cell at the per-cell timeout (student code
    raising it itself would be reported as a timeout too, a failure either way), any
    other is an error.
    """
    if reason is None or record is None or reason.kind is not rp.FailureKind.FAILED \
            or NBVAL_HEADER in rp.ANSI.sub("", record.message):
        return reason
    errors = [ln for ln in rp.ANSI.sub("", record.actual).splitlines()
              if re.match(r"\w+(Error|Exception)?: ", ln)]
    if not errors:
        return reason
    if errors[-1].startswith("KeyboardInterrupt:"):
        return rp.Reason(rp.FailureKind.TIMEOUT,
                         f"timeout: the cell ran longer than {limits.cell_timeout:g} s")
    return rp.Reason(rp.FailureKind.ERROR, f"error: {errors[-1]}")


def skipped_reason(index: int, reasons: Mapping[int, rp.Reason | None], limits: Limits,
                   cells: Mapping[int, CodeCell]) -> rp.Reason:
    """Why nbval did not grade cell ``index``. After a cell's timeout nbval marks every
    later cell of the notebook as expected to fail and reports those that do as
    skipped; their output comes from an interrupted kernel, so it is not shown as the
    student's failure: the reason names the cell that timed out instead."""
    late = sorted(i for i, r in reasons.items()
                  if i < index and r is not None and r.kind is rp.FailureKind.TIMEOUT)
    if not late:
        return rp.Reason(rp.FailureKind.SKIPPED, "skipped: the test run did not grade it")
    cell = cells.get(late[0])
    where = (f"the cell under \"{cell.heading}\" (code cell {late[0]})"
             if cell is not None and cell.heading else f"code cell {late[0]}")
    return rp.Reason(rp.FailureKind.SKIPPED, f"skipped: not graded, as {where} timed out "
                                             f"({limits.cell_timeout:g} s) before it")


# Failures that stop a cell before its end, so that names it assigns may never exist.
STOPS_A_CELL = frozenset({rp.FailureKind.ERROR, rp.FailureKind.TIMEOUT, rp.FailureKind.MEMORY,
                          rp.FailureKind.KERNEL_DIED})


def explain_missing_name(verdict: rp.Verdict, index: int,
                         reasons: Mapping[int, rp.Reason | None],
                         cells: Mapping[int, CodeCell], root: Path = ROOT) -> rp.Verdict:
    """A check cell that stopped on ``NameError: name 'x' is not defined`` because an
    earlier cell that assigns x failed first (a missing file, a stub, an error in another
    task): the verdict says which cell, and that cell's error, instead of leaving the
    student to look for a name they never had to write. Any other verdict is returned
    as it is. The latest earlier cell of the reference notebook that may assign the name
    (``kit.notebooks.may_bind``) and stopped is the one named. Its error comes from the
    run's output, so it is redacted as the evidence is (``for_student``)."""
    reason = verdict.reason
    missing = (nbs.MISSING_NAME.search(reason.text) if reason is not None
               and reason.kind is rp.FailureKind.ERROR and "NameError" in reason.text else None)
    if missing is None:
        return verdict
    name = missing.group(1)
    cause = next((i for i in sorted(reasons, reverse=True)
                  if i < index and i in cells and reasons[i] is not None
                  and reasons[i].kind in STOPS_A_CELL and nbs.may_bind(cells[i].cell, name)),
                 None)
    if cause is None:
        return verdict
    heading = cells[cause].heading
    where = f"the cell under \"{heading}\" (code cell {cause})" if heading else (
        f"code cell {cause}")
    note = (f"[grader] This cell needs {name}, which {where} makes; that cell stopped "
            f"first: {for_student(reasons[cause].text.removeprefix('error: '), root)}")
    return dataclasses.replace(
        verdict, actual=f"{note}\n\n{verdict.actual or ''}".rstrip() + "\n",
        line=f"{verdict.line} ({name} is made by {where}, which stopped first)")


def score(selection: Selection, runs: Mapping[str, NotebookRun], limits: Limits,
          root: Path = ROOT, hidden_report: hidden.HiddenReport | None = None,
          references: Mapping[str, Any] | None = None, problem: rp.Reason | None = None,
          ) -> list[rp.CheckResult]:
    """Phase 3: one result per selected check, from its cell's record (or its absence)
    and its task's hidden checks. ``references`` (optional) name the cells a skipped check
    cell refers to; ``problem``: why a notebook has no run (default: unreadable)."""
    results = []
    for notebook, checks in selection.checks.items():
        run = runs.get(notebook, NotebookRun(problem=problem or rp.Reason(
            rp.FailureKind.UNREADABLE, "the submission could not be read")))
        # run.reason: a cell's own verdict, or which kernel death kept it from running.
        reasons = {i: whole_reason(run.reason(i, limits), r, limits)
                   for i, r in run.records.items()}
        cells = ({c.index: c for c in nbs.code_cells(references[notebook])}
                 if references is not None and notebook in references else {})
        for check in checks:
            record = run.records.get(check.index)
            reason = (reasons[check.index] if record is not None
                      else run.reason(check.index, limits))  # a death costs only its cell
            if reason is None:
                verdict = rp.Verdict(True)
            elif record is None:
                verdict = rp.Verdict(False, reason)
            elif reason.kind is rp.FailureKind.SKIPPED:
                verdict = rp.Verdict(False, skipped_reason(check.index, reasons, limits,
                                                           cells))
            else:
                verdict = failed_cell_verdict(reason, record, root)
                verdict = explain_missing_name(verdict, check.index, reasons, cells, root)
            results.append(rp.CheckResult(check.name, notebook, check.heading, verdict,
                                          hidden_verdict(check.task, hidden_report),
                                          check.task))
    return results


def graded_notebooks(selection: Selection) -> list[str]:
    """The notebooks to run: those with a selected check. A kernel start costs seconds per
    notebook, so ``--only affine-forward`` runs FullyConnectedNets alone, not all four."""
    return [notebook for notebook, checks in selection.checks.items() if checks]


def hidden_tasks(selection: Selection, root: Path = ROOT) -> list[str]:
    """The tasks of the selected checks that have hidden checks (those of this tree: a
    tree graded from elsewhere, a test's fixture, has none)."""
    if root.resolve() != ROOT.resolve():
        return []
    found = {c.task for checks in selection.checks.values() for c in checks}
    return [task for task in HIDDEN_TASKS if task in found]


def run_hidden(box: sb.Sandbox, prepared: hidden.Prepared, limits: Limits,
               selection: Selection, root: Path = ROOT) -> hidden.HiddenReport | None:
    """The hidden checks of the selected checks' tasks, isolated as the notebooks are."""
    wanted = set(hidden_tasks(selection, root))
    if not wanted:
        return None
    mine = [i for i, case in enumerate(prepared.cases) if case.task in wanted]
    subset = hidden.Prepared(prepared.seed, [prepared.cases[i] for i in mine],
                             [prepared.expected[i] for i in mine])
    # A case gets what a notebook cell gets: slow but correct code passes in both.
    return hidden.run_prepared(box.root, subset, hidden.HiddenLimits(
        case_seconds=limits.cell_timeout, memory_mb=min(limits.memory_mb, 2048),
        isolation=limits.isolation, fallback=False, disk_mb=limits.disk_mb))


def _isolation_label(run: NotebookRun) -> str | None:
    """How a run's kernel was isolated, as the reports show it: ``bwrap (cgroup v1)``."""
    return None if run.isolation is None else f"{run.isolation} ({run.cap})"


def not_graded(result: rp.GradeResult, selection: Selection, limits: Limits, root: Path,
               why: str, started: float) -> rp.GradeResult:
    """``result`` for a submission that is none: every selected check failed as "not a
    submission" (so the maximum stays the batch's), nothing run."""
    result.why = why
    result.notes.append(rp.Note(rp.NoteKind.NOT_A_SUBMISSION, f"not a submission: {why}"))
    result.checks = score(selection, {}, limits, root, problem=rp.Reason(
        rp.FailureKind.NOT_A_SUBMISSION, "not graded: not a submission"))
    result.status = rp.overall_status(result.checks, result.notes)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def grade_one(submission: Path, references: Mapping[str, Any], limits: Limits,
              only_checks: set[str] | None = None, root: Path = ROOT,
              prepared: hidden.Prepared | None = None, name: str | None = None,
              ) -> rp.GradeResult:
    """Grade one submission; never raises for anything the submission does.
    ``prepared``: the batch's hidden-check cases (one secret seed); None draws new ones.
    ``name``: its name in the reports (default: ``submission_name``). A zip or folder
    with no course code and no notebook is not run at all (``subs.not_a_submission``)."""
    started = time.monotonic()
    result = rp.GradeResult(name or submission_name(submission))
    selection = select_checks(references, only_checks)
    why = subs.not_a_submission(submission, course_notebooks(root))
    if why is not None:
        return not_graded(result, selection, limits, root, why, started)
    runs: dict[str, NotebookRun] = {}
    hidden_report = None
    exports = Path(tempfile.mkdtemp(prefix="kit-grade-exports-"))
    exports.chmod(0o711)  # the user mode's sandbox user passes through to its folder
    try:
        try:
            box = sanitize(submission, references, selection, root, exports)
        except sb.SubmissionError as error:
            result.notes.append(rp.Note(rp.NoteKind.UNREADABLE, str(error)))
            result.why = str(error).removeprefix(f"{submission}: ")
        else:
            try:
                result.notes += list(dict.fromkeys(box.notes))  # one note per fact
                if prepared is None and hidden_tasks(selection, root):
                    prepared = hidden.prepare(tasks=hidden_tasks(selection, root))
                if prepared is not None:
                    hidden_report = run_hidden(box, prepared, limits, selection, root)
                runs = execute(box, graded_notebooks(selection), limits,
                               started + limits.wall, exports=exports)
                hidden_report = judge_notebook_tasks(
                    exports, notebook_tasks(selection, root), hidden_report)
            finally:
                box.cleanup()
            result.runs = [rp.NotebookTiming(name, run.seconds, _isolation_label(run))
                           for name, run in runs.items()]
            result.notes += [rp.Note(rp.NoteKind.INFO, note) for name, run in runs.items()
                             if (note := run.restart_note(name))]  # kernel restarts
    finally:
        shutil.rmtree(exports, ignore_errors=True)
    result.checks = score(selection, runs, limits, root, hidden_report, references)
    result.status = rp.overall_status(result.checks, result.notes)
    deaths = [death for run in runs.values() for death in run.deaths]
    if deaths and result.status not in {"complete", *(k.value for k in rp.SERIOUS)}:
        # The kernel died in a cell that is no check (e.g. the imports): after the restart
        # the checks fail on their own, but the submission's status still says why.
        result.status = deaths[0].kind.value
    result.seconds = round(time.monotonic() - started, 1)
    return result


# -- the batch -----------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (one line per submission when not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.lock = total, 0, threading.Lock()
        self.tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        with self.lock:
            self.done += 1
            filled = int(30 * self.done / max(1, self.total))
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {label}"
            sys.stderr.write(("\r" + bar[:100].ljust(100)) if self.tty else bar + "\n")
            if self.tty and self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _warn_unrated(references: Mapping[str, Any]) -> None:
    unrated = [f"{name}/{check}" for name, nb in references.items()
               for check in nbs.check_cells(nb).values() if f"{name}/{check}" not in CHECKS]
    if unrated:
        print(f"kit grade: {', '.join(unrated)} belong to no task in course/rubric.py "
              "(CHECKS): graded, but they earn no points", file=sys.stderr)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _unique(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without repeats of one file or folder (a shell glob may list one twice)."""
    seen: set[Path] = set()
    found = []
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(path)
    return found


def csv_notebooks(results: Iterable[rp.GradeResult], graded: Iterable[str]) -> list[str]:
    """The notebook columns of grades.csv: those graded now and those of the results
    kept from earlier runs, in course order."""
    names = set(graded) | {c.notebook for r in results for c in r.checks}
    return [p.stem for p in nbs.in_course_order(Path(f"{n}.ipynb") for n in names)]


def grade_batch(submissions: list[Path], out: Path, *, jobs: int = 1,
                limits: Limits = DEFAULT_LIMITS, force: bool = False,
                only_checks: set[str] | None = None, root: Path = ROOT,
                notebooks: Iterable[str] | None = None,
                notebooks_for: Mapping[str, Iterable[str]] | None = None,
                say: Callable[[str], None] = _say) -> list[rp.GradeResult]:
    """Grade every submission, reusing a result already in ``out`` only when it was
    graded from the same content, with the same options, by the same kit and reference
    material (``subs.Fingerprint``), unless ``force``. ``say`` gets one line per reused
    submission and per stale result regraded, saying why.

    Names: ``subs.assign_names`` (clashing file names: the folder holding each).
    ``notebooks`` limits the notebooks graded; ``notebooks_for`` limits them further for
    some submissions (by name), as the tests' zoo does to stay fast. ``grades.csv`` holds
    every result in ``out``: this batch's, and those graded earlier into ``out`` of
    submissions not in this batch.
    """
    references = reference_notebooks(root, notebooks)
    if not references or not any(select_checks(references, only_checks).checks.values()):
        raise ValueError(f"nothing to grade: no check cell is selected (notebooks: "
                         f"{notebooks!r}, checks: {sorted(only_checks or []) or 'all'})")
    # A mistake in the options is named first, on any machine; then a missing sandbox,
    # naming the fix, still before any work.
    isolation.choose_mode(limits.isolation)
    _warn_unrated(references)
    limited = {name: set(nbs_) for name, nbs_ in (notebooks_for or {}).items()}
    submissions = _unique(submissions)
    names = subs.assign_names(submissions)  # refuses clashes before touching out
    named = dict(zip(submissions, names, strict=True))
    renamed = [name for path, name in named.items() if name != subs.base_name(path)]
    if renamed:
        say(f"kit grade: {len(renamed)} submissions have the same file name; each is named "
            f"by the folder holding it: {', '.join(renamed)}")

    def refs_for(name: str) -> dict[str, Any]:
        wanted = limited.get(name)
        return {n: nb for n, nb in references.items() if wanted is None or n in wanted}

    material = subs.material_hash(root)
    all_notebooks = course_notebooks(root)

    def fingerprint(path: Path, name: str) -> subs.Fingerprint:
        refs = refs_for(name)
        selection = select_checks(refs, only_checks)
        checks = None if not selection.partial else [
            f"{c.notebook}/{c.name}" for found in selection.checks.values() for c in found]
        options = subs.grading_options(checks, refs, limits)
        return subs.Fingerprint(subs.content_hash(path), options, material)

    # Each submission hashed and each saved result read once, for both uses below.
    fingerprints = {name: fingerprint(path, name) for path, name in named.items()}
    saved = {name: rp.load_result(out, name) for name in names}
    _refuse_replacing_full_grades(out, fingerprints, saved)
    outputs.claim_folder(out, OUT_STAMP)
    earlier = {r.submission: r for r in rp.load_results(out) if r.submission not in names}
    results: dict[str, rp.GradeResult] = {}
    pending: list[tuple[Path, str, subs.Fingerprint]] = []
    for path, name in named.items():
        now = fingerprints[name]
        previous = None if force else saved[name]
        if previous is not None:
            changes = now.changes_since(subs.Fingerprint.from_json(previous.graded_with),
                                        name, str(path))
            if not changes:
                say(f"{name}: unchanged since its last grading, result reused "
                    "(--force regrades)")
                results[name] = previous
                continue
            for line in changes:
                say(line)
        pending.append((path, name, now))
    progress = Progress(len(pending))
    csv_lock = threading.Lock()

    def write_csv() -> None:
        everything = [*earlier.values(), *results.values()]
        outputs.write_atomic(out / "grades.csv",
                             rp.grades_csv(everything, csv_notebooks(everything, references),
                                           options_of),
                             private=True)

    def options_of(result: rp.GradeResult) -> str:
        return subs.options_flags((result.graded_with or {}).get("options"), all_notebooks)

    def finish(result: rp.GradeResult, now: subs.Fingerprint) -> None:
        result.graded_with = now.to_json()
        rp.save_result(out, result)
        with csv_lock:
            results[result.submission] = result
            write_csv()
        progress.step(f"{result.submission}: {result.total}/{result.max}")

    if pending:
        # One secret seed for the batch: every submission meets the same hidden inputs,
        # and the solution's answers are computed once.
        tasks = hidden_tasks(select_checks(references, only_checks), root)
        prepared = hidden.prepare(tasks=tasks) if tasks else None
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(grade_one, path, refs_for(name), limits, only_checks,
                                   root, prepared, name=name): now
                       for path, name, now in pending}
            for future in as_completed(futures):
                finish(future.result(), futures[future])
    write_csv()
    return [results[n] for n in names]


def _narrower(now: Mapping[str, Any], saved: Mapping[str, Any]) -> bool:
    """Whether options ``now`` grade less than ``saved``, a grading of every check cell of
    its notebooks: some checks only (``--only``), or fewer notebooks (``--notebook``)."""
    if saved.get("checks") is not None:
        return False  # a trial's result: any grading may replace it
    return now.get("checks") is not None or set(now.get("notebooks") or ()) < set(
        saved.get("notebooks") or ())


def _refuse_replacing_full_grades(out: Path, fingerprints: Mapping[str, subs.Fingerprint],
                                  saved: Mapping[str, rp.GradeResult | None]) -> None:
    """A trial (``--only``, or fewer ``--notebook``s) into ``out`` where a submission has a
    grade of every check (``saved``: its result there, by name) would replace that grade
    (its report and its row of grades.csv): refused, before anything is graded or
    written, naming them."""
    replaced = []
    for name, now in fingerprints.items():
        previous = saved.get(name)
        graded = None if previous is None else subs.Fingerprint.from_json(previous.graded_with)
        if graded is not None and _narrower(now.options, graded.options):
            replaced.append(f"{name} ({previous.total}/{previous.max})")
    if replaced:
        raise ValueError(
            f"{out} holds the grade of {', '.join(replaced)} over every check; this trial "
            "(--only, or fewer --notebook) would replace it. Give the trial a folder of its "
            "own (--out build/trials), or leave those options out.")


# -- command line --------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kit grade", description=__doc__.split("\n\n")[1])
    p.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                   help="a folder or .zip with the student's course/ files (and notebooks)")
    p.add_argument("--out", type=Path, default=Path("build/grades"),
                   help="where grades.csv and the per-submission reports go (build/grades)")
    p.add_argument("--jobs", type=cli.whole_number(1, "a number of submissions"), default=1,
                   help="submissions graded at once (1)")
    p.add_argument("--timeout", type=cli.positive_seconds, default=60.0,
                   help="seconds per cell (60)")
    p.add_argument("--wall", type=cli.positive_seconds, default=600.0,
                   help="seconds for one submission's notebooks together (600)")
    p.add_argument("--memory", type=cli.whole_number(256, "a number of MB"), default=3072,
                   metavar="MB",
                   help="memory limit, MB, per process and over each notebook kernel's "
                        "processes together (3072)")
    p.add_argument("--disk", type=cli.whole_number(1, "a number of MB"), default=None,
                   metavar="MB",
                   help="disk cap, MB: what each notebook kernel's processes, and the "
                        "hidden checks, may write together "
                        f"({isolation.DISK_MB}, or ${isolation.DISK_ENV} when set)")
    p.add_argument("--no-isolation", action="store_true",
                   help="run student code without the isolation sandbox: only for code "
                        "you trust (the reports then say isolation: none)")
    p.add_argument("--force", action="store_true",
                   help="regrade submissions already graded (without it, a result in --out "
                        "is reused when the submission, the options and the kit are "
                        "unchanged)")
    p.add_argument("--only", action="append", default=None, metavar="CHECK",
                   help="grade only these check names (repeatable; only their notebooks "
                        "run; for quick trials, in an --out of their own: a trial never "
                        "replaces a full grade)")
    p.add_argument("--notebook", action="append", default=None, metavar="NAME",
                   help="grade only these notebooks (repeatable; a name in any case, "
                        ".ipynb optional)")
    return p


def _make_sure_of_bubblewrap() -> None:
    """Install bubblewrap where this process may (root with apt-get); otherwise say the
    command, and grade with the fallback isolation if the machine has one."""
    try:
        isolation.ensure_bwrap(install=True)
    except isolation.IsolationUnavailableError as error:
        print(f"kit grade: {error}", file=sys.stderr)


def _notebook_names(given: list[str] | None, references: Mapping[str, Any]) -> list[str] | None:
    """``--notebook`` values as the notebooks' own names: any case, ``.ipynb`` optional (an
    unknown name is kept, for ``_usage_problem`` to name; None: every notebook)."""
    by_key = {name.lower(): name for name in references}
    return None if given is None else [by_key.get(name.lower().removesuffix(".ipynb"), name)
                                       for name in given]


def _usage_problem(args: argparse.Namespace, references: Mapping[str, Any]) -> str | None:
    """What is wrong with the arguments that argparse cannot see (None: nothing)."""
    for path in args.submissions:
        if not path.exists():
            return f"argument SUBMISSION: no such file or folder: {path}"
        if path.is_file() and path.suffix.lower() != ".zip":
            return (f"argument SUBMISSION: expected a folder or a .zip file, got {path} "
                    "(a file)")
    unknown = [name for name in args.notebook or [] if name not in references]
    if unknown:
        return (f"argument --notebook: no notebook {', '.join(map(repr, unknown))}; "
                f"expected one of {', '.join(references)}")
    checks = {name for notebook, reference in references.items()
              for name in nbs.check_cells(reference).values()}
    checks |= {f"{notebook}/{name}" for notebook, reference in references.items()
               for name in nbs.check_cells(reference).values()}
    for name in args.only or []:
        if name not in checks:
            near = difflib.get_close_matches(name, sorted(checks), n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            return (f"argument --only: no check cell named {name!r}{hint}; the names are "
                    "the check cells' metadata.check, listed in CHECKS of course/rubric.py")
    if args.only and args.notebook:
        chosen = {n: references[n] for n in args.notebook}
        if not any(select_checks(chosen, set(args.only)).checks.values()):
            return (f"argument --only: none of {', '.join(map(repr, args.only))} is a check "
                    f"of {', '.join(args.notebook)} (--notebook): nothing would be graded")
    return None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    references = reference_notebooks()
    args.notebook = _notebook_names(args.notebook, references)
    problem = _usage_problem(args, references)
    if problem:
        parser().error(problem)
    if not args.no_isolation:
        _make_sure_of_bubblewrap()
    # The cap is resolved here so that a result records the one it was graded under.
    try:
        disk = isolation.default_disk_mb() if args.disk is None else args.disk
    except ValueError as error:  # a bad $KIT_SANDBOX_DISK_MB
        parser().error(str(error))
    limits = Limits(args.timeout, args.wall, args.memory,
                    isolation="none" if args.no_isolation else None, disk_mb=disk)
    try:
        results = grade_batch(args.submissions, args.out, jobs=args.jobs, limits=limits,
                              force=args.force, notebooks=args.notebook,
                              only_checks=set(args.only) if args.only else None)
    except (ValueError, KitError) as error:
        print(f"kit grade: {error}", file=sys.stderr)
        return 2
    print(rp.summary_table(results))
    line = rp.hidden_summary(results)
    if line:
        print(f"\n{line}")
    graded = {r.submission for r in results}
    kept = sorted(r.submission for r in rp.load_results(args.out) if r.submission not in graded)
    if kept:
        shown = ", ".join(kept[:8]) + (", ..." if len(kept) > 8 else "")
        print(f"\ngrades.csv also holds {len(kept)} submission(s) graded earlier into "
              f"{args.out}: {shown}")
    print(f"\nReports in {args.out}/ (grades.csv, <submission>.json, <submission>.md)")
    return 0
