"""The submission zoo: ``kit grade`` on submissions built from the solution tree.

Every submission is a copy of the solution's ``course/`` (and notebooks) with one change
injected into its source text, so the zoo follows the solution as it evolves (an
injection whose target text is gone fails loudly instead of testing nothing). The batch
runs once (``--jobs 2``) over a subset of the check cells (``ZOO_CHECKS``: cheap ones, plus
the cells that exercise each injected bug) and each test reads its submission's result.

Instructor-only (tests/kit/ is not released): it holds a whole-file reimplementation of
the layer tasks, the kind of file a student hands in.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hidden_zoo import copy_solution

from course.rubric import task_of_check
from course.tasks import NOTEBOOKS
from kit import grade
from kit import notebooks as nbs
from kit.nbval_runner import Limits
from kit.reports import to_json

ROOT = Path(__file__).resolve().parents[2]

# Checks the zoo grades: one per area, and every check an injected bug must fail.
ZOO_CHECKS = {
    "affine-forward",
    "relu-forward",
    "softmax-loss",
    "svm-loss",
    "sgd-momentum",
    "adam",
    "overfit-small-data",
}
ZOO_LIMITS = Limits(cell_timeout=20, wall=300, memory_mb=2048)

# Subtle bugs in code that later notebooks check: (notebook, file, task, old, new), the
# replacement made inside that task's solution region. A case runs when its notebook
# exists; it must fail at least one check of that notebook and nothing anywhere else.
SUBTLE_BUGS = {
    "batchnorm-test-sqrt-var-plus-eps": (
        "BatchNormalization", "course/layers.py", "2.1",
        "np.sqrt(running_var + eps)", "(np.sqrt(running_var) + eps)"),
    "dropout-without-1-over-p": (
        "Dropout", "course/layers.py", "3.1",
        "((rng.random(x.shape) < p) / p)", "(rng.random(x.shape) < p)"),
    "conv-ignores-stride": (
        "ConvolutionalNetworks", "course/layers.py", "4.1", "* stride", "* 1"),
}
LATER_NOTEBOOKS = sorted({bug[0] for bug in SUBTLE_BUGS.values()})
ZOO_NOTEBOOKS = ["FullyConnectedNets", *LATER_NOTEBOOKS]


# Checks that need a training cell the zoo skips (training logs are skipped for speed).
NEEDS_TRAINING = {"ConvolutionalNetworks/cnn-overfit", "ConvolutionalNetworks/cnn-train-target"}


def _later_checks() -> set[str]:
    """Every check of the later notebooks present (``Notebook/name``)."""
    refs = grade.reference_notebooks(ROOT, LATER_NOTEBOOKS)
    found = {f"{name}/{check}" for name, nb in refs.items()
             for check in nbs.check_cells(nb).values()}
    return found - NEEDS_TRAINING


def _notebooks_for(zoo: dict[str, Path]) -> dict[str, list[str]]:
    """Which notebooks each submission is graded on: all for the correct one, the bug's own
    notebook (and FullyConnectedNets) for a subtle bug, FullyConnectedNets for the rest."""
    plan = {}
    for name, path in zoo.items():
        if name == "correct":
            continue
        extra = [SUBTLE_BUGS[name][0]] if name in SUBTLE_BUGS else []
        if name == "overwrites-files" and "Dropout" in LATER_NOTEBOOKS:
            extra = ["Dropout"]  # graded after the notebooks were wiped at import
        plan[grade.submission_name(path)] = ["FullyConnectedNets", *extra]
    return plan

pytestmark = [pytest.mark.slow, pytest.mark.alone]  # alone: grades with --jobs 2+


def inject(sub: Path, rel: str, old: str, new: str) -> None:
    """Replace ``old`` (which must occur exactly once) by ``new`` in the submission's file."""
    path = sub / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{rel}: injection target found {text.count(old)} times"
    path.write_text(text.replace(old, new))


