"""Build the student release from the solution tree: ``python -m kit release``.

Usage::

    python -m kit release --out DIR [--branch NAME] [--source DIR]

* ``--source`` is the solution tree (default: the tree this ``kit`` package lives in).
* ``--out`` receives the student tree. An existing ``DIR`` is replaced only if it is
  empty or was written by this command (it holds the stamp file ``.release.json``);
  anything else is refused, so a typo cannot wipe a foreign folder.
* ``--branch`` also commits the student tree on that branch of the source repository
  (created if missing, else one new commit on top of its tip), without touching the
  source's working tree, index or current branch. An unchanged tree makes no commit.

What happens, in order (nothing is written until every file has been checked):

1. The task table is loaded from the *source* tree's ``course/tasks.py`` (by path, so a
   fixture tree can carry its own table).
2. Files: in a git repository, ``git ls-files --cached --others --exclude-standard``
   (so ``.venv/``, ``build/`` and downloaded data never leak); otherwise a walk that skips
   ``WALK_SKIP_DIRS``, ``WALK_SKIP_SUFFIXES`` and ``datasets/*`` except its README. Paths
   matching ``INSTRUCTOR_ONLY`` are left out; ``README.md`` is replaced by
   ``kit/templates/STUDENT_README.md``.
3. ``.py`` files: solution regions (see ``kit.markers``) become stubs; a file without
   regions is copied byte for byte. Notebooks: code cells get the same treatment, every
   output and execution count is cleared, volatile metadata is removed, tags are checked
   against ``CELL_TAGS``, ``instructor`` cells are dropped and ``answer`` cells become an
   answer prompt (keeping the ``answer`` tag). Other files are copied as they are (mode
   bits included).
4. Everything is written to a temporary folder beside ``--out``, then renamed into place.

The stamp ``.release.json`` records the tool, the format version, the source commit and
whether the source had uncommitted changes. It contains no time stamp, so two releases
of the same source are identical. It is committed to the ``--branch`` too, so the folder
and the branch hold the same files; a folder that is a git checkout (it has ``.git``) is
never replaced, stamp or not, since a clone of the branch is where a student works.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat

from kit import markers

STAMP_NAME = ".release.json"
STAMP_TOOL = "python -m kit release"
STAMP_FORMAT = 1

# Paths (relative, posix) that exist only for instructors. A trailing "/" means a folder.
INSTRUCTOR_ONLY: tuple[str, ...] = (
    "kit/",  # this tool and the other instructor commands
    "tests/kit/",  # tests of the tools, with fixture trees full of markers
    ".ci/",  # the solution tree's CI entry point
    "CONTRIBUTING.md",  # conventions for writing solutions
    "README.md",  # replaced by kit/templates/STUDENT_README.md
    STAMP_NAME,
)
STUDENT_README_TEMPLATE = Path(__file__).parent / "templates" / "STUDENT_README.md"

# Used only when the source is not a git repository.
WALK_SKIP_DIRS = frozenset({
    ".git", ".venv", "venv", "build", "__pycache__", ".pytest_cache", ".hypothesis",
    ".ruff_cache", ".mypy_cache", ".ipynb_checkpoints",
})
WALK_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")

# The tag vocabulary of CONTRIBUTING.md section 2: tag -> cell types it may be on.
CELL_TAGS: dict[str, frozenset[str]] = {
    "check": frozenset({"code"}),
    "experiment": frozenset({"code"}),
    "answer": frozenset({"markdown"}),
    "instructor": frozenset({"code", "markdown", "raw"}),
    "nbval-ignore-output": frozenset({"code"}),
    "nbval-skip": frozenset({"code"}),
}
ANSWER_PROMPT = "**Your answer:** *write your answer here.*"
# Metadata that records a particular run or a particular screen, not the notebook.
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled", "papermill")
VOLATILE_NOTEBOOK_METADATA = ("widgets", "papermill", "execution")


class ReleaseError(Exception):
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
    """The checked, in-memory student tree and what is known about its source."""

    outputs: list[Output]
    commit: str | None  # None: no git repository, or no commit yet
    dirty: bool | None  # uncommitted or untracked changes; None outside git
    warnings: list[str] = field(default_factory=list)


# -- the task table ----------------------------------------------------------------------


def load_tasks_module(source: Path) -> ModuleType:
    """Execute ``source/course/tasks.py`` as a private module and return it."""
    path = source / "course" / "tasks.py"
    if not path.is_file():
        raise ReleaseError(f"{path}: not found (the task table of the source tree)")
    name = f"_kit_release_tasks_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the file executes.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    if not isinstance(getattr(module, "TASKS_BY_ID", None), Mapping):
        raise ReleaseError(f"{path}: defines no TASKS_BY_ID table")
    return module


def load_task_table(source: Path) -> Mapping[str, Any]:
    """The ``TASKS_BY_ID`` table of the source tree (task ID -> task)."""
    return load_tasks_module(source).TASKS_BY_ID


# -- which files -------------------------------------------------------------------------


def git(args: list[str], cwd: Path, env: Mapping[str, str] | None = None,
        stdin: str | None = None) -> str:
    """Run git; return its stdout, or raise ``ReleaseError`` with its stderr."""
    result = subprocess.run(["git", *args], cwd=cwd, env=_git_env(env), input=stdin,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout


def _git_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    # Variables inherited from a git hook would redirect our commands to another repo/index.
    env = {k: v for k, v in os.environ.items()
           if k not in {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"}}
    env.update(extra or {})
    return env


def in_git_repo(source: Path) -> bool:
    """True if ``source`` is inside a git working tree."""
    try:
        return git(["rev-parse", "--is-inside-work-tree"], source).strip() == "true"
    except (ReleaseError, OSError):
        return False


def list_source_files(source: Path) -> list[str]:
    """Every candidate file of the source tree, as sorted posix paths relative to it."""
    if in_git_repo(source):
        listing = git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], source)
        names = {name for name in listing.split("\0") if name}
        # A file deleted but not yet committed is still in the index: skip it.
        return sorted(n for n in names if (source / n).is_file() or (source / n).is_symlink())
    return sorted(_walk(source))


def _walk(source: Path) -> Iterable[str]:
    for folder, dirs, files in os.walk(source):
        rel_folder = Path(folder).relative_to(source).as_posix()
        dirs[:] = [d for d in dirs if d not in WALK_SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            rel = name if rel_folder == "." else f"{rel_folder}/{name}"
            if name.endswith(WALK_SKIP_SUFFIXES):
                continue
            if rel.startswith("datasets/") and rel != "datasets/README.md":
                continue  # downloaded data
            yield rel


def is_instructor_only(rel: str) -> bool:
    """True if the path is left out of the student tree (see ``INSTRUCTOR_ONLY``)."""
    return any(rel.startswith(p) if p.endswith("/") else rel == p for p in INSTRUCTOR_ONLY)


def released_files(source: Path, skip: Path | None = None) -> list[str]:
    """The source files that go to the student tree (before README.md is added).

    ``skip`` (the output folder, when it lies inside the source) and any folder holding a
    release stamp are left out, so a release never swallows an earlier one.
    """
    names = list_source_files(source)
    stamped = [n[: -len(STAMP_NAME)] for n in names if n.endswith("/" + STAMP_NAME)]
    skip_rel = _relative_inside(skip, source) if skip else None
    if skip_rel:
        stamped.append(skip_rel + "/")
    return [n for n in names if not is_instructor_only(n)
            and not any(n.startswith(prefix) for prefix in stamped)]


def _relative_inside(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


# -- per-file processing -----------------------------------------------------------------


def process_python(source: Path, rel: str, tasks: Mapping[str, Any]) -> Output:
    """A ``.py`` file: regions to stubs, or a byte copy when it has no regions."""
    raw = (source / rel).read_bytes()
    segments = markers.parse(_decode(raw, rel), rel, tasks)
    found = markers.regions(segments)
    if not found:
        return Output(rel, source=source / rel)
    text = markers.render_student(segments)
    return Output(rel, data=text.encode("utf-8"), mode_from=source / rel, stubs=len(found),
                  task_ids={region.task_id for region in found})


def _decode(raw: bytes, rel: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise markers.MarkerError(rel, None, f"not UTF-8 text ({error})") from None


def read_notebook(source: Path, rel: str) -> Any:
    """Read a notebook as nbformat v4, or raise ``MarkerError`` naming the file."""
    try:
        return nbformat.read(source / rel, as_version=4)
    except Exception as error:  # nbformat raises several unrelated types for bad files
        raise markers.MarkerError(rel, None, f"not a readable notebook ({error})") from None


def process_notebook(source: Path, rel: str, tasks: Mapping[str, Any]) -> Output:
    """A notebook: check tags, drop/replace cells, stub regions, clear outputs."""
    nb = read_notebook(source, rel)
    cells, stubs, dropped, answers = [], 0, 0, 0
    task_ids: set[str] = set()
    for number, cell in enumerate(nb.cells, start=1):
        tags = check_tags(cell, rel, number)
        if "instructor" in tags:
            dropped += 1
            continue
        if "answer" in tags:
            answers += 1
            cell.source = ANSWER_PROMPT
            cell.pop("attachments", None)
        if cell.cell_type == "code":
            found = _stub_cell(cell, rel, number, tasks)
            stubs += len(found)
            task_ids.update(region.task_id for region in found)
            cell.outputs, cell.execution_count = [], None
        _clean_cell_metadata(cell.metadata)
        cells.append(cell)
    nb.cells = cells
    _clean_notebook_metadata(nb.metadata)
    notes = ["outputs cleared"]
    notes += [f"{answers} answer cell(s) replaced"] if answers else []
    notes += [f"{dropped} instructor cell(s) dropped"] if dropped else []
    return Output(rel, notebook=nb, mode_from=source / rel, stubs=stubs, task_ids=task_ids,
                  notes=notes)


def check_tags(cell: Any, rel: str, number: int) -> list[str]:
    """The cell's tags, after checking each against ``CELL_TAGS`` and the cell type."""
    tags = list(cell.get("metadata", {}).get("tags", []))
    for tag in tags:
        if tag not in CELL_TAGS:
            known = ", ".join(CELL_TAGS)
            raise markers.MarkerError(rel, None, f"unknown cell tag {tag!r} "
                                      f"(the tags of CONTRIBUTING.md: {known})", cell=number)
        if cell.cell_type not in CELL_TAGS[tag]:
            kinds = " or ".join(sorted(CELL_TAGS[tag]))
            raise markers.MarkerError(rel, None, f"tag {tag!r} is for {kinds} cells, "
                                      f"not {cell.cell_type} cells", cell=number)
    return tags


