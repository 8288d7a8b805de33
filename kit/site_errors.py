"""What the site says about the code cells that stopped with an error.

In the student release most cells stop: one calls a stub and stops with its
``NotImplementedError``; a later one then fails because a name the stopped cell should
have defined is missing (``NameError: name 'solver' is not defined``) or is still ``None``.
Shown as IPython tracebacks, that is a wall of red frames through files of a temporary
tree that no longer exists, and the follow-on errors do not say what caused them. So, in
the student site, each error output becomes one short line that says what is true:

* a stub stopped the cell: which task, function and file is not written yet;
* the cell failed after an earlier cell of the notebook stopped at a stub: that it needs
  that earlier cell's result, naming the task, and the error it showed;
* any other error: its type and message, without traceback frames.

``error_summary`` classifies the errors of one executed notebook (both site modes: the
index says per notebook what happened instead of "ran without errors").
``shorten_errors`` rewrites the error outputs (student mode) and ``scrub_paths`` takes the
temporary tree's path out of every output, so that neither the pages nor the ``.ipynb``
downloads show it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course.notebook_outputs import STUB_MESSAGE
from course.tasks import TASKS, task_sort_key
from kit import notebooks as nbs

STUB = "stub"  # the cell stopped at a stub's NotImplementedError
AFTER_STUB = "after-stub"  # it failed after an earlier cell of the notebook stopped at a stub
OTHER = "other"  # any other error

# The stub's message in full: "task 1.3 (relu_forward): not written yet; see the TODO in
# course/layers.py" (kit.markers.Region.message writes it).
_STUB_DETAIL = re.compile(
    r"task (?P<task>\d+(?:\.\d+)+) \((?P<func>[^)]*)\): not written yet"
    r"(?:; see the TODO in (?P<path>\S+))?"
)
_THIS_CELL = "this cell"  # the FUNC of a stub in a notebook cell, outside any def
_LONGEST_MESSAGE = 200  # characters of a follow-on error's message kept in its line


@dataclass(frozen=True)
class CellError:
    """One code cell's error output, classified."""

    cell: int  # index in the notebook's cells
    kind: str  # STUB, AFTER_STUB or OTHER
    task: str | None  # STUB: the stub's task; AFTER_STUB: the stub the cell waited for
    error: str  # "NameError: name 'solver' is not defined" (type and first message line)
    line: str  # the one line the student site shows instead of the traceback


@dataclass
class ErrorSummary:
    """The errors of one executed notebook, for its entry on the index."""

    code_cells: int
    errors: list[CellError] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[CellError]:
        return [e for e in self.errors if e.kind == kind]

    @property
    def stub_tasks(self) -> list[str]:
        """The tasks whose stubs stopped a cell, in course order."""
        return sorted({e.task for e in self.of_kind(STUB) if e.task}, key=task_sort_key)

    def describe(self) -> str:
        """What happened, as the index says it after "ran in N s" ("" when no error).

        Counts cells, not error outputs: the reader sees cells.
        """
        stubs, after, other = (self.of_kind(kind) for kind in (STUB, AFTER_STUB, OTHER))
        parts = []
        if stubs:
            tasks = self.stub_tasks
            named = f"task{'s' if len(tasks) > 1 else ''} {', '.join(tasks)}"
            parts.append(f"{self._count(len(stubs), parts)} at a stub ({named})")
        if after:
            parts.append(f"{self._count(len(after), parts)} because they need the result of "
                         "an earlier cell that stopped")
        if other:
            first = other[0].error
            shown = first if len(first) <= 80 else first[:77] + "..."
            parts.append(f"{self._count(len(other), parts)} with an error (first: {shown})")
        return "; ".join(parts)

    def _count(self, count: int, before: list[str]) -> str:
        """"3 of 27 code cells stop", or "3 more stop" after a first count."""
        verb = "stops" if count == 1 else "stop"
        if before:
            return f"{count} more {verb}"
        return f"{count} of {self.code_cells} code cell{'s' if self.code_cells != 1 else ''} {verb}"


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _error_outputs(nb: Any) -> Iterator[tuple[int, dict]]:
    for number, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs") or []:
            if output.get("output_type") == "error":
                yield number, output


def _error_text(output: dict) -> str:
    name = output.get("ename") or "Error"
    lines = _text(output.get("evalue")).strip().splitlines()
    return f"{name}: {lines[0]}" if lines else name


