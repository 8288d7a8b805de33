"""Run nbval over one notebook of a sandbox, under limits, and read its signed results.

The grader's side of ``kit/nbval_report.py``. ``run_notebook`` starts ``pytest --nbval``
in a process of its own with settings the grader controls (its own ``-c`` config,
``--noconftest``, no plugin autoloading, no cache, the kit's sanitize file), a per-cell
timeout, a wall-clock deadline and an address-space limit (``RLIMIT_AS``) that every
process of the run inherits. nbval runs outside the student's reach; its kernel, which
runs the student's code, starts inside an isolation sandbox (``kit.isolation``: bubblewrap,
or the fallback the machine allows, or none when ``Limits.isolation`` says so) that sees
the sandbox's ``course/`` read-only and one scratch folder, with one memory and process
cap over all its processes; they talk over Jupyter's ``ipc`` transport. When the run
ends, or its deadline passes, nbval's process tree is killed and the sandbox emptied.

Per-cell results never come from the run's stdout: the report plugin writes one record
per cell to a pipe the student's code cannot reach, each signed with an HMAC whose key
arrives through another pipe; ``read_records`` keeps only records whose signature checks
out. ``reason_of`` turns a record (or its absence) into a ``Reason`` that carries its
kind: what nbval and pytest say is interpreted here, once.

**A dead kernel costs only its cell.** nbval runs a notebook in one kernel, so when the
student's code ends the kernel's process (``os._exit``, the memory cap, a hang nbval had
to stop), every later cell would find it dead and lose its verdict. ``run_notebook``
therefore reads from the records which cell the kernel died in (it was alive when the
cell started and dead when it ended), keeps that cell's verdict (kernel died, and why:
the memory cap, the exit status), and runs the notebook again from the top in a fresh
nbval run (a new kernel in a new sandbox with the same caps, a new key) with that cell
tagged ``nbval-skip``; cells that needed its results then fail on their own. It restarts
at most ``Limits.restarts`` times per notebook, all runs within the one wall-clock
deadline. **The first verdict stands**: a cell's verdict comes from the first run that
executed it with a live kernel, so a rerun cannot change the verdict of a cell decided
before the death (only cells that never got one are filled in). Cells that never ran
because of a death read ``not run: kernel died in <check> (task X)``, or, once the
restarts are used up, ``not run: the kernel died N times, first in ...``
(``NotebookRun.reason``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from course.rubric import CHECKS
from kit import isolation
from kit import notebooks as nbs
from kit.reports import ANSI, FailureKind, Reason

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = Path(__file__).resolve().parent / "nbval_report.py"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 60.0  # seconds per cell
    wall: float = 600.0  # seconds for the whole submission
    memory_mb: int = 3072  # per process (address space), and over the kernel's whole tree
    max_pids: int = 256  # processes and threads of the kernel's tree together
    disk_mb: int | None = None  # what a sandbox may write; None: kit.isolation's default
    isolation: str | None = None  # kit.isolation mode; None: the best this machine has
    restarts: int = 3  # fresh kernels per notebook after the kernel died in a cell


@dataclass(frozen=True)
class CellRecord:
    """What the report plugin said about one cell (signature checked)."""

    cell: int  # nbval's code-cell index
    outcome: str  # "passed", "failed" or "skipped"
    when: str = "call"
    message: str = ""  # pytest's report of a failure
    expected: str = ""  # the text the reference output printed
    actual: str = ""  # the text this run printed
    alive_before: bool = True  # the kernel was running when the cell started
    alive_after: bool = True  # ... and when it ended
    exit_code: int | None = None  # the dead kernel's exit status, when known

    @property
    def found_dead_kernel(self) -> bool:
        """The cell was to run but the kernel was dead when it started: this record is no
        verdict on the cell (a rerun may give it one)."""
        return self.when == "call" and not self.alive_before and self.outcome != "skipped"


@dataclass(frozen=True)
class Death:
    """A cell the kernel died in: the grader kept its verdict and reran without it."""

    cell: int  # nbval's code-cell index (-1: a cell of the grader's own, renumbered away)
    label: str  # how reports name it: "svm-loss (task 1.6)", 'code cell 2 under "Setup"'
    cause: str  # why, as far as known: "the memory cap of 2048 MB", "exit status 0"
    memory: bool = False  # the sandbox's memory cap killed a process during that run
    kind: FailureKind = FailureKind.KERNEL_DIED  # the cell's own verdict's kind
    disk: str = ""  # the disk watch's reason, when it stopped that run's sandbox


@dataclass
class NotebookRun:
    """The outcome of one notebook's runs (one, plus one per kernel restart): the verdict
    of each cell, the cells the kernel died in, and whether the last run ended well."""

    records: dict[int, CellRecord] = field(default_factory=dict)
    problem: Reason | None = None  # why the run stopped early or ended abnormally
    seconds: float = 0.0
    isolation: str | None = None  # how the kernel was isolated: "bwrap", "user", "none"
    cap: str | None = None  # which cap held over its processes: "cgroup v1", "rlimit", ...
    memory_exceeded: bool = False  # the cap killed a process of the kernel's tree
    deaths: list[Death] = field(default_factory=list)  # in the order they happened
    restarts: int = 0  # fresh kernels started after a death
    gave_up: bool = False  # the kernel died again once the restarts allowed were used up
    disk: str = ""  # "disk: wrote more than N MB" when the disk watch stopped a run

    def reason(self, cell: int, limits: Limits) -> Reason | None:
        """Why code cell ``cell`` did not pass (None when it passed): its own verdict, or,
        for a cell that never ran because of a death, which death."""
        record = self.records.get(cell)
        death = next((d for d in self.deaths if d.cell == cell), None)
        if death is not None:
            return reason_of(record, None, limits, death.memory, death.disk)
        if record is not None or not self.deaths:
            return reason_of(record, self.problem, limits, disk=self.disk)
        if self.gave_up and len(self.deaths) > 1:
            first = self.deaths[0]
            text = (f"not run: the kernel died {len(self.deaths)} times, first in "
                    f"{first.label} ({first.cause})")
        else:
            text = f"not run: kernel died in {self.deaths[-1].label}"
        if self.problem is not None:  # the rerun stopped too (e.g. the wall-clock limit)
            return Reason(self.problem.kind, f"{text}; then {self.problem.text}")
        return Reason(FailureKind.NOT_RUN, text)

    def restart_note(self, notebook: str) -> str | None:
        """One sentence for the reports on the kernel's deaths and restarts (None: none)."""
        if not self.deaths:
            return None
        where = "; then in ".join(f"{d.label}: {d.cause}" for d in self.deaths)
        text = f"{notebook}: the kernel died in {where}."
        if self.restarts:
            text += (f" The grader started a fresh kernel and ran the notebook again from "
                     f"the top without that cell ({self.restarts} restart"
                     f"{'s' if self.restarts != 1 else ''}): cells decided before a death "
                     "keep their first verdict, and cells that needed the skipped cell's "
                     "results fail on their own.")
        if self.gave_up:
            text += (f" The restarts allowed ({self.restarts}) were used up: the cells "
                     "after the last death were not run.")
        return text


