"""kit/notebooks.py: the heading rule, cell numbering and tags, and its agreement with the
student tree's copy of the heading rule (tests/notebook_headings.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from kit import grade, verify
from kit import notebooks as nbs

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from notebook_headings import headings_by_cell, last_heading  # noqa: E402

md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell

# (markdown text, the heading a reader sees last in it; None: it has none)
HEADING_CASES = [
    ("# Title", "Title"),
    ("Some text.\n\n## Part B [task 9.9]", "Part B [task 9.9]"),
    ("# First\n\ntext\n\n### Second", "Second"),
    ("## Closed heading ##", "Closed heading"),
    ("   ### Indented by three", "Indented by three"),
    ("    # indented by four: code, not a heading", None),
    ("#hashtag is not a heading", None),
    ("####### seven is too many", None),
    ("# Real\n```python\n# a comment in a fenced block\n```", "Real"),
    ("~~~\n# inside a tilde fence\n~~~\n# After the fence", "After the fence"),
    ("plain text only", None),
]


@pytest.mark.parametrize(("text", "expected"), HEADING_CASES)
def test_both_heading_rules_find_the_last_heading_line_of_a_cell(text, expected):
    found = nbs.heading_lines(text)
    assert (found[-1] if found else None) == expected
    assert last_heading(text) == expected


def test_a_cell_sits_under_the_nearest_heading_above_it():
    cells = [code("x = 1"), md("# A\n\nintro\n\n## A.1"), code("y"), md("no heading here"),
             code("z"), md("## B"), md("# C\n## C.1"), code("w")]
    expected = ["", "", "A.1", "A.1", "A.1", "A.1", "B", "C.1"]
    assert nbs.headings_above(cells) == expected
    assert headings_by_cell(cells) == expected


def test_code_cells_are_numbered_as_nbval_and_as_jupyter_do():
    nb = nbformat.v4.new_notebook(cells=[md("# T"), code("a"), md("## U"), code("b"),
                                         code("c")])
    nb.cells[3].metadata.update(tags=["check"], check="bee")
    found = nbs.code_cells(nb)
    assert [(c.index, c.number, c.heading) for c in found] == [(0, 2, "T"), (1, 4, "U"),
                                                               (2, 5, "U")]
    assert nbs.check_cells(nb) == {1: "bee"}


def test_tags_are_added_once_and_roles_need_a_code_cell():
    cell = code("x")
    nbs.add_tag(cell, nbs.NBVAL_SKIP)
    nbs.add_tag(cell, nbs.NBVAL_SKIP)
    assert nbs.tags_of(cell) == [nbs.NBVAL_SKIP]
    text = md("# x")
    text.metadata["tags"] = [nbs.CHECK]
    assert not nbs.is_check(text)


def _notebooks() -> list[Path]:
    return nbs.find_notebooks(ROOT / "notebooks")


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_kit_grade_and_make_test_name_the_same_heading_for_every_check_cell(path):
    notebook = nbs.load_json(path)
    cells = notebook["cells"]
    student_side = headings_by_cell(cells)  # conftest's scoreboard, test_notebooks_run
    selection = grade.select_checks({path.stem: notebook})
    checks = selection.checks[path.stem]
    assert checks, f"{path.name} has no check cell"
    numbers = {c.index: c.number for c in nbs.code_cells(notebook)}
    labels = verify.cell_labels(notebook)
    for check in checks:
        seen_by_student = student_side[numbers[check.index] - 1]
        assert check.heading == seen_by_student, (path.name, check.name)
        if seen_by_student:
            assert f'under "{seen_by_student}"' in labels[check.index]


def test_write_notebook_replaces_atomically_and_keeps_the_old_file_on_ctrl_c(tmp_path,
                                                                            monkeypatch):
    path = tmp_path / "N.ipynb"
    nbs.write_notebook(nbformat.v4.new_notebook(cells=[code("1")]), path)
    before = path.read_bytes()

    def interrupted(nb, target):
        Path(target).write_text('{"cells": [')  # half a notebook, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(nbs.nbformat, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nbs.write_notebook(nbformat.v4.new_notebook(cells=[code("2")]), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["N.ipynb"]