def _stub_cell(cell: Any, rel: str, number: int,
               tasks: Mapping[str, Any]) -> list[markers.Region]:
    segments = markers.parse(cell.source, rel, tasks, cell=number)
    found = markers.regions(segments)
    if found:
        cell.source = markers.render_student(segments)
    return found


def _clean_cell_metadata(metadata: dict[str, Any]) -> None:
    for key in VOLATILE_CELL_METADATA:
        metadata.pop(key, None)
    # outputs_hidden is screen state, and there are no outputs any more.
    jupyter = metadata.get("jupyter")
    if isinstance(jupyter, dict):
        jupyter.pop("outputs_hidden", None)
        if not jupyter:
            del metadata["jupyter"]


def _clean_notebook_metadata(metadata: dict[str, Any]) -> None:
    for key in VOLATILE_NOTEBOOK_METADATA:
        metadata.pop(key, None)
    # The instructor's Python version; Jupyter fills in the student's own when it saves.
    language_info = metadata.get("language_info")
    if isinstance(language_info, dict):
        language_info.pop("version", None)


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


# -- lint settings for files with stubs --------------------------------------------------

# What ruff reports about a file whose solutions are stubs, and why each is expected there:
# E501 the stub's TODO and raise lines are long; F401 imports only a solution uses (and
# `ruff check --fix` would delete them, breaking the task); F841/RUF059 variables the code
# before a stub prepares for the student; F821/F405 names the code after a stub expects the
# student to define.
STUB_LINT_IGNORES: tuple[str, ...] = ("E501", "F401", "F405", "F821", "F841", "RUF059")
PER_FILE_IGNORES_TABLE = "[tool.ruff.lint.per-file-ignores]"


