"""kit.reports: points per task, the student's feedback, the saved JSON, Gradescope's form.

Built from hand-made results (no grading run), so each rule is checked on its own: a task
earns its points only when all its check cells pass; the feedback has one table per
notebook with a task column and the first failing line, names the task to fix first once,
and explains only the results it shows.
"""

from __future__ import annotations

import csv
import io
import json

from course.rubric import TASK_POINTS
from kit import grade
from kit import reports as rp
from kit.nbval_runner import CellRecord, Limits, NotebookRun

ROOT = grade.ROOT

WRONG = rp.Reason(rp.FailureKind.WRONG_OUTPUT, "wrong output")
ERROR = rp.Reason(rp.FailureKind.ERROR, "error: ValueError: bad shape")


def passed(name: str, notebook: str, task: str) -> rp.CheckResult:
    return rp.CheckResult(name, notebook, f"heading of {name}", rp.Verdict(True), None, task)


def failed(name: str, notebook: str, task: str, line: str = "check FAILED: x",
           reason: rp.Reason = WRONG) -> rp.CheckResult:
    verdict = rp.Verdict(False, reason, "check passed: x\n", f"{line}\n", line)
    return rp.CheckResult(name, notebook, f"heading of {name}", verdict, None, task)


def a_result() -> rp.GradeResult:
    """Affine forward (1.1) broken: its own check fails and so does task 1.8, which calls
    it; task 1.8's second check cell passes, which must not earn it anything."""
    fc = "FullyConnectedNets"
    checks = [failed("affine-forward", fc, "1.1"),
              passed("relu-forward", fc, "1.3"),
              failed("fc-net-loss-gradients", fc, "1.8", "ValueError: bad shape", ERROR),
              passed("two-layer-net-training", fc, "1.8"),
              passed("dropout-backward", "Dropout", "3.2"),
              failed("dropout-forward-stats", "Dropout", "3.1")]
    return rp.GradeResult("alice", runs=[], checks=checks)


def test_a_task_earns_its_points_only_when_all_its_checks_pass():
    result = a_result()
    earned = {t.task: t.points for t in result.tasks}
    assert earned == {"1.1": 0, "1.3": TASK_POINTS["1.3"], "1.8": 0,
                      "3.2": TASK_POINTS["3.2"], "3.1": 0}
    assert result.total == TASK_POINTS["1.3"] + TASK_POINTS["3.2"]
    assert result.max == sum(TASK_POINTS[t] for t in ("1.1", "1.3", "1.8", "3.2", "3.1"))
    assert result.subtotal("Dropout") == TASK_POINTS["3.2"]


def test_a_check_of_no_task_earns_nothing_and_counts_for_no_maximum():
    result = rp.GradeResult("bob", runs=[], checks=[passed("extra", "FullyConnectedNets",
                                                           None)])
    assert (result.total, result.max) == (0, 0)
    assert "belong to no task" in rp.feedback_markdown(result)


def test_the_feedback_has_one_table_per_notebook_with_a_task_column():
    text = rp.feedback_markdown(a_result())
    headers = [line for line in text.splitlines() if line.startswith("| task | points |")]
    assert len(headers) == 2  # FullyConnectedNets and Dropout, each once
    rows = {line.split("|")[3].strip(): line for line in text.splitlines()
            if line.startswith("| ") and "`" in line.split("|")[3]}
    assert "1.1 Affine layer" in rows["`affine-forward`"]
    assert "`check FAILED: x`" in rows["`affine-forward`"]
    assert "`ValueError: bad shape`" in rows["`fc-net-loss-gradients`"]
    # A task's label and points stand on its first row only.
    assert [cell.strip() for cell in rows["`two-layer-net-training`"].split("|")[1:3]] == ["", ""]
    assert f"## FullyConnectedNets: {TASK_POINTS['1.3']} / " in text


def test_the_likely_cause_is_named_once_and_its_dependants_with_it():
    text = rp.feedback_markdown(a_result())
    start_here = [line for line in text.splitlines() if "Start with task" in line]
    assert len(start_here) == 1
    assert "task 1.1" in start_here[0] and "1.8" in start_here[0]
    # 3.1 fails on its own, with nothing failing because of it: no "start here" for it.
    assert "Start with task 3.1" not in text


