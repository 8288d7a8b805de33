"""``kit grade`` judges the notebook-cell tasks itself (``kit.hidden.measure``).

One batch over the FullyConnectedNets notebook, whole: the correct solution, and three
hostile submissions whose task cells make the check cells print ``check passed`` (they
rebind ``check_true`` in ``__main__``) while keeping what would fail a real check:

* ``forged-checks``: an untrained best model, and learning rates far too small for the
  overfitting cell;
* ``fake-model``: a best model that is not a ``FullyConnectedNet`` but an object whose
  ``params`` hold an object array, a wrong shape and NaN, so its export is garbage;
* ``overwrites-export``: an untrained best model whose ``loss``, which the check cell
  calls after the kit's export cell ran, overwrites the export file with garbage bytes
  (it finds the file where the isolation sandbox binds the export folder).

Each loses exactly the tasks it faked, with ``failed: hidden check`` and a reason that
names the task, the model and what the grader measured; every other check keeps its
points, and the grader never fails on what an export holds.

Before the batch, quick checks of the sanitize phase: the export cells sit right after
the task cells, add nothing nbval compares, and leave the checks' numbering alone; the
task cells run even when only their checks are asked for; the grading kernel's data
loaders hand out no test labels.

Instructor-only (tests/kit/ is not released). The batch is slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hidden_zoo import copy_solution

from kit import grade
from kit import notebooks as nbs
from kit import reports as rp
from kit import sandbox as sb
from kit.nbval_runner import Limits

NOTEBOOK = "FullyConnectedNets"
OVERFIT_CELL, BEST_MODEL_CELL = "e6941839", "43607e91"  # the task cells' IDs
OVERFIT_TASK = "1.9"
LIMITS = Limits(cell_timeout=60, wall=300, memory_mb=2048)

FORGE = '''
def check_true(name, ok, detail=""):  # rebinds the notebook's helper: every check "passes"
    print(f"check passed: {name}")
'''

UNTRAINED = '''
best_model = FullyConnectedNet([256, 256], input_dim=input_dim, num_classes=num_classes,
                               weight_scale="he", seed=0)
'''

FAKE_MODEL = '''
class Lookalike:
    """Says it is a net; holds garbage."""

    normalization = None
    use_dropout = False

    def __init__(self):
        self.params = {"W1": np.array([object()] * 3, dtype=object),
                       "b1": np.zeros(5), "W2": np.full((256, num_classes), np.nan),
                       "b2": np.zeros(num_classes)}

    def loss(self, X, y=None):
        return np.zeros((len(X), num_classes))


Lookalike.__name__ = "FullyConnectedNet"
best_model = Lookalike()
'''

OVERWRITES_EXPORT = '''
import glob as _glob


class Overwriter(FullyConnectedNet):
    def loss(self, X, y=None):
        for path in _glob.glob("/tmp/kit-grade-exports-*/*/task-1-14.npz"):
            with open(path, "wb") as handle:
                handle.write(b"PK garbage, not an npz")
        return super().loss(X, y)


Overwriter.__name__ = "FullyConnectedNet"  # the export says what the class calls itself
best_model = Overwriter([256, 256], input_dim=input_dim, num_classes=num_classes,
                        weight_scale="he", seed=0)
'''


def _set_cell(submission: Path, cell_id: str, source: str) -> None:
    path = submission / "notebooks" / f"{NOTEBOOK}.ipynb"
    notebook = json.loads(path.read_text())
    cells = [cell for cell in notebook["cells"] if cell.get("id") == cell_id]
    assert len(cells) == 1, cell_id
    cells[0]["source"] = source
    path.write_text(json.dumps(notebook))


def _overfit_cell_with(submission: Path, replacement: str) -> None:
    """The overfitting cell as the solution has it, its choice replaced."""
    path = submission / "notebooks" / f"{NOTEBOOK}.ipynb"
    cell = next(c for c in json.loads(path.read_text())["cells"] if c.get("id") == OVERFIT_CELL)
    source = "".join(cell["source"])
    begin = source.index("# BEGIN SOLUTION 1.9")
    end = source.index("# END SOLUTION", begin) + len("# END SOLUTION")
    _set_cell(submission, OVERFIT_CELL, source[:begin] + replacement + source[end:])


def _hostile(base: Path, name: str, best_model: str, overfit: str | None = None) -> Path:
    submission = copy_solution(base, name)
    _set_cell(submission, BEST_MODEL_CELL, FORGE + best_model)
    if overfit is not None:
        _overfit_cell_with(submission, FORGE + overfit)
    return submission


def _sanitized(tmp_path: Path, only: set[str] | None = None) -> tuple[sb.Sandbox, Any, Any]:
    references = grade.reference_notebooks(names=[NOTEBOOK])
    selection = grade.select_checks(references, only)
    box = grade.sanitize(copy_solution(tmp_path, "correct"), references, selection,
                         exports=tmp_path / "exports")
    return box, box.notebooks[NOTEBOOK], references[NOTEBOOK]


def test_export_cells_follow_the_task_cells_and_keep_the_checks_numbering(
        tmp_path: Path) -> None:
    box, graded, reference = _sanitized(tmp_path)
    try:
        ids = [cell.get("id") for cell in graded["cells"]]
        for task, cell_id in ((OVERFIT_TASK, OVERFIT_CELL), ("1.14", BEST_MODEL_CELL)):
            cell = graded["cells"][ids.index(cell_id) + 1]
            assert sb.is_kit_cell(cell) and cell["outputs"] == []
            assert nbs.has_tag(cell, nbs.NBVAL_IGNORE_OUTPUT)
            assert str(tmp_path / "exports" / NOTEBOOK) in nbs.source_of(cell)
            assert f"task-{task.replace('.', '-')}.npz" in nbs.source_of(cell)
        assert sum(sb.is_kit_cell(cell) for cell in graded["cells"]) == 2
        mapping = sb.reference_indices(graded)
        graded_code = [c for c in graded["cells"] if nbs.is_code(c)]
        reference_code = [c for c in reference["cells"] if nbs.is_code(c)]
        assert sorted(mapping.values()) == list(range(len(reference_code)))
        for index, cell in enumerate(graded_code):
            if index in mapping:
                assert reference_code[mapping[index]]["id"] == cell["id"]
            else:
                assert sb.is_kit_cell(cell)
    finally:
        box.cleanup()


def test_a_task_cell_runs_when_only_its_check_is_asked_for(tmp_path: Path) -> None:
    box, graded, _ = _sanitized(tmp_path, {f"{NOTEBOOK}/best-model-accuracy"})
    try:
        cells = {cell.get("id"): cell for cell in graded["cells"]}
        assert not nbs.has_tag(cells[BEST_MODEL_CELL], nbs.NBVAL_SKIP)
        assert any(sb.is_kit_cell(cell) for cell in graded["cells"])
    finally:
        box.cleanup()


def test_the_grading_kernels_data_has_no_test_labels(tmp_path: Path) -> None:
    box, _, _ = _sanitized(tmp_path)
    probe = ("from course.data_utils import get_data, get_digits_data\n"
             "d = get_data('digits')\n"
             "print(d['y_test'].shape, d['y_test'].dtype, sorted(set(d['y_test'].tolist())))\n"
             "print(sorted(set(d['y_train'].tolist())))\n"
             "print(sorted(set(get_digits_data()['y_test'].tolist())))\n")
    try:
        done = subprocess.run([sys.executable, "-c", probe], cwd=box.root, text=True,
                              capture_output=True, check=True,
                              env={"PYTHONPATH": str(box.root), "PATH": "/usr/bin:/bin"})
    finally:
        box.cleanup()
    lines = done.stdout.splitlines()
    assert lines[1:] == ["(300,) int64 [-1]", str(list(range(10))), "[-1]"], done.stdout


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, rp.GradeResult]:
    base = tmp_path_factory.mktemp("notebook-tasks")
    subs = [copy_solution(base, "correct"),
            _hostile(base, "forged-checks", UNTRAINED,
                     overfit="learning_rates = {3: 1e-6, 5: 1e-6}\n"
                             "weight_scales = {3: 1e-1, 5: 1e-1}\n"),
            _hostile(base, "fake-model", FAKE_MODEL),
            _hostile(base, "overwrites-export", OVERWRITES_EXPORT)]
    results = grade.grade_batch(subs, base / "grades", jobs=2, limits=LIMITS,
                                notebooks=[NOTEBOOK])
    return {result.submission: result for result in results}


@pytest.mark.slow
@pytest.mark.alone  # the batch grades with --jobs 2
def test_the_correct_solution_earns_both_notebook_tasks(batch: dict[str, Any]) -> None:
    result = batch["correct"]
    assert result.total == result.max > 0
    tasks = {task.task: task for task in result.tasks}
    for task in ("1.9", "1.14"):
        assert tasks[task].points == tasks[task].max_points > 0
        (check,) = tasks[task].checks
        assert check.hidden is not None and check.hidden.passed, check


@pytest.mark.slow
@pytest.mark.alone
@pytest.mark.parametrize(("name", "faked", "says"), [
    ("forged-checks", {"1.9": "3-layer net: best training accuracy over the epochs of the "
                              "grader's replay 0.",
                       "1.14": "best model: accuracy 0."},
     None),
    ("fake-model", {"1.14": "best model: "}, "not numbers"),
    ("overwrites-export", {"1.14": "best model: "}, "the export is unreadable: "),
])
def test_a_forged_notebook_task_earns_nothing_and_loses_nothing_else(
        batch: dict[str, Any], name: str, faked: dict[str, str], says: str | None) -> None:
    result = batch[name]
    if name == "overwrites-export" and not result.runs[0].isolation.startswith("bwrap"):
        says = "accuracy 0."  # the user mode's /tmp is shared: the folder cannot be listed
    for task in result.tasks:
        if task.task not in faked:
            assert task.passed, (name, task)
            continue
        assert task.points == 0, (name, task)
        for check in task.checks:
            assert check.notebook_verdict.passed, "the forged check cell passed nbval"
            assert check.hidden is not None and not check.hidden.passed
            assert check.reason_text == "failed: hidden check", check.reason_text
            line = check.first_line
            assert line.startswith(f"task {task.task} ("), line
            assert faked[task.task] in line, line
            if says is not None:
                assert says in line, line
    lost = sum(task.max_points for task in result.tasks if task.task in faked)
    assert result.max - result.total == lost > 0
