"""kit/sandbox.py: how a submission is merged into the pristine tree (fast, no notebook run)."""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

import pytest

from course.rubric import task_of_check
from kit import grade, sandbox

ROOT = Path(__file__).resolve().parents[2]
OVERFIT_TASK = task_of_check("FullyConnectedNets", "overfit-small-data")

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
