"""``kit grade`` with the hidden checks: the cheats earn nothing for what they faked.

One batch (``--jobs 2``) over the cheats of ``hidden_zoo``, the issue's three subtle bugs
in one submission, and the correct solution, graded on a few check cells (one per faked
or buggy task, in three notebooks) so that it stays quick. A check cell passes only when
nbval passes it and its task passes its hidden checks, and a task earns its points only
when its check cells pass; the JSON shows both verdicts,
``grades.csv`` counts the checks only the hidden checks failed, and the batch ends with
one line saying how many.

Instructor-only (tests/kit/ is not released). Slow: a grading batch.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from hidden_zoo import CHEATS, build_all_bugs_in_one, build_cheat, copy_solution

from kit import grade
from kit import reports as rp
from kit.nbval_runner import Limits

pytestmark = [pytest.mark.slow, pytest.mark.alone]  # alone: grades with --jobs 2+

CHECK_OF_TASK = {"1.1": "affine-forward", "1.3": "relu-forward", "1.4": "relu-backward",
                 "1.8": "fc-net-loss-gradients", "1.12": "adam", "2.2": "bn-backward",
                 "2.3": "bn-alt-matches", "4.1": "conv-forward-naive",
                 "4.2": "conv-backward-naive", "4.3": "max-pool-forward-naive",
                 "4.4": "max-pool-backward-naive"}
NOTEBOOK_OF = {"1": "FullyConnectedNets", "2": "BatchNormalization", "4": "ConvolutionalNetworks"}
ONLY = {f"{NOTEBOOK_OF[task.split('.')[0]]}/{name}" for task, name in CHECK_OF_TASK.items()}
ISSUE_BUGS = ["relu-backward-at-zero", "net-loss-without-reg", "conv-backward-crop-pad"]
LIMITS = Limits(cell_timeout=60, wall=300, memory_mb=2048)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("hidden-grade")
    subs = [copy_solution(base, "correct"),
            build_all_bugs_in_one(base, "issue-bugs", ISSUE_BUGS),
            *(build_cheat(base, name) for name in CHEATS)]
    out = base / "grades"
    results = grade.grade_batch(subs, out, jobs=2, limits=LIMITS, only_checks=ONLY,
                                notebooks=sorted(NOTEBOOK_OF.values()))
    return {"out": out, "results": {r.submission: r for r in results}}


def _checks(result: rp.GradeResult) -> dict[str, rp.CheckResult]:
    return {c.name: c for c in result.checks}


def test_the_correct_solution_passes_both_verdicts_everywhere(batch: dict) -> None:
    result = batch["results"]["correct"]
    assert result.total == result.max > 0
    assert all(c.hidden is not None and c.hidden.passed for c in result.checks)


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_a_cheat_earns_nothing_for_the_tasks_it_faked(batch: dict, name: str) -> None:
    result = batch["results"][name]
    checks, tasks = _checks(result), {t.task: t for t in result.tasks}
    for task in CHEATS[name].tasks:
        check = checks[CHECK_OF_TASK[task]]
        assert tasks[task].points == 0 < tasks[task].max_points, (task, check)
        assert check.hidden is not None and not check.hidden.passed
        if check.notebook_verdict.passed:  # what the notebook alone would have given
            assert check.reason_text == "failed: hidden check"
            assert check.first_line.startswith(f"task {task} ")


def test_the_issues_three_bugs_lose_their_own_checks_and_no_other(batch: dict) -> None:
    result = batch["results"]["issue-bugs"]
    assert {c.name for c in result.checks if not c.passed} == {
        "relu-backward", "fc-net-loss-gradients", "conv-backward-naive"}


def test_both_verdicts_side_by_side_in_the_json_and_the_count_in_the_csv(batch: dict) -> None:
    out: Path = batch["out"]
    saved = json.loads((out / "patches-check-helpers.json").read_text())
    adam = next(c for c in saved["checks"] if c["name"] == "adam")
    assert (adam["notebook_status"], adam["hidden_status"], adam["task"]) == (
        "passed", "failed", "1.12")
    assert adam["hidden_feedback"][0].startswith("task 1.12 (adam), ")
    task = next(t for t in saved["tasks"] if t["task"] == "1.12")
    assert (task["points"], task["status"], task["checks"]) == (0, "failed", ["adam"])
    assert adam["first_failing_line"] == adam["hidden_feedback"][0]
    rows = {row["submission"]: row for row in csv.DictReader(
        (out / "grades.csv").read_text().splitlines())}
    # One check cell per task is graded here, so a task the notebook passes entirely but
    # the hidden checks fail is one whose cell nbval passed and whose hidden verdict failed.
    for name, result in batch["results"].items():
        assert len({c.task for c in result.checks}) == len(result.checks)
        fooled_the_notebook = [c for c in result.checks if c.notebook_verdict.passed
                               and c.hidden is not None and not c.hidden.passed]
        assert int(rows[name]["hidden_check_failures"]) == len(fooled_the_notebook), name
    assert int(rows["patches-check-helpers"]["hidden_check_failures"]) >= 3
    assert int(rows["correct"]["hidden_check_failures"]) == 0
    reread = rp.load_result(out, "patches-check-helpers")
    assert reread is not None and reread.total == batch["results"]["patches-check-helpers"].total


def test_the_student_reads_what_failed_and_the_instructor_one_line(batch: dict) -> None:
    feedback = (batch["out"] / "reads-caller-frame.md").read_text()
    row = next(line for line in feedback.splitlines() if "`affine-forward`" in line)
    assert "failed: hidden check" in row and "task 1.1 (affine_forward)" in row
    assert "what the hidden checks found (their inputs stay hidden)" in feedback
    line = rp.hidden_summary(batch["results"].values())
    assert line is not None
    assert "passed every check cell in the notebook but failed their hidden checks" in line
    assert rp.hidden_summary([batch["results"]["correct"]]) is None
