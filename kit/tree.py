"""The solution tree as data: its task table, its files, and what git says about it.

Read once per command (``SolutionTree.load``) and passed around, so the release, the
leak check, the grader's sandbox and the shadow check agree on the same facts, and git
is asked each question once:

* **the task table**: ``course/tasks.py`` of *that* tree, executed by path (a fixture
  tree carries its own table);
* **git facts** (``GitFacts``): the commit, the tracked files, the modified and the
  untracked ones; None outside a git repository;
* **files**: in a git repository only what git tracks (a scratch file or a symlinked venv
  never leaks), otherwise a walk that skips ``WALK_SKIP_DIRS``, ``WALK_SKIP_SUFFIXES``
  and ``datasets/*`` except its README;
* **instructor-only paths** (``INSTRUCTOR_ONLY``): never part of the student release.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from kit.errors import KitError

RELEASE_STAMP = ".release.json"  # marks a folder written by ``python -m kit release``

# Paths (relative, posix) that exist only for instructors. A trailing "/" means a folder.
INSTRUCTOR_ONLY: tuple[str, ...] = (
    "kit/",  # the instructor commands, hidden checks included
    "tests/kit/",  # tests of the tools, with fixture trees full of markers
    "tests/safety/",  # the safety suite: tests the tools and the solution code together
    ".ci/",  # the solution tree's CI entry point
    "CONTRIBUTING.md",  # conventions for writing solutions
    "README.md",  # replaced by kit/templates/STUDENT_README.md
    RELEASE_STAMP,
)

# Used only when the tree is not a git repository.
WALK_SKIP_DIRS = frozenset({
    ".git", ".venv", "venv", "build", "__pycache__", ".pytest_cache", ".hypothesis",
    ".ruff_cache", ".mypy_cache", ".ipynb_checkpoints",
})
WALK_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")


class TreeError(KitError):
    """The tree cannot be read (no task table, a git command failed); the message says why."""


def is_instructor_only(rel: str) -> bool:
    """True if the path is left out of the student tree (see ``INSTRUCTOR_ONLY``)."""
    return any(rel.startswith(p) if p.endswith("/") else rel == p for p in INSTRUCTOR_ONLY)


# -- the task table ------------------------------------------------------------------------


def load_tasks_module(source: Path) -> ModuleType:
    """Execute ``source/course/tasks.py`` as a private module and return it."""
    path = source / "course" / "tasks.py"
    if not path.is_file():
        raise TreeError(f"{path}: not found (the task table of the source tree)")
    name = f"_kit_tree_tasks_{uuid.uuid4().hex}"
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
        raise TreeError(f"{path}: defines no TASKS_BY_ID table")
    return module


def load_task_table(source: Path) -> Mapping[str, Any]:
    """The ``TASKS_BY_ID`` table of the tree at ``source`` (task ID -> task)."""
    return load_tasks_module(source).TASKS_BY_ID


# -- git -----------------------------------------------------------------------------------


def git(args: list[str], cwd: Path, env: Mapping[str, str] | None = None,
        stdin: str | None = None) -> str:
    """Run git; return its stdout, or raise ``TreeError`` with its stderr."""
    result = subprocess.run(["git", *args], cwd=cwd, env=_git_env(env), input=stdin,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TreeError(f"git {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout


def _git_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    # Variables inherited from a git hook would redirect our commands to another repo/index.
    env = {k: v for k, v in os.environ.items()
           if k not in {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"}}
    env.update(extra or {})
    return env


def in_git_repo(path: Path) -> bool:
    """True if ``path`` is inside a git working tree."""
    try:
        return git(["rev-parse", "--is-inside-work-tree"], path).strip() == "true"
    except (TreeError, OSError):
        return False


def resolve(source: Path, rev: str) -> str | None:
    """The object name ``rev`` resolves to in the repository of ``source``, or None."""
    try:
        return git(["rev-parse", "-q", "--verify", rev], source).strip() or None
    except TreeError:
        return None


def _nul_list(text: str) -> list[str]:
    return [name for name in text.split("\0") if name]


@dataclass(frozen=True)
class GitFacts:
    """What git says about the tree, asked once."""

    commit: str | None  # HEAD; None in a repository without commits
    tracked: tuple[str, ...]  # in the index and present in the working tree
    modified: tuple[str, ...]  # tracked, with working-tree or staged changes
    untracked: tuple[str, ...]  # neither tracked nor ignored

    @property
    def dirty(self) -> bool:
        return bool(self.modified or self.untracked)


def git_facts(source: Path) -> GitFacts | None:
    """The git facts of ``source`` (paths relative to it), or None outside git."""
    if not in_git_repo(source):
        return None
    tracked = _nul_list(git(["ls-files", "-z", "--cached"], source))
    untracked = _nul_list(git(["ls-files", "-z", "--others", "--exclude-standard"], source))
    # --no-optional-locks: a plain status may rewrite the index's stat cache.
    status = git(["--no-optional-locks", "status", "-z", "--porcelain",
                  "--untracked-files=no", "--", "."], source)
    return GitFacts(
        commit=resolve(source, "HEAD^{commit}"),
        # A file deleted but not yet committed is still in the index: skip it.
        tracked=tuple(sorted(n for n in set(tracked)
                             if (source / n).is_file() or (source / n).is_symlink())),
        modified=tuple(sorted(_status_paths(status))),
        untracked=tuple(sorted(untracked)),
    )


def _status_paths(listing: str) -> list[str]:
    """Paths of ``git status -z --porcelain`` entries ("XY path"; a rename or copy adds
    the old path as a separate entry, skipped)."""
    names, entries, index = [], listing.split("\0"), 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) > 3:
            names.append(entry[3:])
            if entry[0] in "RC":
                index += 1
    return names


# -- the tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SolutionTree:
    """A solution tree read once: where it is, its task table and its git facts."""

    root: Path
    tasks_module: ModuleType
    git: GitFacts | None

    @classmethod
    def load(cls, root: Path) -> SolutionTree:
        return cls(root, load_tasks_module(root), git_facts(root))

    @property
    def tasks(self) -> Mapping[str, Any]:
        """Task ID -> task (``TASKS_BY_ID``)."""
        return self.tasks_module.TASKS_BY_ID

    @property
    def commit(self) -> str | None:
        return self.git.commit if self.git else None

    @property
    def dirty(self) -> bool | None:
        """Uncommitted or untracked changes; None outside git."""
        return self.git.dirty if self.git else None

    def files(self) -> list[str]:
        """Every candidate file, as sorted posix paths relative to the root."""
        if self.git is not None:
            return list(self.git.tracked)
        return sorted(_walk(self.root))

    def released_files(self, skip: Path | None = None) -> list[str]:
        """The files that go to the student tree (before README.md is added).

        ``skip`` (the output folder, when it lies inside the tree) and any folder holding
        a release stamp are left out, so a release never swallows an earlier one.
        """
        names = self.files()
        stamped = [n[: -len(RELEASE_STAMP)] for n in names if n.endswith("/" + RELEASE_STAMP)]
        skip_rel = _relative_inside(skip, self.root) if skip else None
        if skip_rel:
            stamped.append(skip_rel + "/")
        return [n for n in names if not is_instructor_only(n)
                and not any(n.startswith(prefix) for prefix in stamped)]

    def dirty_warnings(self) -> list[str]:
        """Loud warnings naming what a dirty tree means for a release made from it."""
        if self.git is None:
            return []
        warnings = []
        if self.git.modified:
            warnings.append("the source has uncommitted changes; these files are released as "
                            "they are in the working tree, not as committed: "
                            f"{', '.join(self.git.modified)}")
        if self.git.untracked:
            warnings.append("not tracked by git, so NOT released (git add them if they belong "
                            f"in the release): {', '.join(self.git.untracked)}")
        return warnings

    def describe(self) -> str:
        """``abc123def456 (clean)``, ``... (with uncommitted changes)`` or not a repository."""
        if self.git is None:
            return "not a git repository"
        commit = self.commit[:12] if self.commit else "no commit yet"
        return f"{commit} ({'with uncommitted changes' if self.dirty else 'clean'})"


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


def _relative_inside(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
