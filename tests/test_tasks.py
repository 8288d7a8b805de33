"""The task table is consistent, and prerequisites are followed transitively."""

import json
import re
from pathlib import Path

import pytest

from course.tasks import NOTEBOOKS, TASKS, Task, get_task, prerequisites, task_sort_key

ROOT = Path(__file__).resolve().parent.parent


def test_ids_are_unique_and_in_order():
    ids = [task.id for task in TASKS]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids, key=task_sort_key)  # "1.10" after "1.9", not after "1.1"


def test_every_task_names_a_known_notebook_and_checker():
    for task in TASKS:
        assert task.notebook in NOTEBOOKS, task.id
        assert task.checked_by in {"pytest", "notebook"}, task.id


def test_prerequisites_exist_and_come_earlier():
    for task in TASKS:
        for required in task.requires:
            assert task_sort_key(get_task(required).id) < task_sort_key(task.id), task.id


def test_prerequisites_are_followed_through_other_tasks():
    table = {
        "1": Task("1", "a", "Demo", "x.py", "f"),
        "2": Task("2", "b", "Demo", "x.py", "g", requires=("1",)),
        "3": Task("3", "c", "Demo", "x.py", "h", requires=("2",)),
    }
    assert prerequisites("3", table) == {"1", "2"}  # 1 only through 2
    assert prerequisites("1", table) == set()


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown task ID '9.9'; known IDs: 1.1, 1.2"):
        get_task("9.9")


def _heading_task_ids(notebook: Path) -> list[str]:
    """Task IDs in the order the notebook's markdown headings introduce them."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    ids = []
    for cell in cells:
        if cell["cell_type"] == "markdown":
            ids += re.findall(r"^#+ .*\[task (\d+(?:\.\d+)+)\]", "".join(cell["source"]), re.M)
    return ids


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_task_ids_follow_notebook_order(name):
    """A student meets 1.9 before 1.10: headings introduce the tasks in ID order."""
    notebook = ROOT / "notebooks" / f"{name}.ipynb"
    ids = _heading_task_ids(notebook)
    assert ids == sorted(ids, key=task_sort_key)
    listed = [task.id for task in TASKS if task.notebook == name]
    assert ids == listed, "every task of this notebook has one heading, in table order"


def _task_marks(decorators: list) -> list[str]:
    """The IDs of the ``pytest.mark.task(...)`` decorators in a decorator list."""
    import ast

    ids = []
    for node in decorators:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "task" and node.args
                and isinstance(node.args[0], ast.Constant)):
            ids.append(str(node.args[0].value))
    return ids


def test_each_test_judges_one_task():
    # The scoreboard blames a task for its tests' failures: a test marked with a forward and
    # a backward task would turn a correct forward row FAIL for a backward bug.
    import ast

    doubly_marked = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                marks = _task_marks(node.decorator_list)
                if len(marks) > 1:
                    doubly_marked.append(f"{path.name}::{node.name} {marks}")
    assert not doubly_marked, "tests marked with several tasks:\n" + "\n".join(doubly_marked)
