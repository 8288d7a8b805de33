"""`python -m course`: the student commands without make (Windows, Colab)."""

from __future__ import annotations

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
    assert result.returncode != 0
    assert "unknown task ID(s) 9.9; known: 1.1" in result.stderr + result.stdout


def test_an_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as stopped:
        course_main.main(["grade"])
    assert stopped.value.code == 2


def test_check_and_test_use_the_settings_of_make() -> None:
    makefile = (Path(course_main.__file__).parent.parent / "Makefile").read_text()
    for name, value in course_main.TEST_ENV.items():
        assert f"{name}={value}" in makefile
