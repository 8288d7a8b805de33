"""kit/nbval_runner.py: what a cell's record means, which records are believed, and how a
notebook is run again when its kernel dies."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from kit import nbval_runner
from kit import notebooks as nbs
from kit.nbval_runner import CellRecord, Limits, NotebookRun, read_records, reason_of
from kit.reports import FailureKind, Reason


def test_reason_of_names_timeouts_memory_and_dead_kernels():
    limits = Limits(cell_timeout=5, memory_mb=512)

    def kind(message="", actual=""):
        return reason_of(CellRecord(0, "failed", message=message, actual=actual), None,
                         limits).kind

    assert kind("Timeout of 5 seconds exceeded executing cell") is FailureKind.TIMEOUT
    assert kind("Cell execution caused an exception",
                "MemoryError: Unable to allocate") is FailureKind.MEMORY
    assert kind("KernelDiedError: kernel died: exited") is FailureKind.KERNEL_DIED
    assert kind("Cell outputs differ") is FailureKind.WRONG_OUTPUT
    assert kind("Cell execution caused an exception", "ValueError: bad") is FailureKind.ERROR
    wall = Reason(FailureKind.WALL_CLOCK, "wall-clock limit of 9 s reached")
    assert reason_of(None, wall, limits) is wall
    assert reason_of(None, None, limits).kind is FailureKind.NOT_RUN
    assert reason_of(CellRecord(0, "passed"), None, limits) is None
    # The phrases the reports show say what the limit was.
    assert reason_of(CellRecord(0, "failed", message="Timeout of 5 seconds"), None,
                     limits).text == "timeout: the cell ran longer than 5 s"


def test_results_with_a_bad_signature_are_ignored():
    good = json.dumps({"cell": 1, "outcome": "passed"}, sort_keys=True)
    import hashlib
    import hmac

    mac = hmac.new(b"k", good.encode(), hashlib.sha256).hexdigest()
    forged = json.dumps({"cell": 2, "outcome": "passed"}, sort_keys=True)
    text = "\n".join([json.dumps({"record": good, "mac": mac}),
                      json.dumps({"record": forged, "mac": "0" * 64}), "garbage"])
    assert set(read_records(text, "k")) == {1}


def test_reason_of_a_dead_kernel_says_the_exit_status_when_known():
    limits = Limits()
    died = "KernelDiedError: kernel died: the kernel process exited while this cell ran"
    assert reason_of(CellRecord(0, "failed", message=died, exit_code=0), None,
                     limits).text == ("kernel died (the student's code ended the Python "
                                      "process with exit status 0)")
    assert "killed by signal 9" in reason_of(
        CellRecord(0, "failed", message=died, exit_code=-9), None, limits).text


def test_reason_of_says_when_the_disk_cap_stopped_the_code():
    limits = Limits()
    died = "KernelDiedError: kernel died: the kernel process exited while this cell ran"
    stopped = "disk: wrote more than 32 MB"  # the disk watch's reason
    assert reason_of(CellRecord(0, "failed", message=died, exit_code=-9), None, limits,
                     disk=stopped).text == "kernel died (disk: wrote more than 32 MB)"
    # Without the watch's word, the same death reads as a kill by a signal.
    assert "signal 9" in reason_of(CellRecord(0, "failed", message=died, exit_code=-9),
                                   None, limits).text
    # The per-file limit and a full tmpfs come back as the cell's own OSError.
    for errno in ("[Errno 27] File too large", "[Errno 28] No space left on device"):
        reason = reason_of(CellRecord(0, "failed", message="Cell execution caused an exception",
                                      actual=f"OSError: {errno}"), None, limits)
        assert reason.kind is FailureKind.ERROR
        assert reason.text.startswith("disk: the code wrote more than the sandbox's disk cap")


# -- restarts after a dead kernel ------------------------------------------------------------
# ``run_notebook`` with each nbval run played by ``Scripted``: it reads the notebook from
# disk as nbval would (cells tagged nbval-skip are skipped) and kills the kernel in the
# cells it is told to, so the restart loop is tested without starting kernels.

NOTEBOOK = "FullyConnectedNets"
CELLS = ["setup", "affine-forward", "svm-loss", "sgd-momentum", "adam", "adagrad"]


def _notebook_file(box: Path) -> Path:
    cells = [nbformat.v4.new_markdown_cell("# Fully connected networks")]
    for name in CELLS:
        cell = nbformat.v4.new_code_cell(f"print({name!r})")
        if name != "setup":
            cell.metadata.update(tags=["check"], check=name)
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    path = box / "notebooks" / f"{NOTEBOOK}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(nbformat.writes(nb))
    return path


class Scripted:
    """One stand-in nbval run per call: ``deadly(run, cell)`` says whether running
    ``cell`` in run number ``run`` (from 0) kills the kernel; ``failing(run, cell)``
    whether it fails without killing it."""

    def __init__(self, deadly: Callable[[int, int], bool],
                 failing: Callable[[int, int], bool] = lambda run, cell: False) -> None:
        self.deadly, self.failing, self.runs, self.skipped = deadly, failing, 0, []

    def __call__(self, box: Path, name: str, limits: Limits, deadline: float, workdir: Path,
                 dataset: str, exports: Path | None, what: str = "") -> NotebookRun:
        notebook = json.loads((box / "notebooks" / f"{name}.ipynb").read_text())
        skip = {c.index for c in nbs.code_cells(notebook) if nbs.NBVAL_SKIP in nbs.tags_of(c.cell)}
        self.skipped.append(skip)
        records, alive = {}, True
        for cell in range(len(CELLS)):
            if cell in skip:
                records[cell] = CellRecord(cell, "skipped", alive_before=alive,
                                           alive_after=alive)
            elif not alive:
                records[cell] = CellRecord(cell, "failed", message="RuntimeError: Kernel dead "
                                           "on test start", alive_before=False,
                                           alive_after=False)
            elif self.deadly(self.runs, cell):
                alive = False
                records[cell] = CellRecord(cell, "failed", message="KernelDiedError: kernel "
                                           "died: the kernel process exited", exit_code=0,
                                           alive_after=False)
            else:
                outcome = "failed" if self.failing(self.runs, cell) else "passed"
                records[cell] = CellRecord(cell, outcome, message="Cell outputs differ"
                                           if outcome == "failed" else "")
        self.runs += 1
        return NotebookRun(records, isolation="none", cap="none")


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripted: Callable[..., NotebookRun],
         limits: Limits | None = None) -> tuple[NotebookRun, Path, bytes]:
    path = _notebook_file(tmp_path / "box")
    before = path.read_bytes()
    monkeypatch.setattr(nbval_runner, "_run_once", scripted)
    run = nbval_runner.run_notebook(tmp_path / "box", NOTEBOOK, limits or Limits(),
                                    time.monotonic() + 60, tmp_path)
    return run, path, before


def test_a_dead_kernel_costs_only_its_cell(tmp_path, monkeypatch):
    scripted = Scripted(lambda run, cell: CELLS[cell] == "svm-loss")
    run, path, before = _run(tmp_path, monkeypatch, scripted)
    assert scripted.skipped == [set(), {2}]  # the rerun skips the cell the kernel died in
    assert run.restarts == 1 and not run.gave_up
    limits = Limits()
    died = run.reason(2, limits)
    assert died is not None and died.kind is FailureKind.KERNEL_DIED
    assert "exit status 0" in died.text
    assert [run.reason(cell, limits) for cell in (0, 1, 3, 4, 5)] == [None] * 5
    assert run.deaths[0].label == "svm-loss (task 1.6)"
    note = run.restart_note(NOTEBOOK)
    assert note is not None and "svm-loss (task 1.6)" in note and "1 restart" in note
    assert path.read_bytes() == before  # the notebook is put back as built


def test_the_first_verdict_stands(tmp_path, monkeypatch):
    # affine-forward passes before the death and fails in the rerun; adam, never run in
    # the first run, fails in the rerun: the first verdict of each cell is kept.
    scripted = Scripted(lambda run, cell: run == 0 and CELLS[cell] == "svm-loss",
                        lambda run, cell: run == 1 and CELLS[cell] in ("affine-forward", "adam"))
    run, _, _ = _run(tmp_path, monkeypatch, scripted)
    limits = Limits()
    assert run.reason(1, limits) is None
    adam = run.reason(4, limits)
    assert adam is not None and adam.kind is FailureKind.WRONG_OUTPUT


def test_restarts_are_bounded_and_later_cells_say_why_they_did_not_run(tmp_path, monkeypatch):
    scripted = Scripted(lambda run, cell: cell >= 2)  # every cell from svm-loss on dies
    run, path, before = _run(tmp_path, monkeypatch, scripted, Limits(restarts=2))
    assert scripted.skipped == [set(), {2}, {2, 3}]
    assert run.restarts == 2 and run.gave_up and [d.cell for d in run.deaths] == [2, 3, 4]
    late = run.reason(5, Limits(restarts=2))
    assert late is not None and late.kind is FailureKind.NOT_RUN
    assert late.text == ("not run: the kernel died 3 times, first in svm-loss (task 1.6) "
                         "(the process ended with exit status 0)")
    assert path.read_bytes() == before


def test_without_restarts_a_later_cell_names_the_death(tmp_path, monkeypatch):
    scripted = Scripted(lambda run, cell: CELLS[cell] == "svm-loss")
    run, _, _ = _run(tmp_path, monkeypatch, scripted, Limits(restarts=0))
    assert scripted.runs == 1
    late = run.reason(3, Limits(restarts=0))
    assert late == Reason(FailureKind.NOT_RUN, "not run: kernel died in svm-loss (task 1.6)")


def test_no_restart_when_nothing_after_the_death_lost_its_verdict(tmp_path, monkeypatch):
    scripted = Scripted(lambda run, cell: cell == len(CELLS) - 1)
    run, _, _ = _run(tmp_path, monkeypatch, scripted)
    assert scripted.runs == 1 and run.restarts == 0 and len(run.deaths) == 1


def test_a_death_in_a_cell_that_is_no_check_is_named_by_its_heading(tmp_path, monkeypatch):
    scripted = Scripted(lambda run, cell: cell == 0)
    run, _, _ = _run(tmp_path, monkeypatch, scripted)
    assert run.deaths[0].label == 'code cell 1 under "Fully connected networks"'


def test_the_fatal_cell_of_a_kernel_that_died_between_cells():
    records = {0: CellRecord(0, "passed"), 1: CellRecord(1, "skipped"),
               2: CellRecord(2, "passed"),
               3: CellRecord(3, "failed", alive_before=False, alive_after=False)}
    assert nbval_runner.fatal_cell(records) == 2  # the last cell that ran
    assert nbval_runner.fatal_cell({0: CellRecord(0, "passed")}) is None


def test_a_kernel_that_never_started_keeps_its_records_and_is_not_restarted(tmp_path,
                                                                             monkeypatch):
    calls = []

    def never_started(*args: object) -> NotebookRun:
        calls.append(args)
        return NotebookRun({cell: CellRecord(cell, "failed", when="setup",
                                             message="RuntimeError: Kernel didn't respond",
                                             alive_before=False, alive_after=False)
                            for cell in range(len(CELLS))})

    run, _, _ = _run(tmp_path, monkeypatch, never_started)
    assert len(calls) == 1 and not run.deaths
    assert set(run.records) == set(range(len(CELLS)))  # the setup error, for every cell


def test_the_report_plugin_loads_before_nbval_and_keeps_the_iri_checker_out(tmp_path):
    # rfc3987_syntax builds an Earley parser at import (about 2 s of every notebook run);
    # the plugin stops jsonschema from importing it, and must be loaded first to do so.
    if importlib.util.find_spec("rfc3987_syntax") is None:
        pytest.skip("rfc3987_syntax is not installed here: nothing to keep out")
    command = nbval_runner._pytest_command(tmp_path, tmp_path, tmp_path / "n.ipynb", Limits())
    plugins = [command[i + 1] for i, arg in enumerate(command) if arg == "-p"]
    assert plugins.index("nbval_report") < plugins.index("nbval.plugin")
    probe = ("import sys, nbval_report, nbval.plugin, nbformat\n"
             "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')])\n"
             "nbformat.validate(nb)\n"
             "print(sys.modules.get('rfc3987_syntax'))\n")
    control = tmp_path / "control"  # the plugin alone on the path, as the grader has it
    control.mkdir()
    shutil.copy(nbval_runner.PLUGIN, control / "nbval_report.py")
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env={"PYTHONPATH": str(control)}, check=True)
    assert ran.stdout.strip() == "None"