def test_a_later_notebooks_network_check_is_blamed_on_the_layer_it_runs():
    # Batchnorm (2.2) is right (its hidden checks pass), but its network check cell runs
    # notebook 1's affine layer (1.1), which is wrong: 1.1 is where to start, and the
    # report says why a right task earned nothing.
    fc, bn = "FullyConnectedNets", "BatchNormalization"
    hidden_ok = rp.Verdict(True)
    checks = [failed("affine-forward", fc, "1.1"),
              rp.CheckResult("fc-bn-gradients", bn, "heading", rp.Verdict(False, WRONG),
                             hidden_ok, "2.2")]
    result = rp.GradeResult("gus", runs=[], checks=checks)
    assert [(c.task, d) for c, d in rp.likely_causes(result.tasks)] == [("1.1", ["2.2"])]
    text = rp.feedback_markdown(result)
    assert "a bug in one task can cost a later one here" in text


def test_a_likely_cause_still_a_stub_is_called_not_written_rather_than_failing():
    stub = ("NotImplementedError: task 1.1 (affine_forward): not written yet; see the TODO "
            "in course/layers.py")
    fc = "FullyConnectedNets"
    for first_line, state in ((stub, "it is not written yet"),
                              ("check FAILED: x", "it fails its own checks")):
        then = "once it is written" if first_line == stub else "once it is fixed"
        checks = [failed("affine-forward", fc, "1.1", first_line, ERROR),
                  failed("fc-net-loss-gradients", fc, "1.8", stub, ERROR)]
        text = rp.feedback_markdown(rp.GradeResult("frank", runs=[], checks=checks))
        start_here = [line for line in text.splitlines() if "Start with task" in line]
        assert len(start_here) == 1 and state in start_here[0], start_here
        assert then in start_here[0], start_here
    # Another task's stub in its traceback (1.8 calling 1.1's) is not 1.8 unwritten.
    only_18 = rp.GradeResult("gina", runs=[], checks=[
        failed("fc-net-loss-gradients", fc, "1.8", stub, ERROR),
        failed("overfit-small-data", fc, "1.9", "check FAILED: x")])
    assert not rp._not_written(only_18.tasks[0])


def test_only_the_results_shown_are_explained():
    text = rp.feedback_markdown(a_result())
    meanings = text[text.index("## What the results mean"):]
    assert "- **wrong output**" in meanings and "- **error**" in meanings
    assert "- **passed**" in meanings
    assert "- **timeout**" not in meanings and "- **hidden check**" not in meanings


def test_the_first_failing_line_survives_the_trimming_of_long_output():
    noise = [f"line {i}" for i in range(3000)]
    actual = "\n".join([*noise[:1500], "check FAILED: dx, relative error 3e-01",
                        *noise[1500:]])
    record = CellRecord(cell=4, outcome="failed", message="Cell outputs differ",
                        expected="\n".join(noise), actual=actual)
    verdict = grade.failed_cell_verdict(WRONG, record)
    assert "check FAILED" not in (verdict.actual or "")  # the trimmed evidence lost it
    assert verdict.line == "check FAILED: dx, relative error 3e-01"


def test_first_failing_line_prefers_a_failed_check_then_an_error_then_a_difference():
    assert rp.first_failing_line("a\n", "a\ncheck FAILED: y\nValueError: z\n") \
        == "check FAILED: y"
    assert rp.first_failing_line("a\n", "Traceback\nValueError: z\n") == "ValueError: z"
    assert rp.first_failing_line("a\nb\n", "a\nc\n") == "c"
    assert rp.first_failing_line("a\n", "a\n") == ""


def test_the_json_keeps_tasks_and_checks_and_reads_back_the_same_total(tmp_path):
    result = a_result()
    rp.save_result(tmp_path, result)
    saved = json.loads((tmp_path / "alice.json").read_text())
    tasks = {t["task"]: t for t in saved["tasks"]}
    assert tasks["1.8"] == {"task": "1.8", "title": tasks["1.8"]["title"],
                            "notebook": "FullyConnectedNets", "points": 0,
                            "max": TASK_POINTS["1.8"], "status": "failed",
                            "checks": ["fc-net-loss-gradients", "two-layer-net-training"]}
    check = next(c for c in saved["checks"] if c["name"] == "affine-forward")
    assert (check["kind"], check["first_failing_line"]) == ("wrong output", "check FAILED: x")
    again = rp.load_result(tmp_path, "alice")
    assert again is not None
    assert (again.total, again.max) == (result.total, result.max)
    assert rp.feedback_markdown(again).count("Start with task") == 1


