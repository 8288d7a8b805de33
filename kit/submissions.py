"""What ``kit grade`` learns about a submission before it runs anything.

* **Its name** in the reports (``<name>.json``, a row of ``grades.csv``): the file name
  without ``.zip``, or the folder's name. Every student's zip is ``handin.zip`` by default
  and an LMS download is one folder per student holding it, so when names clash each is
  named by the folder that holds it (``alice`` for ``lms/alice/handin.zip``); only when
  even those clash does the batch stop, listing the paths (``assign_names``).
* **Whether it is a submission at all**: a zip or folder with no ``course/`` package with
  ``.py`` files and no notebook of the course is not one, and grading it would only run
  the pristine stubs for a 0 that looks like a student's (``not_a_submission``).
* **A fingerprint of what was graded** (``Fingerprint``): a hash of the submission's
  content, the options that change what is graded, and a hash of the grading material
  (the kit's code, the solution's ``course/``, the reference notebooks, nbval's sanitize
  file). A rerun into the same ``--out`` reuses a saved result only when all three match:
  matching by name alone kept a replaced zip's old grade, and let a quick ``--only`` trial
  stand in for the full grade.

Nothing here imports or executes the submission: it reads file names and bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

KIT_DIR = Path(__file__).resolve().parent
# Files of a submission that the grader never reads: they must not make it "changed".
IGNORED_PARTS = {"__pycache__", ".ipynb_checkpoints"}
# Bare task files at the top of a submission stand for course/ (kit.sandbox.find_course_dir).
BARE_COURSE_FILES = {"layers.py", "optim.py", "fc_net.py"}


class NameClashError(ValueError):
    """Two submissions would write the same report files."""


# -- names ---------------------------------------------------------------------------------


def base_name(path: Path) -> str:
    """The file's name without ``.zip``, or the folder's name."""
    name = Path(os.path.abspath(path)).name
    return name[:-4] if name.endswith(".zip") else name


def folder_name(path: Path) -> str:
    """The name of the folder holding ``path`` (``alice`` for ``lms/alice/handin.zip``),
    from the path as given made absolute, not through symlinks: the folder the
    instructor sees."""
    return Path(os.path.abspath(path)).parent.name


def assign_names(paths: Sequence[Path]) -> list[str]:
    """One report name per submission: its ``base_name``, or, for those whose base names
    clash, the name of the folder holding each. Raises ``NameClashError`` listing the
    paths when names still clash."""
    bases = [base_name(p) for p in paths]
    counts = Counter(bases)
    names = [base if counts[base] == 1 else folder_name(path)
             for path, base in zip(paths, bases, strict=True)]
    final = Counter(names)
    clashing: dict[str, list[Path]] = {}
    for path, name in zip(paths, names, strict=True):
        if final[name] > 1 or name in {"", ".", ".."}:
            clashing.setdefault(name, []).append(path)
    if clashing:
        lines = [f"  {name or '(no name)'}: {', '.join(str(p) for p in group)}"
                 for name, group in clashing.items()]
        raise NameClashError(
            "submissions with the same name (their reports would overwrite each other):\n"
            + "\n".join(lines) + "\nA submission is named after its file (without .zip) "
            "or folder, and, when those clash, after the folder holding it. Give each its "
            "own name, e.g. copy them to subs/<student>.zip, and grade those.")
    return names


# -- content -------------------------------------------------------------------------------


def _folder_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative POSIX path, path) of every entry of ``folder`` below it, symlinked
    folders not followed, the parts the grader never reads left out, sorted."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_PARTS)
        for name in files:
            path = Path(top) / name
            found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found)


def content_hash(path: Path) -> str:
    """sha256 of a zip's bytes, or of a folder's regular files (their relative paths and
    contents; a symlink counts by its target, never followed), so equal content gives
    the same hash wherever it lies."""
    digest = hashlib.sha256()
    if not path.is_dir():
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()
    for rel, file in _folder_files(path):
        info = file.lstat()
        digest.update(f"{rel}\0".encode())
        if stat.S_ISLNK(info.st_mode):
            digest.update(f"link\0{os.readlink(file)}\0".encode())
        elif stat.S_ISREG(info.st_mode):
            digest.update(f"file\0{info.st_size}\0".encode())
            with file.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def file_names(path: Path) -> list[PurePosixPath] | None:
    """The files a submission holds, as relative paths (None: not a readable zip; the
    sandbox then says why)."""
    if path.is_dir():
        return [PurePosixPath(rel) for rel, _ in _folder_files(path)]
    try:
        with zipfile.ZipFile(path) as archive:
            return [PurePosixPath(info.filename) for info in archive.infolist()
                    if not info.is_dir()]
    except (OSError, zipfile.BadZipFile):
        return None


def has_course_code(files: Iterable[PurePosixPath]) -> bool:
    """A ``.py`` file in ``course/`` at the top or one folder down, or a bare task file at
    the top: where ``kit.sandbox.find_course_dir`` looks for the student's code."""
    for file in files:
        parts = file.parts
        if file.suffix != ".py" or IGNORED_PARTS & set(parts):
            continue
        if parts[0] == "course" or (len(parts) > 2 and parts[1] == "course"):
            return True
        if len(parts) == 1 and file.name in BARE_COURSE_FILES:
            return True
    return False