def with_stub_lint_settings(outputs: list[Output]) -> list[Output]:
    """``outputs`` with the student ``pyproject.toml`` ignoring ``STUB_LINT_IGNORES`` in
    every file that has a stub, so the tree is ruff-clean as released and ``ruff check
    --fix`` (or an editor fixing on save) cannot delete an import a task needs.
    Unchanged when there is no ``pyproject.toml`` or no stub."""
    stubbed = sorted(o.rel for o in outputs if o.stubs)
    index = next((i for i, o in enumerate(outputs) if o.rel == "pyproject.toml"), None)
    if index is None or not stubbed:
        return outputs
    original = outputs[index]
    path = original.source if original.data is None else None
    text = path.read_text(encoding="utf-8") if path else (original.data or b"").decode("utf-8")
    patched = add_per_file_ignores(text, stubbed, STUB_LINT_IGNORES)
    outputs = list(outputs)
    outputs[index] = Output("pyproject.toml", data=patched.encode("utf-8"),
                            mode_from=path or original.mode_from,
                            notes=[f"lint relaxed in {len(stubbed)} file(s) with stubs"])
    return outputs


def add_per_file_ignores(text: str, files: list[str], rules: Iterable[str]) -> str:
    """``text`` (a pyproject.toml) with one per-file-ignores entry per file added at the top
    of its ``[tool.ruff.lint.per-file-ignores]`` table (created at the end if missing).
    Ruff unions the entries that match a file, so a glob entry for the same file stays in
    force."""
    codes = ", ".join(f'"{rule}"' for rule in rules)
    entries = [f'"{rel}" = [{codes}]' for rel in files]
    block = ["# Written by the release: files with TODO stubs (see the student README).",
             *entries]
    lines = text.split("\n")
    if PER_FILE_IGNORES_TABLE in (line.strip() for line in lines):
        at = [line.strip() for line in lines].index(PER_FILE_IGNORES_TABLE) + 1
        return "\n".join(lines[:at] + block + lines[at:])
    tail = "" if text.endswith("\n") or not text else "\n"
    return text + tail + "\n" + "\n".join([PER_FILE_IGNORES_TABLE, *block]) + "\n"