def inject_in_region(sub: Path, rel: str, task_id: str, old: str, new: str) -> None:
    """Replace every ``old`` inside the solution region of ``task_id`` (at least one)."""
    path = sub / rel
    text = path.read_text()
    begin = text.index(f"# BEGIN SOLUTION {task_id}")
    end = text.index("# END SOLUTION", begin)
    region = text[begin:end]
    assert old in region, f"{rel}: {old!r} not in the region of task {task_id}"
    path.write_text(text[:begin] + region.replace(old, new) + text[end:])


def correct(base: Path, name: str) -> Path:
    """A submission holding the solution's course/ and notebooks."""
    return copy_solution(base, name, ROOT)


RELU_SOLUTION = "    out = np.maximum(x, 0)\n"
RELU_BUG = "    out = np.maximum(x, 0) * 1.5\n"  # wrong for positive entries

ADAM_RIGHT = (
    "    t = t + 1\n"
    "    m = beta1 * m + (1 - beta1) * dw\n"
    "    v = beta2 * v + (1 - beta2) * dw**2\n"
    "    m_hat = m / (1 - beta1**t)\n"
    "    v_hat = v / (1 - beta2**t)\n"
    '    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])\n'
)
ADAM_T_AFTER_USE = (
    "    m = beta1 * m + (1 - beta1) * dw\n"
    "    v = beta2 * v + (1 - beta2) * dw**2\n"
    "    m_hat = m / (1 - beta1**t)\n"
    "    v_hat = v / (1 - beta2**t)\n"
    '    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])\n'
    "    t = t + 1\n"
)

FORCE_PASS_CONFTEST = textwrap.dedent("""\
    import pytest

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        outcome.get_result().outcome = "passed"
""")

# Written at import: wipe the sandbox's notebooks. Written in relu_forward (by then the
# grader's results file exists): forge a passing record for every cell.
OVERWRITER = textwrap.dedent("""\

    import glob as _glob
    import json as _json
    import pathlib as _pathlib
    import tempfile as _tempfile

    for _nb in (_pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"):
        _nb.write_text(_json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 5}))


    def _forge_results():
        pattern = _tempfile.gettempdir() + "/kit-grade-run-*/kit-grade-control-*/results.jsonl"
        for path in _glob.glob(pattern):
            with open(path, "w") as handle:
                for cell in range(200):
                    record = _json.dumps({"cell": cell, "outcome": "passed", "when": "call",
                                          "message": "", "expected": "", "actual": ""})
                    handle.write(_json.dumps({"record": record, "mac": "0" * 64}) + "\\n")
""")

# A whole-file replacement in the style of CS231n-era submissions: no input validation,
# none of the kit's given helpers, `from builtins import range`, loops, and layers that
# write into their inputs.
WHOLE_FILE_LAYERS = textwrap.dedent("""\
    from builtins import range
    import numpy as np


    def affine_forward(x, w, b):
        N = x.shape[0]
        flat = x.reshape(N, -1)
        out = np.zeros((N, w.shape[1]))
        for i in range(N):
            out[i] = flat[i].dot(w) + b
        cache = (x, w, b)
        return out, cache


    def affine_backward(dout, cache):
        x, w, b = cache
        N = x.shape[0]
        dx = dout.dot(w.T).reshape(x.shape)
        dw = x.reshape(N, -1).T.dot(dout)
        db = np.sum(dout, axis=0)
        return dx, dw, db


    def relu_forward(x):
        cache = x.copy()
        x[x < 0] = 0  # in place: the caller's array changes
        return x, cache


    def relu_backward(dout, cache):
        dx = dout.copy()
        dx[cache <= 0] = 0
        return dx


    def softmax_loss(x, y):
        shifted = x - np.max(x, axis=1, keepdims=True)
        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        N = x.shape[0]
        loss = -np.sum(log_probs[np.arange(N), y]) / N
        dx = np.exp(log_probs)
        dx[np.arange(N), y] -= 1
        dx /= N
        return loss, dx


    def svm_loss(x, y):
        N = x.shape[0]
        correct = x[np.arange(N), y][:, None]
        margins = np.maximum(0, x - correct + 1.0)
        margins[np.arange(N), y] = 0
        loss = np.sum(margins) / N
        counts = (margins > 0).astype(float)
        counts[np.arange(N), y] = -np.sum(counts, axis=1)
        dx = counts / N
        return loss, dx
""")


