"""kit grade's sandbox merge (fast, no notebook run), kit verify and kit gradescope."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from course.rubric import CHECKS
from kit import grade, gradescope, outputs, sandbox, verify
from kit.nbval_runner import CellRecord, Limits, read_records, reason_of
from kit.reports import FailureKind, Reason

ROOT = Path(__file__).resolve().parents[2]
OVERFIT_TASK = CHECKS["FullyConnectedNets/overfit-small-data"].task

PRISTINE = textwrap.dedent('''\
    """A module of the kit."""
    from __future__ import annotations

    import numpy as np

    LIMIT = 3


    def _given_helper(x):
        return x + 1


    def task_one(x):
        """Docstring."""
        if x is None:
            raise ValueError("x: expected an array")
        # BEGIN SOLUTION 1.1
        out = _given_helper(x) * 2
        # END SOLUTION
        return out


    def task_two(x):
        # BEGIN SOLUTION 1.2
        out = x * 3
        # END SOLUTION
        return out


    class Net:
        def __init__(self):
            self.w = 1

        def given(self):
            return self.w

        def loss(self, x):
            # BEGIN SOLUTION 1.3
            return x * self.w
            # END SOLUTION
''')


def _load(text: str) -> dict:
    namespace: dict = {}
    exec(compile(text, "<merged>", "exec"), namespace)
    return namespace


def test_merge_takes_task_functions_and_extras_from_the_student_and_the_rest_pristine():
    student = textwrap.dedent('''\
        from builtins import range
        import numpy as np

        LIMIT = 99  # a given constant: the pristine value stays


        def _given_helper(x):  # defined differently: the pristine one is used
            return -1000


        def my_helper(x):
            return x * 10


        def task_one(x):
            return my_helper(x)


        class Net:
            def extra(self):
                return 7

            def loss(self, x):
                return x + self.extra()
        ''')
    merged, notes = sandbox.merge_python(PRISTINE, student, "course/m.py",
                                         ["task_one", "task_two", "Net.loss"])
    ns = _load(merged)
    assert ns["task_one"](2) == 20  # the student's task with the student's helper
    assert ns["_given_helper"](1) == 2 and ns["LIMIT"] == 3
    with pytest.raises(NotImplementedError, match="task_two is not defined in the submitted"):
        ns["task_two"](1)
    assert ns["Net"]().loss(1) == 8 and ns["Net"]().given() == 1
    assert notes == ["missing: task_two is not defined in the submitted course/m.py"]


def test_merged_task_functions_get_copies_of_their_array_inputs():
    import numpy as np

    student = "def task_two(x):\n    x *= 0\n    return x\n"
    merged, _ = sandbox.merge_python(PRISTINE, student, "course/m.py", ["task_two"])
    x = np.ones(3)
    _load(merged)["task_two"](x)
    assert x.tolist() == [1.0, 1.0, 1.0]


def test_merge_without_a_student_file_stubs_every_task_with_the_reason():
    merged, _ = sandbox.merge_python(PRISTINE, None, "course/m.py", ["task_one", "Net.loss"],
                                     missing_reason="syntax error at course/m.py:3: bad")
    ns = _load(merged)
    with pytest.raises(NotImplementedError, match=r"syntax error at course/m\.py:3"):
        ns["task_one"](1)
    with pytest.raises(NotImplementedError, match="syntax error"):
        ns["Net"]().loss(1)
    assert "BEGIN SOLUTION" not in "".join(
        line for line in merged.splitlines() if "task_one" in line)
    ast.parse(merged)


def test_sandbox_copies_nothing_else_of_the_submission(tmp_path):
    sub = tmp_path / "sub"
    (sub / "course").mkdir(parents=True)
    (sub / "course" / "layers.py").write_text("def affine_forward(x, w, b):\n    return 1, 2\n")
    for name in ("conftest.py", "pytest.ini", "sitecustomize.py", "pyproject.toml"):
        (sub / name).write_text("boom\n")
        (sub / "course" / name).write_text("boom\n")
    (sub / "course" / "extra_module.py").write_text("x = 1\n")
    refs = grade.reference_notebooks(ROOT, ["FullyConnectedNets"])
    box = sandbox.build(sub, refs)
    try:
        names = {p.relative_to(box.root).as_posix() for p in box.root.rglob("*")}
        assert not any(n.endswith(("conftest.py", "pytest.ini", "sitecustomize.py",
                                   "pyproject.toml", "extra_module.py")) for n in names)
        assert "course/layers.py" in names and "notebooks/FullyConnectedNets.ipynb" in names
        # The notebook task has no submitted notebook: its cell is the stub.
        cells = box.notebooks["FullyConnectedNets"]["cells"]
        overfit = next(c for c in cells if c["metadata"].get("check") == "overfit-small-data")
        index = cells.index(overfit)
        stub = "".join(cells[index]["source"])
        assert "learning_rates = {3:" not in stub
        assert any(f"task {OVERFIT_TASK}" in "".join(c["source"]) and "NotImplementedError" in
                   "".join(c["source"]) for c in cells)
        # Experiment cells are skipped.
        for cell in cells:
            if "experiment" in cell["metadata"].get("tags", []):
                assert "nbval-skip" in cell["metadata"]["tags"]
    finally:
        box.cleanup()


def test_notebook_task_cells_are_spliced_by_cell_id_and_nothing_else():
    reference = grade.reference_notebooks(ROOT, ["FullyConnectedNets"])["FullyConnectedNets"]
    student = json.loads(json.dumps(reference))
    task_cell = next(c for c in student["cells"]
                     if f"BEGIN SOLUTION {OVERFIT_TASK}" in "".join(c["source"]))
    task_cell["source"] = "learning_rates = {3: 1.0, 5: 1.0}\nweight_scales = {3: 1.0, 5: 1.0}\n"
    check = next(c for c in student["cells"] if c["metadata"].get("check") == "adam")
    check["source"] = "print('check passed: everything')\n"  # not a task cell: ignored
    notebook_tasks = [t.id for t in sandbox.load_tasks() if t.checked_by == "notebook"]
    graded, notes = sandbox.splice_notebook(reference, student, notebook_tasks,
                                            "FullyConnectedNets")
    by_id = {c["id"]: c for c in graded["cells"]}
    assert "".join(by_id[task_cell["id"]]["source"]).startswith("learning_rates = {3: 1.0")
    assert by_id[check["id"]]["source"] == next(
        c for c in reference["cells"] if c["id"] == check["id"])["source"]
    assert notes == []


def test_reason_of_names_timeouts_memory_and_dead_kernels():
    limits = Limits(cell_timeout=5, memory_mb=512)

    def kind(message="", actual=""):
        return reason_of(CellRecord(0, "failed", message=message, actual=actual), None,
                         limits).kind

    assert kind("Timeout of 5 seconds exceeded executing cell") is FailureKind.TIMEOUT
    assert kind("Cell execution caused an exception",
                "MemoryError: Unable to allocate") is FailureKind.MEMORY
    assert kind("KernelDiedError: kernel died: exited") is FailureKind.KERNEL_DIED
    assert kind("Cell outputs differ") is FailureKind.WRONG_OUTPUT
    assert kind("Cell execution caused an exception", "ValueError: bad") is FailureKind.ERROR
    wall = Reason(FailureKind.WALL_CLOCK, "wall-clock limit of 9 s reached")
    assert reason_of(None, wall, limits) is wall
    assert reason_of(None, None, limits).kind is FailureKind.NOT_RUN
    assert reason_of(CellRecord(0, "passed"), None, limits) is None
    # The phrases the reports show say what the limit was.
    assert reason_of(CellRecord(0, "failed", message="Timeout of 5 seconds"), None,
                     limits).text == "timeout: the cell ran longer than 5 s"


def test_results_with_a_bad_signature_are_ignored():
    good = json.dumps({"cell": 1, "outcome": "passed"}, sort_keys=True)
    import hashlib
    import hmac

    mac = hmac.new(b"k", good.encode(), hashlib.sha256).hexdigest()
    forged = json.dumps({"cell": 2, "outcome": "passed"}, sort_keys=True)
    text = "\n".join([json.dumps({"record": good, "mac": mac}),
                      json.dumps({"record": forged, "mac": "0" * 64}), "garbage"])
    assert set(read_records(text, "k")) == {1}


TINY_NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": ["# Tiny\n"]},
        {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": 1,
         "source": ["print(1 + 1)\n"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["2\n"]}]},
        {"cell_type": "markdown", "id": "m2", "metadata": {}, "source": ["## ReLU\n"]},
        {"cell_type": "code", "id": "c2", "metadata": {"tags": ["check"], "check": "relu"},
         "execution_count": 2,
         "source": ["import numpy as np\n", "from course.layers import relu_forward\n",
                    "print(relu_forward(np.array([-1.0, 2.0]))[0])\n"],
         # Tampered: the student's relu prints [0. 2.].
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["[0. 3.]\n"]}]},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.mark.slow
def test_verify_names_the_cell_whose_stored_output_does_not_reproduce(tmp_path):
    sub = tmp_path / "student"
    shutil_copy_course(sub)
    (sub / "notebooks").mkdir()
    (sub / "notebooks" / "Tiny.ipynb").write_text(json.dumps(TINY_NOTEBOOK))
    report = verify.verify_one(sub, Limits(cell_timeout=30, wall=120, memory_mb=2048))
    differing = report["notebooks"]["Tiny"]["not_reproduced"]
    assert [c["cell"] for c in differing] == ['cell 4 under "ReLU" [check relu]']
    assert differing[0]["stored"] == "[0. 3.]\n" and differing[0]["now"] == "[0. 2.]\n"


def shutil_copy_course(sub: Path) -> None:
    import shutil

    shutil.copytree(ROOT / "course", sub / "course", ignore=shutil.ignore_patterns("__pycache__"))


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
    shutil_copy_course(autograder / "submission")
    run = subprocess.run(
        [sys.executable, "-m", "kit", "gradescope", "run", "--root", str(autograder),
         "--only", "affine-forward", "--only", "relu-forward", "--timeout", "30"],
        cwd=autograder / "source", capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(autograder / "source")},
    )
    assert run.returncode == 0, run.stderr
    results = json.loads((autograder / "results" / "results.json").read_text())
    tests = {t["name"].split(" (")[0]: t for t in results["tests"]}
    assert set(tests) == {"FullyConnectedNets/affine-forward", "FullyConnectedNets/relu-forward"}
    for test in tests.values():
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert test["status"] == "passed" and test["score"] == test["max_score"] > 0
    assert results["score"] == sum(t["score"] for t in tests.values())
    assert isinstance(results["execution_time"], float | int)


@pytest.mark.slow
def test_scoreboard_of_the_student_release_lists_every_task_as_not_started(tmp_path):
    from course.rubric import task_points
    from course.tasks import TASKS

    out = tmp_path / "student"
    release = subprocess.run([sys.executable, "-m", "kit", "release", "--out", str(out)],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert release.returncode == 0, release.stderr
    env = {**__import__("os").environ, "PYTHONPATH": str(out), "COURSE_DATASET": "digits"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-m", "task", "--scoreboard",
         "-p", "no:cacheprovider", "-W", "ignore", "--tb=no"],
        cwd=out, capture_output=True, text=True, timeout=900, env=env)
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")]
            for line in run.stdout.splitlines() if line.count("|") == 3}
    for task in TASKS:
        status, points = rows[task.id][1], rows[task.id][2]
        if task.checked_by == "notebook":
            assert (status, points) == ("NOTEBOOK", f"-/{task_points(task)}")
        else:
            assert (status, points) == ("TODO", f"0/{task_points(task)}"), rows[task.id]
    assert "Total: 0 of" in run.stdout


def test_grade_refuses_an_out_folder_it_did_not_make(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.json").write_text("mine")
    with pytest.raises(outputs.OutputError, match="did not create it; refusing to write"):
        outputs.claim_folder(work, grade.OUT_STAMP)
    assert (work / "notes.json").read_text() == "mine"
    fresh = tmp_path / "grades"
    outputs.claim_folder(fresh, grade.OUT_STAMP)
    (fresh / "alice.json").write_text("{}")
    outputs.claim_folder(fresh, grade.OUT_STAMP)  # its own folder: fine
    older = tmp_path / "older"  # made by an earlier kit grade, with its plain-text marker
    older.mkdir()
    (older / ".kit-grade").write_text("reports written by python -m kit grade\n")
    (older / "bob.json").write_text("{}")
    outputs.claim_folder(older, grade.OUT_STAMP)
