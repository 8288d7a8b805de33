"""Safety suite, the student release (issue 9, items 2, 3, 6, 9, 10, 12).

A release writes only what it made (a stamp with a manifest proves it), commits only to
branches it owns (every commit carries its trailer), releases only what git tracks, and
refuses markers where they cannot work; every refusal happens before anything is written.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
from kit_helpers import dead_pid, git, run_release, snapshot

from kit import release as kit_release


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


# -- item 2: a re-release never destroys work in the release folder --------------------


def test_rerelease_refuses_a_folder_with_a_student_edit_and_names_it(git_src: Path,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "student"
    assert run_release("--source", git_src, "--out", out).code == 0
    layers = out / "course" / "layers.py"
    layers.write_text(layers.read_text() + "\n# my answer, two evenings of work\n")
    (out / "my_notes.md").write_text("notes\n")
    (out / "notebooks" / "Demo.ipynb").unlink()
    before = snapshot(out)
    result = run_release("--source", git_src, "--out", out)
    assert result.code == 2
    assert "course/layers.py (modified)" in result.err
    assert "my_notes.md (new)" in result.err
    assert "notebooks/Demo.ipynb (deleted)" in result.err
    assert "nothing written" in result.err
    assert snapshot(out) == before


def test_rerelease_over_an_untouched_release_still_works(git_src: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "student"
    assert run_release("--source", git_src, "--out", out).code == 0
    # running the tree leaves caches: not work, and regenerable
    (out / "course" / "__pycache__").mkdir()
    (out / "course" / "__pycache__" / "layers.cpython-311.pyc").write_bytes(b"\0")
    (out / ".pytest_cache").mkdir()
    (out / ".pytest_cache" / "README.md").write_text("cache\n")
    # ... and `make setup` in the student tree writes the editable install's metadata
    (out / "course.egg-info").mkdir()
    (out / "course.egg-info" / "PKG-INFO").write_text("Name: course\n")
    first = run_release("--source", git_src, "--out", out)
    assert first.code == 0, first.err
    assert not (out / "course" / "__pycache__").exists()


def test_an_old_stamp_without_manifest_is_refused_not_wiped(git_src: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "student"
    out.mkdir()
    (out / ".release.json").write_text(json.dumps({"tool": "python -m kit release",
                                                   "format": 1}))
    (out / "work.py").write_text("mine = 1\n")
    result = run_release("--source", git_src, "--out", out)
    assert result.code == 2 and "older release tool" in result.err
    assert (out / "work.py").read_text() == "mine = 1\n"


# -- item 3: commit only to a branch the tool owns --------------------------------------


def test_release_refuses_main_from_another_branch(git_src: Path, tmp_path: Path) -> None:
    git(git_src, "checkout", "-q", "-b", "topic")
    before = refs(git_src)
    out = tmp_path / "student"
    result = run_release("--source", git_src, "--out", out, "--branch", "main")
    assert result.code == 2 and "never release branches" in result.err
    assert not out.exists() and refs(git_src) == before


def test_release_refuses_master_and_the_default_branch(git_src: Path, tmp_path: Path) -> None:
    git(git_src, "branch", "master")
    git(git_src, "branch", "trunk")
    git(git_src, "config", "init.defaultBranch", "trunk")
    for name in ("master", "trunk"):
        result = run_release("--source", git_src, "--out", tmp_path / "s", "--branch", name)
        assert result.code == 2 and "never release branches" in result.err, name
    assert not (tmp_path / "s").exists()


def test_release_refuses_a_branch_checked_out_in_another_worktree(git_src: Path,
                                                                  tmp_path: Path) -> None:
    git(git_src, "branch", "work")
    git(git_src, "worktree", "add", "-q", str(tmp_path / "wt"), "work")
    result = run_release("--source", git_src, "--out", tmp_path / "s", "--branch", "work")
    assert result.code == 2 and "checked out in the worktree" in result.err
    assert not (tmp_path / "s").exists()


def test_release_refuses_a_branch_with_foreign_commits(git_src: Path, tmp_path: Path) -> None:
    git(git_src, "branch", "feature")  # someone's branch: the fixture's commit
    before = refs(git_src)
    result = run_release("--source", git_src, "--out", tmp_path / "s", "--branch", "feature")
    assert result.code == 2 and "1 commit(s) the release tool did not make" in result.err
    assert refs(git_src) == before and not (tmp_path / "s").exists()


def test_release_accepts_its_own_branch_again_but_not_after_a_foreign_commit(
        git_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    argv = ["--source", git_src, "--out", out, "--branch", "student"]
    assert run_release(*argv).code == 0
    assert kit_release.RELEASE_TRAILER in git(git_src, "log", "-1", "--format=%B", "student")
    (git_src / "course" / "utils.py").write_text('"""Changed."""\n')
    git(git_src, "commit", "-qam", "change")
    assert run_release(*argv).code == 0  # own branch: one more commit
    assert git(git_src, "rev-list", "--count", "student").strip() == "2"
    # someone commits by hand on the release branch: from now on it is not the tool's
    git(git_src, "checkout", "-q", "student")
    (git_src / "hand.txt").write_text("by hand\n")
    git(git_src, "add", "hand.txt")
    git(git_src, "commit", "-qm", "a fix made by hand")
    git(git_src, "checkout", "-q", "main")
    result = run_release(*argv)
    assert result.code == 2 and "did not make" in result.err


# -- item 12: validate every argument before writing anything ---------------------------


def test_branch_at_minus_one_is_refused_before_writing(git_src: Path, tmp_path: Path) -> None:
    git(git_src, "checkout", "-q", "-b", "topic")
    git(git_src, "checkout", "-q", "main")
    git(git_src, "checkout", "-q", "topic")  # @{-1} is now main
    out = tmp_path / "student"
    for name in ("@{-1}", "@", "HEAD", "-x", "refs/heads/main"):
        result = run_release("--source", git_src, "--out", out, f"--branch={name}")
        assert result.code == 2 and "not a valid branch name" in result.err, name
        assert not out.exists(), name


def test_out_inside_dot_git_is_refused(git_src: Path) -> None:
    before = refs(git_src)
    for out in (git_src / ".git" / "refs" / "student", git_src / ".git" / "student"):
        result = run_release("--source", git_src, "--out", out)
        assert result.code == 2 and "inside" in result.err and ".git" in result.err
        assert not out.exists()
    assert refs(git_src) == before
    assert git(git_src, "fsck", "--no-progress") == ""


def test_tags_given_as_a_string_are_a_clear_error(src: Path, tmp_path: Path) -> None:
    path = src / "notebooks" / "Demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[10].metadata["tags"] = "instructor"
    nbformat.write(nb, path)
    result = run_release("--source", src, "--out", tmp_path / "s")
    assert result.code == 1
    assert "cell 11: cell tags must be a list of strings" in result.err
    assert "unknown cell tag 'i'" not in result.err
    assert not (tmp_path / "s").exists()


# -- item 9: only what git tracks is released --------------------------------------------


def test_untracked_scratch_file_and_symlinked_venv_are_not_released(git_src: Path,
                                                                    tmp_path: Path) -> None:
    (git_src / "my_solutions.py").write_text("def affine_forward(x, w, b):\n    ...\n")
    venv = tmp_path / "real-venv"
    venv.mkdir()
    (git_src / "venv").symlink_to(venv)
    out = tmp_path / "student"
    result = run_release("--source", git_src, "--out", out, "--branch", "student")
    assert result.code == 0, result.err
    assert not (out / "my_solutions.py").exists() and not (out / "venv").exists()
    branch = git(git_src, "ls-tree", "-r", "--name-only", "student").split()
    assert "my_solutions.py" not in branch and "venv" not in branch
    assert "WARNING" in result.err and "my_solutions.py" in result.err and "venv" in result.err


# -- item 10: markers where they cannot work ----------------------------------------------


def test_marker_in_a_markdown_cell_is_an_error_naming_the_cell(src: Path,
                                                               tmp_path: Path) -> None:
    path = src / "notebooks" / "Demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[8].source = "Answer:\n<!-- BEGIN SOLUTION 1.1 -->\nuse 0.5\n<!-- END SOLUTION -->"
    nbformat.write(nb, path)
    result = run_release("--source", src, "--out", tmp_path / "s")
    assert result.code == 1
    assert "notebooks/Demo.ipynb: cell 9, line 2: solution marker in a markdown cell" in result.err
    assert not (tmp_path / "s").exists()


def test_marker_in_a_string_is_an_error_naming_the_line(src: Path, tmp_path: Path) -> None:
    (src / "course" / "extra.py").write_text(
        'HELP = """\n# BEGIN SOLUTION 1.1\nanswer = 42\n# END SOLUTION\n"""\n')
    result = run_release("--source", src, "--out", tmp_path / "s")
    assert result.code == 1
    assert "course/extra.py:2: solution marker '# BEGIN SOLUTION 1.1' inside a string" \
        in result.err


