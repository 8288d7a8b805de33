"""The hand-in zip as `python -m course handin` writes it is what `kit grade` reads, and a
correct, executed submission gets the same points from both scales: `make check`'s and the
grade's (course/rubric.py)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course.rubric import task_points
from course.tasks import TASKS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# The quickest notebook to grade; its tasks' check cells all live in it.
NOTEBOOK = "Dropout"


def _python(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COURSE_DATASET": "digits"}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env=env, check=False)


def test_kit_grade_reads_the_handin_zip_and_agrees_with_make_check(tmp_path: Path) -> None:
    # The solution tree is a correct submission whose notebooks ran (reference outputs).
    zip_path = tmp_path / "solution.zip"
    made = _python("course", "handin", "--out", str(zip_path))
    assert made.returncode == 0, made.stderr
    assert f"Wrote {zip_path}" in made.stdout

    graded = _python("kit", "grade", str(zip_path), "--out", str(tmp_path / "grades"),
                     "--notebook", NOTEBOOK, "--disk", "64")
    assert graded.returncode == 0, graded.stderr
    saved = json.loads((tmp_path / "grades" / "solution.json").read_text())
    assert saved["graded_with"]["options"]["disk_mb"] == 64  # what its sandboxes were given
    with (tmp_path / "grades" / "grades.csv").open() as table:
        (row,) = list(csv.DictReader(table))
    tasks = [t for t in TASKS if t.notebook == NOTEBOOK]
    points = sum(task_points(t) for t in tasks)
    assert (row["submission"], row["status"]) == ("solution", "complete")
    assert int(row["total"]) == int(row["max"]) == points

    scoreboard = _python("course", "check", *(t.id for t in tasks))
    assert scoreboard.returncode == 0, scoreboard.stderr
    total = re.search(r"Total: (\d+) of (\d+) points", scoreboard.stdout)
    assert total and (int(total[1]), int(total[2])) == (points, points), scoreboard.stdout