def stub_line(message: str) -> str | None:
    """The line for a cell a stub stopped, from the stub's message; None if it is not one.

    The message names the task, function and file (see ``kit.markers``); for a message
    without the file the task table (``course/tasks.py``) supplies it.
    """
    found = _STUB_DETAIL.search(message)
    if found is None:
        return None
    task, func, path = found.group("task"), found.group("func"), found.group("path")
    if func == _THIS_CELL:
        return f"Stopped at a stub: task {task} is not written yet (the TODO in this cell)."
    if path is None:
        path = next((t.path for t in TASKS if t.id == task), None)
    where = f"{func} in {path}" if path else func
    return f"Stopped at a stub: task {task} is not written yet ({where})."


def classify(nb: Any) -> list[CellError]:
    """Each error output of an executed notebook, classified in cell order.

    A follow-on error (AFTER_STUB) needs an earlier cell that stopped at a stub, directly
    or through a chain of follow-on errors. Which one: for a ``NameError``, the latest
    stopped cell whose code assigns that name; otherwise the latest stopped cell before
    it. An error with no stopped cell before it is OTHER, as is a ``NameError`` whose
    name only a cell that stopped for another reason assigns.
    """
    found: list[CellError] = []
    root: dict[int, str | None] = {}  # stopped cell -> the stub task behind it (None: other)
    for number, output in _error_outputs(nb):
        name, message = output.get("ename") or "", _text(output.get("evalue"))
        error = _error_text(output)
        line = stub_line(message) if name == "NotImplementedError" else None
        if line is not None:
            stub = STUB_MESSAGE.search(message)
            task = stub.group(1) if stub else None
            found.append(CellError(number, STUB, task, error, line))
            root[number] = task
            continue
        earlier = [c for c in root if c < number]
        cause: int | None = None
        missing = nbs.MISSING_NAME.search(message) if name == "NameError" else None
        if missing:
            cause = next((c for c in reversed(earlier)
                          if nbs.may_bind(nb["cells"][c], missing.group(1))), None)
        if cause is None and not missing:
            cause = next((c for c in reversed(earlier) if root[c] is not None), None)
        task = root.get(cause) if cause is not None else None
        if task is not None:
            shown = error if len(error) <= _LONGEST_MESSAGE else error[:_LONGEST_MESSAGE] + "..."
            line = (f"Stopped: this cell needs the result of an earlier cell, which stopped at "
                    f"the stub of task {task} (here: {shown}).")
            found.append(CellError(number, AFTER_STUB, task, error, line))
        else:
            full = f"{name or 'Error'}: {message.strip()}" if message.strip() else name
            found.append(CellError(number, OTHER, None, error, full))
        root.setdefault(number, task)
    return found


def error_summary(nb: Any) -> ErrorSummary:
    """The classified errors of ``nb``, one per cell (a cell stops at its first error)."""
    per_cell: dict[int, CellError] = {}
    for error in classify(nb):
        per_cell.setdefault(error.cell, error)
    code_cells = sum(cell.get("cell_type") == "code" for cell in nb["cells"])
    return ErrorSummary(code_cells, list(per_cell.values()))


def shorten_errors(nb: Any) -> ErrorSummary:
    """Replace each error output's traceback by its one line (see the module docstring).

    ``ename`` and ``evalue`` stay (Jupyter and the grader read them); the traceback, which
    is what Jupyter and nbconvert show, becomes the one line, without colour codes.
    """
    lines = {error.cell: error.line for error in classify(nb)}
    for number, output in _error_outputs(nb):
        output["traceback"] = [lines[number]]
    return error_summary(nb)


def scrub_paths(nb: Any, tree: Path) -> None:
    """Take ``tree`` out of every output: ``<tree>/course/layers.py`` -> ``course/layers.py``.

    The student site is built from a release written to a temporary folder that is gone
    when the site is read; its path means nothing to a reader.
    """
    prefixes = sorted({str(tree), str(tree.resolve())}, key=len, reverse=True)

    def clean(value: str) -> str:
        for prefix in prefixes:
            value = value.replace(prefix + "/", "").replace(prefix, ".")
        return value

    def clean_in(container: Any) -> None:  # in place: nbformat nodes stay nodes
        keys = range(len(container)) if isinstance(container, list) else list(container)
        for key in keys:
            item = container[key]
            if isinstance(item, str):
                container[key] = clean(item)
            elif isinstance(item, list | dict):
                clean_in(item)

    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            clean_in(cell.get("outputs") or [])
