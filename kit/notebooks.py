"""The kit's one model of a notebook: cell tags and roles, code-cell numbering, headings.

Every kit command that reads notebooks (release, site, grade, verify, port) goes through
here, so they agree on:

* **the tag vocabulary** (CONTRIBUTING.md section 2): ``CELL_TAGS``, each tag with the
  cell types it may be on, and the role predicates (``is_check``, ...);
* **numbering**: nbval's ``Cell N`` is the N-th *code* cell counting from 0 (``index``);
  Jupyter shows a cell as its position among *all* cells counting from 1 (``number``);
* **one heading rule**: a cell sits under the heading nearest above it, as a student sees
  it scrolling up: the last Markdown heading line (``#`` to ``######``, outside code
  fences) of the nearest Markdown cell above that has one. The student tree's tests have
  their own copy of the rule (``tests/notebook_headings.py``; they ship without ``kit/``),
  and ``tests/kit/test_notebooks.py`` checks that both name the same heading for every
  check cell;
* **volatile metadata**: what records a run or a screen rather than the notebook;
* **reading and writing**: notebooks in course order, and the atomic write.

Cells may be plain JSON dicts or nbformat nodes (a ``dict`` subclass); a cell's source
may be a string or a list of lines.

A **pipeline** is a list of named steps, each a function that changes a notebook in place
(``Step``, ``run_steps``); the release, grading's sanitize phase and ``make notebooks``
declare theirs as such lists.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from course.tasks import NOTEBOOKS
from kit.errors import KitError
from kit.markers import parse_python
from kit.outputs import atomic_file


class NotebookError(KitError):
    """A notebook cannot be read; the message names it."""


# -- tags and roles ------------------------------------------------------------------------

CHECK = "check"  # prints verdict lines for a named check (metadata "check"); graded
EXPERIMENT = "experiment"  # sweeps, timings, long plots; the grader skips it
ANSWER = "answer"  # the instructor's answer to an inline question; a prompt for students
INSTRUCTOR = "instructor"  # exists only for instructors; dropped from the student release
NBVAL_IGNORE_OUTPUT = "nbval-ignore-output"  # nbval runs it but does not compare
NBVAL_SKIP = "nbval-skip"  # nbval does not run it

# Tag -> the cell types it may be on. The release rejects any other tag.
CELL_TAGS: dict[str, frozenset[str]] = {
    CHECK: frozenset({"code"}),
    EXPERIMENT: frozenset({"code"}),
    ANSWER: frozenset({"markdown"}),
    INSTRUCTOR: frozenset({"code", "markdown", "raw"}),
    NBVAL_IGNORE_OUTPUT: frozenset({"code"}),
    NBVAL_SKIP: frozenset({"code"}),
}


def source_of(cell: Any) -> str:
    """The cell's source as one string."""
    return "".join(cell.get("source", ""))


def tags_of(cell: Any) -> list[str]:
    """The cell's tags (``metadata.tags``), as stored (not checked)."""
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, list) else []


def has_tag(cell: Any, tag: str) -> bool:
    return tag in tags_of(cell)


def add_tag(cell: Any, tag: str) -> None:
    """Tag the cell (once)."""
    metadata = cell.setdefault("metadata", {})
    tags = tags_of(cell)
    if tag not in tags:
        tags.append(tag)
    metadata["tags"] = tags


def is_code(cell: Any) -> bool:
    return cell.get("cell_type") == "code"


def is_markdown(cell: Any) -> bool:
    return cell.get("cell_type") == "markdown"


def is_check(cell: Any) -> bool:
    """A graded check cell: a code cell tagged ``check``."""
    return is_code(cell) and has_tag(cell, CHECK)


def is_experiment(cell: Any) -> bool:
    return is_code(cell) and has_tag(cell, EXPERIMENT)


def tag_problem(cell: Any) -> str | None:
    """What is wrong with the cell's tags (not a list of strings, a tag outside
    ``CELL_TAGS``, a tag on the wrong cell type), or None."""
    tags = cell.get("metadata", {}).get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return f'cell tags must be a list of strings, e.g. ["instructor"]; got {tags!r}'
    for tag in tags:
        if tag not in CELL_TAGS:
            return (f"unknown cell tag {tag!r} (the tags of CONTRIBUTING.md: "
                    f"{', '.join(CELL_TAGS)})")
        if cell.get("cell_type") not in CELL_TAGS[tag]:
            kinds = " or ".join(sorted(CELL_TAGS[tag]))
            return f"tag {tag!r} is for {kinds} cells, not {cell.get('cell_type')} cells"
    return None


def declared_check(cell: Any) -> str | None:
    """The cell's ``metadata.check`` name, if it declares one."""
    return cell.get("metadata", {}).get("check") or None


def check_name(cell: Any, index: int) -> str:
    """The check's stable name (``metadata.check``), or ``cell-<index>`` if it has none."""
    return declared_check(cell) or f"cell-{index}"