# -- the whole release -------------------------------------------------------------------


def build_release(source: Path, skip: Path | None = None) -> Release:
    """Check and render every file in memory; raise ``ReleaseError`` listing all problems."""
    tasks_module = load_tasks_module(source)
    tasks = tasks_module.TASKS_BY_ID
    files = released_files(source, skip)
    outputs, errors = [], []
    for rel in files:
        try:
            outputs.append(process_file(source, rel, tasks))
        except markers.MarkerError as error:
            errors.append(str(error))
    if errors:
        raise ReleaseError("\n".join(errors))
    outputs.append(student_readme(tasks_module, files))
    outputs = with_stub_lint_settings(outputs)
    commit, dirty = source_state(source)
    release = Release(sorted(outputs, key=lambda o: o.rel), commit, dirty)
    release.warnings = _missing_task_warnings(release, tasks)
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


def source_state(source: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether there are uncommitted or untracked changes); None if unknown."""
    if not in_git_repo(source):
        return None, None
    try:
        commit = git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], source).strip()
    except ReleaseError:
        commit = None  # a repository without commits
    # --no-optional-locks: a plain status may rewrite the index's stat cache.
    status = git(["--no-optional-locks", "status", "--porcelain", "--", "."], source)
    return commit or None, bool(status.strip())


def stamp(release: Release, files: int) -> bytes:
    """The content of the stamp file; deterministic, so releases can be compared."""
    data = {"tool": STAMP_TOOL, "format": STAMP_FORMAT, "source_commit": release.commit,
            "source_dirty": release.dirty, "files": files}
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def check_out_dir(out: Path, source: Path) -> None:
    """Refuse an ``--out`` that this command may not replace."""
    resolved, src = out.resolve(), source.resolve()
    if resolved == src or src.is_relative_to(resolved):
        raise ReleaseError(f"--out {out}: this would replace the source tree {source}")
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        raise ReleaseError(f"--out {out}: exists and is not a plain folder (a file or a "
                           "link); refusing to replace it")
    if (out / ".git").exists():
        raise ReleaseError(f"--out {out}: is a git checkout (it has .git), perhaps a clone of "
                           "the student branch with someone's work in it; refusing to replace it")
    if any(out.iterdir()) and not is_release_dir(out):
        raise ReleaseError(
            f"--out {out}: exists, is not empty and was not written by '{STAMP_TOOL}' "
            f"(no {STAMP_NAME} stamp); refusing to replace it. Remove it or choose another --out."
        )


def is_release_dir(folder: Path) -> bool:
    """True if ``folder`` holds a stamp written by this command."""
    try:
        data = json.loads((folder / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("tool") == STAMP_TOOL


def write_release(release: Release, out: Path) -> None:
    """Write the tree beside ``out`` and rename it into place (replacing an old release)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.release-", dir=out.parent))
    try:
        for output in release.outputs:
            _write_output(output, tmp)
        (tmp / STAMP_NAME).write_bytes(stamp(release, len(release.outputs)))
        tmp.chmod(0o755)  # mkdtemp makes it private; the tree is meant to be shared
        if out.exists():
            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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


