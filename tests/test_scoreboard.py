"""`--task` selection and the `--scoreboard` table, run in a real pytest subprocess.

Each test builds a small tree in a temporary folder: ``tests/`` with the real conftest.py
and a sample of task tests, and, for the notebook tasks, ``notebooks/`` with a notebook
whose saved outputs are written here.
"""

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from course.rubric import checks_of_task, task_points
from course.tasks import TASKS, TASKS_BY_ID, get_task

TESTS = Path(__file__).resolve().parent

SAMPLE = """
import pytest

from course.layers import relu_forward  # task 1.3: a stub in the student tree


@pytest.mark.task("1.1")
def test_written_and_right():
    assert 1 + 1 == 2

@pytest.mark.task("1.1")
def test_written_and_right_too():
    assert True

@pytest.mark.task("1.2")
def test_still_a_stub():
    raise NotImplementedError("task 1.2 (affine_backward): not written yet")

@pytest.mark.task("1.3")
def test_written_but_wrong():
    # Where the known value comes from: the report shows this line,
    # and this one.
    x = 2 + 2  # not this one
    assert x == 5

@pytest.mark.task("1.4")
def test_waits_for_its_forward_pass():
    raise NotImplementedError("task 1.3 (relu_forward): not written yet")

@pytest.mark.task("1.3")
def test_also_wrong():
    assert 2 + 2 == 5

@pytest.mark.task("1.6")
def test_fails_after_calling_a_failing_task():
    relu_forward([[1.0]])  # 1.3 fails here: this failure may be its fault
    assert False

@pytest.mark.task("1.7")
def test_fails_on_its_own():
    assert False, "wrong on its own"

@pytest.mark.task("1.7")
def test_fails_after_calling_a_failing_task_too():
    relu_forward([[1.0]])
    assert False

class TestBatchnorm:
    @pytest.mark.task("2.1")
    def test_wrong(self):

        # A method whose comment follows a blank line.
        assert False

@pytest.mark.task("2.2")
def test_batchnorm_backward_still_a_stub():
    raise NotImplementedError("task 2.2 (batchnorm_backward): not written yet")

def test_not_a_task():
    assert True
"""