# -- headings ------------------------------------------------------------------------------

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+|$)(?P<text>.*)$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def heading_lines(markdown: str) -> list[str]:
    """The text of every heading line of a Markdown text, in order (code fences skipped)."""
    found, fence = [], None
    for line in markdown.split("\n"):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1) == fence:
                fence = None
            continue
        if opening:
            fence = opening.group(1)
        elif match := _HEADING.match(line):
            found.append(re.sub(r"[ \t]+#+[ \t]*$|^#+[ \t]*$", "", match["text"]).strip())
    return found


def headings_above(cells: Sequence[Any]) -> list[str]:
    """For each cell, the heading it sits under ("" before the first heading)."""
    result, heading = [], ""
    for cell in cells:
        result.append(heading)
        if is_markdown(cell):
            found = heading_lines(source_of(cell))
            heading = found[-1] if found else heading
    return result


# -- numbering -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeCell:
    """A code cell and the ways people and tools refer to it."""

    index: int  # among code cells, from 0: nbval's "Cell N"
    number: int  # among all cells, from 1: what Jupyter shows
    heading: str  # the heading nearest above it
    cell: Any


def code_cells(notebook: Any) -> list[CodeCell]:
    """Every code cell of the notebook, numbered both ways, with its heading."""
    cells = notebook["cells"]
    found = []
    for number, (cell, heading) in enumerate(zip(cells, headings_above(cells), strict=True),
                                             start=1):
        if is_code(cell):
            found.append(CodeCell(len(found), number, heading, cell))
    return found


def check_cells(notebook: Any) -> dict[int, str]:
    """nbval's code-cell index -> check name, for the notebook's check cells."""
    return {c.index: check_name(c.cell, c.index) for c in code_cells(notebook)
            if is_check(c.cell)}



# -- names a cell defines ------------------------------------------------------------------

MISSING_NAME = re.compile(r"name '(\w+)' is not defined")  # a NameError's message


def bound_names(source: str) -> set[str] | None:
    """Names a cell's code assigns at any depth (for: which cell should have defined it).

    None when Python cannot parse the cell (IPython magics): it may assign anything.
    """
    try:
        tree = parse_python(source)
    except SyntaxError:
        return None
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def may_bind(cell: Any, name: str) -> bool:
    """Whether the cell's code may assign ``name`` (a cell that does not parse may)."""
    names = bound_names(source_of(cell))
    return names is None or name in names

# -- volatile metadata ---------------------------------------------------------------------

# Metadata that records a particular run or a particular screen, not the notebook.
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled", "papermill")
VOLATILE_NOTEBOOK_METADATA = ("widgets", "papermill", "execution")


def drop_volatile_cell_metadata(cell: Any) -> None:
    metadata = cell.get("metadata", {})
    for key in VOLATILE_CELL_METADATA:
        metadata.pop(key, None)


def drop_volatile_notebook_metadata(notebook: Any) -> None:
    for key in VOLATILE_NOTEBOOK_METADATA:
        notebook.get("metadata", {}).pop(key, None)


# -- pipelines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One named change to a notebook, made in place."""

    name: str
    apply: Callable[[Any], None]


def run_steps(notebook: Any, steps: Iterable[Step]) -> Any:
    """Apply each step to ``notebook`` in order; return it."""
    for step in steps:
        step.apply(notebook)
    return notebook


def each_cell(change: Callable[[Any], None]) -> Callable[[Any], None]:
    """A notebook step from a change to one cell."""

    def apply(notebook: Any) -> None:
        for cell in notebook["cells"]:
            change(cell)

    return apply


# -- files ---------------------------------------------------------------------------------


def in_course_order(paths: Iterable[Path]) -> list[Path]:
    """Notebook paths in course order (``course.tasks.NOTEBOOKS``), then others by name."""
    order = {name: position for position, name in enumerate(NOTEBOOKS)}
    return sorted(paths, key=lambda p: (order.get(p.stem, len(order)), p.stem))


def find_notebooks(folder: Path) -> list[Path]:
    """The notebooks of a folder (``*.ipynb``), in course order."""
    return in_course_order(folder.glob("*.ipynb"))


def read_notebook(path: Path, label: str | None = None) -> Any:
    """A notebook as an nbformat v4 node; ``NotebookError`` (naming ``label``, default the
    path) if it cannot be read."""
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several unrelated types for bad files
        raise NotebookError(f"{label or path}: not a readable notebook ({error})") from None


def load_json(path: Path) -> Any:
    """A notebook as plain JSON (no validation, no conversion)."""
    return json.loads(path.read_text(encoding="utf-8"))


def write_notebook(notebook: Any, path: Path) -> None:
    """Write a notebook with nbformat, atomically (a Ctrl-C never leaves half a file)."""
    with atomic_file(path) as temp:
        nbformat.write(nbformat.from_dict(notebook), temp)
