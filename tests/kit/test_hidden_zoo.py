"""The hidden checks on whole submissions: cheats, subtle bugs, and code that misbehaves.

Each submission of ``hidden_zoo`` (built from the solution tree at test time) and a few
misbehaving ones below are merged into a sandbox as ``kit grade`` does, and every hidden
check is run on it through the worker (one secret seed for the module, printed in every
failure so that a failure can be replayed with ``KIT_HIDDEN_SEED``):

* the correct solution passes every task;
* each cheat (patched check helpers, a read of the caller's frame, answers looked up
  from the notebooks' public inputs, an ndarray subclass, an object with a custom
  ``__eq__``, an object-dtype array) fails the tasks it faked, and nothing but those and
  the tasks whose code calls them;
* each subtle bug fails its own tasks (and at most the tasks that call them);
* a hang, an ignored alarm, an exit, a memory hog, a disk filler and an exit at import
  cost their own cases only, and the batch always ends;
* the feedback never shows a hidden input, and the grader never imports the submission.

Instructor-only (tests/kit/ is not released). Slow: about 30 worker runs.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hidden_zoo import (
    CHEATS,
    SUBTLE_BUGS,
    bug_tasks,
    build_all_bugs_in_one,
    build_bug,
    build_cheat,
    copy_solution,
    region_body,
    replace_region,
)

from course.own_work import given_calls
from course.tasks import TASKS, TASKS_BY_ID, prerequisites
from kit import sandbox
from kit.hidden import HiddenLimits, HiddenReport, Prepared, cases, prepare, run_prepared

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("KIT_HIDDEN_SEED") or secrets.randbits(63))
DISK_MB = 16  # a low disk cap: the disk filler below is stopped within a second
LIMITS = HiddenLimits(case_seconds=2.0, total_seconds=120.0, startup_seconds=20.0,
                      disk_mb=DISK_MB)
ALL_TASKS = set(cases.GENERATORS)
ISSUE_BUGS = ["relu-backward-at-zero", "net-loss-without-reg", "conv-backward-crop-pad"]

# Misbehaving code, put in place of one region: (task, file, body).
MISBEHAVING = {
    "hangs": ("1.6", "course/layers.py", "while True:\n    pass\n"),
    "ignores-the-alarm": ("1.13", "course/optim.py",
                          "import time\n\nwhile True:\n    try:\n        time.sleep(0.05)\n"
                          "    except BaseException:\n        pass\n"),
    "exits": ("1.10", "course/optim.py", "import os\n\nos._exit(0)\n"),
    "memory-hog": ("1.11", "course/optim.py",
                   "cache = np.ones((40000, 40000))  # 12.8 GB\nnext_w = w\n"),
}
# Put before a task's own (correct) code: fills its working folder (the worker's results
# folder, on the grader's disk) with 1 MB files. It stops by itself at 6 times the cap
# (so a broken cap costs the machine 96 MB, not its disk); without a cap the task passes.
FILLS_THE_DISK = ("1.12", "course/optim.py", f"""
import os as _os
for _index in range({6 * DISK_MB}):
    if len([_n for _n in _os.listdir(".") if _n.startswith("fill-")]) >= {6 * DISK_MB}:
        break
    with open(f"fill-{{_os.getpid()}}-{{_index}}", "wb") as _handle:
        _handle.write(b"x" * 2**20)