# -- the limits ----------------------------------------------------------------------------

# Sets the limits, then becomes the real command. (Popen's preexec_fn would do the same,
# but it is unsafe in a threaded program, and --jobs grades in threads.)
_LIMIT_SHIM = (
    "import os, resource, sys\n"
    "limit = int(sys.argv[1]) * 1024 * 1024\n"
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def with_limits(cmd: list[str], megabytes: int) -> list[str]:
    """``cmd`` run under an address-space limit that every process it starts inherits."""
    return [sys.executable, "-c", _LIMIT_SHIM, str(megabytes), *cmd]


def kill_tree(pid: int) -> None:
    """Kill a process and every descendant (the kernel runs in a session of its own)."""
    try:
        import psutil
    except ImportError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return
    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        procs = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


# -- one run -------------------------------------------------------------------------------


def _control_dir(base: Path) -> Path:
    """A folder outside the sandbox with the plugin, the sanitize file and empty configs."""
    control = Path(tempfile.mkdtemp(prefix="kit-grade-control-", dir=base))
    shutil.copy(PLUGIN, control / "nbval_report.py")
    shutil.copy(SANITIZE, control / "sanitize.cfg")
    (control / "pytest.ini").write_text("[pytest]\naddopts =\n")
    for sub in ("ipython", "jupyter-config", "jupyter-runtime"):
        (control / sub).mkdir()
    return control


def _env(box: Path, control: Path, dataset: str) -> dict[str, str]:
    """nbval's environment. The sandbox's package is not on its path (only the kernel,
    inside the sandbox, imports the student's code)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COURSE_"))}
    env.pop("PYTHONSTARTUP", None)
    env.update(
        PYTHONPATH=str(control),
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        COURSE_DATASET=dataset,
        MPLBACKEND="Agg",
        IPYTHONDIR=str(control / "ipython"),  # no user profile or startup files
        JUPYTER_CONFIG_DIR=str(control / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(control / "jupyter-runtime"),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


def _kernel_env(box: Path, home: Path, dataset: str) -> dict[str, str]:
    """The kernel's whole environment inside the sandbox: the sandbox's package first on
    the path, every config and cache folder in its own writable ``home``."""
    env = isolation.minimal_env(
        home, PYTHONPATH=str(box), PYTHONHASHSEED="0", COURSE_DATASET=dataset,
        MPLBACKEND="Agg", IPYTHONDIR=str(home / "ipython"),
        JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"))
    if dataset == "cifar10":
        from course.data_utils import datasets_dir

        env["COURSE_DATA_DIR"] = str(datasets_dir().resolve())
    return env


def _kernel_sandbox(box: Path, control: Path, workdir: Path, limits: Limits,
                    dataset: str, exports: Path | None = None
                    ) -> tuple[isolation.Sandbox, Path]:
    """The sandbox the notebook's kernel runs in, and the folder for its ipc sockets;
    ``exports``, if given, is writable there too (the grader's export cells)."""
    mode = isolation.choose_mode(limits.isolation)
    home = Path(tempfile.mkdtemp(prefix="kernel-", dir=workdir))
    (home / "ipc").mkdir()
    if mode == "user":
        _let_the_sandbox_user_in(box, workdir)
    sandbox = isolation.Sandbox(
        readable=[box / "course", *isolation.dataset_paths(dataset)],
        writable=[home, *([exports] if exports is not None else [])],
        cwd=home, env=_kernel_env(box, home, dataset), memory_mb=limits.memory_mb,
        max_pids=limits.max_pids, mode=mode, disk_mb=limits.disk_mb,
        protect=[ROOT / "course", ROOT / "notebooks", box / "notebooks", control])
    return sandbox, home / "ipc"


def _let_the_sandbox_user_in(box: Path, workdir: Path) -> None:
    """The ``user`` mode runs the kernel as another user (no namespaces to bind folders
    into): it must reach the sandbox's package and its own folder, and must not read the
    notebooks (their reference outputs) or the control folders. The grader made all of
    these, as private temp folders; ``box.restore()`` recreates them, so this runs before
    each notebook."""
    for folder in (box, workdir):
        folder.chmod(0o711)  # others may pass through to what they are given, not list
    if (box / "notebooks").exists():
        (box / "notebooks").chmod(0o700)
    for path in [box / "course", *(box / "course").rglob("*")]:
        path.chmod(path.stat().st_mode | (0o005 if path.is_dir() else 0o004))


def _pytest_command(box: Path, control: Path, notebook: Path, limits: Limits,
                    plugins: list[str] | None = None) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-c", str(control / "pytest.ini"),
        "--rootdir", str(box), "--noconftest", "-p", "no:cacheprovider",
        "-p", "nbval_report", "-p", "nbval.plugin", *(plugins or []), "--nbval",
        "--nbval-current-env", "--nbval-sanitize-with", str(control / "sanitize.cfg"),
        "--nbval-cell-timeout", str(int(limits.cell_timeout)), "-q", "--tb=short",
        "-W", "ignore", str(notebook),
    ]


def run_notebook(box: Path, name: str, limits: Limits, deadline: float, workdir: Path,
                 dataset: str = "digits", exports: Path | None = None) -> NotebookRun:
    """Run nbval over ``box/notebooks/<name>.ipynb``, its kernel in an isolation sandbox
    with the sandbox's package first on the path; return the verified per-cell records
    and, if the run was stopped or ended abnormally, why. ``exports``: a folder the
    kernel may also write (where ``kit grade``'s export cells put what they export, and
    read the helpers they import from). ``deadline`` is a
    ``time.monotonic()`` value. Raises ``isolation.IsolationError`` when the machine
    cannot give the isolation ``limits`` asks for (before anything runs).

    When the kernel dies in a cell and later cells lost their verdicts, the notebook runs
    again from the top without that cell (at most ``limits.restarts`` times, all before
    ``deadline``); the notebook file is put back as it was at the end. The records merged
    over the runs keep each cell's first verdict (see the module's docstring)."""
    begun = time.monotonic()
    path = box / "notebooks" / f"{name}.ipynb"
    original = path.read_bytes() if path.exists() else None
    result = NotebookRun()
    skipped: list[int] = []
    try:
        while True:
            run = _run_once(box, name, limits, deadline, workdir, dataset, exports,
                            "the rerun" if skipped else "this notebook")
            result.problem, result.isolation, result.cap = run.problem, run.isolation, run.cap
            result.memory_exceeded |= run.memory_exceeded
            result.disk = result.disk or run.disk
            for cell, record in run.records.items():
                if not record.found_dead_kernel and cell not in result.records:
                    # the first verdict stands
                    result.records[cell] = record
            fatal = fatal_cell(run.records)
            if fatal is None or original is None:
                break
            verdict = reason_of(run.records[fatal], None, limits, run.memory_exceeded, run.disk)
            kind = verdict.kind if verdict is not None and verdict.kind in _DEATH_KINDS \
                else FailureKind.KERNEL_DIED  # e.g. it passed, then a thread of it ended it
            result.deaths.append(Death(fatal, cell_label(original, name, fatal),
                                       death_cause(run.records[fatal], run, limits),
                                       run.memory_exceeded, kind, run.disk))
            if run.problem is not None or not _verdicts_lost(run.records, fatal):
                break
            if result.restarts >= limits.restarts:
                result.gave_up = True
                break
            result.restarts += 1
            skipped.append(fatal)
            path.write_text(_without(original, skipped), encoding="utf-8")
    finally:
        if original is not None and skipped:
            path.write_bytes(original)
    result.seconds = round(time.monotonic() - begun, 1)
    return result


_DEATH_KINDS = (FailureKind.KERNEL_DIED, FailureKind.MEMORY, FailureKind.TIMEOUT)


def fatal_cell(records: dict[int, CellRecord]) -> int | None:
    """The cell the kernel died in, or None if it did not die while cells ran: the first
    cell that started with the kernel alive and ended with it dead or, when the kernel
    died between cells (a thread of the student's), the last cell that ran before a cell
    found it dead."""
    last_ran = None
    for cell in sorted(records):
        record = records[cell]
        if record.when != "call":
            continue
        if record.alive_before and not record.alive_after:
            return cell
        if not record.alive_before:
            return last_ran
        if record.outcome != "skipped":
            last_ran = cell
    return None


def _verdicts_lost(records: dict[int, CellRecord], fatal: int) -> bool:
    """Cells after ``fatal`` were to run but found the kernel dead (a rerun would give
    them a verdict)."""
    return any(cell > fatal and record.found_dead_kernel for cell, record in records.items())


def _without(original: bytes, cells: list[int]) -> str:
    """The notebook ``original`` with code cells ``cells`` tagged for nbval to skip."""
    notebook = json.loads(original)
    code = nbs.code_cells(notebook)
    for index in cells:
        nbs.add_tag(code[index].cell, nbs.NBVAL_SKIP)
    return json.dumps(notebook)


def cell_label(original: bytes, notebook: str, index: int) -> str:
    """How reports name code cell ``index``: a check cell by its check name and task,
    another cell by its place under its heading (never by its source, which may be a
    solution's)."""
    code = nbs.code_cells(json.loads(original))
    if not 0 <= index < len(code):
        return f"code cell {index}"
    found = code[index]
    if nbs.is_check(found.cell):
        name = nbs.check_name(found.cell, index)
        task = CHECKS.get(f"{notebook}/{name}")
        return f"{name} (task {task})" if task else name
    if found.cell.get("metadata", {}).get("kit") is True:
        return "a cell of the grader's"
    same = [c for c in code[: index + 1] if c.heading == found.heading]
    where = f' under "{found.heading}"' if found.heading else " before the first heading"
    return f"code cell {len(same)}{where}"


def death_cause(record: CellRecord, run: NotebookRun, limits: Limits) -> str:
    """Why the kernel died in that cell, as far as the grader knows."""
    if run.disk:
        return f"the disk cap ({run.disk})"
    if run.memory_exceeded:
        return f"the memory cap of {limits.memory_mb} MB"
    if "Timeout of" in record.message:
        return (f"it ran longer than {limits.cell_timeout:g} s and did not stop when "
                "interrupted")
    if record.exit_code is not None and record.exit_code < 0:
        return f"the process was killed by signal {-record.exit_code}"
    if record.exit_code is not None:
        return f"the process ended with exit status {record.exit_code}"
    return "the process ended"


def _run_once(box: Path, name: str, limits: Limits, deadline: float, workdir: Path,
              dataset: str, exports: Path | None, what: str = "this notebook"
              ) -> NotebookRun:
    """One nbval run over the notebook as it is on disk: a fresh control folder, sandbox,
    kernel and key (``what``: how a wall-clock problem names the run)."""
    begun = time.monotonic()
    left = deadline - begun
    if left <= 0:
        return NotebookRun(problem=Reason(
            FailureKind.WALL_CLOCK, f"wall-clock limit reached before {what} started"))
    control = _control_dir(workdir)
    sandbox, ipc = _kernel_sandbox(box, control, workdir, limits, dataset, exports)
    try:
        plugins, plugin_env = isolation.isolated_kernel(sandbox, control, ipc)
        key = secrets.token_hex(32)
        cmd = _pytest_command(box, control, box / "notebooks" / f"{name}.ipynb", limits,
                              plugins)
        key_read, key_write = os.pipe()
        os.write(key_write, key.encode())
        os.close(key_write)
        results_read, results_write = os.pipe()
        env = {**_env(box, control, dataset), **plugin_env,
               "KIT_GRADE_KEY_FD": str(key_read), "KIT_GRADE_RESULTS_FD": str(results_write)}
        try:
            proc = subprocess.Popen(
                with_limits(cmd, limits.memory_mb), cwd=control, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True, pass_fds=(key_read, results_write),
            )
        finally:
            os.close(key_read)
            os.close(results_write)
        received: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(results_read, received), daemon=True)
        reader.start()
        problem = _wait(proc, left, limits)
        sandbox.kill()  # anything of the kernel's tree nbval did not stop
        reader.join(timeout=10)
        memory_exceeded = sandbox.memory_exceeded()
        disk = sandbox.disk_reason  # the disk watch stopped the kernel's tree
    finally:
        sandbox.close()
        shutil.rmtree(control, ignore_errors=True)
    text = b"".join(received).decode("utf-8", errors="replace")
    return NotebookRun(read_records(text, key), problem, round(time.monotonic() - begun, 1),
                       sandbox.mode, sandbox.cap, memory_exceeded, disk=disk)


