"""The lint settings the release writes for the files students edit (kit.release, lint
section): clean as released, and style never fails correct code there."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kit.release import (
    STUB_LINT_IGNORES,
    STUDENT_NOTEBOOKS_GLOB,
    STUDENT_STYLE_WAIVERS,
    Output,
    add_per_file_ignores,
    with_student_lint_settings,
)

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[2]
RULES = ("F401", "F821")


def test_entries_join_an_existing_table():
    text = ('[tool.ruff.lint.per-file-ignores]\n"notebooks/*.ipynb" = ["E402"]\n\n'
            '[tool.other]\nx = 1\n')
    table = tomllib.loads(add_per_file_ignores(text, {"a.py": RULES, "b/c.py": ("E501",)}))
    assert table["tool"]["ruff"]["lint"]["per-file-ignores"] == {
        "a.py": ["F401", "F821"], "b/c.py": ["E501"], "notebooks/*.ipynb": ["E402"]}
    assert table["tool"]["other"] == {"x": 1}


def test_a_missing_table_is_created():
    text = '[project]\nname = "x"'
    table = tomllib.loads(add_per_file_ignores(text, {"a.py": RULES}))
    assert table["tool"]["ruff"]["lint"]["per-file-ignores"] == {"a.py": ["F401", "F821"]}
    assert table["project"] == {"name": "x"}


def _ignores(outputs: list[Output]) -> dict[str, list[str]]:
    text = next(o for o in outputs if o.rel == "pyproject.toml").data.decode()
    return tomllib.loads(text)["tool"]["ruff"]["lint"]["per-file-ignores"]


def test_files_with_stubs_and_notebooks_are_listed_and_nothing_else(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    outputs = [Output("pyproject.toml", source=tmp_path / "pyproject.toml"),
               Output("stubbed.py", data=b"", stubs=2), Output("plain.py", data=b"")]
    assert _ignores(with_student_lint_settings(outputs)) == {
        "stubbed.py": [*STUB_LINT_IGNORES, *STUDENT_STYLE_WAIVERS]}
    with_notebook = [*outputs, Output("notebooks/A.ipynb", data=b"")]
    assert _ignores(with_student_lint_settings(with_notebook))[STUDENT_NOTEBOOKS_GLOB] == list(
        STUDENT_STYLE_WAIVERS)
    nothing_edited = [outputs[0], outputs[2]]
    assert with_student_lint_settings(nothing_edited) == nothing_edited


def test_every_selected_rule_family_is_kept_only_if_it_flags_broken_code():
    # A rule family added to `select` must be waived for students unless it finds errors
    # (pyflakes' F, the E9 syntax/IO errors): this fails until it is sorted out.
    select = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"][
        "select"]
    waived = set(STUDENT_STYLE_WAIVERS)
    for family in select:
        if family == "E":
            assert {f"E{n}" for n in (1, 2, 3, 4, 5, 7)} <= waived  # all of E except E9
        else:
            assert family == "F" or family in waived, f"{family}: waive it or say why not"


# A correct dropout_backward and helpers written in ways the style rules dislike.
CORRECT_BUT_UNSTYLISH = textwrap.dedent('''\
    import numpy as np
    import math, os
    from typing import List


    def dropout_backward(dout, cache):
        dropout_param, mask = cache
        if dropout_param["mode"] == "train":
            dx = dout * mask
        else:
            dx = dout
        return dx


    def helper(values: List[float], seen=[]) -> float:
        square = lambda v: v * v
        total = 0.0
        for i in range(len(values)):
            total = total + square(values[i])
        if values == None or not isinstance(values, list) == True:
            return 0.0
        myValue = math.sqrt(total)  # LONG
        return float(f"{myValue}") + len(f"done")
    ''').replace("# LONG", "# a comment that runs past the line length," + " on and on" * 8)
BROKEN = textwrap.dedent('''\
    def dropout_backward(dout, cache):
        return dout is 1
    ''')


def _student_tree(tmp_path: Path, layers: str, given: str = "",
                  notebook_code: str | None = None) -> Path:
    """A tree with the release's lint settings for a stubbed course/layers.py and a
    notebook, and a given (stub-free) course/solver.py."""
    outputs = [Output("pyproject.toml", source=ROOT / "pyproject.toml"),
               Output("course/layers.py", data=b"", stubs=1),
               Output("course/solver.py", data=b""),
               Output("notebooks/Dropout.ipynb", data=b"")]
    pyproject = next(o for o in with_student_lint_settings(outputs) if o.rel == "pyproject.toml")
    (tmp_path / "pyproject.toml").write_bytes(pyproject.data)
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "layers.py").write_text(layers)
    (tmp_path / "course" / "solver.py").write_text(given)
    (tmp_path / "notebooks" / "mine").mkdir(parents=True)
    cell = {"cell_type": "code", "execution_count": None, "id": "a", "metadata": {},
            "outputs": [], "source": (layers if notebook_code is None else notebook_code
                                      ).splitlines(keepends=True)}
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    for path in (tmp_path / "notebooks" / "Dropout.ipynb",
                 tmp_path / "notebooks" / "mine" / "scratch.ipynb"):
        path.write_text(json.dumps(notebook))
    return tmp_path


def _ruff(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                           "--output-format", "concise", "."], cwd=tree, capture_output=True,
                          text=True, timeout=120, check=False)


def test_correct_code_passes_lint_where_students_write_it_whatever_its_style(tmp_path):
    result = _ruff(_student_tree(tmp_path, CORRECT_BUT_UNSTYLISH))
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_that_breaks_still_fails_lint_there(tmp_path):
    result = _ruff(_student_tree(tmp_path, BROKEN, notebook_code="def broken(:\n    pass\n"))
    assert result.returncode != 0
    assert "course/layers.py:2:12: F632" in result.stdout  # `is` with a literal
    assert "invalid-syntax" in result.stdout or "SyntaxError" in result.stdout
    assert "notebooks/mine/scratch.ipynb" in result.stdout


def test_given_files_keep_the_style_rules(tmp_path):
    # The waiver is for what students write: the given code stays as strict as ever.
    result = _ruff(_student_tree(tmp_path, "", given=CORRECT_BUT_UNSTYLISH))
    assert "course/solver.py" in result.stdout and "SIM108" in result.stdout
    assert "course/layers.py" not in result.stdout
