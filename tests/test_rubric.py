"""The rubric (course/rubric.py) and the notebooks' check cells agree."""

import json
from pathlib import Path

from course.rubric import CHECKS, DEFAULT_POINTS, TASK_POINTS, check_points, task_points
from course.tasks import TASKS, TASKS_BY_ID

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _check_cells() -> dict[str, list[str]]:
    """Notebook name -> the check names of its check cells, in order."""
    found = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        found[path.stem] = [
            c["metadata"].get("check") for c in cells if "check" in c["metadata"].get("tags", [])
        ]
    return found


def test_every_check_cell_has_a_unique_kebab_case_name():
    for notebook, names in _check_cells().items():
        assert None not in names, f"{notebook}: a check cell has no metadata.check name"
        assert len(set(names)) == len(names), f"{notebook}: duplicate check names {names}"
        for name in names:
            assert name == name.lower() and " " not in name and "_" not in name, name


def test_rubric_names_only_existing_check_cells():
    cells = _check_cells()
    for key in CHECKS:
        notebook, name = key.split("/", 1)
        if notebook in cells:  # a notebook still being written may not exist yet
            assert name in cells[notebook], f"rubric entry {key} names no check cell"


def test_rubric_tasks_are_notebook_tasks_and_each_has_a_check():
    for key, check in CHECKS.items():
        if check.task is not None:
            assert TASKS_BY_ID[check.task].checked_by == "notebook", key
    for task in TASKS:
        if task.checked_by == "notebook":
            assert any(c.task == task.id for c in CHECKS.values()), task.id
        else:
            assert task.id in TASK_POINTS or task_points(task) == DEFAULT_POINTS


def test_points_are_positive_and_notebook_tasks_sum_their_checks():
    assert all(p > 0 for p in TASK_POINTS.values())
    assert all(c.points > 0 for c in CHECKS.values())
    overfit = CHECKS["FullyConnectedNets/overfit-small-data"]
    assert task_points(TASKS_BY_ID[overfit.task]) == overfit.points
    assert check_points("FullyConnectedNets", "no-such-check") == DEFAULT_POINTS