def test_a_report_saved_before_points_were_per_task_is_graded_again(tmp_path):
    old = {"submission": "carol", "checks": [
        {"name": "affine-forward", "notebook": "FullyConnectedNets", "points": 2, "max": 2,
         "status": "passed", "reason": ""}], "total": 2, "max": 2}
    (tmp_path / "carol.json").write_text(json.dumps(old))
    assert rp.load_result(tmp_path, "carol") is None


def test_gradescope_gets_one_test_per_task_worth_its_points():
    payload = rp.to_gradescope(a_result(), 12.3)
    tests = {t["name"].split(":")[0]: t for t in payload["tests"]}
    assert set(tests) == {"task 1.1", "task 1.3", "task 1.8", "task 3.2", "task 3.1"}
    assert (tests["task 1.8"]["score"], tests["task 1.8"]["max_score"]) == (
        0, TASK_POINTS["1.8"])
    assert "two-layer-net-training: passed" in tests["task 1.8"]["output"]
    assert "first failing line: ValueError: bad shape" in tests["task 1.8"]["output"]
    assert payload["score"] == sum(t["score"] for t in payload["tests"])


def with_hidden(check: rp.CheckResult, passed_hidden: bool) -> rp.CheckResult:
    hidden = rp.Verdict(True) if passed_hidden else rp.Verdict(
        False, rp.Reason(rp.FailureKind.HIDDEN, "failed: hidden check"), None,
        f"task {check.task}: out: largest relative error 1e+00", "task: out")
    return rp.CheckResult(check.name, check.notebook, check.heading, check.notebook_verdict,
                          hidden, check.task)


def a_missing_bias() -> rp.GradeResult:
    """affine_forward without its bias: its own hidden checks fail; ReLU backward's own
    code is right (hidden checks pass) but its sandwich cell, which calls affine_forward,
    fails; task 1.3 passes everything."""
    fc = "FullyConnectedNets"
    checks = [with_hidden(failed("affine-forward", fc, "1.1"), False),
              with_hidden(passed("relu-forward", fc, "1.3"), True),
              with_hidden(passed("relu-backward", fc, "1.4"), True),
              with_hidden(failed("affine-relu-sandwich", fc, "1.4"), True)]
    return rp.GradeResult("dave", runs=[], checks=checks)


def test_a_task_whose_own_code_is_right_is_blamed_on_the_earlier_failing_task():
    causes = {cause.task: dependants for cause, dependants in
              rp.likely_causes(a_missing_bias().tasks)}
    assert causes == {"1.1": ["1.4"]}
    text = rp.feedback_markdown(a_missing_bias())
    assert text.count("Start with task") == 1 and "Start with task 1.1" in text


def test_only_a_task_the_notebook_passed_entirely_counts_as_a_hidden_only_failure():
    fc = "FullyConnectedNets"
    fooled = rp.GradeResult("eve", runs=[], checks=[
        with_hidden(passed("adam", fc, "1.12"), False),
        with_hidden(passed("fc-net-loss-gradients", fc, "1.8"), False),
        with_hidden(failed("two-layer-net-training", fc, "1.8"), False)])
    assert [t.task for t in fooled.tasks if t.only_hidden_failed] == ["1.12"]
    [row] = csv.DictReader(io.StringIO(rp.grades_csv([fooled], [fc])))
    assert row["hidden_check_failures"] == "1"
    line = rp.hidden_summary([fooled, a_missing_bias()])
    assert line is not None and line.startswith("1 task(s) passed every check cell")
    assert rp.hidden_summary([a_missing_bias()]) is None


def test_tasks_come_in_the_course_order_whatever_order_the_notebook_checks_them():
    # ConvolutionalNetworks checks the sandwich layer of 4.6 before 4.5's initialisation.
    cnn = "ConvolutionalNetworks"
    result = rp.GradeResult("carol", runs=[], checks=[
        passed("max-pool-backward-naive", cnn, "4.4"),
        passed("conv-relu-pool-sandwich", cnn, "4.6"),
        failed("cnn-init", cnn, "4.5"),
        failed("cnn-initial-loss", cnn, "4.6")])
    assert [t.task for t in result.tasks] == ["4.4", "4.5", "4.6"]
    six = result.tasks[2]
    assert [c.name for c in six.checks] == ["conv-relu-pool-sandwich", "cnn-initial-loss"]
    text = rp.feedback_markdown(result)
    assert text.index("| 4.5 ") < text.index("| 4.6 ")


# -- the terminal table ------------------------------------------------------------------

FC = "FullyConnectedNets"


