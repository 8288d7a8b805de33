"""`make help` lists only the targets that work in the tree it runs in.

The Makefile is shared by the solution tree and the student release; the release has no
kit/, so the targets that need it (or the solution's reference outputs) are not offered
there, and `make nbval` says what to run instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parent.parent / "Makefile"
SOLUTION_ONLY = {"nbval", "grade", "run", "student", "bench", "notebooks"}
STUDENT_TARGETS = {"setup", "check", "test", "quick", "lab", "data", "lint", "handin", "clean"}
STUDENT_HIDDEN = {"unit"}  # works there, but test and quick cover it

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _make(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=folder,
                          capture_output=True, text=True, timeout=60, check=False)


def _listed(output: str) -> set[str]:
    return set(re.findall(r"^  make (\S+)", output, re.MULTILINE))


def _tree(tmp_path: Path, with_kit: bool) -> Path:
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    if with_kit:
        (tmp_path / "kit").mkdir()
    return tmp_path


def test_student_tree_help_lists_only_what_works_there(tmp_path: Path) -> None:
    out = _make(_tree(tmp_path, with_kit=False), "help").stdout
    assert _listed(out) >= STUDENT_TARGETS
    assert not (SOLUTION_ONLY | STUDENT_HIDDEN) & _listed(out)
    assert "python -m course check" in out  # the form without make
    # Every line there is for students: no "students:" label (the solution tree keeps it).
    check = re.search(r"^  make check +(.*)$", out, re.MULTILINE)
    assert check and check.group(1).startswith("per-task scoreboard"), out


def test_solution_tree_help_lists_every_target(tmp_path: Path) -> None:
    out = _make(_tree(tmp_path, with_kit=True), "help").stdout
    assert _listed(out) >= STUDENT_TARGETS | SOLUTION_ONLY | STUDENT_HIDDEN
    assert re.search(r"^  make check +students: per-task scoreboard", out, re.MULTILINE), out


def test_every_hidden_target_refuses_to_run_in_the_student_tree() -> None:
    # Each recipe starts by checking for kit/ (and says what to do instead).
    text = MAKEFILE.read_text()
    for target in SOLUTION_ONLY:
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n|#.*\n)+)", text, re.MULTILINE)
        assert recipe and "[ -d kit ]" in recipe.group(1), target


@pytest.mark.parametrize(("args", "said"), [
    (("check", "1.3", "1.4"), 'make check takes task IDs as TASK: make check TASK="1.3 1.4"'),
    (("check", "task=1.3"), 'TASK in capitals: make check TASK="1.3"'),
])
def test_a_task_given_the_wrong_way_stops_before_any_work(tmp_path: Path, args: tuple[str, ...],
                                                          said: str) -> None:
    # Stopped while make reads the Makefile: no venv, no tests, no full scoreboard first.
    result = _make(_tree(tmp_path, with_kit=False), *args)
    assert result.returncode != 0
    assert said in result.stderr
    assert not (tmp_path / ".venv").exists()


@pytest.mark.parametrize(("value", "student"), [
    ("1", True), ("yes", True), ("YES", True), ("True", True), ("on", True),
    ("0", False), ("no", False), ("False", False), ("", False),
])
def test_make_run_reads_student_in_any_case(tmp_path: Path, value: str, student: bool) -> None:
    # `make -n` prints the commands without running them (no venv is made either).
    tree = _tree(tmp_path, with_kit=True)
    for name in ("requirements.txt", "pyproject.toml"):  # what the set-up step reads
        (tree / name).write_text("")
    result = _make(tree, "-n", "run", f"STUDENT={value}")
    assert result.returncode == 0, result.stderr
    command = [line for line in result.stdout.splitlines() if "-m kit site" in line]
    assert len(command) == 1, result.stdout
    assert ("--student" in command[0]) == student, command


@pytest.mark.parametrize(("args", "said"), [
    (("run", "STUDENT=y"), "make run takes STUDENT=1 (the student release) or STUDENT=0"),
    (("run", "STUDENT=student"), "not STUDENT=student"),
    (("run", "student=1"), "STUDENT in capitals: make run STUDENT=1"),
])
def test_make_run_refuses_a_student_value_it_would_read_as_no(
        tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    # Read as "no", these would write the solution site where the student one was meant.
    result = _make(_tree(tmp_path, with_kit=True), *args)
    assert result.returncode != 0
    assert said in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_bench_passes_bench_args_to_kit_bench(tmp_path: Path) -> None:
    # `make -n` prints the recipes without running them (the set-up's too: it needs the
    # files the venv's stamp depends on, empty here).
    tree = _tree(tmp_path, with_kit=True)
    for name in ("requirements.txt", "pyproject.toml"):
        (tree / name).touch()
    out = _make(tree, "-n", "bench", "BENCH_ARGS=--runs 3 --no-naive")
    assert re.search(r"-m kit bench --runs 3 --no-naive$", out.stdout, re.MULTILINE), out