def _wait(proc: subprocess.Popen[bytes], left: float, limits: Limits) -> Reason | None:
    """Wait for the run (at most ``left`` seconds), then kill what is left of its tree."""
    try:
        _, err = proc.communicate(timeout=left)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        proc.communicate()
        return Reason(FailureKind.WALL_CLOCK, f"wall-clock limit of {limits.wall:g} s reached")
    kill_tree(proc.pid)  # a kernel left behind by a crashed run
    if proc.returncode in (0, 1):  # pytest: all passed / some failed
        return None
    tail = ANSI.sub("", err.decode(errors="replace")).strip().splitlines()[-3:]
    return Reason(FailureKind.RUN_ENDED,
                  f"the test run ended with status {proc.returncode}: {' / '.join(tail)}")


def _drain(fd: int, into: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read1(65536):
            into.append(chunk)


def read_records(text: str, key: str) -> dict[int, CellRecord]:
    """The records whose signature checks out, by cell (the last one wins)."""
    found: dict[int, CellRecord] = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            payload, mac = entry["record"], entry["mac"]
        except (ValueError, KeyError, TypeError):
            continue
        good = hmac.new(key.encode(), str(payload).encode(), hashlib.sha256).hexdigest()
        if not (isinstance(mac, str) and hmac.compare_digest(good, mac)):
            continue
        record = json.loads(payload)
        code = record.get("exit_code")
        found[int(record["cell"])] = CellRecord(
            int(record["cell"]), str(record.get("outcome", "")), str(record.get("when", "")),
            str(record.get("message", "")), str(record.get("expected", "")),
            str(record.get("actual", "")), bool(record.get("alive_before", True)),
            bool(record.get("alive_after", True)), code if isinstance(code, int) else None)
    return found


# -- what a record means ------------------------------------------------------------------


def reason_of(record: CellRecord | None, problem: Reason | None, limits: Limits,
              memory_exceeded: bool = False, disk: str = "") -> Reason | None:
    """Why a cell did not pass (None when it passed), with the kind of failure.

    ``memory_exceeded``: the sandbox's memory cap killed a process of the kernel's tree
    during the run (so a kernel that died, died of that). ``disk``: the disk watch's
    reason, when it stopped the run's sandbox (so a kernel that died, died of that)."""
    if record is None:
        return problem or Reason(FailureKind.NOT_RUN,
                                 "no result (the run stopped before this cell)")
    if record.outcome == "passed":
        return None
    if record.outcome == "skipped":
        return Reason(FailureKind.SKIPPED, "skipped")
    message = ANSI.sub("", record.message)
    if ("kernel died" in message or "Kernel dead" in message) and disk:
        return Reason(FailureKind.KERNEL_DIED, f"kernel died ({disk})")
    if ("kernel died" in message or "Kernel dead" in message) and memory_exceeded:
        return Reason(FailureKind.MEMORY, f"memory: the code's processes needed more than "
                                          f"the {limits.memory_mb} MB limit together")
    if "kernel died" in message or "Kernel dead" in message:
        code = record.exit_code
        how = ("the Python process was killed by signal " + str(-code) if code is not None
               and code < 0 else "the student's code ended the Python process"
               + ("" if code is None else f" with exit status {code}"))
        return Reason(FailureKind.KERNEL_DIED, f"kernel died ({how})")
    if "MemoryError" in record.actual or "MemoryError" in message:
        return Reason(FailureKind.MEMORY,
                      f"memory: the code needed more than the {limits.memory_mb} MB limit")
    if "Timeout of" in message:
        return Reason(FailureKind.TIMEOUT,
                      f"timeout: the cell ran longer than {limits.cell_timeout:g} s")
    if "Cell execution caused an exception" in message:
        errors = [ln for ln in record.actual.splitlines()
                  if re.match(r"\w+(Error|Exception)?: ", ln)]
        if errors and re.search(r"\[Errno (27|28)\]", errors[-1]):  # EFBIG, ENOSPC
            return Reason(FailureKind.ERROR, "disk: the code wrote more than the sandbox's "
                                             f"disk cap allows ({errors[-1]})")
        return Reason(FailureKind.ERROR,
                      f"error: {errors[-1] if errors else 'the cell raised an exception'}")
    if "Cell outputs differ" in message:
        return Reason(FailureKind.WRONG_OUTPUT, "wrong output")
    return Reason(FailureKind.FAILED, "failed")
