"""The rubric (course/rubric.py), the task table and the notebooks' check cells agree."""

import json
from pathlib import Path

import pytest

from course.rubric import (
    CHECKS,
    TASK_POINTS,
    checks_of_task,
    task_of_check,
    task_points,
    total_points,
)
from course.tasks import NOTEBOOKS, TASKS, TASKS_BY_ID

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def _check_cells() -> dict[str, list[str]]:
    """Notebook name -> the check names of its check cells, in order."""
    found = {}
    for path in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        found[path.stem] = [
            c["metadata"].get("check") for c in cells if "check" in c["metadata"].get("tags", [])
        ]
    return found


def test_every_notebook_of_the_course_is_here():
    assert set(_check_cells()) == set(NOTEBOOKS)


def test_every_check_cell_has_a_unique_kebab_case_name():
    for notebook, names in _check_cells().items():
        assert None not in names, f"{notebook}: a check cell has no metadata.check name"
        assert len(set(names)) == len(names), f"{notebook}: duplicate check names {names}"
        for name in names:
            assert name == name.lower() and " " not in name and "_" not in name, name


def test_every_check_cell_belongs_to_a_task_of_its_notebook():
    for notebook, names in _check_cells().items():
        for name in names:
            task_id = task_of_check(notebook, name)
            assert TASKS_BY_ID[task_id].notebook == notebook, f"{notebook}/{name}: {task_id}"


def test_the_rubric_names_only_existing_check_cells():
    cells = _check_cells()
    listed = {f"{notebook}/{name}" for notebook, names in cells.items() for name in names}
    assert set(CHECKS) == listed


def test_every_task_has_points_and_at_least_one_check_cell():
    assert set(TASK_POINTS) == set(TASKS_BY_ID)
    for task in TASKS:
        assert task_points(task) > 0 and task_points(task.id) == task_points(task)
        assert checks_of_task(task.id), f"task {task.id} has no check cell"


def test_the_points_add_up_to_one_hundred():
    assert total_points() == sum(TASK_POINTS.values()) == 100


def test_checks_of_a_task_come_in_notebook_order():
    cells = _check_cells()
    for task in TASKS:
        keys = checks_of_task(task.id)
        order = [cells[task.notebook].index(key.split("/", 1)[1]) for key in keys]
        assert order == sorted(order), task.id


def test_unknown_names_are_errors_that_say_where_to_add_them():
    with pytest.raises(KeyError, match="FullyConnectedNets/no-such-check belongs to no task"):
        task_of_check("FullyConnectedNets", "no-such-check")
    with pytest.raises(KeyError, match=r"task 9\.9 has no points"):
        task_points("9.9")


