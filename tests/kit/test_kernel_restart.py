"""``kit grade`` when the student's code kills the notebook's kernel: a death costs only
the cell it happened in.

Three submissions, each the solution's ``course/`` with task 1.6 (``svm_loss``) broken,
are graded in one batch (``--jobs 3``) on a few FullyConnectedNets checks, one before
task 1.6 and three after it:

* ``exits-in-svm-loss`` ends the kernel's process (``os._exit(0)``);
* ``killed-by-the-memory-cap`` forks children that hold more memory together than the
  cap over the kernel's tree allows, and makes the kernel the process the cap kills
  (skipped where the cap is not a cgroup: rlimits cap each process alone);
* ``hangs-ignoring-interrupts`` loops with SIGINT ignored, so nbval's interrupt does not
  stop it and nbval shuts the kernel down.

Before kernel restarts (``kit.nbval_runner.run_notebook``) every later check read
``kernel died`` (or a bare ``skipped``) and the later tasks earned nothing; now the grader
reruns the notebook without the fatal cell and the later, correct tasks earn their points.

Instructor-only (tests/kit/ is not released). Slow: a grading batch.
"""

from __future__ import annotations

from typing import Any

import pytest
from hidden_zoo import copy_solution
from test_grade_zoo import inject

from kit import grade
from kit.nbval_runner import Limits
from kit.reports import to_json

pytestmark = [pytest.mark.slow, pytest.mark.alone]  # alone: grades with --jobs 2+

ONLY = {"affine-forward", "svm-loss", "fc-net-init", "sgd-momentum", "adam"}
LATER = {"fc-net-init", "sgd-momentum", "adam"}  # checks of tasks 1.7, 1.10, 1.12
LIMITS = Limits(cell_timeout=20, wall=300, memory_mb=2048)
REGION = "    # BEGIN SOLUTION 1.6\n"
# Four children hold 600 MB each, over the 2048 MB cap on the kernel's tree together. The
# kernel, forked from, then asks to be the one the cap kills (children inherit the
# setting, so it is written after the forks): its death, not a child's, is what happens.
OUTGROWS_THE_CAP = """\
    import os, time
    for _ in range(4):
        if os.fork() == 0:
            blocks = [bytearray(100 * 2**20) for _ in range(6)]
            for block in blocks:
                block[::4096] = b"x" * len(range(0, len(block), 4096))
            time.sleep(60)
            os._exit(0)
    with open("/proc/self/oom_score_adj", "w") as handle:
        handle.write("1000")
    time.sleep(60)
"""
BREAKS = {
    "exits-in-svm-loss": "    import os\n    os._exit(0)\n",
    "killed-by-the-memory-cap": OUTGROWS_THE_CAP,
    "hangs-ignoring-interrupts": ("    import signal\n"
                                  "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                  "    while True:\n        pass\n"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("kernel-restart")
    subs = []
    for name, code in BREAKS.items():
        sub = copy_solution(base, name)
        inject(sub, "course/layers.py", REGION, REGION + code)
        subs.append(sub)
    results = grade.grade_batch(subs, base / "grades", jobs=3, limits=LIMITS,
                                only_checks=ONLY, notebooks=["FullyConnectedNets"])
    return {r.submission: to_json(r) for r in results}


def _checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


def _points(result: dict[str, Any]) -> dict[str, int]:
    return {t["task"]: t["points"] for t in result["tasks"]}


def test_an_exit_in_task_1_6_costs_only_task_1_6(graded):
    result = graded["exits-in-svm-loss"]
    checks = _checks(result)
    points = _points(result)
    assert all(points[task] > 0 for task in ("1.1", "1.7", "1.10", "1.12")), {
        name: c["reason"] for name, c in checks.items()}
    assert points["1.6"] == 0 and result["total"] == result["max"] - 3
    assert {name for name, c in checks.items() if c["status"] != "passed"} == {"svm-loss"}
    assert checks["svm-loss"]["reason"] == (
        "kernel died (the student's code ended the Python process with exit status 0)")
    assert result["status"] == "kernel died"
    assert any("the kernel died in svm-loss (task 1.6)" in note and "1 restart" in note
               for note in result["notes"]), result["notes"]


def test_a_hang_that_ignores_the_interrupt_costs_only_its_cell(graded):
    result = graded["hangs-ignoring-interrupts"]
    checks = _checks(result)
    for name in sorted(LATER | {"affine-forward"}):  # not a reasonless "skipped"
        assert checks[name]["status"] == "passed", (name, checks[name]["reason"])
    assert checks["svm-loss"]["reason"].startswith("timeout")
    assert result["status"] == "timeout"


def test_a_kernel_the_memory_cap_kills_costs_only_its_cell(graded):
    result = graded["killed-by-the-memory-cap"]
    if "cgroup" not in result["isolation"]:
        pytest.skip(f"no memory cap over the kernel's tree here ({result['isolation']})")
    checks = _checks(result)
    assert checks["svm-loss"]["reason"] == (
        f"memory: the code's processes needed more than the {LIMITS.memory_mb} MB limit "
        "together")
    for name in sorted(LATER | {"affine-forward"}):
        assert checks[name]["status"] == "passed", (name, checks[name]["reason"])
    assert result["status"] == "memory"
    assert any("the kernel died in svm-loss (task 1.6)" in note for note in result["notes"]), (
        result["notes"])
