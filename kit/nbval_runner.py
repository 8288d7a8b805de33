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

from kit import isolation
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
    isolation: str | None = None  # kit.isolation mode; None: the best this machine has


@dataclass(frozen=True)
class CellRecord:
    """What the report plugin said about one cell (signature checked)."""

    cell: int  # nbval's code-cell index
    outcome: str  # "passed", "failed" or "skipped"
    when: str = "call"
    message: str = ""  # pytest's report of a failure
    expected: str = ""  # the text the reference output printed
    actual: str = ""  # the text this run printed


@dataclass
class NotebookRun:
    """The outcome of one notebook's run: its verified records, and whether it ended well."""

    records: dict[int, CellRecord] = field(default_factory=dict)
    problem: Reason | None = None  # why the run stopped early or ended abnormally
    seconds: float = 0.0
    isolation: str | None = None  # how the kernel was isolated: "bwrap", "user", "none"
    cap: str | None = None  # which cap held over its processes: "cgroup v1", "rlimit", ...
    memory_exceeded: bool = False  # the cap killed a process of the kernel's tree


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
        max_pids=limits.max_pids, mode=mode,
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
        "-p", "nbval.plugin", "-p", "nbval_report", *(plugins or []), "--nbval",
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
    cannot give the isolation ``limits`` asks for (before anything runs)."""
    begun = time.monotonic()
    left = deadline - begun
    if left <= 0:
        return NotebookRun(problem=Reason(
            FailureKind.WALL_CLOCK, "wall-clock limit reached before this notebook started"))
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
    finally:
        sandbox.close()
        shutil.rmtree(control, ignore_errors=True)
    text = b"".join(received).decode("utf-8", errors="replace")
    return NotebookRun(read_records(text, key), problem, round(time.monotonic() - begun, 1),
                       sandbox.mode, sandbox.cap, memory_exceeded)


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
        found[int(record["cell"])] = CellRecord(
            int(record["cell"]), str(record.get("outcome", "")), str(record.get("when", "")),
            str(record.get("message", "")), str(record.get("expected", "")),
            str(record.get("actual", "")))
    return found


# -- what a record means ------------------------------------------------------------------


def reason_of(record: CellRecord | None, problem: Reason | None, limits: Limits,
              memory_exceeded: bool = False) -> Reason | None:
    """Why a cell did not pass (None when it passed), with the kind of failure.

    ``memory_exceeded``: the sandbox's memory cap killed a process of the kernel's tree
    during the run (so a kernel that died, died of that)."""
    if record is None:
        return problem or Reason(FailureKind.NOT_RUN,
                                 "no result (the run stopped before this cell)")
    if record.outcome == "passed":
        return None
    if record.outcome == "skipped":
        return Reason(FailureKind.SKIPPED, "skipped")
    message = ANSI.sub("", record.message)
    if ("kernel died" in message or "Kernel dead" in message) and memory_exceeded:
        return Reason(FailureKind.MEMORY, f"memory: the code's processes needed more than "
                                          f"the {limits.memory_mb} MB limit together")
    if "kernel died" in message or "Kernel dead" in message:
        return Reason(FailureKind.KERNEL_DIED,
                      "kernel died (the student's code ended the Python process)")
    if "MemoryError" in record.actual or "MemoryError" in message:
        return Reason(FailureKind.MEMORY,
                      f"memory: the code needed more than the {limits.memory_mb} MB limit")
    if "Timeout of" in message:
        return Reason(FailureKind.TIMEOUT,
                      f"timeout: the cell ran longer than {limits.cell_timeout:g} s")
    if "Cell execution caused an exception" in message:
        errors = [ln for ln in record.actual.splitlines()
                  if re.match(r"\w+(Error|Exception)?: ", ln)]
        return Reason(FailureKind.ERROR,
                      f"error: {errors[-1] if errors else 'the cell raised an exception'}")
    if "Cell outputs differ" in message:
        return Reason(FailureKind.WRONG_OUTPUT, "wrong output")
    return Reason(FailureKind.FAILED, "failed")