def build_zoo(base: Path) -> dict[str, Path]:
    """Every zoo submission, by name."""
    zoo: dict[str, Path] = {}

    zoo["correct"] = correct(base, "correct")

    sub = zoo["adam-t-after-use"] = correct(base, "adam-t-after-use")
    inject(sub, "course/optim.py", ADAM_RIGHT, ADAM_T_AFTER_USE)

    sub = zoo["infinite-loop"] = correct(base, "infinite-loop")
    inject(sub, "course/layers.py", "def svm_loss(x: np.ndarray, y: np.ndarray)"
           " -> tuple[float, np.ndarray]:\n",
           "def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:\n"
           "    while True:\n        pass\n")

    sub = zoo["memory-hog"] = correct(base, "memory-hog")
    inject(sub, "course/optim.py", "def sgd_momentum(\n",
           "def _hog():\n    return np.ones((40000, 40000))  # 12.8 GB\n\n\n"
           "def sgd_momentum(\n")
    inject(sub, "course/optim.py", '    config.setdefault("momentum", 0.9)\n',
           '    config.setdefault("momentum", 0.9)\n    _hog()\n')

    sub = zoo["exit-at-import"] = correct(base, "exit-at-import")
    with (sub / "course/layers.py").open("a") as handle:
        handle.write("\nimport os\n\nos._exit(0)\n")

    sub = zoo["syntax-error"] = correct(base, "syntax-error")
    text = (sub / "course/optim.py").read_text()
    (sub / "course/optim.py").write_text(text.replace("def adagrad(", "def adagrad(((", 1))

    sub = zoo["missing-function"] = correct(base, "missing-function")
    text = (sub / "course/layers.py").read_text()
    (sub / "course/layers.py").write_text(text.replace("def relu_forward(", "def relu_fwd(", 1))

    sub = zoo["forces-passes"] = correct(base, "forces-passes")
    inject(sub, "course/layers.py", RELU_SOLUTION, RELU_BUG)
    for folder in (sub, sub / "course", sub / "notebooks"):
        (folder / "conftest.py").write_text(FORCE_PASS_CONFTEST)
    (sub / "pytest.ini").write_text("[pytest]\naddopts = -p no:nbval\n")
    (sub / "course" / "sitecustomize.py").write_text("import os\nos._exit(3)\n")

    sub = zoo["overwrites-files"] = correct(base, "overwrites-files")
    inject(sub, "course/layers.py", RELU_SOLUTION, RELU_BUG + "    _forge_results()\n")
    with (sub / "course/layers.py").open("a") as handle:
        handle.write(OVERWRITER)

    sub = zoo["warns-on-stderr"] = correct(base, "warns-on-stderr")
    inject(sub, "course/layers.py", RELU_SOLUTION,
           RELU_SOLUTION + "    import sys, warnings\n"
           '    warnings.warn("relu_forward: a warning from correct code")\n'
           '    print("debug: relu_forward ran", file=sys.stderr)\n')

    for name, (notebook, rel, task_id, old, new) in SUBTLE_BUGS.items():
        if notebook in LATER_NOTEBOOKS:
            sub = zoo[name] = correct(base, name)
            inject_in_region(sub, rel, task_id, old, new)

    # Only layers.py, replaced whole, as a zip with a top-level folder.
    folder = base / "whole-file-src" / "student1"
    (folder / "course").mkdir(parents=True)
    (folder / "course" / "layers.py").write_text(WHOLE_FILE_LAYERS)
    zoo["whole-file"] = base / "whole-file.zip"
    with zipfile.ZipFile(zoo["whole-file"], "w") as archive:
        archive.write(folder / "course" / "layers.py", "student1/course/layers.py")
    return zoo


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("zoo")
    zoo = build_zoo(base)
    out = base / "grades"
    results = grade.grade_batch(list(zoo.values()), out, jobs=2, limits=ZOO_LIMITS,
                                only_checks=ZOO_CHECKS | _later_checks(),
                                notebooks=ZOO_NOTEBOOKS, notebooks_for=_notebooks_for(zoo))
    by_name = {r.submission: to_json(r) for r in results}
    return {"zoo": zoo, "out": out, "results": by_name}


