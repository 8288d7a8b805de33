"""kit grade: what it grades (the check selection) and where its reports may go. The
zoo (test_grade_zoo.py) grades whole submissions."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hidden_zoo import copy_solution

from kit import grade, outputs
from kit import notebooks as nbs
from kit.nbval_runner import Limits

ROOT = Path(__file__).resolve().parents[2]


def test_the_selection_names_checks_plainly_or_by_notebook_and_is_partial_then():
    references = grade.reference_notebooks(ROOT, ["FullyConnectedNets", "Dropout"])
    everything = grade.select_checks(references)
    assert not everything.partial
    assert all(everything.checks[name] for name in references)
    some = grade.select_checks(references, {"affine-forward", "Dropout/dropout-backward"})
    assert some.partial
    assert [c.name for c in some.checks["FullyConnectedNets"]] == ["affine-forward"]
    assert [c.name for c in some.checks["Dropout"]] == ["dropout-backward"]


def test_only_notebooks_with_a_selected_check_are_run():
    references = grade.reference_notebooks(ROOT, ["FullyConnectedNets", "Dropout"])
    assert grade.graded_notebooks(grade.select_checks(references)) == list(references)
    only = grade.select_checks(references, {"affine-forward"})
    assert grade.graded_notebooks(only) == ["FullyConnectedNets"]
    assert grade.graded_notebooks(grade.select_checks(
        references, {"Dropout/dropout-backward"})) == ["Dropout"]


@pytest.mark.slow
def test_grading_one_check_runs_its_notebook_alone(tmp_path):
    # Every notebook run starts a sandboxed kernel (seconds each); one with nothing
    # selected was run in full before, which made `--only affine-forward` four times slower.
    references = grade.reference_notebooks(ROOT)
    assert len(references) > 1
    submission = copy_solution(tmp_path, "sub", ROOT)
    result = grade.grade_one(submission, references, Limits(cell_timeout=60, wall=300),
                             only_checks={"affine-forward"})
    assert [run.notebook for run in result.runs] == ["FullyConnectedNets"]
    (check,) = result.checks
    assert (check.name, check.notebook_verdict.passed) == ("affine-forward", True)


def test_sanitize_skips_experiments_and_with_a_selection_the_rest_too():
    references = grade.reference_notebooks(ROOT, ["FullyConnectedNets"])
    notebook = references["FullyConnectedNets"]

    def skipped(selection: grade.Selection) -> set[int]:
        prepared = copy.deepcopy(notebook)
        for step in grade.sanitize_steps("FullyConnectedNets", selection):
            step.apply(prepared)
        return {c.index for c in nbs.code_cells(prepared)
                if nbs.has_tag(c.cell, nbs.NBVAL_SKIP)}

    cells = nbs.code_cells(notebook)
    experiments = {c.index for c in cells if nbs.is_experiment(c.cell)}
    assert skipped(grade.select_checks(references)) == experiments
    only = grade.select_checks(references, {"affine-forward"})
    chosen = only.indices("FullyConnectedNets")
    partial = skipped(only)
    assert not partial & chosen and experiments <= partial
    assert all(c.index in partial for c in cells
               if nbs.is_check(c.cell) and c.index not in chosen)


def test_grade_refuses_an_out_folder_it_did_not_make(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.json").write_text("mine")
    with pytest.raises(outputs.OutputError, match="did not create it; refusing to write"):
        outputs.claim_folder(work, grade.OUT_STAMP)
    assert (work / "notes.json").read_text() == "mine"
    fresh = tmp_path / "grades"
    outputs.claim_folder(fresh, grade.OUT_STAMP)
    (fresh / "alice.json").write_text("{}")
    outputs.claim_folder(fresh, grade.OUT_STAMP)  # its own folder: fine
    older = tmp_path / "older"  # made by an earlier kit grade, with its plain-text marker
    older.mkdir()
    (older / ".kit-grade").write_text("reports written by python -m kit grade\n")
    (older / "bob.json").write_text("{}")
    outputs.claim_folder(older, grade.OUT_STAMP)
