"""`python -m course`: the student commands without make (Windows, Colab)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course import __main__ as course_main


def _course(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "course", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False)


def test_check_prints_the_rows_of_the_tasks_asked_for(tmp_path: Path) -> None:
    # From another folder: the tree is found from the package, as make check finds it.
    result = _course("check", "1.1", "1.3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # a failing task is a row, not an error
    rows = [line.split("|")[0].strip() for line in result.stdout.splitlines() if "|" in line]
    assert rows == ["TASK", "1.1", "1.3"]
    assert "Total: " in result.stdout


def test_check_rejects_an_unknown_task_with_the_list_of_known_ones(tmp_path: Path) -> None:
    result = _course("check", "9.9", cwd=tmp_path)
    assert result.returncode == 2  # a usage error, as argparse's (pytest's own status is 4)
    output = result.stderr + result.stdout
    assert "There is no task 9.9.\nThe task IDs are 1.1, 1.2, " in output
    assert "--task" not in output and "TASK=" not in output  # make's form, not this one's


def test_a_python_without_the_requirements_is_told_to_use_the_venvs(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # The system's python3 instead of .venv's: no tracebacks of missing modules, one line.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert course_main.main(["check", "1.3"]) == 2
    said = capsys.readouterr().err
    assert f"this Python ({sys.executable}) has no matplotlib. Run it with the project's " \
           "Python: .venv/bin/python -m course check" in said


def test_an_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as stopped:
        course_main.main(["grade"])
    assert stopped.value.code == 2


def test_check_and_test_use_the_settings_of_make() -> None:
    makefile = (Path(course_main.__file__).parent.parent / "Makefile").read_text()
    for name, value in course_main.TEST_ENV.items():
        assert f"{name}={value}" in makefile


# -- one `python -m course` command per student make target ------------------------------


def _student_make_targets(tmp_path: Path) -> set[str]:
    """The targets `make help` lists in a student tree (a Makefile without kit/ beside it)."""
    makefile = Path(course_main.__file__).parent.parent / "Makefile"
    (tmp_path / "Makefile").write_bytes(makefile.read_bytes())
    help_text = subprocess.run(["make", "--no-print-directory", "help"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60, check=True).stdout
    return set(re.findall(r"^  make (\S+)", help_text, re.MULTILINE)) - {"help"}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_every_student_make_target_has_a_python_m_course_twin(tmp_path: Path) -> None:
    commands = set(course_main.parser()._subparsers._group_actions[0].choices)
    assert _student_make_targets(tmp_path) == commands


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_setup_marks_its_install_as_make_does() -> None:
    # Both name the finished install after the same hash, so each skips the other's work.
    tree = Path(course_main.__file__).parent.parent
    stamp = subprocess.run(["make", "--no-print-directory", "--eval", "show-stamp: ; @echo "
                            "$(STAMP)", "show-stamp"], cwd=tree, capture_output=True,
                           text=True, timeout=60, check=True).stdout.strip()
    assert tree / stamp == course_main.install_stamp()


def test_setup_without_bash_uses_venv_and_pip_and_marks_only_success(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "requirements.txt").write_text("numpy\n")
    (tree / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.setattr(course_main, "TREE", tree)
    monkeypatch.setattr(course_main, "VENV", tree / ".venv")
    monkeypatch.setattr(course_main.shutil, "which", lambda name: None)  # no bash (Windows)
    monkeypatch.setattr(course_main.venv, "create", lambda path, with_pip: (
        course_main.venv_python().parent.mkdir(parents=True),
        course_main.venv_python().touch()))
    commands: list[list[str]] = []

    def pip(status: int):
        def run(args, cwd, check):
            assert args[0] == str(course_main.venv_python())
            commands.append(args[6:])  # after "python -m pip install --quiet --disable-..."
            return subprocess.CompletedProcess(args, status)
        return run

    assert course_main.setup(runner=pip(3)) == 3
    assert commands == [["-r", "requirements.txt"]]
    assert not course_main.install_stamp().exists()
    commands.clear()
    old = tree / ".venv" / ".installed-0000"
    old.touch()
    assert course_main.setup(runner=pip(0)) == 0
    assert commands == [["-r", "requirements.txt"], ["--no-deps", "-e", "."]]
    assert course_main.install_stamp().exists() and not old.exists()
    assert course_main.setup(runner=pip(1)) == 0  # set up already: nothing run


def test_clean_removes_caches_and_build_output_only(tmp_path: Path) -> None:
    for rel in ("build/site/index.html", ".pytest_cache/x", "course/__pycache__/a.pyc",
                ".venv/lib/__pycache__/b.pyc", "datasets/cifar-10-batches-py/data_batch_1",
                "course/layers.py", "handin.zip"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert course_main.clean(tmp_path) == 0
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == [".venv/lib/__pycache__/b.pyc", "course/layers.py",
                    "datasets/cifar-10-batches-py/data_batch_1", "handin.zip"]