def _pytest(tmp_path: Path, *args: str, ci: bool | None = None) -> subprocess.CompletedProcess:
    """pytest run in ``tmp_path/tests`` with the kit's conftest; ``ci`` True or False sets
    or unsets the CI variable (hypothesis and the conftest read it), None leaves it."""
    tests = tmp_path / "tests"
    tests.mkdir(exist_ok=True)
    shutil.copy(TESTS / "conftest.py", tests / "conftest.py")
    (tests / "test_sample.py").write_text(SAMPLE)
    env = dict(os.environ)
    if ci is not None:
        env.pop("CI", None)
        env.update({"CI": "true"} if ci else {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval",
         *args],
        cwd=tests,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _write_test_file(tmp_path: Path, name: str, text: str) -> None:
    """A file of the tree's tests/ folder, written before ``_pytest`` runs there."""
    (tmp_path / "tests").mkdir(exist_ok=True)
    (tmp_path / "tests" / name).write_text(text)


def _row(output: str, task_id: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if cells[0] == task_id:
            return cells
    raise AssertionError(f"no scoreboard row for {task_id}:\n{output}")


def _points(task_id: str) -> int:
    return task_points(get_task(task_id))


def test_scoreboard_reports_pass_todo_fail_and_untested(tmp_path):
    result = _pytest(tmp_path, "--scoreboard")
    out = result.stdout
    assert "TASK   | STATUS   | POINTS | DESCRIPTION" in out
    assert _row(out, "1.1")[1:3] == ["PASS", f"{_points('1.1')}/{_points('1.1')}"]
    assert _row(out, "1.2")[1:3] == ["TODO", f"0/{_points('1.2')}"]
    # 1.2 requires 1.1, which passes here: no "needs" note
    assert "needs" not in _row(out, "1.2")[3]
    assert _row(out, "1.3")[1:3] == ["FAIL", f"0/{_points('1.3')}"]
    assert _row(out, "1.5")[1:3] == ["NO TESTS", f"0/{_points('1.5')}"]
    # No notebook here: the notebook tasks have no saved output to be scored from.
    for task in NOTEBOOK_TASKS:
        assert _row(out, task.id)[1:3] == ["NOT RUN", f"0/{_points(task.id)}"]
    total = f"Total: {_points('1.1')} of 100 points; 1 of {len(TASKS)} tasks pass."
    assert total in out
    assert "make check TASK=<id>" in out  # the hint, since not everything passes
    assert result.returncode == 1  # failures still fail the run


def test_another_tasks_stub_or_failure_blocks_a_row_and_names_that_task(tmp_path):
    out = _pytest(tmp_path, "--scoreboard").stdout
    # 1.4's test stops at the stub of 1.3: not 1.4's fault, so not TODO nor FAIL.
    assert _row(out, "1.4")[1:3] == ["BLOCKED", f"0/{_points('1.4')}"]
    assert _row(out, "1.4")[3].endswith("(relu_backward); needs 1.3 first")
    # 1.6's only failure comes after calling relu_forward (task 1.3, failing here; a stub
    # in the student tree): it may be 1.3's, so 1.6 waits for it.
    assert _row(out, "1.6")[1] == "BLOCKED"
    assert _row(out, "1.6")[3].endswith("; needs 1.3 first")
    # 1.7 also fails a test that calls nothing else: its own failure, so FAIL, and the
    # row still says which of its tests wait for 1.3.
    assert _row(out, "1.7")[1] == "FAIL"
    assert _row(out, "1.7")[3].endswith("; some of its tests need 1.3 first")
    # A stub whose prerequisite does not pass: TODO, and which task to write first.
    assert _row(out, "2.2")[1] == "TODO"
    assert _row(out, "2.2")[3].endswith("; needs 2.1 first")
    assert "BLOCKED = " in out  # the legend explains the status


def _relu_forward_is_a_stub() -> bool:
    from course.layers import relu_forward

    try:
        relu_forward(np.zeros(1))
    except NotImplementedError:
        return True
    return False


@pytest.mark.parametrize(("task_id", "own", "other"), [
    # relu_forward, in course/layers.py: its module's test file, test_layers.py.
    ("1.3", "test_layers.py", "test_fast_sample.py"),
    # Layers whose hand-derived answers live in their notebook's test file, which a
    # comparison with the fast layers (or an instructor's reference, in tests/kit/) would
    # otherwise come before.
    ("4.3", "test_conv.py", "kit/test_conv_references.py"),
    ("2.5", "test_normalization.py", "test_fast_layers.py"),
    ("3.1", "test_dropout.py", "test_cs231n_compat.py"),
])
def test_one_task_shows_a_failure_of_its_own_module_first(tmp_path, task_id, own, other):
    # A failure in the task's own test file comes before one in a file collected earlier.
    (tmp_path / "tests" / "kit").mkdir(parents=True)
    (tmp_path / "tests" / other).write_text(
        f'import pytest\n\n@pytest.mark.task("{task_id}")\ndef test_compared():\n'
        '    assert "fast" == "naive"\n')
    (tmp_path / "tests" / own).write_text(
        f'import pytest\n\n@pytest.mark.task("{task_id}")\ndef test_judged_alone():\n'
        '    assert 2 + 2 == 5\n')
    out = _pytest(tmp_path, "--task", task_id, "--scoreboard", "--tb=short").stdout
    assert f"FAILED {own}::test_judged_alone" in out
    assert f"{other}::test_compared" in out.split(f"FAILED {own}")[1]


def test_a_blocked_task_shows_a_failure_of_its_own_module_first(tmp_path):
    # Both 1.6 tests call relu_forward (1.3, failing in the sample), then fail: the one
    # shown ("the first of them") is from the task's own file, test_layers.py.
    if _relu_forward_is_a_stub():
        pytest.skip("relu_forward is a stub here: the tests stop at it, nothing is shown")
    (tmp_path / "tests").mkdir()
    for name in ("test_fast_layers.py", "test_layers.py"):
        (tmp_path / "tests" / name).write_text(
            "import pytest\nfrom course.layers import relu_forward\n\n"
            '@pytest.mark.task("1.6")\ndef test_after_relu():\n'
            f"    relu_forward([[1.0]])\n    assert {name!r} == ''\n")
    out = _pytest(tmp_path, "--task", "1.6", "--task", "1.3", "--scoreboard",
                  "--tb=short").stdout
    assert _row(out, "1.3")[1] == "FAIL" and _row(out, "1.6")[1] == "BLOCKED"
    assert ("The first of them (its cause may be in either task):\n"
            "FAILED test_layers.py::test_after_relu") in out


def _load_conftest(monkeypatch):
    spec = importlib.util.spec_from_file_location("scoreboard_conftest", TESTS / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, conftest)
    spec.loader.exec_module(conftest)
    return conftest


def test_a_registry_object_among_the_arguments_is_named_not_dumped(monkeypatch):
    # A parametrized test's fixed set-up (a LayerCase of the layer registry) comes in
    # hypothesis' call beside the drawn input: it reads as its name, the input in full.
    conftest = _load_conftest(monkeypatch)
    text = ("Falsifying example: test_backward(\n"
            "    case=LayerCase(name='affine', kind='layer', forward=<function f>, "
            "forward_task='1.1'),\n"
            "    n=2,\n"
            ")\nE   AssertionError: wrong")
    assert conftest.describe_failure(text).splitlines()[0] == (
        "failing input: case = LayerCase('affine'), n = 2")


def test_every_file_of_task_tests_is_own_or_a_cross_check(monkeypatch):
    # The report puts a task's own test files first (conftest.own_test_files): a new file
    # of task tests must be one of them or a known cross-check, or its failures would
    # come after the fast layers'. conftest.py is loaded under a name of its own (its
    # dataclasses need it in sys.modules while they are made).
    spec = importlib.util.spec_from_file_location("scoreboard_conftest", TESTS / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, conftest)
    spec.loader.exec_module(conftest)
    unplaced = []
    for path in sorted(TESTS.glob("test_*.py")):
        if path.name in conftest.CROSS_CHECK_TEST_FILES:
            continue
        ids = set(re.findall(r'mark\.task\("([\d.]+)"\)', path.read_text(encoding="utf-8")))
        unplaced += [f"{path.name}: task {task_id}" for task_id in sorted(ids)
                     if task_id in TASKS_BY_ID
                     and path.name not in conftest.own_test_files(TASKS_BY_ID[task_id])]
    # test_scoreboard.py's own marks are inside samples written to temporary trees.
    assert [u for u in unplaced if not u.startswith("test_scoreboard.py")] == []
    assert conftest.own_test_files(TASKS_BY_ID["4.3"]) == {"test_layers.py", "test_conv.py"}


def test_one_task_shows_its_first_failure_or_what_stopped_it(tmp_path):
    out = _pytest(tmp_path, "--task", "1.3", "--scoreboard", "--tb=short").stdout
    # The comment that opens the test comes with its failure (--tb=short leaves it out).
    assert ("FAILED test_sample.py::test_written_but_wrong\n"
            "# Where the known value comes from: the report shows this line,\n"
            "# and this one.\ntest_sample.py:") in out
    assert "assert x == 5" in out
    assert "not this one" not in out
    plain = _pytest(tmp_path, "--task", "1.7", "--scoreboard", "--tb=short").stdout
    assert "FAILED test_sample.py::test_fails_on_its_own\ntest_sample.py:" in plain
    method = _pytest(tmp_path, "--task", "2.1", "--scoreboard", "--tb=short").stdout
    assert ("FAILED test_sample.py::TestBatchnorm::test_wrong\n"
            "# A method whose comment follows a blank line.\ntest_sample.py:") in method
    assert "1 more failing test(s) of task 1.3:\n  test_sample.py::test_also_wrong" in out
    assert "TASK=<id>" not in out  # the task was asked for already
    out = _pytest(tmp_path, "--task", "1.4", "--scoreboard", "--tb=short").stdout
    # 1.4 requires 1.3: its tests ran too, so the row knows 1.3 fails (its row is not shown).
    assert "1 of its tests stopped at the stub of 1.3 (relu_forward)" in out
    assert _row(out, "1.4")[1] == "BLOCKED"
    assert not any(line.startswith("1.3 ") for line in out.splitlines())
    out = _pytest(tmp_path, "--task", "1.6", "--scoreboard", "--tb=short").stdout
    if _relu_forward_is_a_stub():  # the student tree before task 1.3 is written
        assert "1 of its tests stopped at the stub of 1.3 (relu_forward)" in out
        return
    assert "failed after calling code of tasks that do not pass yet: 1.3" in out
    # 1.3 is written but fails: the failure is shown all the same (it may be 1.6's own).
    assert ("The first of them (its cause may be in either task):\n"
            "FAILED test_sample.py::test_fails_after_calling_a_failing_task") in out


def test_scoreboard_is_the_only_output(tmp_path):
    # No progress letters, no "N passed" line, no warnings summary (issue 10 item 4).
    result = _pytest(tmp_path, "--scoreboard")
    assert "FF" not in result.stdout and ".F" not in result.stdout
    assert not re.search(r"\d+ (passed|failed)", result.stdout)
    assert "warnings" not in result.stdout
    assert result.stdout.lstrip().startswith("TASK")


def test_no_hint_when_every_selected_task_passes(tmp_path):
    result = _pytest(tmp_path, "--task", "1.1", "--scoreboard")
    assert _row(result.stdout, "1.1")[1] == "PASS"
    assert "TASK=<id>" not in result.stdout
    assert result.returncode == 0


def test_task_option_runs_only_that_task(tmp_path):
    result = _pytest(tmp_path, "--task", "1.1", "-rN")
    assert "2 passed, 10 deselected" in result.stdout
    assert result.returncode == 0


def test_task_option_accepts_a_list(tmp_path):
    for value in ("1.1 1.3", "1.1,1.3"):
        result = _pytest(tmp_path, "--task", value, "--scoreboard")
        assert _row(result.stdout, "1.1")[1] == "PASS"
        assert _row(result.stdout, "1.3")[1] == "FAIL"
        assert "1.2 " not in result.stdout


def test_task_option_says_the_format(tmp_path):
    result = _pytest(tmp_path, "--task", "1.3-1.4")
    assert result.returncode != 0
    assert "'1.3-1.4' is not a task ID." in result.stderr
    assert 'give one, or several separated by spaces or commas ("1.3 1.4")' in result.stderr


# -- notebook tasks: scored from the outputs saved in the notebook ---------------------------

NOTEBOOK_TASKS = [t for t in TASKS if t.checked_by == "notebook"]
PASSED = "check passed: the net fits its 50 training examples\n"
FAILED = "check FAILED: the net fits its 50 training examples, best training accuracy 0.62\n"


def _check_cell(name: str, *outputs: dict, ran: bool = True) -> dict:
    return {"cell_type": "code", "id": name, "execution_count": 3 if ran else None,
            "metadata": {"tags": ["check"], "check": name}, "outputs": list(outputs),
            "source": ["check_true(...)"]}


def _stdout(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": [text]}


def _save_notebook(tmp_path: Path, cells_by_task: dict[str, list[dict]]) -> None:
    """The notebook of the notebook tasks, with the given check cells per task."""
    notebook = NOTEBOOK_TASKS[0].notebook
    assert all(t.notebook == notebook for t in NOTEBOOK_TASKS)
    cells = [cell for task in NOTEBOOK_TASKS for cell in cells_by_task[task.id]]
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / f"{notebook}.ipynb").write_text(json.dumps(
        {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def _all_passed() -> dict[str, list[dict]]:
    return {t.id: [_check_cell(key.split("/", 1)[1], _stdout(PASSED))
                   for key in checks_of_task(t.id)] for t in NOTEBOOK_TASKS}


def test_notebook_tasks_that_ran_and_passed_earn_their_points(tmp_path):
    _save_notebook(tmp_path, _all_passed())
    out = _pytest(tmp_path, "--scoreboard").stdout
    for task in NOTEBOOK_TASKS:
        assert _row(out, task.id)[1:3] == ["PASS", f"{_points(task.id)}/{_points(task.id)}"]
    earned = _points("1.1") + sum(_points(t.id) for t in NOTEBOOK_TASKS)
    assert f"Total: {earned} of 100 points; {1 + len(NOTEBOOK_TASKS)} of {len(TASKS)}" in out


def test_a_notebook_task_fails_on_a_failed_line_an_error_or_a_stray_print(tmp_path):
    first, second = NOTEBOOK_TASKS[:2]
    error = {"output_type": "error", "ename": "KeyError", "evalue": "5", "traceback": []}
    cells = _all_passed()
    cells[first.id][0] = _check_cell(cells[first.id][0]["id"], _stdout(PASSED + FAILED))
    cells[second.id][0] = _check_cell(cells[second.id][0]["id"], _stdout(PASSED), error)
    _save_notebook(tmp_path, cells)
    out = _pytest(tmp_path, "--scoreboard").stdout
    assert _row(out, first.id)[1:3] == ["FAIL", f"0/{_points(first.id)}"]
    assert _row(out, first.id)[3].endswith("; " + FAILED.strip())
    assert _row(out, second.id)[1] == "FAIL" and _row(out, second.id)[3].endswith("KeyError: 5")

    cells[first.id][0] = _check_cell(cells[first.id][0]["id"], _stdout(PASSED + "0.98\n"))
    (tmp_path / "notebooks" / f"{first.notebook}.ipynb").unlink()
    (tmp_path / "notebooks").rmdir()
    _save_notebook(tmp_path, cells)
    out = _pytest(tmp_path, "--task", first.id, "--scoreboard").stdout
    assert _row(out, first.id)[1] == "FAIL"
    assert "printed '0.98', which is not a check line" in out
    assert "remove extra prints" in out


def test_a_notebook_task_saved_before_the_code_changed_says_so(tmp_path):
    # Its outputs came from the code before the change (the grade runs the code as it is
    # now); files written with the notebook, as a clone writes them, are no change.
    first, second = NOTEBOOK_TASKS[:2]
    cells = _all_passed()
    cells[second.id][0] = _check_cell(cells[second.id][0]["id"], _stdout(FAILED))
    _save_notebook(tmp_path, cells)
    notebook = tmp_path / "notebooks" / f"{first.notebook}.ipynb"
    (tmp_path / "course").mkdir()
    for name in ("layers.py", "solver.py"):
        (tmp_path / "course" / name).write_text("# the student's code\n")
    saved = notebook.stat().st_mtime
    os.utime(tmp_path / "course" / "solver.py", (saved, saved + 1))  # with the notebook
    os.utime(tmp_path / "course" / "layers.py", (saved, saved))
    out = _pytest(tmp_path, "--scoreboard").stdout
    assert "saved before" not in out
    os.utime(tmp_path / "course" / "layers.py", (saved, saved + 60))  # edited after
    out = _pytest(tmp_path, "--scoreboard").stdout
    hint = ("(saved before course/layers.py changed: run its cells again and save to score "
            "the code as it is now)")
    assert _row(out, first.id)[1] == "PASS" and _row(out, first.id)[3].endswith(hint)
    assert _row(out, second.id)[1] == "FAIL" and _row(out, second.id)[3].endswith(hint)
    assert hint not in _row(out, "1.1")[3]  # tests run the code as it is: no hint


def test_a_notebook_task_not_run_or_still_a_stub_earns_nothing(tmp_path):
    first, second = NOTEBOOK_TASKS[:2]
    cells = _all_passed()
    cells[first.id][0] = _check_cell(cells[first.id][0]["id"], ran=False)
    stub = {"cell_type": "code", "id": "stub", "execution_count": None, "metadata": {},
            "outputs": [], "source": [f'raise NotImplementedError("task {second.id} (this cell)'
                                      ': not written yet")']}
    cells[second.id].insert(0, stub)
    _save_notebook(tmp_path, cells)
    result = _pytest(tmp_path, "--task", first.id, "--task", second.id, "--scoreboard")
    out = result.stdout
    assert _row(out, first.id)[1:3] == ["NOT RUN", f"0/{_points(first.id)}"]
    assert _row(out, first.id)[3].endswith(
        f"run its cells in notebooks/{first.notebook}.ipynb and save the notebook")
    key = checks_of_task(first.id)[0].split("/", 1)[1]
    assert f'the check cell "{key}" in notebooks/{first.notebook}.ipynb: not run' in out
    assert _row(out, second.id)[1:3] == ["TODO", f"0/{_points(second.id)}"]
    assert f"Total: 0 of {_points(first.id) + _points(second.id)} points" in out
    assert "NOT RUN = " in out
    assert result.returncode == 0  # asking for notebook tasks only is not pytest's 5


def test_an_unreadable_notebook_says_restore_it_not_run_it(tmp_path):
    # A notebook cut short by an editor: running its cells cannot help, so the row and
    # the task report say to restore the file.
    first = NOTEBOOK_TASKS[0]
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / f"{first.notebook}.ipynb").write_text("{")
    out = _pytest(tmp_path, "--task", first.id, "--scoreboard").stdout
    assert _row(out, first.id)[1] == "NOT RUN"
    assert _row(out, first.id)[3].endswith(
        f"notebooks/{first.notebook}.ipynb cannot be read: restore it "
        f"(see make check TASK={first.id})")
    assert "is not a notebook Jupyter can open any more" in out
    assert "run its cells, then save" not in out


def test_task_failures_show_hypothesis_inputs_as_shapes(tmp_path):
    _write_test_file(tmp_path, "test_hyp.py",
        "import numpy as np, pytest\n"
        "from hypothesis import given, strategies as st\n"
        "@pytest.mark.task('1.6')\n"
        "@given(data=st.data())\n"
        "def test_prop(data):\n"
        "    n = data.draw(st.integers(2, 3), label='n')\n"
        "    inputs = data.draw(st.just({'x': np.zeros((n, 4)), 'y': np.array([0, 1])}),\n"
        "                       label='inputs')\n"
        "    assert inputs['x'].sum() > 0\n"
    )
    result = _pytest(tmp_path, "--task", "1.6", "--scoreboard", "--tb=short")
    assert "failing input: n = 2, x of shape (2, 4), y = [0, 1]" in result.stdout
    assert "Falsifying example" not in result.stdout
    assert _row(result.stdout, "1.6")[1] == "FAIL"


@pytest.mark.parametrize("ci", [False, True], ids=["local", "ci"])
def test_several_distinct_hypothesis_failures_show_each_error_and_input(tmp_path, ci):
    # Two bugs hypothesis tells apart (a different exception at a different line): it
    # raises an exception group, printed with a "| " gutter on every line. Each smallest
    # failing n is derived by hand: the first even n is 2, the first odd n above 3 is 5.
    # With CI set, hypothesis' defaults add a @reproduce_failure line after a blank one:
    # the report reads the same there.
    _write_test_file(tmp_path, "test_hyp.py",
        "import numpy as np, pytest\n"
        "from hypothesis import given, settings, strategies as st\n"
        "@pytest.mark.task('1.6')\n"
        "@settings(derandomize=True, database=None, max_examples=100)\n"
        "@given(data=st.data())\n"
        "def test_prop(data):\n"
        "    n = data.draw(st.integers(1, 9), label='n')\n"
        "    x = data.draw(st.just(np.zeros((n, 1, 2))), label='x')\n"
        "    if n % 2 == 0:\n"
        "        raise ValueError(f'the first bug, at n = {n}')\n"
        "    assert n <= 3, f'the second bug, at n = {n}'\n"
    )
    out = _pytest(tmp_path, "--task", "1.6", "--scoreboard", "--tb=short", ci=ci).stdout
    assert _row(out, "1.6")[1] == "FAIL"
    report = out.split("FAILED test_hyp.py::test_prop\n")[1].split("\n\n")[0]
    # Which of the two hypothesis lists first is its choice: the first is shown in full
    # (its traceback), the other by its input and error lines.
    assert report.startswith("Hypothesis found 2 distinct failures. The first, in full:\n"
                             "failing input: n = ")
    assert "\nThe other one, its error only:\nfailing input: n = " in report
    # A small array by its values, with its shape (a shape bug shows there).
    assert "failing input: n = 2, x of shape (2, 1, 2) = [[[0.0, 0.0]], [[0.0, 0.0]]]" in report
    assert "failing input: n = 5, x of shape (5, 1, 2)\n" in report
    assert "ValueError: the first bug, at n = 2" in report
    assert "AssertionError: the second bug, at n = 5" in report
    assert 'File "tests/test_hyp.py", line ' in report  # the first one's traceback
    # No gutter, no hypothesis reprs, paths relative to the tree.
    assert not re.search(r"^\s*[|+]", report, re.MULTILINE), report
    assert "Failing test case" not in report and "Draw 1" not in report
    assert "reproduce_failure" not in out
    assert str(tmp_path) not in report


def test_given_arguments_are_the_failing_input_and_blob_advice_is_left_out(tmp_path):
    # A test that takes its inputs as @given arguments (not draws): hypothesis names them
    # in a "Failing test case: test_prop(n=4)" call, read as the failing input. The test
    # asks for hypothesis' @reproduce_failure advice in its own settings: the report
    # leaves it out (it is bound to hypothesis' version) and keeps no blank line.
    _write_test_file(tmp_path, "test_hyp.py",
        "import pytest\n"
        "from hypothesis import given, settings, strategies as st\n"
        "@pytest.mark.task('1.6')\n"
        "@settings(derandomize=True, database=None, print_blob=True)\n"
        "@given(n=st.integers(0, 9))\n"
        "def test_prop(n):\n"
        "    assert n < 4, f'too big: {n}'\n"
    )
    out = _pytest(tmp_path, "--task", "1.6", "--scoreboard", "--tb=short").stdout
    report = out.split("FAILED test_hyp.py::test_prop\n")[1].split("\n\n")[0]
    assert "failing input: n = 4" in report  # the smallest n that fails, by hand
    # Cut at the first blank line, the report still holds the error with its line end.
    assert "E   AssertionError: too big: 4\nE   assert 4 < 4\n" in report, report
    assert "reproduce_failure" not in out


def test_a_passing_task_whose_code_prints_to_stdout_fails_as_the_grade_would(tmp_path):
    # The grade compares what each check cell prints with the reference: a debug print
    # left in a task's code fails the cells that call it, so make check says FAIL too.
    # stderr is not compared (nor is it here).
    _write_test_file(tmp_path, "test_printing.py",
        "import sys, pytest\n"
        "@pytest.mark.task('1.12')\n"
        "def test_prints():\n"
        "    print('debug (2, 3)')\n"
        "@pytest.mark.task('1.13')\n"
        "def test_warns():\n"
        "    print('a warning', file=sys.stderr)\n"
    )
    out = _pytest(tmp_path, "--task", "1.12", "--task", "1.13", "--scoreboard",
                  "--tb=short").stdout
    assert _row(out, "1.12")[1] == "FAIL" and _row(out, "1.13")[1] == "PASS"
    assert "its code prints to stdout, which fails the grade's check cells" in out
    assert ("task 1.12 (adam): code its tests ran printed to stdout ('debug (2, 3)', "
            "in test_printing.py::test_prints).") in out


def test_an_endless_loop_is_stopped_once_and_the_scoreboard_still_comes(tmp_path):
    # A hypothesis test whose code never ends: stopped at the time limit (hypothesis does
    # not run it again to shrink), its task's other test fails without running, and an
    # unrelated task still passes.
    _write_test_file(tmp_path, "test_loops.py",
        "import pytest\n"
        "from hypothesis import given, strategies as st\n"
        "@pytest.mark.task('1.12')\n"
        "@given(n=st.integers(0, 9))\n"
        "def test_loops_forever(n):\n"
        "    while n >= 0:\n"
        "        n = n + 0\n"
        "@pytest.mark.task('1.12')\n"
        "def test_would_loop_too():\n"
        "    while True:\n"
        "        pass\n"
        "@pytest.mark.task('1.13')\n"
        "def test_fine():\n"
        "    assert True\n"
    )
    started = time.monotonic()
    out = _pytest(tmp_path, "--task", "1.12 1.13", "--scoreboard", "--tb=short",
                  "--time-limit", "1").stdout
    assert time.monotonic() - started < 60
    assert _row(out, "1.12")[1] == "FAIL" and _row(out, "1.13")[1] == "PASS"
    assert ("task 1.12 (adam): its code ran longer than the time limit and was stopped (a "
            "loop that never ends?); 1 more of its tests were then not run.\n"
            "FAILED test_loops.py::test_loops_forever") in out
    assert "while n >= 0:" in out  # where it was stopped
    assert "conftest.py" not in out.split("FAILED test_loops.py::test_loops_forever")[1]


def test_a_file_that_cannot_load_is_reported_once_and_no_table_is_shown(tmp_path):
    # One syntax error stops every test file that imports its module, and pytest then runs
    # no test: the error once, the files it stopped, and no table of rows that ran nothing.
    _write_test_file(tmp_path, "broken_helper.py", "def f(:\n    pass\n")
    for name in ("test_one.py", "test_two.py"):
        (tmp_path / "tests" / name).write_text(
            "import pytest, broken_helper\n"
            "@pytest.mark.task('1.12')\ndef test_it():\n    assert True\n")
    out = _pytest(tmp_path, "--scoreboard").stdout
    assert out.count("SyntaxError") == 1, out
    assert "error while loading 2 test file(s) (test_one.py, test_two.py):" in out
    assert "No test ran: a test file that cannot be loaded stops them all" in out
    assert "TASK   | STATUS" not in out


def test_ctrl_c_gives_no_scoreboard_of_rows_that_never_ran(tmp_path):
    (tmp_path / "tests").mkdir()
    started = tmp_path / "started"
    (tmp_path / "tests" / "test_slow.py").write_text(
        "import pathlib, time, pytest\n"
        "@pytest.mark.task('1.12')\ndef test_slow():\n"
        f"    pathlib.Path({str(started)!r}).touch()\n"
        "    time.sleep(60)\n")
    shutil.copy(TESTS / "conftest.py", tmp_path / "tests" / "conftest.py")
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "-p", "no:nbval", "--scoreboard"], cwd=tmp_path / "tests",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=60)
    assert "interrupted before its tests finished: no scoreboard this time" in out
    assert "TASK   | STATUS" not in out


def test_a_run_started_with_ctrl_c_ignored_gives_its_children_ctrl_c_back(tmp_path):
    # pytest started as a shell starts a background job (`make test &` in a script): with
    # SIGINT ignored, which every process below it inherits. A child a test starts (here
    # one that reports its own SIGINT handler) must still take Ctrl-C, as from a terminal.
    (tmp_path / "tests").mkdir()
    shutil.copy(TESTS / "conftest.py", tmp_path / "tests" / "conftest.py")
    (tmp_path / "tests" / "test_child.py").write_text(
        "import subprocess, sys\n"
        "def test_child_takes_ctrl_c():\n"
        "    said = subprocess.run([sys.executable, '-c', 'import signal; print(signal.getsignal("
        "signal.SIGINT) is signal.default_int_handler)'], capture_output=True, text=True)\n"
        "    assert said.stdout.strip() == 'True', said\n")
    ignoring = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                "os.execv(sys.executable, [sys.executable, '-m', 'pytest', '-q', "
                "'-p', 'no:cacheprovider', '-p', 'no:nbval'])")
    run = subprocess.run([sys.executable, "-c", ignoring], cwd=tmp_path / "tests",
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


@pytest.mark.parametrize(("given", "said"), [
    ("1,3", "'1,3' is not a task ID; did you mean 1.3 (with a dot)?"),
    ("4", "'4' is not a task ID; the tasks of notebook 4 are 4.1, 4.2, 4.3,"),
    ("affine", "'affine' is not a task ID; tasks named with it: 1.1 (affine_forward), "
               "1.2 (affine_backward)."),
])
def test_a_slip_in_a_task_id_gets_the_ids_it_likely_meant(tmp_path, given, said):
    result = _pytest(tmp_path, "--task", given)
    assert result.returncode != 0
    assert said in result.stderr
    assert "The task IDs are" not in result.stderr  # answered: no list of every ID


def test_a_task_id_given_twice_is_one_task_and_one_error(tmp_path):
    result = _pytest(tmp_path, "--task", "9.9,9.9")
    assert result.stderr.count("There is no task 9.9.") == 1, result.stderr


def test_task_option_rejects_unknown_ids(tmp_path):
    # Students give IDs as make check TASK=... or python -m course check ...: the message
    # names neither the option nor one of the two forms.
    result = _pytest(tmp_path, "--task", "9.9")
    assert result.returncode != 0
    assert "There is no task 9.9.\nThe task IDs are 1.1, 1.2, " in result.stderr
    assert "--task" not in result.stderr and "TASK=" not in result.stderr


def test_scoreboard_announces_no_tests_for_an_unknown_task_id(tmp_path):
    # pytest reports collection finished even when the task selection was refused: the
    # "Running N tests" line (every collected test, before the selection) came before the
    # error that nothing would run.
    result = _pytest(tmp_path, "--task", "9.9", "--scoreboard")
    assert result.returncode != 0
    assert "There is no task 9.9." in result.stderr
    assert "Running" not in result.stderr, result.stderr
    result = _pytest(tmp_path, "--task", "1.1", "--scoreboard")
    assert "Running 2 tests of 1 task(s)..." in result.stderr


def test_task_option_answers_a_function_name_with_its_task_id(tmp_path):
    result = _pytest(tmp_path, "--task", "relu_forward,1.3a")
    assert result.returncode != 0
    assert ("'relu_forward' is not a task ID, but it names task 1.3 (relu_forward): ask for "
            "1.3.\n'1.3a' is not a task ID; did you mean 1.3?") in result.stderr
    assert "The task IDs are" not in result.stderr  # each one was answered
    result = _pytest(tmp_path, "--task", "loss")  # a method of two classes
    assert ("'loss' is not a task ID, but it names tasks 1.8 (FullyConnectedNet.loss) and "
            "4.6 (ThreeLayerConvNet.loss): ask for 1.8 or 4.6.") in result.stderr
    assert "--task" not in result.stderr and "TASK=" not in result.stderr
