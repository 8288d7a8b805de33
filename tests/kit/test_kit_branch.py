"""``python -m kit release --branch``: commits the student tree without touching the source.

Each test works on a git repository made from a copy of the fixture tree (``git_src``).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from kit_helpers import git, make_git_repo, run_release, snapshot


def source_state(repo: Path) -> dict[str, str]:
    """What the release must not change: HEAD, current branch, status, index bytes."""
    index = (repo / ".git" / "index").read_bytes()
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "index": hashlib.sha256(index).hexdigest(),
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/main"),
    }


def branch_files(repo: Path, branch: str) -> dict[str, bytes]:
    names = git(repo, "ls-tree", "-r", "-z", "--name-only", branch).split("\0")
    return {name: git_bytes(repo, f"{branch}:{name}") for name in names if name}


def git_bytes(repo: Path, spec: str) -> bytes:
    return subprocess.run(["git", "cat-file", "blob", spec], cwd=repo, capture_output=True,
                          check=True).stdout


def count_commits(repo: Path, ref: str) -> int:
    return int(git(repo, "rev-list", "--count", ref))


def test_branch_holds_the_student_tree_and_the_source_is_untouched(
    git_src: Path, tmp_path: Path
) -> None:
    # Make the source dirty in every way: a staged change, an unstaged one, an untracked file.
    (git_src / "course" / "utils.py").write_text('"""Changed."""\n')
    git(git_src, "add", "course/utils.py")
    (git_src / "course" / "tasks.py").write_text(
        (git_src / "course" / "tasks.py").read_text() + "\n# unstaged note\n")
    (git_src / "notes.txt").write_text("untracked\n")
    before = source_state(git_src)
    files_before = snapshot(git_src)
    head = before["head"].strip()

    out = tmp_path / "student"
    result = run_release("--source", git_src, "--out", out, "--branch", "student")
    assert result.code == 0, result.err
    assert "branch student: created" in result.out

    assert source_state(git_src) == before
    assert snapshot(git_src) == files_before
    written = {rel: data for rel, (data, _) in snapshot(out).items()}
    assert ".release.json" in written  # the stamp is on the branch too: same files
    assert branch_files(git_src, "student") == written
    assert "notes.txt" not in written  # only what git tracks is released...
    assert "WARNING" in result.err and "notes.txt" in result.err  # ...and the rest is named
    assert "course/tasks.py" in result.err and "course/utils.py" in result.err
    message = git(git_src, "log", "-1", "--format=%B", "student")
    assert head in message and head[:12] in message.splitlines()[0]
    assert "had uncommitted changes" in message
    assert count_commits(git_src, "student") == 1


def test_clean_source_says_so_and_modes_are_committed(git_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    assert run_release("--source", git_src, "--out", out, "--branch", "student").code == 0
    message = git(git_src, "log", "-1", "--format=%B", "student")
    assert "(clean)" in message and "no uncommitted changes" in message
    entries = {line.split("\t")[1]: line.split(" ")[0]
               for line in git(git_src, "ls-tree", "-r", "student").splitlines()}
    assert entries["scripts/hello.sh"] == "100755"
    assert entries["course/layers.py"] == "100644"


def test_second_release_makes_no_commit_and_a_change_makes_exactly_one(
    git_src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    argv = ["--source", git_src, "--out", out, "--branch", "student"]
    assert run_release(*argv).code == 0
    first = git(git_src, "rev-parse", "student").strip()

    again = run_release(*argv)
    assert again.code == 0
    assert "already at this tree" in again.out
    assert git(git_src, "rev-parse", "student").strip() == first

    # A new source commit that changes the student tree: one commit on top of the tip.
    utils = git_src / "course" / "utils.py"
    utils.write_text(utils.read_text() + "\n\nANSWER = 42\n")
    git(git_src, "commit", "-q", "-am", "utils: a constant")
    assert run_release(*argv).code == 0
    tip = git(git_src, "rev-parse", "student").strip()
    assert git(git_src, "rev-parse", "student^").strip() == first
    assert count_commits(git_src, "student") == 2
    assert git(git_src, "rev-parse", "HEAD").strip() in git(
        git_src, "log", "-1", "--format=%B", tip)


def test_refuses_the_checked_out_branch_and_writes_nothing(
    git_src: Path, tmp_path: Path
) -> None:
    before = source_state(git_src)
    out = tmp_path / "student"
    result = run_release("--source", git_src, "--out", out, "--branch", "main")
    assert result.code == 2
    assert "checked out" in result.err and "nothing written" in result.err
    assert not out.exists()
    assert source_state(git_src) == before


def test_refuses_a_bad_branch_name_and_a_source_outside_git(
    src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    result = run_release("--source", src, "--out", out, "--branch", "student")
    assert result.code == 2 and "not a git repository" in result.err
    make_git_repo(src)
    result = run_release("--source", src, "--out", out, "--branch", "bad..name")
    assert result.code == 2 and "not a valid branch name" in result.err
    assert not out.exists()


def test_a_checkout_of_the_branch_is_never_replaced(git_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    assert run_release("--source", git_src, "--out", out, "--branch", "student").code == 0
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--branch", "student", str(git_src), str(clone))
    assert (clone / ".release.json").is_file()  # the branch carries the stamp
    (clone / "course" / "my_work.py").write_text("# a student's work\n")
    before = snapshot(clone)
    result = run_release("--source", git_src, "--out", clone)
    assert result.code == 2 and "is a git checkout" in result.err
    assert snapshot(clone) == before