def stopped(name: str, task: str, kind: rp.FailureKind, text: str) -> rp.CheckResult:
    return rp.CheckResult(name, FC, f"heading of {name}", rp.Verdict(
        False, rp.Reason(kind, text)), None, task)


def test_every_column_of_the_terminal_table_is_as_wide_as_its_widest_entry():
    results = [rp.GradeResult("subF_short", checks=[
        stopped("affine-forward", "1.1", rp.FailureKind.WALL_CLOCK, "wall")],
        status="wall-clock limit", seconds=612.5),
        rp.GradeResult("subA", checks=[passed("affine-forward", FC, "1.1")],
                       status="complete", seconds=3.0)]
    lines = rp.summary_table(results).splitlines()
    bars = {tuple(i for i, ch in enumerate(line) if ch in "|+") for line in lines}
    assert len(bars) == 1, "\n".join(lines)  # every separator in the same columns
    assert "| wall-clock limit |" in lines[3]


# -- what a failure is called, and what the feedback says about it --------------------

LIMITS = Limits(cell_timeout=60)
# nbval's report of a cell it interrupted at the timeout, as the report plugin keeps it:
# the last 6000 characters, so a long traceback cut off its first line ("Notebook cell
# execution failed ... Timeout of 60 seconds exceeded executing cell").
TIMEOUT_TAIL = ("\x1b[0;32m    441\x1b[0m \x1b[38;5;28;01mdef\x1b[39;00m f(n):\n" * 80
                + "\x1b[0;31mKeyboardInterrupt\x1b[0m: \n")[-6000:]


def one_notebook(names: list[str]) -> tuple[grade.Selection, dict[str, int]]:
    """The selection of these FullyConnectedNets checks, and their cell numbers."""
    references = grade.reference_notebooks(ROOT, [FC])
    selection = grade.select_checks(references, set(names))
    return selection, {c.name: c.index for c in selection.checks[FC]}


def test_a_cell_stopped_at_the_timeout_is_a_timeout_even_when_its_message_was_cut():
    selection, cells = one_notebook(["affine-forward", "affine-backward"])
    record = CellRecord(cells["affine-forward"], "failed", message=TIMEOUT_TAIL,
                        expected="check passed: affine_forward\n",
                        actual="KeyboardInterrupt: \n")
    error = CellRecord(cells["affine-backward"], "failed", message=TIMEOUT_TAIL.replace(
        "KeyboardInterrupt", "ValueError"), actual="ValueError: shapes (2,3) (4,5)\n")
    run = NotebookRun(records={r.cell: r for r in (record, error)})
    timed_out, failed_ = grade.score(selection, {FC: run}, LIMITS, ROOT)
    assert timed_out.reason == rp.Reason(rp.FailureKind.TIMEOUT,
                                         "timeout: the cell ran longer than 60 s")
    assert failed_.reason is not None and failed_.reason.kind is rp.FailureKind.ERROR
    text = rp.feedback_markdown(rp.GradeResult("ann", runs=[], checks=[timed_out]))
    row = next(line for line in text.splitlines() if "`affine-forward`" in line)
    assert "timeout: the cell ran longer than 60 s" in row and "| failed |" not in row


def test_a_check_skipped_after_a_timeout_says_so_and_shows_no_failure_of_its_own():
    selection, cells = one_notebook(["affine-backward", "softmax-loss"])
    slow = CellRecord(cells["affine-backward"], "failed", message=TIMEOUT_TAIL,
                      actual="KeyboardInterrupt: \n")
    # After a timeout nbval expects every later cell to fail; this one did, in the
    # interrupted kernel, and is reported as skipped.
    later = CellRecord(cells["softmax-loss"], "skipped", when="call",
                       expected="check passed: softmax_loss\n",
                       actual="check FAILED: softmax_loss, MemoryError\n")
    run = NotebookRun(records={slow.cell: slow, later.cell: later})
    references = grade.reference_notebooks(ROOT, [FC])
    _, skipped = grade.score(selection, {FC: run}, LIMITS, ROOT, references=references)
    assert skipped.reason is not None and skipped.reason.kind is rp.FailureKind.SKIPPED
    heading = next(c.heading for c in selection.checks[FC] if c.name == "affine-backward")
    assert skipped.reason.text == (f'skipped: not graded, as the cell under "{heading}" '
                                   f'(code cell {slow.cell}) timed out (60 s) before it')
    assert skipped.first_line == "" and skipped.notebook_verdict.actual is None
    text = rp.feedback_markdown(rp.GradeResult("ben", runs=[], checks=[skipped]))
    assert "check FAILED" not in text and "MemoryError" not in text
    assert "- **skipped**: the cell was not graded: an earlier cell of the notebook ran " \
           "longer than the time limit per cell" in text