""")


def why(message: str) -> str:
    return f"{message} (replay with KIT_HIDDEN_SEED={SEED})"


def dependents(tasks: set[str]) -> set[str]:
    """The tasks whose code calls one of ``tasks`` (directly or further down)."""
    return {task.id for task in TASKS if prerequisites(task.id) & tasks}


def grade(sub: Path, prepared: Prepared) -> HiddenReport:
    box = sandbox.build(sub, {})
    try:
        return run_prepared(box.root, prepared, LIMITS)
    finally:
        box.cleanup()


def build_misbehaving(base: Path) -> dict[str, Path]:
    found = {}
    for name, (task, rel, body) in MISBEHAVING.items():
        sub = found[name] = copy_solution(base, name)
        replace_region(sub / rel, task, body)
    task, rel, fill = FILLS_THE_DISK
    sub = found["fills-the-disk"] = copy_solution(base, "fills-the-disk")
    replace_region(sub / rel, task, fill + textwrap.dedent(region_body(sub / rel, task)))
    sub = found["exits-at-import"] = copy_solution(base, "exits-at-import")
    with (sub / "course/layers.py").open("a") as handle:
        handle.write("\nimport os\n\nos._exit(0)\n")
    return found


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    return prepare(SEED)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory, prepared: Prepared) -> dict[str, HiddenReport]:
    base = tmp_path_factory.mktemp("hidden-zoo")
    subs = {"correct": copy_solution(base, "correct")}
    subs.update({name: build_cheat(base, name) for name in CHEATS})
    subs.update({name: build_bug(base, name) for name in SUBTLE_BUGS})
    subs["issue-bugs"] = build_all_bugs_in_one(base, "issue-bugs", ISSUE_BUGS)
    subs.update(build_misbehaving(base))
    subs["norm-layers-unwritten"] = build_with_stubs(base, "norm-layers-unwritten",
                                                     NORM_LAYER_TASKS)
    return {name: grade(path, prepared) for name, path in subs.items()}


# The normalisation layers of notebook 2, whose stubs must not cost notebook 1's network.
NORM_LAYER_TASKS = ("2.1", "2.2", "2.4", "2.5")


def build_with_stubs(base: Path, name: str, tasks: tuple[str, ...]) -> Path:
    """The solution with ``tasks`` put back to stubs, as a student hands in notebook 1
    before notebook 2 is due."""
    sub = copy_solution(base, name)
    for task_id in tasks:
        task = TASKS_BY_ID[task_id]
        replace_region(sub / task.path, task_id, f'raise NotImplementedError("task {task_id} '
                                                 f'({task.function}): not written yet")')
    return sub


def failed(report: HiddenReport) -> set[str]:
    return set(report.failed)


def test_a_correct_submission_passes_every_hidden_check(zoo: dict[str, HiddenReport]) -> None:
    report = zoo["correct"]
    assert set(report.tasks) == ALL_TASKS
    assert failed(report) == set(), why(str({t: v.feedback for t, v in report.tasks.items()
                                             if not v.passed}))
    # One launch for every task, one for the naive conv and pool layers (4.1 to 4.4),
    # which run without the given fast layers, and one for each batchnorm backward pass
    # (2.2, 2.3), which runs with the other one refusing.
    assert report.launches == 4
    assert report.isolation in {"bwrap", "user", "none", "subprocess"}


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_a_cheat_gets_no_pass_for_what_it_faked(zoo: dict[str, HiddenReport], name: str) -> None:
    faked = set(CHEATS[name].tasks)
    found = failed(zoo[name])
    assert faked <= found, why(f"{name}: passed {sorted(faked - found)}")
    assert found <= faked | dependents(faked), why(f"{name}: also failed "
                                                   f"{sorted(found - faked - dependents(faked))}")


@pytest.mark.parametrize(("name", "says"), [
    ("returns-ndarray-subclass", "returned an ndarray subclass"),
    ("returns-custom-eq-object", "not a number or an array"),
    ("returns-object-array", "returned an array of dtype |O, not numbers"),
    ("calls-the-fast-layers", "calls the given course.fast_layers: conv_forward_fast (line"),
    ("hides-the-fast-layers", "course.fast_layers.conv_forward_fast is given code the naive "
                              "layers may not call"),
    ("skips-the-closed-form", "batchnorm_backward is another task's function, which this "
                              "task may not call"),
    ("skips-the-graph", "batchnorm_backward_alt is another task's function, which this "
                        "task may not call"),
])
def test_a_value_that_is_not_plain_data_is_named_in_the_feedback(
        zoo: dict[str, HiddenReport], name: str, says: str) -> None:
    task = CHEATS[name].tasks[0]
    assert any(says in line for line in zoo[name].tasks[task].feedback), \
        zoo[name].tasks[task].feedback


def test_the_hidden_calls_get_past_the_reading_and_fail_when_run(
        zoo: dict[str, HiddenReport], tmp_path: Path) -> None:
    # What makes this cheat worth having: course.own_work's reading finds none of its
    # four calls, so only running them with the refusing stand-in fails the tasks.
    sub = build_cheat(tmp_path, "hides-the-fast-layers")
    source = (sub / "course" / "layers.py").read_text()
    for task in CHEATS["hides-the-fast-layers"].tasks:
        assert given_calls(source, TASKS_BY_ID[task].function) == [], task
        feedback = zoo["hides-the-fast-layers"].tasks[task].feedback
        refusals = [line for line in feedback
                    if "is given code the naive layers may not call" in line]
        # Every case met the same refusal: one line says it, naming the cases.
        assert len(refusals) == 1 and re.search(rf"task {task} \(\w+\), \d+ cases \(",
                                                refusals[0]), (task, feedback)


@pytest.mark.parametrize("name", sorted(SUBTLE_BUGS))
def test_a_subtle_bug_fails_its_own_tasks_and_no_unrelated_one(
        zoo: dict[str, HiddenReport], name: str) -> None:
    own = bug_tasks(name)
    found = failed(zoo[name])
    assert own <= found, why(f"{name}: not caught")
    assert found <= own | dependents(own), why(f"{name}: also failed {sorted(found - own)}")


def test_the_issues_three_bugs_fail_exactly_their_three_tasks(
        zoo: dict[str, HiddenReport]) -> None:
    assert failed(zoo["issue-bugs"]) == {"1.4", "1.8", "4.2"}, why("")
    feedback = zoo["issue-bugs"].tasks["4.2"].feedback
    assert any("pad = 0" in line and "dx: shape" in line for line in feedback), feedback


def test_unwritten_normalisation_layers_cost_only_the_tasks_that_use_them(
        zoo: dict[str, HiddenReport]) -> None:
    # The network's loss (1.8) routes gamma, beta and the mode through whatever
    # normalisation layers are registered: judged with stand-ins, it keeps its points
    # while notebook 2's layers are stubs (as in the student's own tests).
    found = failed(zoo["norm-layers-unwritten"])
    assert "1.8" not in found, why(str(zoo["norm-layers-unwritten"].tasks["1.8"].feedback))
    assert set(NORM_LAYER_TASKS) <= found <= dependents(set(NORM_LAYER_TASKS)) | set(
        NORM_LAYER_TASKS), why(str(sorted(found)))


@pytest.mark.parametrize(("name", "says"), [
    ("hangs", "timeout"),
    ("ignores-the-alarm", "ignored its alarm"),
    ("exits", "ended with status 0"),
    ("memory-hog", "MemoryError"),
    ("fills-the-disk", f"disk: wrote more than {DISK_MB} MB"),
])
def test_misbehaving_code_costs_its_own_task_only(zoo: dict[str, HiddenReport], name: str,
                                                  says: str) -> None:
    task = {**MISBEHAVING, "fills-the-disk": FILLS_THE_DISK}[name][0]
    report = zoo[name]
    assert failed(report) == {task}, why(f"{name}: {report.failed}")
    assert says in report.tasks[task].feedback[0], report.tasks[task].feedback


def test_an_exit_at_import_fails_what_imports_it_and_the_run_still_ends(
        zoo: dict[str, HiddenReport]) -> None:
    report = zoo["exits-at-import"]
    optimizers = set(cases.RULES)  # course/optim.py does not import course/layers.py
    assert failed(report) == ALL_TASKS - optimizers
    assert report.launches <= len(ALL_TASKS) + 1


MEASURED = re.compile(r"(relative error|off by|mean) [-+0-9.e%]+")


def _input_numbers(case: cases.Case) -> set[str]:
    """How an input value could be spelled in a message, for the non-trivial values."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            for v in value.reshape(-1)[:50]:
                if abs(v) > 1e-3 and v != round(v):
                    found.update(text for text in (repr(float(v)), f"{v:.3g}", f"{v:.4g}")
                                 if "." in text and sum(c.isdigit() for c in text) >= 3)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(case.spec)
    return found


def test_feedback_names_task_case_and_property_never_an_input(
        zoo: dict[str, HiddenReport], prepared: Prepared) -> None:
    numbers: dict[str, set[str]] = {}
    for case in prepared.cases:
        numbers.setdefault(case.task, set()).update(_input_numbers(case))
    checked = 0
    for name, report in zoo.items():
        for task, verdict in report.tasks.items():
            for line in verdict.feedback:
                checked += 1
                assert line.startswith(f"task {task} "), line
                said = line.split(": ", 1)[-1]  # after "task ID (function), edge case: "
                own = MEASURED.sub("", said)  # what the judge measured is no input
                leaked = [n for n in numbers[task] if n in own]
                assert not leaked, why(f"{name}: {line!r} shows inputs {leaked}")
    assert checked > 20


def test_the_grader_never_imports_a_submission(zoo: dict[str, HiddenReport]) -> None:
    loaded = [getattr(module, "__file__", None) or "" for module in list(sys.modules.values())]
    assert not [f for f in loaded if "kit-grade-sandbox-" in f or "kit-hidden-" in f]
    import course.layers

    assert Path(course.layers.__file__).resolve().is_relative_to(ROOT)
