"""``python -m course handin`` (``make handin``): the zip a student hands in.

It holds what the grader reads: the package ``course/`` (every ``.py`` file) and the
course's notebooks **with their outputs** (``notebooks/<name>.ipynb``), at the top of the
zip. Before writing anything it refuses a tree whose notebooks are missing, unreadable or
were never run (it names them all), because a notebook handed in without outputs shows
nothing of the work. It then prints what it put in, what the saved check cells say, the
tasks still left as stubs, and where the zip is.

It never overwrites a file it did not make: the zip it writes carries a comment
(``MARK``), and an existing file at the output path without that comment is refused. The
zip is written beside its destination and renamed into place, so an interrupted hand-in
leaves the previous zip as it was.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from course import notebook_outputs as saved
from course.rubric import task_of_check
from course.tasks import NOTEBOOKS, TASKS

MARK = b"made by python -m course handin"
DEFAULT_NAME = "handin.zip"


class HandinError(Exception):
    """The tree cannot be handed in as it is (the message says why and what to do)."""


class HandinOutError(HandinError):
    """``--out`` names a path the hand-in may not be written to (a usage error)."""


@dataclass
class Handin:
    """What went into a hand-in zip."""

    path: Path
    files: list[str]  # paths inside the zip, as in the tree ("course/layers.py")
    notebook_lines: list[str] = field(default_factory=list)  # one summary per notebook
    stubs: list[str] = field(default_factory=list)  # task IDs still stubs


def package_files(tree: Path) -> list[str]:
    """Every ``.py`` file of ``tree/course`` (caches and hidden folders left out)."""
    package = tree / "course"
    if not package.is_dir():
        raise HandinError(f"no course/ folder in {tree}: run this in your copy of the "
                          "assignment (the folder with course/ and notebooks/).")
    return sorted(path.relative_to(tree).as_posix() for path in package.rglob("*.py")
                  if not any(part.startswith((".", "__pycache__"))
                             for part in path.relative_to(package).parts))


def read_notebooks(tree: Path) -> dict[str, dict]:
    """The course's notebooks, by name; ``HandinError`` naming every one that is missing,
    unreadable or never run."""
    found, problems, broken = {}, [], False
    for name in NOTEBOOKS:
        path = tree / "notebooks" / f"{name}.ipynb"
        if not path.is_file():
            problems.append(f"notebooks/{name}.ipynb is missing")
            continue
        try:
            notebook = saved.load_notebook(path)
        except ValueError as error:
            problems.append(str(error).replace(str(tree) + os.sep, ""))
            broken = True
            continue
        if not saved.was_run(notebook):
            problems.append(f"notebooks/{name}.ipynb was never run (no cell has an output)")
        found[name] = notebook
    if problems:
        restore = ("Restore a notebook that cannot be read (from a copy of your own, or the "
                   "release's version) before anything else; then run" if broken else "Run")
        raise HandinError(
            "nothing was written, because:\n" + "\n".join(f"  - {p}" for p in problems)
            + f"\n{restore} each notebook from top to bottom (Run > Run All Cells in "
            "JupyterLab), save it, and hand in again. The outputs stay in the zip: they show "
            "your work.")
    return found


def stubbed_tasks(tree: Path, notebooks: dict[str, dict]) -> list[str]:
    """IDs of the tasks whose stub is still in their file or notebook, in course order."""
    in_notebooks = set().union(*(saved.stubbed_tasks(nb) for nb in notebooks.values()))
    stubs = []
    for task in TASKS:
        if task.checked_by == "notebook":
            if task.id in in_notebooks:
                stubs.append(task.id)
            continue
        try:
            text = (tree / task.path).read_text(encoding="utf-8")
        except OSError:
            continue
        if task.id in saved.stubs_in_text(text):
            stubs.append(task.id)
    return stubs


def notebook_summary(name: str, notebook: dict) -> str:
    """One line: how many check cells passed, failed or were not run (names them)."""
    checks = saved.saved_checks(notebook, name).values()

    def named(check: saved.SavedCheck) -> str:
        try:
            return f"{check.name} (task {task_of_check(name, check.name)})"
        except KeyError:
            return check.name

    failed = [named(c) for c in checks if c.ran and not c.passed]
    not_run = [named(c) for c in checks if not c.ran]
    parts = [f"{sum(c.passed for c in checks)} of {len(checks)} check cells passed"]
    if failed:
        parts.append(f"did not pass: {', '.join(failed)}")
    if not_run:
        parts.append(f"not run: {', '.join(not_run)}")
    return f"notebooks/{name}.ipynb: " + "; ".join(parts)


def made_by_handin(path: Path) -> bool:
    """Whether ``path`` is a zip this command wrote (it carries ``MARK``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.comment == MARK
    except (OSError, zipfile.BadZipFile):
        return False


def claim_output(out: Path) -> None:
    """Refuse an output path holding anything this command did not write."""
    if out.is_dir():
        raise HandinOutError(f"--out {out}: is a folder; give the path of a .zip file "
                             "(--out FILE.zip)")
    if out.suffix != ".zip":
        raise HandinOutError(f"--out {out}: the hand-in must be a .zip file (--out FILE.zip)")
    if out.exists() and not made_by_handin(out):
        raise HandinOutError(f"--out {out}: {out.name} exists and was not made by python -m "
                             "course handin; it is left as it is. Move it away or choose "
                             "another name (--out FILE.zip).")
    if not out.parent.is_dir():
        raise HandinOutError(f"--out {out}: the folder {out.parent} does not exist; create it "
                             "or choose another place")


def write_zip(tree: Path, files: Sequence[str], out: Path) -> None:
    """Write ``files`` of ``tree`` into the zip ``out``, atomically (temp file + rename)."""
    handle, temp_name = tempfile.mkstemp(prefix=".handin-", suffix=".zip.tmp", dir=out.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for rel in files:
                archive.write(tree / rel, rel)
            archive.comment = MARK
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def make_handin(tree: Path, out: Path | None = None) -> Handin:
    """Check ``tree`` and write its hand-in zip (default ``tree/handin.zip``)."""
    out = (tree / DEFAULT_NAME) if out is None else out
    claim_output(out)
    files = package_files(tree)
    notebooks = read_notebooks(tree)
    files += [f"notebooks/{name}.ipynb" for name in notebooks]
    write_zip(tree, files, out)
    return Handin(out, files, [notebook_summary(n, nb) for n, nb in notebooks.items()],
                  stubbed_tasks(tree, notebooks))


def report(handin: Handin) -> str:
    """What ``python -m course handin`` prints after writing the zip."""
    size = handin.path.stat().st_size
    lines = [f"Included {len(handin.files)} files:"]
    lines += [f"  {rel}" + (" (with its outputs)" if rel.endswith(".ipynb") else "")
              for rel in handin.files]
    lines += ["What your saved notebooks show:", *(f"  {line}" for line in handin.notebook_lines)]
    if any("did not pass" in line or "not run" in line for line in handin.notebook_lines):
        lines.append("  (Saved outputs are those of the last run of each cell: if you fixed or "
                     "wrote code since, run the notebook again, save it, and hand in again.)")
    if handin.stubs:
        lines.append(f"Still stubs (they earn no points): tasks {', '.join(handin.stubs)}.")
    lines += [f"Wrote {handin.path} ({size / 1000:.0f} kB): hand in this file.",
              "Preview of the points: make check (python -m course check)."]
    return "\n".join(lines)