def _cell_that_assigns(notebook: dict, name: str, before: int) -> int:
    """nbval's index of the last code cell before ``before`` whose source has a line
    starting ``name = `` (read as text, not through kit.notebooks)."""
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    return max(i for i, c in enumerate(code[:before])
               if any(line.startswith(f"{name} = ") for line in "".join(c["source"]).splitlines()))


def test_a_name_error_after_an_earlier_cell_stopped_names_that_cell_and_its_error():
    # No fc_net.py: the cell that makes the solver stops, and the training check then
    # reads "NameError: name 'solver' is not defined", which the student never had to
    # write. The verdict names the cell that should have made it, and why it stopped.
    selection, cells = one_notebook(["two-layer-net-training"])
    references = grade.reference_notebooks(ROOT, [FC])
    check = cells["two-layer-net-training"]
    maker = _cell_that_assigns(references[FC], "solver", check)
    missing = "NotImplementedError: FullyConnectedNet.__init__: fc_net.py is not in the submission"
    raised = "Cell execution caused an exception"
    stopped_first = CellRecord(maker, "failed", message=raised, actual=f"{missing}\n")
    name_error = CellRecord(check, "failed", message=raised,
                            expected="check passed: training\n",
                            actual="NameError: name 'solver' is not defined\n")
    run = NotebookRun(records={maker: stopped_first, check: name_error})
    [result] = grade.score(selection, {FC: run}, LIMITS, ROOT, references=references)
    heading = next(c.heading for c in grade.nbs.code_cells(references[FC]) if c.index == maker)
    where = f'the cell under "{heading}" (code cell {maker})'
    assert result.first_line == (f"NameError: name 'solver' is not defined (solver is made "
                                 f"by {where}, which stopped first)")
    assert result.notebook_verdict.actual.startswith(
        f"[grader] This cell needs solver, which {where} makes; that cell stopped first: "
        f"{missing}\n\nNameError: name 'solver' is not defined")
    # The heading has backticks ("Training with `Solver`"): the row's code span still
    # holds the whole line.
    text = rp.feedback_markdown(rp.GradeResult("dan", runs=[], checks=[result]))
    row = next(line for line in text.splitlines() if "`two-layer-net-training`" in line)
    assert "`" in heading and "| ``NameError: name 'solver'" in row
    assert row.endswith("which stopped first)`` |")

    # When the cell that makes the name ran, the NameError is the check cell's own.
    ran = dict(run.records)
    ran[maker] = CellRecord(maker, "passed")
    [own] = grade.score(selection, {FC: NotebookRun(records=ran)}, LIMITS, ROOT,
                        references=references)
    assert own.first_line == "NameError: name 'solver' is not defined"
    assert "[grader]" not in own.notebook_verdict.actual


def test_a_code_span_holds_backticks():
    assert rp._code_span("plain") == "`plain`"
    assert rp._code_span("with `x` inside") == "``with `x` inside``"
    assert rp._code_span("`start") == "`` `start ``"
    assert rp._code_span("a ``b`` c") == "```a ``b`` c```"


def test_tasks_the_run_never_judged_are_neither_blamed_nor_promised_anything():
    wall = "wall-clock limit of 600 s reached"
    result = rp.GradeResult("cleo", runs=[], checks=[
        passed("affine-forward", FC, "1.1"),
        stopped("fc-net-loss-gradients", "1.8", rp.FailureKind.WALL_CLOCK, wall),
        stopped("overfit-small-data", "1.9", rp.FailureKind.WALL_CLOCK, wall)])
    assert rp.likely_causes(result.tasks) == []
    text = rp.feedback_markdown(result)
    assert "Start with task" not in text and "fails its own checks" not in text
    cause = text[text.index("## Likely cause"):].splitlines()[2]
    assert cause.startswith("- **Time ran out before task(s) 1.8, 1.9 could be judged**")
    # An unreadable submission: nothing was judged, so no likely cause at all.
    unreadable = rp.GradeResult("dan", notes=[rp.Note(rp.NoteKind.UNREADABLE, "bad zip")],
                                checks=[stopped(n, t, rp.FailureKind.UNREADABLE,
                                                "the submission could not be read")
                                        for n, t in (("affine-forward", "1.1"),
                                                     ("fc-net-loss-gradients", "1.8"))])
    assert "Likely cause" not in rp.feedback_markdown(unreadable)