# -- the branch --------------------------------------------------------------------------


def commit_branch(source: Path, out: Path, branch: str, release: Release) -> str:
    """Commit the tree in ``out`` on ``branch`` of the source repository; return a summary.

    Uses a temporary index (``GIT_INDEX_FILE``) and plumbing, so the source's working tree,
    index, HEAD and current branch are untouched. The stamp file is committed with the
    rest, so the branch and the folder agree. No commit is made if the tree is unchanged.
    """
    check_branch(source, branch)
    ref = f"refs/heads/{branch}"
    git_dir = git(["rev-parse", "--absolute-git-dir"], source).strip()
    with tempfile.TemporaryDirectory(prefix="kit-release-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        base = ["--git-dir", git_dir, "--work-tree", str(out.resolve())]
        # -f: commit exactly what was written, even files a .gitignore would hide.
        git([*base, "add", "-A", "-f", "--", "."], out, env)
        tree = git([*base, "write-tree"], out, env).strip()
    tip = _resolve(source, f"{ref}^{{commit}}")
    if tip and _resolve(source, f"{tip}^{{tree}}") == tree:
        return f"branch {branch}: already at this tree ({tip[:12]}); no commit made"
    parents = ["-p", tip] if tip else []
    new = git(["commit-tree", tree, *parents, "-F", "-"], source,
              stdin=commit_message(release)).strip()
    git(["update-ref", "-m", f"{STAMP_TOOL}", ref, new, tip or "0" * len(new)], source)
    verb = "new commit on" if tip else "created"
    return f"branch {branch}: {verb} {new[:12]}"


def check_branch(source: Path, branch: str) -> None:
    """Refuse a branch we cannot commit to: no repository, bad name, checked out."""
    if not in_git_repo(source):
        raise ReleaseError(f"--branch {branch}: the source {source} is not a git repository")
    try:
        git(["check-ref-format", "--branch", branch], source)
    except ReleaseError:
        raise ReleaseError(f"--branch {branch}: not a valid branch name") from None
    if _current_branch(source) == f"refs/heads/{branch}":
        raise ReleaseError(f"--branch {branch}: it is the branch checked out in {source}; "
                           "committing to it would leave that working tree out of sync")


def commit_message(release: Release) -> str:
    """One release commit: which source commit, and whether it had uncommitted changes."""
    return (f"Student release of {describe_source(release)}\n\n"
            f"Generated by '{STAMP_TOOL}' from source commit {release.commit or 'none'}.\n"
            f"The source had {'' if release.dirty else 'no '}uncommitted changes.\n")


def describe_source(release: Release) -> str:
    """``abc123def456 (clean)``, ``... (with uncommitted changes)`` or ``not a git tree``."""
    if release.dirty is None:
        return "not a git repository"
    commit = release.commit[:12] if release.commit else "no commit yet"
    return f"{commit} ({'with uncommitted changes' if release.dirty else 'clean'})"


def _current_branch(source: Path) -> str | None:
    try:
        return git(["symbolic-ref", "-q", "HEAD"], source).strip() or None
    except ReleaseError:
        return None  # detached HEAD


def _resolve(source: Path, rev: str) -> str | None:
    try:
        return git(["rev-parse", "-q", "--verify", rev], source).strip() or None
    except ReleaseError:
        return None


# -- leak check --------------------------------------------------------------------------


def solution_only_lines(source: Path) -> set[str]:
    """Stripped lines of solution regions (and answer/instructor cells) found nowhere else.

    "Elsewhere" is every released file of the source outside regions, kept notebook
    cells included; a line like ``return out`` that also occurs outside a region is not
    solution-only. Raises ``ReleaseError`` if the source has marker errors.
    """
    tasks = load_task_table(source)
    hidden: set[str] = set()
    visible: set[str] = set()
    for rel in released_files(source):
        try:
            _collect_lines(source, rel, tasks, hidden, visible)
        except markers.MarkerError as error:
            raise ReleaseError(str(error)) from None
    return hidden - visible


def _collect_lines(source: Path, rel: str, tasks: Mapping[str, Any],
                   hidden: set[str], visible: set[str]) -> None:
    if rel.endswith(".ipynb"):
        for number, cell in enumerate(read_notebook(source, rel).cells, start=1):
            tags = cell.get("metadata", {}).get("tags", [])
            if "instructor" in tags or "answer" in tags:
                hidden.update(_stripped(cell.source))
            elif cell.cell_type == "code":
                _split_regions(markers.parse(cell.source, rel, tasks, cell=number),
                               hidden, visible)
            else:
                visible.update(_stripped(cell.source))
        return
    try:
        text = (source / rel).read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return  # binary files hold no solution text
    if rel.endswith(".py"):
        _split_regions(markers.parse(text, rel, tasks), hidden, visible)
    else:
        visible.update(_stripped(text))


def _split_regions(segments: list[markers.Segment], hidden: set[str], visible: set[str]) -> None:
    for region in markers.regions(segments):
        hidden.update(markers.body_lines(region))
    visible.update(_stripped(markers.outside_text(segments)))


def _stripped(text: str) -> set[str]:
    return {line.strip() for line in markers.split_lines(text) if line.strip()}


def find_leaks(student: Path, secret_lines: set[str]) -> list[str]:
    """Every ``path:line: text`` of the student tree whose stripped text is a secret line.

    Notebooks are searched cell by cell (their JSON would hide lines inside strings).
    """
    leaks = []
    for path in sorted(p for p in student.rglob("*") if p.is_file()):
        rel = path.relative_to(student).as_posix()
        for where, line in _student_lines(path, rel):
            if line.strip() in secret_lines:
                leaks.append(f"{where}: {line.strip()}")
    return leaks


def _student_lines(path: Path, rel: str) -> Iterable[tuple[str, str]]:
    if rel.endswith(".ipynb"):
        for number, cell in enumerate(nbformat.read(path, as_version=4).cells, start=1):
            for lineno, line in enumerate(markers.split_lines(cell.source), start=1):
                yield f"{rel}: cell {number}, line {lineno}", line
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return
    for lineno, line in enumerate(markers.split_lines(text), start=1):
        yield f"{rel}:{lineno}", line


def check_no_leaks(source: Path, student: Path) -> None:
    """Raise ``AssertionError`` listing every solution-only line found in the student tree."""
    leaks = find_leaks(student, solution_only_lines(source))
    if leaks:
        raise AssertionError("solution text in the student tree:\n" + "\n".join(leaks))


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
             f"(source: {describe_source(release)})"]
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
    """``python -m kit release``: 0 on success; 1 on any problem, before anything is written.

    (A failing ``--branch`` commit is the one problem found after the folder is written.)
    """
    args = parse_args(argv)
    written = False
    try:
        check_arguments(args.source, args.out, args.branch)
        release = build_release(args.source, skip=args.out)
        write_release(release, args.out)
        written = True
        print(summary(release, args.out))
        if args.branch:
            print(commit_branch(args.source, args.out, args.branch, release))
    except ReleaseError as error:
        print(error, file=sys.stderr)
        done = f"{args.out} was written, the branch was not" if written else "nothing written"
        print(f"release: stopped; {done}", file=sys.stderr)
        return 1
    return 0


def check_arguments(source: Path, out: Path, branch: str | None) -> None:
    """Everything about the options that can be checked before reading the files."""
    if not (source / "course").is_dir():
        raise ReleaseError(f"--source {source}: no course/ folder; not a solution tree")
    check_out_dir(out, source)
    if branch is not None:
        check_branch(source, branch)
