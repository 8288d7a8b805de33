"""``python -m kit port`` on notebooks written in CS231n's style (tests/kit/cs231n_style.py):
set-up cells dropped, imports renamed, every change and every missing name reported, and
the ported notebook runs on ``course``."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cs231n_style
import nbformat
import pytest
from nbclient import NotebookClient

from kit import port
from kit.__main__ import COMMANDS

REPO = Path(__file__).resolve().parents[2]


def run_port(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = port.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def fc(tmp_path: Path) -> Path:
    return cs231n_style.write(cs231n_style.fc_style(), tmp_path / "in" / "FC.ipynb")


@pytest.fixture
def gaps(tmp_path: Path) -> Path:
    return cs231n_style.write(cs231n_style.gaps_style(), tmp_path / "in" / "Gaps.ipynb")


def code_sources(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_port_is_a_kit_command():
    assert COMMANDS["port"][0] == "kit.port"


def test_setup_cells_are_dropped_and_imports_renamed(fc: Path, tmp_path: Path):
    code, out, _ = run_port(fc, "--out", tmp_path / "out")
    assert code == 0
    sources = code_sources(tmp_path / "out" / "FC.ipynb")
    assert len(sources) == len(code_sources(fc)) - 1  # the Colab cell
    assert not any("google.colab" in s for s in sources)
    text = "\n".join(sources)
    assert "from course.classifiers.fc_net import *" in text
    assert "import course.layers as layer_module" in text
    assert "from cs231n" not in text and "import cs231n" not in text
    # A string is reported, not rewritten: what the path should be depends on the course.
    assert "'cs231n/datasets/cifar-10-batches-py'" in text
    assert ('cell 2 (under \'Fully connected nets, CS231n style\'): dropped (Colab / Google '
            'Drive set-up): "from google.colab import drive"') in out
    assert ('cell 3 (under \'Fully connected nets, CS231n style\'): renamed: '
            '"from cs231n.solver import Solver" -> "from course.solver import Solver"') in out
    assert "cell 7 (under 'Loss functions'): check by hand: a string names a cs231n/ path" in out
    assert "summary: 1 cell(s) dropped, 4 line(s) changed, 0 name(s) missing in course" in out


def test_missing_names_are_found_by_importing(gaps: Path, tmp_path: Path):
    code, out, _ = run_port(gaps, "--out", tmp_path / "out")
    assert code == 0  # written; the report lists what to fix
    where = "cell 4 (under 'Things the kit does not have'): missing in course: "
    for message in (
        "module course.no_such_module (star import) does not exist",
        "course.gradient_check.eval_numerical_gradient_blobs (imported by name)",
        "course.data_utils.load_tiny_imagenet (used as an attribute)",
        "vis_nn (used; defined neither by the notebook nor by its star imports: "
        "course.layers, course.no_such_module)",
    ):
        assert where + message in out
    # Names the star import provides, builtins and the notebook's own names are fine.
    assert "affine_forward (" not in out and "print (" not in out and "images (" not in out
    assert "dropped (Cython build of CS231n's fast layers)" in out
    assert "cell 5 (under 'Things the kit does not have'): not parsed as Python" in out
    assert "4 name(s) missing in course" in out


def test_a_name_course_gains_is_no_longer_reported(tmp_path: Path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from cs231n.layers import affine_forward, not_a_layer\n"
        "from cs231n.classifiers.fc_net import *\nsvm_loss, TwoLayerNet")])
    source = cs231n_style.write(nb, tmp_path / "in" / "N.ipynb")
    _, out, _ = run_port(source, "--out", tmp_path / "out")
    assert "course.layers.not_a_layer (imported by name)" in out
    assert "affine_forward" not in out.split("missing")[-1]
    assert "1 name(s) missing" in out


def test_ported_notebook_runs_on_course(fc: Path, tmp_path: Path):
    run_port(fc, "--out", tmp_path / "out")
    nb = nbformat.read(tmp_path / "out" / "FC.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "affine dx ok: True" in printed
    assert "softmax loss near log 4: True" in printed
    assert "legacy seeding repeats training: True" in printed  # np.random.seed(231) works


def test_refuses_to_overwrite_a_foreign_notebook(fc: Path, tmp_path: Path):
    foreign = cs231n_style.write(nbformat.v4.new_notebook(), tmp_path / "out" / "FC.ipynb")
    before = foreign.read_bytes()
    code, _, err = run_port(fc, "--out", tmp_path / "out")
    assert code == 1
    assert "exists and was not written by 'python -m kit port'" in err
    assert foreign.read_bytes() == before


def test_replaces_its_own_output_and_never_the_input(fc: Path, tmp_path: Path):
    assert run_port(fc, "--out", tmp_path / "out")[0] == 0
    assert run_port(fc, "--out", tmp_path / "out")[0] == 0  # its own file: replaced
    before = fc.read_bytes()
    code, _, err = run_port(fc, "--out", fc.parent)
    assert code == 1 and "would overwrite the notebook being ported" in err
    assert fc.read_bytes() == before


def test_unreadable_input_is_reported_and_others_still_ported(fc: Path, tmp_path: Path):
    bad = tmp_path / "in" / "bad.ipynb"
    bad.write_text("not json")
    code, out, err = run_port(bad, fc, "--out", tmp_path / "out")
    assert code == 1
    assert "bad.ipynb: not a readable notebook" in err
    assert (tmp_path / "out" / "FC.ipynb").exists() and "FC.ipynb" in out
