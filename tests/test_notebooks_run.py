"""Every notebook runs top to bottom and none of its checks fails.

This is what ``make test`` runs for the notebooks in the student tree (it sets
``COURSE_RUN_NOTEBOOKS=1``; elsewhere the test is skipped, and the instructors' ``make
test`` compares the stored outputs with nbval instead). Unlike nbval it does not compare
anything with the outputs saved in the notebook, which may come from CIFAR-10 or from an
earlier attempt. A failure names the cell as Jupyter shows it: its number counting every
cell (markdown included), the heading it sits under, and the check line it printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from notebook_headings import headings_by_cell

from course.tasks import NOTEBOOKS

TREE = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = TREE / "notebooks"
RUN = os.environ.get("COURSE_RUN_NOTEBOOKS") == "1"


def _notebooks() -> list[str]:
    found = {p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")}
    return [name for name in NOTEBOOKS if name in found] + sorted(found - set(NOTEBOOKS))


def place(name: str, number: int, heading: str) -> str:
    """How a student finds the cell: ``Name.ipynb, cell 12 (under 'Affine layer')``."""
    return f"{name}.ipynb, cell {number}" + (f" (under '{heading}')" if heading else "")


def _printed(cell: Any) -> list[str]:
    return [line for out in cell.get("outputs", []) if out.get("output_type") == "stream"
            for line in out.get("text", "").splitlines()]


def run_notebook(path: Path) -> list[str]:
    """Run the notebook cell by cell; the problems found, each naming its cell."""
    # Imported here, not above: `make check` collects this module too, and nbformat's
    # import costs about 2 s (jsonschema's IRI checker) that the scoreboard never needs.
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    name = path.stem
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    problems: list[str] = []
    # The kernel imports this tree's course first, whatever .venv has installed.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(TREE), os.environ.get("PYTHONPATH", "")) if p))
    with client.setup_kernel(env=env):
        for index, (cell, heading) in enumerate(zip(nb.cells, headings_by_cell(nb.cells),
                                                    strict=True)):
            if cell.cell_type != "code":
                continue
            where = place(name, index + 1, heading)
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                problems.append(f"{where}: {error.ename}: {error.evalue}")
                break  # later cells depend on this one
            problems += [f"{where}: {line}" for line in _printed(cell)
                         if line.startswith("check FAILED")]
    return problems


@pytest.mark.skipif(not RUN, reason="set COURSE_RUN_NOTEBOOKS=1 (make test in the student "
                                     "tree does) to run the notebooks")
@pytest.mark.parametrize("name", _notebooks())
def test_notebook_runs_and_its_checks_pass(name: str) -> None:
    problems = run_notebook(NOTEBOOK_DIR / f"{name}.ipynb")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_problems_name_cells_as_jupyter_numbers_them(tmp_path: Path) -> None:
    import nbformat

    new_md, new_code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(cells=[
        new_md("# Title"), new_code("print('check passed: fine')"),
        new_md("Some text.\n\n## Part B [task 9.9]"),
        new_code("print('check FAILED: thing, relative error 1.00e+00')"),
        new_code("raise ValueError('boom')"), new_code("print('never run')"),
    ])
    nbformat.write(nb, tmp_path / "Demo.ipynb")
    assert run_notebook(tmp_path / "Demo.ipynb") == [
        "Demo.ipynb, cell 4 (under 'Part B [task 9.9]'): check FAILED: thing, relative "
        "error 1.00e+00",
        "Demo.ipynb, cell 5 (under 'Part B [task 9.9]'): ValueError: boom",
    ]