def test_tab_indented_marker_in_space_indented_code_is_an_error(src: Path,
                                                                tmp_path: Path) -> None:
    (src / "course" / "extra.py").write_text(
        "def f(x):\n    y = x\n\t# BEGIN SOLUTION 1.1\n    y = x + 1\n\t# END SOLUTION\n"
        "    return y\n")
    result = run_release("--source", src, "--out", tmp_path / "s")
    assert result.code == 1
    assert "course/extra.py:3: the stub of this marker breaks the student file" in result.err
    assert "a tab" in result.err
    assert not (tmp_path / "s").exists()


# -- item 6: stale temporary folders of a killed release ----------------------------------




def test_next_release_removes_the_temp_folders_of_a_killed_one(src: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "student"
    dead = dead_pid()
    half_written = tmp_path / f".student.release-{dead}-abc123"
    (half_written / "course").mkdir(parents=True)
    (half_written / "course" / "layers.py").write_text("half\n")
    old_tree = tmp_path / f".student.old-{dead}-deadbeef"
    old_tree.mkdir()
    (old_tree / ".release.json").write_text(json.dumps({"tool": "python -m kit release"}))
    alive = tmp_path / f".student.release-{os.getpid()}-running"
    alive.mkdir()
    foreign = tmp_path / f".student.old-{dead}-0000"  # no stamp: not provably ours
    foreign.mkdir()
    ancient = tmp_path / f".student.release-{os.getppid()}-old"
    ancient.mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(ancient, (two_days_ago, two_days_ago))

    result = run_release("--source", src, "--out", out)
    assert result.code == 0, result.err
    assert not half_written.exists() and not old_tree.exists() and not ancient.exists()
    assert alive.exists() and foreign.exists()
    assert f"removed {half_written}" in result.err and "interrupted release" in result.err
