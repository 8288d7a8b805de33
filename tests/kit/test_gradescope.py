"""kit gradescope: the autograder bundle, run in a simulated /autograder folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from course.rubric import task_points
from kit import gradescope

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gradescope_bundle_runs_in_a_simulated_autograder_folder(tmp_path):
    bundle = gradescope.build_bundle(tmp_path / "autograder.zip")
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        assert {"setup.sh", "run_autograder", "source/kit/grade.py",
                "source/notebooks/FullyConnectedNets.ipynb", "source/course/layers.py",
                "source/tests/nbval_sanitize.cfg", "source/requirements.txt"} <= names
        assert archive.getinfo("run_autograder").external_attr >> 16 & 0o111
        autograder = tmp_path / "autograder"
        archive.extractall(autograder)
    (autograder / "submission").mkdir()
    shutil.copytree(ROOT / "course", autograder / "submission" / "course",
                    ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run(
        [sys.executable, "-m", "kit", "gradescope", "run", "--root", str(autograder),
         "--only", "affine-forward", "--only", "relu-forward", "--timeout", "30"],
        cwd=autograder / "source", capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(autograder / "source")},
    )
    assert run.returncode == 0, run.stderr
    results = json.loads((autograder / "results" / "results.json").read_text())
    # One Gradescope test per task, worth the task's points, its output the cells' verdicts.
    tests = {t["name"].split(":")[0]: t for t in results["tests"]}
    assert set(tests) == {"task 1.1", "task 1.3"}
    for task, test in tests.items():
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert test["status"] == "passed"
        assert test["score"] == test["max_score"] == task_points(task.split()[1])
    assert "FullyConnectedNets/affine-forward: passed" in tests["task 1.1"]["output"]
    assert results["score"] == sum(t["score"] for t in tests.values())
    assert isinstance(results["execution_time"], float | int)
