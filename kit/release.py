"""Build the student release from the solution tree: ``python -m kit release``.

Usage::

    python -m kit release --out DIR [--branch NAME] [--source DIR]

* ``--source`` is the solution tree (default: the tree this ``kit`` package lives in).
* ``--out`` receives the student tree. An existing ``DIR`` is replaced only if it is
  empty, or was written by this command (it holds the stamp file ``.release.json``) and
  nothing in it changed since: the stamp lists every file written with its SHA-256, and
  a modified, new or deleted file (caches such as ``__pycache__`` aside) is named and
  refused, so a re-release never destroys a student's work. A folder inside ``.git`` is
  refused. Temporary folders a killed release left beside ``DIR`` (their names carry the
  pid) are removed by the next run, which says so (``kit.outputs``).
* ``--branch`` also commits the student tree on that branch of the source repository
  (created if missing, else one new commit on top of its tip), without touching the
  source's working tree, index or current branch. An unchanged tree makes no commit.
  Only a branch the tool owns is accepted (``kit.branch``), checked before anything is
  written.

What happens, in order (nothing is written until every file has been checked):

1. The source is read once (``kit.tree.SolutionTree``): its task table from its own
   ``course/tasks.py`` (by path, so a fixture tree can carry its own table), and its
   files: in a git repository only what git tracks, so a scratch file or a symlinked venv
   never leaks; untracked files and uncommitted changes are named in a WARNING on stderr.
   Paths matching ``kit.tree.INSTRUCTOR_ONLY`` are left out; ``README.md`` is replaced by
   ``kit/templates/STUDENT_README.md``.
2. ``.py`` files: solution regions (see ``kit.markers``) become stubs; a file without
   regions is copied byte for byte. Notebooks go through ``STUDENT_NOTEBOOK_STEPS``: tags
   are checked against ``kit.notebooks.CELL_TAGS``, ``answer`` cells become an answer
   prompt (keeping the ``answer`` tag), code cells get the same stubs, every output and
   execution count is cleared, volatile metadata is removed and ``instructor`` cells are
   dropped. Other files are copied as they are (mode bits included).
3. Everything is written to a temporary folder beside ``--out``; the leak check
   (``kit.leaks``) searches it for any line of a solution, and only a tree without one is
   renamed into place.

The stamp ``.release.json`` records the tool, the format version, the source commit and
whether the source had uncommitted changes. It contains no time stamp, so two releases
of the same source are identical. It is committed to the ``--branch`` too, so the folder
and the branch hold the same files; a folder that is a git checkout (it has ``.git``) is
never replaced, stamp or not, since a clone of the branch is where a student works.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat

from kit import cli, markers, outputs
from kit import notebooks as nbs
from kit.branch import RELEASE_TRAILER, check_branch, commit_branch
from kit.errors import KitError
from kit.leaks import check_no_leaks
from kit.tree import RELEASE_STAMP, SolutionTree, git, is_instructor_only

__all__ = ["RELEASE_TRAILER", "Release", "ReleaseError", "build_release", "is_instructor_only",
           "main", "write_release"]

STAMP_NAME = RELEASE_STAMP
STAMP_TOOL = "python -m kit release"
STAMP_FORMAT = 2  # 2: the stamp lists every file written, with its SHA-256
STAMP = outputs.Stamp(STAMP_NAME, STAMP_TOOL)
# What running the student tree creates; a re-release may remove these (all regenerable).
REGENERABLE = frozenset({"__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache",
                         ".mypy_cache", ".ipynb_checkpoints", ".venv"})
STUDENT_README_TEMPLATE = Path(__file__).parent / "templates" / "STUDENT_README.md"
ANSWER_PROMPT = "**Your answer:** *write your answer here.*"


class ReleaseError(KitError):
    """The release cannot be made; the message says why (and where)."""


@dataclass
class Output:
    """One file of the student tree: its content (or a source to copy) and a summary."""

    rel: str
    data: bytes | None = None  # None: copy ``source`` as it is
    source: Path | None = None
    notebook: Any = None  # an nbformat node, written with nbformat.write
    mode_from: Path | None = None
    stubs: int = 0
    task_ids: set[str] = field(default_factory=set)  # tasks with a region in this file
    notes: list[str] = field(default_factory=list)


@dataclass
class Release:
    """The checked, in-memory student tree and the source it was made from."""

    outputs: list[Output]
    tree: SolutionTree
    warnings: list[str] = field(default_factory=list)

    @property
    def commit(self) -> str | None:
        return self.tree.commit

    @property
    def dirty(self) -> bool | None:
        return self.tree.dirty


# -- per-file processing -----------------------------------------------------------------


def process_python(source: Path, rel: str, tasks: Mapping[str, Any]) -> Output:
    """A ``.py`` file: regions to stubs, or a byte copy when it has no regions."""
    raw = (source / rel).read_bytes()
    segments = markers.parse(_decode(raw, rel), rel, tasks)
    found = markers.regions(segments)
    if not found:
        return Output(rel, source=source / rel)
    text = markers.render_student(segments)
    markers.check_student_compiles(_decode(raw, rel), text, rel, found)
    return Output(rel, data=text.encode("utf-8"), mode_from=source / rel, stubs=len(found),
                  task_ids={region.task_id for region in found})


def _decode(raw: bytes, rel: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise markers.MarkerError(rel, None, f"not UTF-8 text ({error})") from None


def read_notebook(source: Path, rel: str) -> Any:
    """Read a notebook as nbformat v4, or raise ``NotebookError`` naming the file."""
    return nbs.read_notebook(source / rel, rel)


@dataclass
class NotebookTally:
    """What the steps did to one notebook, for the summary."""

    stubs: int = 0
    answers: int = 0
    dropped: int = 0
    task_ids: set[str] = field(default_factory=set)


# A step of the student notebook pipeline: (notebook, its path, the task table, the tally).
NotebookChange = Callable[[Any, str, Mapping[str, Any], NotebookTally], None]


def _kept_cells(nb: Any) -> Iterable[tuple[int, Any]]:
    """(Jupyter's cell number, cell) of every cell that stays in the student tree; the
    numbers are those of the source notebook, as error messages must name them."""
    for number, cell in enumerate(nb.cells, start=1):
        if not nbs.has_tag(cell, nbs.INSTRUCTOR):
            yield number, cell


def check_all_tags(nb: Any, rel: str, tasks: Mapping[str, Any], tally: NotebookTally) -> None:
    for number, cell in enumerate(nb.cells, start=1):
        check_tags(cell, rel, number)


def replace_answers(nb: Any, rel: str, tasks: Mapping[str, Any], tally: NotebookTally) -> None:
    for _, cell in _kept_cells(nb):
        if nbs.has_tag(cell, nbs.ANSWER):
            tally.answers += 1
            cell.source = ANSWER_PROMPT
            cell.pop("attachments", None)


def refuse_markers_in_text(nb: Any, rel: str, tasks: Mapping[str, Any],
                           tally: NotebookTally) -> None:
    for number, cell in _kept_cells(nb):
        if not nbs.is_code(cell) and not nbs.has_tag(cell, nbs.ANSWER):
            check_no_markers_in_text_cell(cell, rel, number)


def stub_regions(nb: Any, rel: str, tasks: Mapping[str, Any], tally: NotebookTally) -> None:
    for number, cell in _kept_cells(nb):
        if nbs.is_code(cell):
            found = _stub_cell(cell, rel, number, tasks)
            tally.stubs += len(found)
            tally.task_ids.update(region.task_id for region in found)


def clear_outputs(nb: Any, rel: str, tasks: Mapping[str, Any], tally: NotebookTally) -> None:
    for cell in nb.cells:
        if nbs.is_code(cell):
            cell.outputs, cell.execution_count = [], None


def drop_volatile_metadata(nb: Any, rel: str, tasks: Mapping[str, Any],
                           tally: NotebookTally) -> None:
    for cell in nb.cells:
        nbs.drop_volatile_cell_metadata(cell)
        # outputs_hidden is screen state, and there are no outputs any more.
        jupyter = cell.metadata.get("jupyter")
        if isinstance(jupyter, dict):
            jupyter.pop("outputs_hidden", None)
            if not jupyter:
                del cell.metadata["jupyter"]
    nbs.drop_volatile_notebook_metadata(nb)
    # The instructor's Python version; Jupyter fills in the student's own when it saves.
    language_info = nb.metadata.get("language_info")
    if isinstance(language_info, dict):
        language_info.pop("version", None)


def drop_instructor_cells(nb: Any, rel: str, tasks: Mapping[str, Any],
                          tally: NotebookTally) -> None:
    kept = [cell for _, cell in _kept_cells(nb)]
    tally.dropped += len(nb.cells) - len(kept)
    nb.cells = kept


# The student notebook, step by step (instructor cells go last, so that every message
# before names cells as the source notebook numbers them).
STUDENT_NOTEBOOK_STEPS: tuple[tuple[str, NotebookChange], ...] = (
    ("check every cell's tags", check_all_tags),
    ("answer cells become a prompt", replace_answers),
    ("no marker in markdown or raw cells", refuse_markers_in_text),
    ("solution regions become stubs", stub_regions),
    ("clear outputs and execution counts", clear_outputs),
    ("drop volatile metadata", drop_volatile_metadata),
    ("drop instructor cells", drop_instructor_cells),
)


def process_notebook(source: Path, rel: str, tasks: Mapping[str, Any]) -> Output:
    """A notebook through ``STUDENT_NOTEBOOK_STEPS``."""
    nb = read_notebook(source, rel)
    tally = NotebookTally()
    nbs.run_steps(nb, [nbs.Step(name, lambda nb, change=change: change(nb, rel, tasks, tally))
                       for name, change in STUDENT_NOTEBOOK_STEPS])
    notes = ["outputs cleared"]
    notes += [f"{tally.answers} answer cell(s) replaced"] if tally.answers else []
    notes += [f"{tally.dropped} instructor cell(s) dropped"] if tally.dropped else []
    return Output(rel, notebook=nb, mode_from=source / rel, stubs=tally.stubs,
                  task_ids=tally.task_ids, notes=notes)


def check_tags(cell: Any, rel: str, number: int) -> None:
    """Raise ``MarkerError`` if the cell's tags are not those of ``CELL_TAGS``."""
    problem = nbs.tag_problem(cell)
    if problem is not None:
        raise markers.MarkerError(rel, None, problem, cell=number)


def check_no_markers_in_text_cell(cell: Any, rel: str, number: int) -> None:
    """Markdown and raw cells are not processed: a marker there would ship its region."""
    for lineno, line in enumerate(markers.split_lines(cell.source), start=1):
        if markers.mentions_marker(line):
            raise markers.MarkerError(
                rel, lineno, f"solution marker in a {cell.cell_type} cell: markers work only "
                "in code cells, so this text would reach students. Move the solution into a "
                "code cell, or tag the cell 'answer' (replaced by a prompt) or 'instructor' "
                "(dropped)", cell=number)


def _stub_cell(cell: Any, rel: str, number: int,
               tasks: Mapping[str, Any]) -> list[markers.Region]:
    segments = markers.parse(cell.source, rel, tasks, cell=number)
    found = markers.regions(segments)
    if found:
        student = markers.render_student(segments)
        markers.check_student_compiles(cell.source, student, rel, found, cell=number)
        cell.source = student
    return found


def student_readme(tasks_module: ModuleType, files: list[str]) -> Output:
    """README.md of the student tree, from the template and the source's task table."""
    template = STUDENT_README_TEMPLATE.read_text(encoding="utf-8")
    tasks = list(tasks_module.TASKS_BY_ID.values())
    order = list(getattr(tasks_module, "NOTEBOOKS", ())) or list(
        dict.fromkeys(task.notebook for task in tasks))
    notebooks = []
    for index, name in enumerate(order, start=1):
        path = f"notebooks/{name}.ipynb"
        notebooks.append(f"{index}. `{path}`" if path in files else f"{index}. {name}")
    rows = ["| task | what you write | where |", "| --- | --- | --- |"]
    rows += [f"| {t.id} | {t.title} | `{t.function}` in `{t.path}` |" for t in tasks]
    text = (template.replace("{{NOTEBOOKS}}", "\n".join(notebooks))
            .replace("{{TASKS}}", "\n".join(rows)))
    return Output("README.md", data=text.encode("utf-8"))


# -- lint settings for the files students edit ------------------------------------------

# What ruff reports about a file whose solutions are stubs, and why each is expected there:
# E501 the stub's TODO and raise lines are long; F401 imports only a solution uses (and
# `ruff check --fix` would delete them, breaking the task); F841/RUF059 variables the code
# before a stub prepares for the student; F821/F405 names the code after a stub expects the
# student to define.
STUB_LINT_IGNORES: tuple[str, ...] = ("E501", "F401", "F405", "F821", "F841", "RUF059")
# Style and opinion, waived wherever a student writes code (files with stubs, notebooks):
# a correct solution never fails `make test` for an if/else where a ternary would do
# (SIM108), a long line, an import order or a name. What stays is what breaks code:
# pyflakes' F rules (undefined names, ...; F541, an f-string without placeholders, runs
# fine) and syntax errors. E1-E3 are ruff's preview rules, waived in case preview is on.
STUDENT_STYLE_WAIVERS: tuple[str, ...] = (
    "E1", "E2", "E3", "E4", "E5", "E7", "W", "I", "B", "UP", "N", "SIM", "RUF", "F541")
# Every notebook, also one a student adds in a subfolder; a pattern of its own, because
# the solution's pyproject.toml already has a "notebooks/*.ipynb" key.
STUDENT_NOTEBOOKS_GLOB = "notebooks/**/*.ipynb"
PER_FILE_IGNORES_TABLE = "[tool.ruff.lint.per-file-ignores]"


def student_lint_ignores(outputs: list[Output]) -> dict[str, tuple[str, ...]]:
    """Per-file ignores for the student tree: stub and style rules for each file with a
    stub, style rules for every notebook."""
    entries = {o.rel: STUB_LINT_IGNORES + STUDENT_STYLE_WAIVERS
               for o in sorted(outputs, key=lambda o: o.rel)
               if o.stubs and not o.rel.endswith(".ipynb")}
    if any(o.rel.endswith(".ipynb") for o in outputs):
        notebook_rules = STUDENT_STYLE_WAIVERS
        if any(o.stubs for o in outputs if o.rel.endswith(".ipynb")):
            notebook_rules = STUB_LINT_IGNORES + STUDENT_STYLE_WAIVERS
        entries[STUDENT_NOTEBOOKS_GLOB] = notebook_rules
    return entries


def with_student_lint_settings(outputs: list[Output]) -> list[Output]:
    """``outputs`` with the student ``pyproject.toml`` waiving, in the files a student
    edits, what stubs leave behind (``STUB_LINT_IGNORES``: the tree is ruff-clean as
    released, and ``ruff check --fix`` or an editor fixing on save cannot delete an import
    a task needs) and style (``STUDENT_STYLE_WAIVERS``: lint never fails correct code).
    Unchanged when there is no ``pyproject.toml`` or nothing a student edits."""
    entries = student_lint_ignores(outputs)
    index = next((i for i, o in enumerate(outputs) if o.rel == "pyproject.toml"), None)
    if index is None or not entries:
        return outputs
    original = outputs[index]
    path = original.source if original.data is None else None
    text = path.read_text(encoding="utf-8") if path else (original.data or b"").decode("utf-8")
    patched = add_per_file_ignores(text, entries)
    outputs = list(outputs)
    outputs[index] = Output("pyproject.toml", data=patched.encode("utf-8"),
                            mode_from=path or original.mode_from,
                            notes=[f"lint: style waived in {len(entries)} file(s) or "
                                   "pattern(s) students edit"])
    return outputs


def add_per_file_ignores(text: str, entries: Mapping[str, Iterable[str]]) -> str:
    """``text`` (a pyproject.toml) with one per-file-ignores entry per pattern of
    ``entries`` (pattern -> rules) added at the top of its
    ``[tool.ruff.lint.per-file-ignores]`` table (created at the end if missing). Ruff
    unions the entries that match a file, so a glob entry for the same file stays in
    force."""
    def entry(pattern: str, rules: Iterable[str]) -> str:
        codes = ", ".join(f'"{rule}"' for rule in rules)
        return f'"{pattern}" = [{codes}]'

    block = ["# Written by the release: files students edit (see the student README).",
             *(entry(pattern, rules) for pattern, rules in entries.items())]
    lines = text.split("\n")
    if PER_FILE_IGNORES_TABLE in (line.strip() for line in lines):
        at = [line.strip() for line in lines].index(PER_FILE_IGNORES_TABLE) + 1
        return "\n".join(lines[:at] + block + lines[at:])
    tail = "" if text.endswith("\n") or not text else "\n"
    return text + tail + "\n" + "\n".join([PER_FILE_IGNORES_TABLE, *block]) + "\n"


# -- the whole release -------------------------------------------------------------------


def build_release(tree: SolutionTree, skip: Path | None = None) -> Release:
    """Check and render every file in memory; raise ``ReleaseError`` listing all problems."""
    files = tree.released_files(skip)
    outputs_, errors = [], []
    for rel in files:
        try:
            outputs_.append(process_file(tree.root, rel, tree.tasks))
        except (markers.MarkerError, nbs.NotebookError) as error:
            errors.append(str(error))
    if errors:
        raise ReleaseError("\n".join(errors))
    outputs_.append(student_readme(tree.tasks_module, files))
    outputs_ = with_student_lint_settings(outputs_)
    release = Release(sorted(outputs_, key=lambda o: o.rel), tree)
    release.warnings = _missing_task_warnings(release, tree.tasks)
    return release


def process_file(source: Path, rel: str, tasks: Mapping[str, Any]) -> Output:
    """The student version of one source file."""
    path = source / rel
    if rel.endswith(".py") and not path.is_symlink():
        return process_python(source, rel, tasks)
    if rel.endswith(".ipynb") and not path.is_symlink():
        return process_notebook(source, rel, tasks)
    return Output(rel, source=path)


def _missing_task_warnings(release: Release, tasks: Mapping[str, Any]) -> list[str]:
    """Tasks of the table without a region in their file (the release still goes ahead)."""
    warnings = []
    for task_id, task in tasks.items():
        path = getattr(task, "path", None)
        found_in = [o.rel for o in release.outputs if task_id in o.task_ids]
        if path is not None and path not in found_in:
            elsewhere = f" (found in {', '.join(found_in)})" if found_in else ""
            warnings.append(f"task {task_id}: no solution region in {path}{elsewhere}")
    return warnings


def stamp(release: Release, files: int, manifest: Mapping[str, str] | None = None) -> bytes:
    """The content of the stamp file; deterministic, so releases can be compared.

    ``manifest`` (path -> SHA-256 of the bytes written) lets the next release tell the
    files it wrote from changes someone made since.
    """
    data: dict[str, Any] = {"tool": STAMP_TOOL, "format": STAMP_FORMAT,
                            "source_commit": release.commit, "source_dirty": release.dirty,
                            "files": files}
    if manifest is not None:
        data["manifest"] = dict(sorted(manifest.items()))
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def _sha256(path: Path) -> str:
    if path.is_symlink():
        return "symlink:" + hashlib.sha256(os.readlink(path).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_of(root: Path) -> dict[str, str]:
    """path -> SHA-256 of every file (and link) under ``root``, the stamp excluded."""
    result = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() or path.is_symlink():
            rel = path.relative_to(root).as_posix()
            if rel != STAMP_NAME:
                result[rel] = _sha256(path)
    return result


def changes_since_release(folder: Path) -> list[str]:
    """What in an earlier release folder the tool did not write: ``path (modified)``...

    Caches that running the tree creates (``REGENERABLE``) are not counted. A stamp
    without a manifest (an older tool) gives one entry saying the folder cannot be checked.
    """
    data = json.loads((folder / STAMP_NAME).read_text(encoding="utf-8"))
    manifest = data.get("manifest")
    if not isinstance(manifest, dict):
        return [f"{STAMP_NAME} (written by an older release tool, without the list of files "
                "it wrote: your changes cannot be told from its files)"]
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if (set(rel.parts) & REGENERABLE or path.name.endswith((".pyc", ".pyo"))
                or any(part.endswith(".egg-info") for part in rel.parts)):  # make setup's
            continue
        key = rel.as_posix()
        if key == STAMP_NAME or (path.is_dir() and not path.is_symlink()):
            continue
        if key not in manifest:
            found.append(f"{key} (new)")
        elif _sha256(path) != manifest[key]:
            found.append(f"{key} (modified)")
    found += [f"{key} (deleted)" for key in sorted(manifest)
              if not (folder / key).exists() and not (folder / key).is_symlink()]
    return found


def check_out_dir(out: Path, source: Path) -> None:
    """Refuse an ``--out`` that this command may not replace."""
    how = "Remove it or choose another --out."
    outputs.refuse_overlap(out, [("the source tree", source)], how=how)
    if out.is_dir() and not out.is_symlink() and (out / ".git").exists():
        raise ReleaseError(f"--out {out}: is a git checkout (it has .git), perhaps a clone of "
                           "the student branch with someone's work in it; refusing to replace it")
    outputs.refuse_foreign(out, STAMP, how=how)
    if STAMP.owns(out):
        changes = changes_since_release(out)
        if changes:
            shown = "\n  ".join(changes[:20]) + ("\n  ..." if len(changes) > 20 else "")
            raise ReleaseError(
                f"--out {out}: holds changes the release tool did not write, which a "
                f"re-release would destroy:\n  {shown}\nCopy that work somewhere safe (work "
                "in a clone of the student branch, not in the release folder), then remove "
                f"{out} yourself, or choose another --out."
            )


def check_out_not_in_git_dir(out: Path, tree: SolutionTree) -> None:
    """Refuse an ``--out`` inside a ``.git`` folder: writing there corrupts the repository."""
    resolved = out.resolve()
    if ".git" in resolved.parts or ".git" in out.parts:
        raise ReleaseError(f"--out {out}: is inside a .git folder; writing there would corrupt "
                           "the repository. Choose a folder outside .git, e.g. build/student")
    if tree.git is None:
        return
    source = tree.root
    for flag in ("--absolute-git-dir", "--git-common-dir"):
        git_dir = Path(git(["rev-parse", flag], source).strip())
        git_dir = (source / git_dir).resolve() if not git_dir.is_absolute() else git_dir
        if resolved == git_dir.resolve() or resolved.is_relative_to(git_dir.resolve()):
            raise ReleaseError(f"--out {out}: is inside the repository's git folder "
                               f"{git_dir}; writing there would corrupt it. Choose a folder "
                               "outside it, e.g. build/student")


def is_release_dir(folder: Path) -> bool:
    """True if ``folder`` holds a stamp written by this command."""
    return STAMP.owns(folder)


def write_release(release: Release, out: Path) -> None:
    """Write the tree beside ``out``, check it for leaks, and swap it into place
    (replacing an old release). A leak raises ``ReleaseError`` and publishes nothing."""
    folder = outputs.OwnedFolder(out, STAMP, verb="release")
    folder.remove_stale_temps(lambda removed: print(
        f"release: removed {removed}, left by an interrupted release", file=sys.stderr))
    with folder.building() as tmp:
        for output in release.outputs:
            _write_output(output, tmp)
        (tmp / STAMP_NAME).write_bytes(stamp(release, len(release.outputs), manifest_of(tmp)))
        try:
            check_no_leaks(release.tree, tmp, skip=out)
        except KitError as error:
            raise ReleaseError(f"{error}\nThe release was not published.") from None


def _write_output(output: Output, root: Path) -> None:
    target = root / output.rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if output.notebook is not None:
        nbformat.write(output.notebook, target)
    elif output.data is not None:
        target.write_bytes(output.data)
    else:
        assert output.source is not None
        shutil.copy2(output.source, target, follow_symlinks=False)
        return
    if output.mode_from is not None:
        mode = output.mode_from.stat().st_mode
        target.chmod(stat.S_IMODE(mode))


# -- command line ------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options of ``python -m kit release``."""
    parser = argparse.ArgumentParser(
        prog="python -m kit release",
        description="Turn the solution tree into the student tree (stubs instead of "
                    "solutions, cleaned notebooks) and optionally commit it on a branch.")
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for the student tree; replaced only if it is empty "
                             f"or holds a {STAMP_NAME} stamp from an earlier release")
    parser.add_argument("--branch", metavar="NAME",
                        help="also commit the student tree on this branch of the source "
                             "repository (no commit if the tree is unchanged)")
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the solution tree (default: the tree containing this kit)")
    return parser.parse_args(argv)


def summary(release: Release, out: Path) -> str:
    """The lines printed after writing: files, stubs per file, notebooks, destination."""
    lines = [f"release: {len(release.outputs)} files written to {out} "
             f"(source: {release.tree.describe()})"]
    for output in release.outputs:
        if output.stubs or output.notebook is not None:
            notes = ", ".join([f"{output.stubs} stub(s)", *output.notes])
            lines.append(f"  {output.rel}: {notes}")
    stubs = sum(o.stubs for o in release.outputs)
    notebooks = sum(o.notebook is not None for o in release.outputs)
    lines.append(f"  total: {stubs} stub(s), {notebooks} notebook(s) cleaned")
    lines += [f"  note: {warning}" for warning in release.warnings]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python -m kit release``: 0 on success; 2 when an option is refused (``--source``,
    ``--out``, ``--branch``) and 1 on a problem in the tree, both before anything is
    written. (A failing ``--branch`` commit is the one problem found after the folder is
    written.)
    """
    args = parse_args(argv)
    written = False
    try:
        tree = check_arguments(args.source, args.out, args.branch)
    except KitError as error:
        print(error, file=sys.stderr)
        print("release: stopped; nothing written", file=sys.stderr)
        return cli.USAGE_ERROR
    try:
        release = build_release(tree, skip=args.out)
        for warning in tree.dirty_warnings():
            print(f"WARNING: {warning}", file=sys.stderr)
        write_release(release, args.out)
        written = True
        print(summary(release, args.out))
        if args.branch:
            print(commit_branch(tree, args.out, args.branch))
    except KitError as error:
        print(error, file=sys.stderr)
        done = f"{args.out} was written, the branch was not" if written else "nothing written"
        print(f"release: stopped; {done}", file=sys.stderr)
        return 1
    return 0


def check_arguments(source: Path, out: Path, branch: str | None) -> SolutionTree:
    """Everything about the options that can be checked before reading the files; the
    source tree, read once."""
    if not source.is_dir():
        found = "a file" if source.exists() else "nothing"
        raise ReleaseError(f"--source {source}: expected the solution tree (a folder with "
                           f"course/), found {found} there")
    if not (source / "course").is_dir():
        raise ReleaseError(f"--source {source}: no course/ folder; not a solution tree")
    tree = SolutionTree.load(source)
    check_out_not_in_git_dir(out, tree)
    check_out_dir(out, source)
    if branch is not None:
        check_branch(source, branch)
    return tree
