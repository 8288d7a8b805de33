"""`python -m course handin` (course/handin.py) on small trees built here."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from course.handin import MARK, HandinError, make_handin, report
from course.rubric import task_of_check
from course.tasks import NOTEBOOKS, TASKS

PASSED = "check passed: it works\n"


def _notebook(ran: bool = True, text: str = PASSED, check: str = "some-check") -> dict:
    cell = {"cell_type": "code", "id": "c1", "execution_count": 1 if ran else None,
            "metadata": {"tags": ["check"], "check": check},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": [text]}] if ran
            else [], "source": ["x = 1"]}
    return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _tree(tmp_path: Path, notebooks: dict[str, dict] | None = None) -> Path:
    """A student tree: a package with one stub left (task 1.1), and notebooks that ran."""
    tree = tmp_path / "work"
    (tree / "course" / "classifiers").mkdir(parents=True)
    (tree / "course" / "__init__.py").write_text("")
    (tree / "course" / "layers.py").write_text(
        'def affine_forward(x, w, b):\n'
        '    raise NotImplementedError("task 1.1 (affine_forward): not written yet")\n')
    (tree / "course" / "classifiers" / "fc_net.py").write_text("X = 1\n")
    (tree / "course" / "__pycache__").mkdir()
    (tree / "course" / "__pycache__" / "layers.cpython-311.pyc").write_bytes(b"\0")
    (tree / "notebooks" / ".ipynb_checkpoints").mkdir(parents=True)
    (tree / "notebooks" / "scratch.ipynb").write_text(json.dumps(_notebook()))
    for name in NOTEBOOKS:
        notebook = (notebooks or {}).get(name, _notebook())
        (tree / "notebooks" / f"{name}.ipynb").write_text(json.dumps(notebook))
    return tree


def test_the_zip_holds_the_package_and_the_notebooks_with_outputs(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    made = make_handin(tree)
    assert made.path == tree / "handin.zip"
    with zipfile.ZipFile(made.path) as archive:
        names = archive.namelist()
        assert archive.comment == MARK
        saved = json.loads(archive.read(f"notebooks/{NOTEBOOKS[0]}.ipynb"))
    assert names == ["course/__init__.py", "course/classifiers/fc_net.py", "course/layers.py",
                     *(f"notebooks/{name}.ipynb" for name in NOTEBOOKS)]
    assert saved["cells"][0]["outputs"][0]["text"] == [PASSED]  # outputs stay
    assert made.stubs[0] == "1.1"
    text = report(made)
    for name in names:
        assert f"  {name}" in text
    assert f"Wrote {tree / 'handin.zip'}" in text
    assert "Still stubs (they earn no points): tasks 1.1" in text
    assert f"notebooks/{NOTEBOOKS[0]}.ipynb: 1 of 1 check cells passed" in text
    assert "run the notebook again" not in text  # every saved check passed: no hint


def test_a_tree_whose_notebooks_never_ran_is_refused_and_they_are_named(tmp_path: Path) -> None:
    first, second, *_ = NOTEBOOKS
    tree = _tree(tmp_path, {first: _notebook(ran=False), second: _notebook(ran=False)})
    (tree / "notebooks" / f"{NOTEBOOKS[-1]}.ipynb").unlink()
    with pytest.raises(HandinError) as refused:
        make_handin(tree)
    message = str(refused.value)
    assert f"notebooks/{first}.ipynb was never run" in message
    assert f"notebooks/{second}.ipynb was never run" in message
    assert f"notebooks/{NOTEBOOKS[-1]}.ipynb is missing" in message
    assert "The outputs stay in the zip" in message
    assert "Restore" not in message  # every notebook here can be read
    assert not (tree / "handin.zip").exists()
    assert not list(tree.glob(".handin-*"))


def test_an_unreadable_notebook_is_refused(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    (tree / "notebooks" / f"{NOTEBOOKS[1]}.ipynb").write_text("{ not json")
    with pytest.raises(HandinError, match=f"notebooks/{NOTEBOOKS[1]}.ipynb is not a readable"
                       ) as refused:
        make_handin(tree)
    # Running its cells cannot mend a broken file: the advice starts with restoring it.
    assert "Restore a notebook that cannot be read" in str(refused.value)


def test_failed_and_unrun_check_cells_are_reported_but_handed_in(tmp_path: Path) -> None:
    failing = _notebook(text="check FAILED: it works, error 0.5 (must be below 1e-07)\n",
                        check="relu-backward")
    half_run = _notebook(ran=False, check="dropout-backward")
    half_run["cells"].insert(0, _notebook()["cells"][0])  # ran up to the cell before it
    tree = _tree(tmp_path, {"FullyConnectedNets": failing, "Dropout": half_run})
    text = report(make_handin(tree))
    assert ("notebooks/FullyConnectedNets.ipynb: 0 of 1 check cells passed; did not pass: "
            f"relu-backward (task {task_of_check('FullyConnectedNets', 'relu-backward')})"
            ) in text
    assert ("notebooks/Dropout.ipynb: 1 of 2 check cells passed; not run: dropout-backward "
            f"(task {task_of_check('Dropout', 'dropout-backward')})") in text
    # Outputs saved before a fix still say FAILED: the report says how to refresh them.
    assert "run the notebook again, save it, and hand in again" in text


def test_it_never_overwrites_a_file_it_did_not_make(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    mine = tree / "handin.zip"
    mine.write_text("my own notes")
    with pytest.raises(HandinError, match="exists and was not made by python -m course handin"):
        make_handin(tree)
    assert mine.read_text() == "my own notes"
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("a.txt", "someone else's zip")
    with pytest.raises(HandinError, match="was not made by"):
        make_handin(tree, other)
    with pytest.raises(HandinError, match=r"must be a \.zip file"):
        make_handin(tree, tmp_path / "handin.tar")
    # Its own zip is replaced.
    first = make_handin(tree, tmp_path / "mine.zip")
    (tree / "course" / "extra.py").write_text("Y = 2\n")
    second = make_handin(tree, first.path)
    assert "course/extra.py" in second.files
    with zipfile.ZipFile(second.path) as archive:
        assert "course/extra.py" in archive.namelist()


def test_the_command_line_prints_the_error_and_fails(tmp_path: Path) -> None:
    target = tmp_path / "taken.zip"
    target.write_text("not a zip")
    result = subprocess.run([sys.executable, "-m", "course", "handin", "--out", str(target)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2  # a usage error: --out names a file it did not make
    assert "python -m course handin: --out" in result.stderr
    assert "taken.zip exists" in result.stderr
    assert target.read_text() == "not a zip"


def test_every_notebook_task_is_in_a_notebook_that_is_handed_in() -> None:
    assert {t.notebook for t in TASKS} <= set(NOTEBOOKS)