def not_a_submission(path: Path, notebooks: Iterable[str]) -> str | None:
    """Why ``path`` is no submission at all (None: it is one, or it is not a readable zip,
    which the sandbox reports itself): no ``course/`` package with ``.py`` files and none
    of the course's ``notebooks`` (names without ``.ipynb``)."""
    files = file_names(path)
    if files is None:
        return None
    wanted = {f"{name}.ipynb" for name in notebooks}
    if has_course_code(files) or any(f.name in wanted and not IGNORED_PARTS & set(f.parts)
                                     for f in files):
        return None
    kind = "folder" if path.is_dir() else "zip"
    if not files:
        holds = f"the {kind} is empty"
    else:
        shown = ", ".join(str(f) for f in files[:4]) + (", ..." if len(files) > 4 else "")
        holds = f"the {kind} holds {len(files)} file(s): {shown}"
    return f"no course/ folder with .py files and no notebook of the course ({holds})"


# -- what was graded -----------------------------------------------------------------------


def material_hash(root: Path) -> str:
    """A hash of what decides a grade besides the submission: the grader's code
    (``kit/**/*.py``), the solution tree's ``course/**/*.py`` and reference notebooks, and
    nbval's sanitize file. Content, not the git commit: an uncommitted edit of a reference
    output changes grades too, and a commit touching only the README does not."""
    digest = hashlib.sha256()
    groups = [("kit", sorted(KIT_DIR.rglob("*.py"))),
              ("course", sorted((root / "course").rglob("*.py"))),
              ("notebooks", sorted((root / "notebooks").glob("*.ipynb"))),
              ("tests", [p for p in [root / "tests" / "nbval_sanitize.cfg"] if p.is_file()])]
    for label, paths in groups:
        base = KIT_DIR if label == "kit" else root
        for path in paths:
            if IGNORED_PARTS & set(path.parts):
                continue
            digest.update(f"{label}\0{path.relative_to(base).as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


# How each option is named to the instructor when it changed.
OPTION_LABELS = {
    "checks": "--only",
    "notebooks": "notebooks",
    "cell_timeout": "--timeout",
    "wall": "--wall",
    "memory_mb": "--memory",
    "disk_mb": "--disk (or $KIT_SANDBOX_DISK_MB)",
    "max_pids": "process cap",
    "isolation": "isolation",
}


def grading_options(checks: Iterable[str] | None, notebooks: Iterable[str],
                    limits: Any) -> dict[str, Any]:
    """The options that change what is graded, in their saved (JSON) form: the checks
    selected (``Notebook/name``; None: all), the notebooks graded (in course order), and
    the limits (``kit.nbval_runner.Limits``: per-cell timeout, wall clock, memory,
    processes, disk, the isolation asked for)."""
    options = {"checks": None if checks is None else sorted(checks),
               "notebooks": list(notebooks), **asdict(limits)}
    return json.loads(json.dumps(options))


def _shown(key: str, value: Any) -> str:
    if key == "checks":
        return "all checks" if value is None else ", ".join(value) or "no check"
    if key == "notebooks":
        return ", ".join(value) or "none"
    if key == "isolation":
        return {None: "the best available", "none": "none (--no-isolation)"}.get(value,
                                                                                  str(value))
    if value is None and key == "disk_mb":  # Limits' default, or a result older than --disk
        return "the default"
    return f"{value:g}" if isinstance(value, float) else str(value)


def options_flags(options: Mapping[str, Any] | None, all_notebooks: Sequence[str]) -> str:
    """A result's options as the ``kit grade`` flags that give them, for a column of
    grades.csv: the limits set (``--timeout 60 --wall 600 --memory 3072 --disk 512``),
    then ``--no-isolation``, ``--notebook`` (only when not every notebook was graded)
    and ``--only`` when they applied. "unknown" for a result saved without them."""
    if not options:
        return "unknown"
    flags = [f"{flag} {_shown(key, options[key])}" for key, flag in (
        ("cell_timeout", "--timeout"), ("wall", "--wall"), ("memory_mb", "--memory"),
        ("disk_mb", "--disk")) if options.get(key) is not None]  # None: not set
    if options.get("isolation") == "none":
        flags.append("--no-isolation")
    notebooks = list(options.get("notebooks") or [])
    if set(notebooks) != set(all_notebooks):
        flags += [f"--notebook {name}" for name in notebooks]
    flags += [f"--only {check.split('/')[-1]}" for check in options.get("checks") or []]
    return " ".join(flags)


@dataclass(frozen=True)
class Fingerprint:
    """What a result was graded from: the submission's content, the options, the kit."""

    submission: str  # content_hash
    options: Mapping[str, Any]  # grading_options
    material: str  # material_hash

    def to_json(self) -> dict[str, Any]:
        return {"submission_sha256": self.submission, "options": dict(self.options),
                "kit_sha256": self.material}

    @classmethod
    def from_json(cls, data: Any) -> Fingerprint | None:
        """The fingerprint saved by ``to_json`` (None when ``data`` is not one)."""
        try:
            return cls(str(data["submission_sha256"]), dict(data["options"]),
                       str(data["kit_sha256"]))
        except (KeyError, TypeError, ValueError):
            return None

    def changes_since(self, old: Fingerprint | None, name: str, shown: str) -> list[str]:
        """Why a result graded as ``old`` no longer stands for this grading (empty: it
        does), one sentence each, naming the submission (``shown``: its path)."""
        if old is None:
            return [f"{name}: its saved result does not say what it was graded from "
                    "(written by an older kit grade, or edited): regrading"]
        reasons = []
        if old.submission != self.submission:
            reasons.append(f"{shown} changed since it was last graded: regrading")
        changed = [key for key in OPTION_LABELS
                   if old.options.get(key) != self.options.get(key)]
        changed += sorted(k for k in {*old.options, *self.options}
                          if k not in OPTION_LABELS and old.options.get(k)
                          != self.options.get(k))
        if changed:
            what = "; ".join(f"{OPTION_LABELS.get(k, k)} was {_shown(k, old.options.get(k))}, "
                             f"now {_shown(k, self.options.get(k))}" for k in changed)
            reasons.append(f"{name}: last graded with other options ({what}): regrading")
        if old.material != self.material:
            reasons.append(f"{name}: the kit, the solution or the reference notebooks "
                           "changed since it was last graded: regrading")
        return reasons
