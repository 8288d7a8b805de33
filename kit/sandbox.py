"""Build a grading sandbox: the pristine tree with only the student's task code in it.

A submission is a folder or a ``.zip`` holding a student's ``course/`` files (the whole
package, or just the files they edited) and optionally their notebooks. Students write
those files in every shape: whole-file replacements without the kit's validation, with
``from builtins import range`` or relative imports, without the kit's given helpers, or
with helpers of their own. So the sandbox takes, per student-editable file (a file that
holds tasks):

* each **task function** from the submission (a stub that says it is missing otherwise);
* the student's **own extra code** (imports, helpers, constants and statements the
  pristine file does not define), appended after the pristine code;
* **everything given** (helpers, validation wrappers, constants) from the pristine file.

Task functions are wrapped so that they receive copies of their array arguments: a
student layer that writes into its input cannot change the inputs of a later check.
Nothing else of the submission is used: no ``conftest.py``, ``pytest.ini``, extra modules.

Notebook-cell tasks (hyperparameter choices) come from the student's notebook: their
solution cells are spliced into the reference notebook by cell ID.

The grader may add **cells of its own** (``kit_cell``: the export cells of
``kit.hidden.measure``): code cells with a ``kit-`` ID, no outputs, the
``nbval-ignore-output`` tag and ``metadata.kit``. nbval numbers every code cell, so
``reference_indices`` maps a graded notebook's code-cell numbers back to the reference's
(which the checks are keyed on), leaving the kit's cells out.

For grading (``build(..., withhold_test_labels=True)``) the sandbox's
``course/data_utils.py`` hands out every ``y_test`` as ``-1`` (``WITHHOLD_TEST_LABELS``):
the notebooks never need test labels for a verdict, and the grader measures on them.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import json
import os
import shutil
import stat
import tempfile
import textwrap
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kit import notebooks as nbs
from kit.errors import KitError
from kit.markers import parse, parse_python, regions, render_student
from kit.reports import Note, NoteKind
from kit.tree import load_tasks_module

ROOT = Path(__file__).resolve().parent.parent
# Bytes of the members extracted (those the grader reads): code and notebooks, not a zip
# bomb. The rest of a zip (a .venv, datasets/) is never extracted, so it does not count.
MAX_UNZIPPED = 200_000_000

# Copy-on-call wrapper appended to each merged file; the names cannot clash with a
# student's because of the prefix.
_WRAPPER = '''

def _kit_grade_copy_inputs(func):
    """Call func with copies of its array arguments (grading: checks never share inputs)."""
    import functools as _kit_functools

    import numpy as _kit_np

    def _copy(value):
        return value.copy() if isinstance(value, _kit_np.ndarray) else value

    @_kit_functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*[_copy(a) for a in args], **{k: _copy(v) for k, v in kwargs.items()})

    return wrapper
'''

# Appended to the sandbox's course/data_utils.py when grading: every loader's test labels
# become -1 (same shape and dtype, so what the notebooks print does not change).
WITHHOLD_TEST_LABELS = '''

# ---- kit grade: the grading kernel gets no test labels (the grader measures on them) ----
def _kit_grade_withhold_test_labels(load):
    import functools as _kit_functools

    import numpy as _kit_np

    @_kit_functools.wraps(load)
    def wrapper(*args, **kwargs):
        found = load(*args, **kwargs)
        if isinstance(found, dict) and "y_test" in found:
            found["y_test"] = _kit_np.full_like(found["y_test"], -1)
        elif isinstance(found, tuple) and len(found) == 4:  # load_CIFAR10's (Xtr, Ytr, Xte, Yte)
            found = (*found[:3], _kit_np.full_like(found[3], -1))
        return found

    return wrapper


get_data = _kit_grade_withhold_test_labels(get_data)
get_digits_data = _kit_grade_withhold_test_labels(get_digits_data)
get_CIFAR10_data = _kit_grade_withhold_test_labels(get_CIFAR10_data)
load_CIFAR10 = _kit_grade_withhold_test_labels(load_CIFAR10)
'''
KIT_CELL_PREFIX = "kit-"  # the ID of every cell the grader adds


class SubmissionError(KitError):
    """The submission cannot be read at all (not a folder or zip, a bad zip)."""


@dataclass
class Sandbox:
    """A built sandbox: its folder, and what the build noticed about the submission."""

    root: Path
    notes: list[Note] = field(default_factory=list)
    notebooks: dict[str, Any] = field(default_factory=dict)  # name -> notebook as graded
    snapshot: dict[str, bytes] = field(default_factory=dict)  # every file, as built

    @classmethod
    @contextlib.contextmanager
    def fresh(cls, prefix: str) -> Iterator[Sandbox]:
        """A sandbox in a new temporary folder, for the block to fill; sealed (and the
        unpacked submission removed) when the block ends, deleted if it raises."""
        box = cls(Path(tempfile.mkdtemp(prefix=prefix)))
        try:
            yield box
            shutil.rmtree(box.root / "_submission", ignore_errors=True)
            box.seal()
        except BaseException:
            box.cleanup()
            raise

    def seal(self) -> None:
        """Remember every file of the built sandbox (in memory, out of the student's reach)."""
        self.snapshot = {p.relative_to(self.root).as_posix(): p.read_bytes()
                         for p in sorted(self.root.rglob("*")) if p.is_file()}

    def restore(self) -> None:
        """Put the sandbox back as built: code run for one notebook may have rewritten or
        deleted files (another notebook, a course module) that the next run reads."""
        for child in list(self.root.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        for rel, data in self.snapshot.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def add_notebook(self, name: str, notebook: Any) -> None:
        """Put a notebook, as it will be graded, into the sandbox's notebooks/ folder."""
        self.notebooks[name] = notebook
        (self.root / "notebooks" / f"{name}.ipynb").write_text(json.dumps(notebook))

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True)
class TaskInfo:
    id: str
    path: str  # "course/layers.py" or "notebooks/X.ipynb"
    function: str  # "affine_forward", "FullyConnectedNet.loss"
    checked_by: str


def load_tasks(root: Path = ROOT) -> list[TaskInfo]:
    """The task table of the tree at ``root`` (read from its course/tasks.py)."""
    module = load_tasks_module(root)
    return [TaskInfo(t.id, t.path, t.function, t.checked_by) for t in module.TASKS]


# ---------------------------------------------------------------------------------------
# Reading a submission
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Unpacked:
    """Where a submission is, and what of its zip was left out (never extracted)."""

    folder: Path
    ignored_files: int = 0
    ignored_bytes: int = 0  # their size unpacked, as the zip declares it
    not_regular: tuple[str, ...] = ()  # a folder's entries the grader would read but did not

    def notes(self) -> list[Note]:
        """Notes for the reports when something was left out: a zip of a whole working
        folder (its .venv, datasets/, caches), or a folder's links and special files."""
        notes = []
        if self.ignored_files:
            notes.append(Note(NoteKind.INFO,
                              f"ignored {self.ignored_files} file(s) of the zip "
                              f"({self.ignored_bytes / 1e6:.1f} MB unpacked) that grading "
                              f"does not read: only the course/ Python files and the "
                              f"notebooks are used"))
        if self.not_regular:
            notes.append(Note(NoteKind.UNREADABLE,
                              f"left out {', '.join(self.not_regular)}: a symlink or "
                              f"special file, not a regular file, and grading reads only "
                              f"regular files (a link could point at any file of the "
                              f"grader's machine, the solution included)"))
        return notes


def read_by_grader(name: str) -> bool:
    """Whether a zip member is one the grader may read, as ``find_course_dir``,
    ``find_student_file`` and ``find_student_notebook`` look for them: a ``.py`` file in
    ``course/`` or in a ``course/`` one folder down (a zip of the folder holding it), or
    at the top (bare files); a notebook anywhere but in hidden folders (``.venv``,
    ``.ipynb_checkpoints``, ``.git``) and installed packages (``site-packages``)."""
    parts = PurePosixPath(name).parts
    if not parts or name.endswith("/"):
        return False
    if parts[-1].endswith(".py"):
        return len(parts) == 1 or parts[0] == "course" or (len(parts) > 2
                                                           and parts[1] == "course")
    if parts[-1].endswith(".ipynb"):
        return not any(part.startswith(".") or part == "site-packages"
                       for part in parts[:-1])
    return False


def unpack(submission: Path, into: Path) -> Unpacked:
    """The folder that holds the submission: the folder itself, or ``into`` with the
    zip's members the grader reads (``read_by_grader``) extracted there.

    Refused (``SubmissionError``): a zip whose extracted members would exceed
    ``MAX_UNZIPPED`` (a zip bomb; the declared sizes bound what ``zipfile`` extracts), or
    any member whose path would land outside ``into`` (absolute, ``..``, or a sibling
    such as ``../into-other/f``: checked on resolved paths, not as a string prefix).
    Links are stored as members too, but ``zipfile`` writes them as plain files.

    A folder is copied the same way: its regular files that the grader reads, under the
    same cap. Symlinks are never followed (a link ``course/layers.py`` to the
    instructor's solution would otherwise be graded as the student's code), and they and
    special files (a FIFO would block the reader) are left out and named."""
    if submission.is_dir():
        return _copy_folder(submission, into)
    if submission.suffix == ".zip" and submission.is_file():
        try:
            with zipfile.ZipFile(submission) as archive:
                members = [info for info in archive.infolist() if not info.is_dir()]
                root = into.resolve()
                for info in archive.infolist():
                    target = (root / info.filename).resolve()
                    if not target.is_relative_to(root):
                        raise SubmissionError(f"{submission}: unsafe path {info.filename!r}")
                wanted = [info for info in members if read_by_grader(info.filename)]
                size = sum(info.file_size for info in wanted)
                if size > MAX_UNZIPPED:
                    raise SubmissionError(
                        f"{submission}: its course/ files and notebooks unpack to "
                        f"{size / 1e6:.0f} MB (more than {MAX_UNZIPPED / 1e6:.0f} MB)")
                into.mkdir(parents=True, exist_ok=True)
                for info in wanted:
                    archive.extract(info, into)
        except zipfile.BadZipFile as error:
            raise SubmissionError(f"{submission}: not a readable zip ({error})") from None
        ignored = [info for info in members if not read_by_grader(info.filename)]
        return Unpacked(into, len(ignored), sum(info.file_size for info in ignored))
    raise SubmissionError(f"{submission}: not a folder or a .zip file")


def _copy_folder(submission: Path, into: Path) -> Unpacked:
    """``unpack`` for a folder: its regular files that ``read_by_grader`` names, copied
    into ``into`` without following a link at any level (``os.walk`` does not enter a
    linked folder, and each file is opened with ``O_NOFOLLOW`` after an ``lstat``)."""
    wanted: list[tuple[str, Path, int]] = []
    not_regular: list[str] = []
    for top, dirs, files in os.walk(submission):
        # Never read: hidden folders (.venv, .git) and installed packages, pruned so a
        # working folder's .venv is not walked.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "site-packages")
        for name in [*dirs, *files]:
            path = Path(top) / name
            rel = path.relative_to(submission).as_posix()
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                continue
            if read_by_grader(rel):
                if stat.S_ISREG(info.st_mode):
                    wanted.append((rel, path, info.st_size))
                else:
                    not_regular.append(rel)
            elif stat.S_ISLNK(info.st_mode) and _holds_graded_files(rel):
                not_regular.append(rel + "/")
    size = sum(size for _, _, size in wanted)
    if size > MAX_UNZIPPED:
        raise SubmissionError(f"{submission}: its course/ files and notebooks come to "
                              f"{size / 1e6:.0f} MB (more than {MAX_UNZIPPED / 1e6:.0f} MB)")
    into.mkdir(parents=True, exist_ok=True)
    for rel, path, _ in wanted:
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:  # swapped for a link or removed since the walk: left out
            not_regular.append(rel)
            continue
        with os.fdopen(handle, "rb") as source:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                not_regular.append(rel)
                continue
            with target.open("wb") as copy:
                shutil.copyfileobj(source, copy)
    return Unpacked(into, not_regular=tuple(sorted(not_regular)))


def _holds_graded_files(rel: str) -> bool:
    """Whether a link at ``rel``, if it were a folder, would hold code the grader reads
    (a linked ``course/``) or be the ``notebooks/`` folder; other links (a shared
    ``datasets/``) go unnamed."""
    return read_by_grader(f"{rel}/layers.py") or rel.rsplit("/", 1)[-1] == "notebooks"


def find_course_dir(folder: Path) -> Path | None:
    """The submission's ``course/`` folder: at the top, or one level down (a zip's folder)."""
    for candidate in [folder / "course", *sorted(folder.glob("*/course"))]:
        if candidate.is_dir():
            return candidate
    # Bare files (layers.py, optim.py at the top): the folder itself plays course/.
    if any((folder / name).is_file() for name in ("layers.py", "optim.py", "fc_net.py")):
        return folder
    return None


def find_student_file(course_dir: Path | None, rel: str) -> Path | None:
    """The submission's version of ``course/<...>`` (``rel``), also found flat by name."""
    if course_dir is None:
        return None
    inner = Path(rel).relative_to("course")
    for candidate in (course_dir / inner, course_dir / inner.name):
        if candidate.is_file():
            return candidate
    return None


def find_student_notebook(folder: Path, name: str) -> Path | None:
    matches = sorted(folder.rglob(f"{name}.ipynb"))
    matches = [m for m in matches if ".ipynb_checkpoints" not in m.parts]
    return matches[0] if matches else None


# ---------------------------------------------------------------------------------------
# Merging one Python file
# ---------------------------------------------------------------------------------------

def _defs(body: Iterable[ast.stmt]) -> dict[str, ast.stmt]:
    return {
        node.name: node
        for node in body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


def _find(tree: ast.Module, qualname: str) -> ast.stmt | None:
    """The def of ``name`` or ``Class.method`` at the top level of ``tree``."""
    parts = qualname.split(".")
    node: ast.stmt | None = _defs(tree.body).get(parts[0])
    for part in parts[1:]:
        if not isinstance(node, ast.ClassDef):
            return None
        node = _defs(node.body).get(part)
    return node


def _span(node: ast.stmt) -> tuple[int, int]:
    """0-based first line (decorators included) and end line (exclusive) of a def."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return first - 1, node.end_lineno or node.lineno


def _source(lines: list[str], node: ast.stmt) -> str:
    start, end = _span(node)
    return "".join(lines[start:end])


def _reindent(text: str, indent: str) -> str:
    return textwrap.indent(textwrap.dedent(text), indent)


def _stub(name: str, indent: str, message: str) -> str:
    short = name.rsplit(".", 1)[-1]
    return (
        f"{indent}def {short}(*args, **kwargs):\n"
        f"{indent}    raise NotImplementedError({message!r})\n"
    )


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set(_defs(tree.body))
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def _is_extra(node: ast.stmt, pristine_names: set[str], index: int) -> bool:
    """Whether a top-level statement of the student's file is their own code to keep."""
    if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return False  # module docstring
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return False  # only valid at the top; the pristine file has its own
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name not in pristine_names  # given and task defs come from elsewhere
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return not (_top_level_names(ast.Module([node], [])) <= pristine_names)
    return True  # imports and other statements (they run as the student wrote them)


def merge_python(pristine: str, student: str | None, rel: str, functions: list[str],
                 missing_reason: str | None = None) -> tuple[str, list[str]]:
    """The merged text of one editable file, and notes about what was taken or missing.

    ``functions`` are the task functions of the file (``name`` or ``Class.method``);
    ``student`` is None when the submission lacks the file (or it did not parse: then
    ``missing_reason`` says why, and the stubs repeat it).
    """
    notes: list[str] = []
    tree = parse_python(pristine)
    lines = pristine.splitlines(keepends=True)
    student_tree: ast.Module | None = None
    student_lines: list[str] = []
    if student is not None:
        student_tree = parse_python(student)
        student_lines = student.splitlines(keepends=True)
    replacements: list[tuple[int, int, str]] = []  # (start, end, text) over pristine lines
    for name in functions:
        target = _find(tree, name)
        if target is None:
            continue  # the pristine file lacks it: nothing to replace
        start, end = _span(target)
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        own = _find(student_tree, name) if student_tree is not None else None
        if own is not None:
            text = _reindent(_source(student_lines, own), indent)
        else:
            reason = missing_reason or (
                f"{rel} is not in the submission" if student is None
                else f"{name} is not defined in the submitted {rel}"
            )
            notes.append(reason if missing_reason else f"missing: {reason}")
            text = _stub(name, indent, f"{name}: {reason}")
        replacements.append((start, end, text))
    extra: list[str] = []
    if student_tree is not None:
        known = _top_level_names(tree)
        for index, node in enumerate(student_tree.body):
            if _is_extra(node, known, index):
                extra.append(_source(student_lines, node) if hasattr(node, "lineno") else "")
        extra += _extra_methods(tree, student_tree, student_lines, functions, replacements, lines)
    for start, end, text in sorted(replacements, reverse=True):
        lines[start:end] = [text if text.endswith("\n") else text + "\n"]
    merged = "".join(lines)
    if extra:
        merged += "\n\n# ---- the submission's own code (kept by the grader) ----\n"
        merged += "\n".join(e if e.endswith("\n") else e + "\n" for e in extra)
    merged += _WRAPPER + "".join(
        f"{name} = _kit_grade_copy_inputs({name})\n" for name in functions
        if _find(tree, name) is not None and "." not in name
    ) + "".join(
        f"{cls}.{meth} = _kit_grade_copy_inputs({cls}.{meth})\n"
        for cls, meth in (n.split(".", 1) for n in functions if "." in n)
        if _find(tree, f"{cls}.{meth}") is not None and not meth.startswith("__")
    )
    return merged, notes


def _extra_methods(tree: ast.Module, student_tree: ast.Module, student_lines: list[str],
                   functions: list[str], replacements: list[tuple[int, int, str]],
                   lines: list[str]) -> list[str]:
    """Student helper methods of a task class that the pristine class lacks: inserted at
    the end of the class (as replacements), so the task methods can call them."""
    for cls_name in {f.split(".")[0] for f in functions if "." in f}:
        mine, theirs = _find(tree, cls_name), _find(student_tree, cls_name)
        if not isinstance(mine, ast.ClassDef) or not isinstance(theirs, ast.ClassDef):
            continue
        added = [
            node for name, node in _defs(theirs.body).items() if name not in _defs(mine.body)
        ]
        if not added:
            continue
        last = mine.body[-1]
        indent = " " * last.col_offset
        end = last.end_lineno or last.lineno
        text = "".join("\n" + _reindent(_source(student_lines, node), indent) for node in added)
        replacements.append((end, end, text))
    del lines
    return []


# ---------------------------------------------------------------------------------------
# Notebooks
# ---------------------------------------------------------------------------------------

def splice_notebook(reference: Any, student: Any | None, notebook_tasks: list[str],
                    name: str) -> tuple[Any, list[Note]]:
    """The reference notebook with the student's cells for ``notebook_tasks`` (by cell
    ID); a task cell missing from the student's notebook becomes its stub."""
    notes: list[Note] = []
    graded = copy.deepcopy(reference)
    by_id = {c.get("id"): c for c in (student or {}).get("cells", []) if c.get("id")}
    for number, cell in enumerate(graded["cells"], start=1):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", []))
        segments = parse(source, f"notebooks/{name}.ipynb", notebook_tasks or ["0.0"],
                         cell=number)
        if not any(not isinstance(s, str) for s in segments):
            continue
        theirs = by_id.get(cell.get("id"))
        if theirs is not None and theirs.get("cell_type") == "code":
            cell["source"] = "".join(theirs.get("source", []))
        else:
            why = ("no notebook submitted" if student is None
                   else f"its cell (ID {cell.get('id')}) is not in the notebook submitted")
            tasks = ", ".join(dict.fromkeys(s.task_id for s in segments
                                            if not isinstance(s, str)))
            notes.append(Note(NoteKind.MISSING, f"{name}: notebook task {tasks}: {why}; "
                                                "graded as not written"))
            cell["source"] = render_student(segments)
    return graded, notes


def skip_cell(cell: Any) -> None:
    """Tag a code cell so that nbval does not run it."""
    if nbs.is_code(cell):
        nbs.add_tag(cell, nbs.NBVAL_SKIP)


def skip_experiments(notebook: Any) -> None:
    """Experiment cells (sweeps, timings) are never run when grading or verifying."""
    for cell in notebook["cells"]:
        if nbs.is_experiment(cell):
            skip_cell(cell)


def kit_cell(name: str, source: str) -> dict[str, Any]:
    """A code cell of the grader's own (ID ``kit-<name>``): no outputs to compare, tagged
    ``nbval-ignore-output`` so that nbval runs it and compares nothing, and marked
    ``metadata.kit`` so that no tool takes it for the notebook's."""
    return {"cell_type": "code", "id": f"{KIT_CELL_PREFIX}{name}"[:64], "source": source,
            "metadata": {"kit": True, "tags": [nbs.NBVAL_IGNORE_OUTPUT]},
            "execution_count": None, "outputs": []}


def is_kit_cell(cell: Any) -> bool:
    return nbs.is_code(cell) and cell.get("metadata", {}).get("kit") is True \
        and str(cell.get("id", "")).startswith(KIT_CELL_PREFIX)


def insert_after(notebook: Any, cell_id: str, cell: dict[str, Any]) -> bool:
    """Insert ``cell`` right after the cell with ID ``cell_id``; False if there is none."""
    for position, found in enumerate(notebook["cells"]):
        if found.get("id") == cell_id:
            notebook["cells"].insert(position + 1, cell)
            return True
    return False


def task_cell_ids(reference: Any, name: str, task_ids: Iterable[str],
                  root: Path = ROOT) -> dict[str, str]:
    """The ID of the reference notebook's cell holding each task's solution region (the
    cell the student's is spliced into), for the tasks of ``task_ids`` it has (the tree
    at ``root`` has the task table the markers are read with)."""
    wanted = set(task_ids)
    known = [task.id for task in load_tasks(root)]
    found: dict[str, str] = {}
    for number, cell in enumerate(reference["cells"], start=1):
        if not nbs.is_code(cell) or not cell.get("id"):
            continue
        segments = parse(nbs.source_of(cell), f"notebooks/{name}.ipynb", known, cell=number)
        for region in regions(segments):
            if region.task_id in wanted:
                found.setdefault(region.task_id, cell["id"])
    return found


def reference_indices(notebook: Any) -> dict[int, int]:
    """nbval's code-cell number in ``notebook`` -> the number the same cell has in the
    reference notebook (the kit's own cells have none)."""
    mapping, reference = {}, 0
    for graded, cell in enumerate(c for c in notebook["cells"] if nbs.is_code(c)):
        if is_kit_cell(cell):
            continue
        mapping[graded] = reference
        reference += 1
    return mapping


# How a notebook is made ready to run, after its task cells are spliced: (name, notebook).
Prepare = Callable[[str, Any], None]


def _skip_experiments_of(name: str, notebook: Any) -> None:
    del name
    skip_experiments(notebook)


# ---------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------

def editable_files(tasks: list[TaskInfo]) -> dict[str, list[str]]:
    """Student-editable Python files -> their task functions, in table order."""
    files: dict[str, list[str]] = {}
    for task in tasks:
        if task.checked_by == "pytest" and task.path.endswith(".py"):
            files.setdefault(task.path, []).append(task.function)
    return files


def build(submission: Path, reference_notebooks: Mapping[str, Any], *,
          root: Path = ROOT, tasks: list[TaskInfo] | None = None,
          prepare: Prepare = _skip_experiments_of,
          withhold_test_labels: bool = False) -> Sandbox:
    """Build the sandbox for one submission in a fresh temporary folder: the pristine
    package with the student's task code merged in, and the reference notebooks with the
    student's notebook-task cells spliced in, each then made ready by ``prepare``
    (default: experiment cells skipped). ``withhold_test_labels``: the package's data
    loaders return every test label as -1 (grading: see the module's doc)."""
    tasks = load_tasks(root) if tasks is None else tasks
    with Sandbox.fresh("kit-grade-sandbox-") as box:
        found = unpack(submission, box.root / "_submission")
        box.notes += found.notes()
        unpacked = found.folder
        course_dir = find_course_dir(unpacked)
        if course_dir is None:
            box.notes.append(Note(NoteKind.MISSING,
                                  "no course/ folder (or course files) in the submission"))
        _copy_pristine_course(root, box.root)
        for rel, functions in editable_files(tasks).items():
            _merge_file(box, root, rel, functions, course_dir)
        if withhold_test_labels:
            with (box.root / "course" / "data_utils.py").open("a", encoding="utf-8") as f:
                f.write(WITHHOLD_TEST_LABELS)
        notebook_tasks = [t.id for t in tasks if t.checked_by == "notebook"]
        (box.root / "notebooks").mkdir()
        for name, reference in reference_notebooks.items():
            student = _read_student_notebook(box, find_student_notebook(unpacked, name))
            graded, notes = splice_notebook(reference, student, notebook_tasks, name)
            box.notes += notes
            prepare(name, graded)
            box.add_notebook(name, graded)
    return box


def _copy_pristine_course(root: Path, box_root: Path) -> None:
    shutil.copytree(root / "course", box_root / "course",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _read_student_notebook(box: Sandbox, path: Path | None) -> Any | None:
    """The student's notebook as JSON; None (with a note) if it cannot be read."""
    if path is None:
        return None
    try:
        return nbs.load_json(path)
    except (OSError, ValueError) as error:
        box.notes.append(Note(NoteKind.UNREADABLE, f"{path.name} could not be read ({error})"))
        return None


def _merge_file(box: Sandbox, root: Path, rel: str, functions: list[str],
                course_dir: Path | None) -> None:
    pristine = (root / rel).read_text(encoding="utf-8")
    found = find_student_file(course_dir, rel)
    student: str | None = None
    problem: Note | None = None
    if found is not None:
        try:
            student = found.read_text(encoding="utf-8")
            parse_python(student)
        except SyntaxError as error:
            problem = Note(NoteKind.SYNTAX_ERROR,
                           f"syntax error at {rel}:{error.lineno}: {error.msg}")
            student = None
        except (OSError, UnicodeDecodeError) as error:
            problem = Note(NoteKind.UNREADABLE, f"{rel} could not be read: {error}")
            student = None
    merged, notes = merge_python(pristine, student, rel, functions,
                                 missing_reason=problem.text if problem else None)
    box.notes += [problem] if problem else [Note(NoteKind.MISSING, n) for n in notes]
    (box.root / rel).write_text(merged, encoding="utf-8")


def build_own(submission: Path, *, root: Path = ROOT) -> Sandbox:
    """A sandbox for ``kit verify``: the student's own package (their ``course/*.py``,
    whole, over the pristine package with every task a stub) and their own notebooks,
    experiment cells skipped. A file the student left out keeps its stubs, as in
    grading: the solution's task code never enters a sandbox."""
    with Sandbox.fresh("kit-verify-sandbox-") as box:
        found = unpack(submission, box.root / "_submission")
        box.notes += found.notes()
        unpacked = found.folder
        _copy_pristine_course(root, box.root)
        for rel, functions in editable_files(load_tasks(root)).items():
            stubbed, _ = merge_python((root / rel).read_text(encoding="utf-8"), None, rel,
                                      functions)
            (box.root / rel).write_text(stubbed, encoding="utf-8")
        course_dir = find_course_dir(unpacked)
        if course_dir is not None:
            for path in sorted(course_dir.rglob("*.py")):
                rel = path.relative_to(course_dir)
                if path.name in {"conftest.py", "sitecustomize.py", "usercustomize.py"}:
                    continue
                (box.root / "course" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, box.root / "course" / rel)
        (box.root / "notebooks").mkdir()
        for path in sorted(unpacked.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in path.parts or path.stem in box.notebooks:
                continue
            notebook = _read_student_notebook(box, path)
            if notebook is not None:
                skip_experiments(notebook)
                box.add_notebook(path.stem, notebook)
    return box
