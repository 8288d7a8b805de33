"""`--task` selection and the `--scoreboard` table, run in a real pytest subprocess."""

import shutil
import subprocess
import sys
from pathlib import Path

from course.tasks import TASKS

TESTS = Path(__file__).resolve().parent

SAMPLE = """
import pytest

@pytest.mark.task("1.1")
def test_written_and_right():
    assert 1 + 1 == 2

@pytest.mark.task("1.1")
def test_written_and_right_too():
    assert True

@pytest.mark.task("1.2")
def test_still_a_stub():
    raise NotImplementedError("task 1.2 (affine_backward): not written yet")

@pytest.mark.task("1.3")
def test_written_but_wrong():
    assert 2 + 2 == 5

@pytest.mark.task("1.4")
def test_waits_for_its_forward_pass():
    raise NotImplementedError("task 1.3 (relu_forward): not written yet")

@pytest.mark.task("1.3")
def test_also_wrong():
    assert 2 + 2 == 5

def test_not_a_task():
    assert True
"""


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _row(output: str, task_id: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if cells[0] == task_id:
            return cells
    raise AssertionError(f"no scoreboard row for {task_id}:\n{output}")


def test_scoreboard_reports_pass_todo_fail_and_untested(tmp_path):
    result = _pytest(tmp_path, "--scoreboard")
    out = result.stdout
    assert "TASK   | STATUS   |   TESTS | DESCRIPTION" in out
    assert _row(out, "1.1")[1:3] == ["PASS", "2/2"]
    assert _row(out, "1.2")[1:3] == ["TODO", "0/1"]
    # 1.2 requires 1.1, which passes here: no "needs" note
    assert "needs" not in _row(out, "1.2")[3]
    assert _row(out, "1.3")[1:3] == ["FAIL", "0/2"]
    # 1.4 requires 1.3, which does not pass: the row says to write 1.3 first
    assert _row(out, "1.4")[1:3] == ["TODO", "0/1"]
    assert _row(out, "1.4")[3].endswith("(relu_backward); needs 1.3 first")
    assert _row(out, "1.5")[1:3] == ["NO TESTS", "0/0"]
    assert _row(out, "1.9")[1] == "NOTEBOOK"
    tested = sum(t.checked_by == "pytest" for t in TASKS)
    assert f"1 of {tested} tested tasks pass." in out
    assert result.returncode == 1  # failures still fail the run


def test_task_option_runs_only_that_task(tmp_path):
    result = _pytest(tmp_path, "--task", "1.1", "--scoreboard")
    assert "2 passed, 5 deselected" in result.stdout
    assert _row(result.stdout, "1.1")[1] == "PASS"
    assert result.returncode == 0


def test_task_option_rejects_unknown_ids(tmp_path):
    result = _pytest(tmp_path, "--task", "9.9")
    assert result.returncode != 0
    assert "--task: unknown task ID(s) 9.9" in result.stderr