def _checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The FullyConnectedNets checks by name, the others by ``Notebook/name``."""
    return {_key(c): c for c in result["checks"]}


def _key(check: dict[str, Any]) -> str:
    nb = check["notebook"]
    return check["name"] if nb == "FullyConnectedNets" else f"{nb}/{check['name']}"


def _only_failures(result: dict[str, Any]) -> set[str]:
    return {_key(c) for c in result["checks"] if c["status"] != "passed"}


def _fc_failures(result: dict[str, Any]) -> set[str]:
    """The failing FullyConnectedNets checks (later notebooks may use the same code)."""
    return {name for name in _only_failures(result) if "/" not in name}


def test_correct_solution_gets_full_marks(zoo_run):
    result = zoo_run["results"]["correct"]
    assert set(_checks(result)) == ZOO_CHECKS | _later_checks()
    assert result["total"] == result["max"] > 0, _only_failures(result)
    assert result["status"] == "complete"


def test_adam_incrementing_t_after_use_fails_only_adam(zoo_run):
    result = zoo_run["results"]["adam-t-after-use"]
    assert _fc_failures(result) == {"adam"}
    adam = _checks(result)["adam"]
    assert adam["reason"] == "wrong output"
    assert "check FAILED: adam first step" in adam["actual"]
    assert "check passed: adam first step" in adam["expected"]


@pytest.mark.parametrize("bug", sorted(SUBTLE_BUGS))
def test_subtle_bug_fails_only_checks_of_its_notebook(zoo_run, bug):
    notebook = SUBTLE_BUGS[bug][0]
    failures = _only_failures(zoo_run["results"][bug])
    assert failures, f"{bug}: no check of {notebook} caught it"
    assert all(f.startswith(f"{notebook}/") for f in failures), failures
    for name in failures:  # a check nbval passes may fail its task's hidden checks
        reason = _checks(zoo_run["results"][bug])[name]["reason"]
        assert reason == "wrong output" or reason.startswith(("error", "failed: hidden check"))


def test_infinite_loop_times_out_that_check_only(zoo_run):
    result = zoo_run["results"]["infinite-loop"]
    assert _fc_failures(result) == {"svm-loss"}
    assert _checks(result)["svm-loss"]["reason"].startswith("timeout")
    assert result["status"] == "timeout"


def test_memory_hog_hits_the_memory_limit(zoo_run):
    result = zoo_run["results"]["memory-hog"]
    assert _fc_failures(result) == {"sgd-momentum"}
    assert _checks(result)["sgd-momentum"]["reason"].startswith("memory")
    assert result["status"] == "memory"


def test_exit_at_import_is_a_dead_kernel_and_zero(zoo_run):
    result = zoo_run["results"]["exit-at-import"]
    assert result["total"] == 0
    # The kernel dies in the cell that imports the package: the reruns without it
    # (kit.nbval_runner) leave the checks to fail on their own, and a note says why.
    assert all(c["status"] == "failed" and c["reason"].startswith(
        ("kernel died", "error", "not run: ")) for c in result["checks"]), result["checks"]
    assert any("the kernel died in" in note for note in result["notes"]), result["notes"]
    assert result["status"] == "kernel died"


def test_syntax_error_zeroes_that_files_tasks_and_says_where(zoo_run):
    result = zoo_run["results"]["syntax-error"]
    line = next(n for n, text in enumerate(
        (zoo_run["zoo"]["syntax-error"] / "course/optim.py").read_text().splitlines(), 1)
        if "def adagrad(((" in text)
    assert any(n.startswith(f"syntax error at course/optim.py:{line}") for n in result["notes"])
    assert {"adam", "sgd-momentum"} <= _fc_failures(result)
    assert "syntax error at course/optim.py" in _checks(result)["adam"]["reason"]
    assert _checks(result)["affine-forward"]["status"] == "passed"
    assert result["status"] == "syntax error"


def test_missing_function_fails_its_check_and_nothing_else(zoo_run):
    result = zoo_run["results"]["missing-function"]
    # The overfitting check trains a net whose ReLU layers call relu_forward.
    assert _fc_failures(result) == {"relu-forward", "overfit-small-data"}
    assert "relu_forward is not defined" in _checks(result)["relu-forward"]["reason"]


def test_conftest_and_pytest_ini_in_the_submission_are_ignored(zoo_run):
    result = zoo_run["results"]["forces-passes"]
    assert _fc_failures(result) in ({"relu-forward", "overfit-small-data"}, {"relu-forward"})
    assert _checks(result)["relu-forward"]["reason"] == "wrong output"


def test_overwriting_notebooks_and_results_does_not_change_the_verdict(zoo_run):
    result = zoo_run["results"]["overwrites-files"]
    failures = _fc_failures(result)
    assert "relu-forward" in failures
    assert failures <= {"relu-forward", "overfit-small-data"}
    assert _checks(result)["affine-forward"]["status"] == "passed"
    # The next notebook runs from the sandbox as built, not as the code left it.
    # (Its ReLU bug fails the net-level dropout check; the layer checks pass.)
    later = {c["name"]: c for c in result["checks"] if c["notebook"] == "Dropout"}
    if "Dropout" in LATER_NOTEBOOKS:
        assert later, "the Dropout notebook was not graded"
        for name in ("dropout-forward-stats", "dropout-forward-seed", "dropout-backward"):
            assert later[name]["status"] == "passed", later[name]


def test_warnings_on_stderr_are_no_failure(zoo_run):
    result = zoo_run["results"]["warns-on-stderr"]
    assert result["total"] == result["max"], _only_failures(result)


def test_whole_file_replacement_without_validation_gets_full_marks_where_correct(zoo_run):
    result = zoo_run["results"]["whole-file"]
    # Only layers.py was handed in: every layer check passes, and the tasks of the files
    # (and notebook) not handed in score zero, saying so.
    assert _fc_failures(result) == {"sgd-momentum", "adam", "overfit-small-data"}
    checks = _checks(result)
    assert "course/optim.py is not in the submission" in checks["adam"]["reason"]
    overfit_task = task_of_check("FullyConnectedNets", "overfit-small-data")
    assert f"task {overfit_task}" in checks["overfit-small-data"]["reason"]


def test_reports_are_written_for_every_submission(zoo_run):
    out: Path = zoo_run["out"]
    rows = (out / "grades.csv").read_text().splitlines()
    in_course_order = [name for name in NOTEBOOKS if name in ZOO_NOTEBOOKS]
    assert rows[0] == ("submission,total,max,status," + ",".join(in_course_order)
                       + ",isolation,hidden_check_failures,options")
    assert len(rows) == 1 + len(zoo_run["zoo"])
    # Each row says the options it was graded with, as kit grade's flags.
    assert all(row.rsplit(",", 1)[1].startswith("--timeout 20 --wall 300 --memory 2048")
               for row in rows[1:]), rows
    for name, result in zoo_run["results"].items():
        saved = json.loads((out / f"{name}.json").read_text())
        assert saved["total"] == result["total"]
        for check in saved["checks"]:
            assert {"name", "notebook", "task", "status"} <= set(check)
        assert saved["total"] == sum(task["points"] for task in saved["tasks"])
        feedback = (out / f"{name}.md").read_text()
        assert f"**Score: {result['total']} / {result['max']}**" in feedback
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files


def test_rerun_skips_graded_submissions_and_resumes_a_killed_batch(zoo_run):
    out: Path = zoo_run["out"]
    zoo = zoo_run["zoo"]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    # A killed batch: one submission's report never got written.
    (out / "adam-t-after-use.json").unlink()
    again = grade.grade_batch(list(zoo.values()), out, jobs=1, limits=ZOO_LIMITS,
                              only_checks=ZOO_CHECKS | _later_checks(),
                              notebooks=ZOO_NOTEBOOKS, notebooks_for=_notebooks_for(zoo))
    by_name = {r.submission: to_json(r) for r in again}
    assert by_name["adam-t-after-use"]["total"] == zoo_run["results"]["adam-t-after-use"]["total"]
    for path in out.glob("*.json"):
        if path.name != "adam-t-after-use.json":
            assert path.stat().st_mtime_ns == stamps[path.name], f"{path.name} was regraded"
