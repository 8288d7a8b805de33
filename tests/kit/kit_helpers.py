"""Helpers shared by the release-tool tests (imported by name: conftest puts this folder
on ``sys.path``, so it works whatever pytest's import mode)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from course.processes import pid_alive
from kit import release as kit_release

FIXTURE_TREE = Path(__file__).parent / "fixtures" / "solution"


@dataclass
class Run:
    """Exit code and output of one ``python -m kit release`` run (in process)."""

    code: int
    out: str
    err: str


def run_release(*argv: str | Path) -> Run:
    """Run ``kit.release.main`` with these arguments, capturing what it prints."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = kit_release.main([str(arg) for arg in argv])
    return Run(code, stdout.getvalue(), stderr.getvalue())


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` (``.git`` excluded): content and permission bits."""
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), path.stat().st_mode & 0o777)
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` (ignoring any GIT_DIR/GIT_INDEX_FILE around us); return stdout."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"}}
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                            check=True)
    return result.stdout


def copy_fixture(target: Path) -> Path:
    """A private copy of the fixture solution tree at ``target``."""
    shutil.copytree(FIXTURE_TREE, target, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return target


def make_git_repo(tree: Path) -> Path:
    """Turn ``tree`` into a git repository on ``main`` with one commit of everything."""
    git(tree, "init", "-q", "-b", "main")
    git(tree, "config", "user.name", "Release Test")
    git(tree, "config", "user.email", "release-test@example.invalid")
    git(tree, "config", "commit.gpgsign", "false")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "fixture solution tree")
    return tree


def dead_pid() -> int:
    """A pid no process has: what a killed run leaves in its temporary files' names."""
    pid = 2**22 - 7  # above the default pid_max of most systems
    while pid_alive(pid):
        pid -= 1
    return pid


# Fixtures of the release-tool and safety tests; each conftest imports them by name.


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A private copy of the fixture solution tree (not a git repository)."""
    return copy_fixture(tmp_path / "solution")


@pytest.fixture
def git_src(src: Path) -> Path:
    """The fixture copy as a git repository on ``main`` with one commit, clean."""
    return make_git_repo(src)
