"""The isolation sandbox against hostile code (bwrap mode), one test per escape.

Each test runs a small hostile program through ``kit.isolation.run`` and checks three
things from outside: what the sandbox did to the attempt (the program reports it), that
the grader's files and listener saw nothing, and that no process of the sandbox is left.
The tests skip, saying why, only where bubblewrap cannot run.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from isolation_helpers import SLEEPER, processes_with, wait_until_gone

from kit import isolation
from kit.isolation_cgroup import PREFIX

ROOT = Path(__file__).resolve().parents[2]
SOLUTION_FILE = ROOT / "course" / "layers.py"
PYTHON = isolation.python_executable()

pytestmark = pytest.mark.skipif(isolation.unavailable("bwrap") is not None,
                                reason=f"bubblewrap cannot run here: "
                                       f"{isolation.unavailable('bwrap')}")


def hostile(tmp_path: Path, code: str, *, readable: list[Path] = (), timeout: float = 60,
            memory_mb: int = 1024, max_pids: int = 64, **env: str) -> isolation.Completed:
    """Run Python ``code`` in a sandbox whose only writable folder is ``tmp_path/scratch``."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return isolation.run(
        [PYTHON, "-c", ATTEMPT + textwrap.dedent(code)], readable=list(readable),
        writable=[scratch], cwd=scratch, env=isolation.minimal_env(scratch, **env),
        memory_mb=memory_mb, max_pids=max_pids, timeout=timeout, protect=[ROOT / "course"])


def report(done: isolation.Completed) -> dict:
    """The JSON the hostile program printed last."""
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


# Every hostile program starts with this: ``attempt`` records what an action returned, or
# the name of the error it raised, in ``found``.
ATTEMPT = """
import json, os, sys
found = {}
def attempt(name, action):
    try:
        found[name] = repr(action())
    except Exception as error:
        found[name] = type(error).__name__
"""


def test_runs_as_nobody_without_capabilities_and_with_only_its_environment(tmp_path):
    done = hostile(tmp_path, """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        found["uid"] = os.getuid()
        found["caps"] = [status[k].strip() for k in ("CapEff", "CapPrm", "CapBnd")]
        found["new_userns"] = libc.unshare(0x10000000)  # CLONE_NEWUSER: a way to new caps
        found["env"] = sorted(os.environ)
        for fd in os.listdir("/proc/self/fd"):  # the listing's own descriptor is gone
            attempt(f"fd {fd}", lambda: os.readlink(f"/proc/self/fd/{fd}"))
        print(json.dumps(found))
    """, SECRET_OF_THE_TEST="x")
    found = report(done)
    assert done.isolation == "bwrap"
    assert found["uid"] == isolation.SANDBOX_UID
    assert found["caps"] == ["0000000000000000"] * 3
    assert found["new_userns"] == -1
    assert "SECRET_OF_THE_TEST" in found["env"]  # given, so there
    assert not {"PYTHONPATH", "VIRTUAL_ENV", "PYTEST_CURRENT_TEST"} & set(found["env"])
    # stdin, stdout and stderr only: bwrap's status pipe and the grader's are not inherited
    open_fds = {k for k, v in found.items() if k.startswith("fd ") and "Error" not in v}
    assert open_fds == {"fd 0", "fd 1", "fd 2"}, found


def test_the_solution_tree_and_other_processes_are_not_there(tmp_path):
    grader_tree = tmp_path / "grader"
    grader_tree.mkdir()
    (grader_tree / "solution.py").write_text("secret = 42\n")
    done = hostile(tmp_path, f"""
        attempt("layers", lambda: open({str(SOLUTION_FILE)!r}).read(100))
        attempt("grader", lambda: open({str(grader_tree / 'solution.py')!r}).read())
        attempt("root_listing", lambda: sorted(os.listdir({str(ROOT)!r})))
        attempt("grader_cmdline", lambda: open("/proc/{os.getpid()}/cmdline").read())
        attempt("grader_cwd", lambda: os.readlink("/proc/{os.getpid()}/cwd"))
        found["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        seen = []
        for top, dirs, files in os.walk({str(ROOT)!r}):
            dirs[:] = [d for d in dirs if d != ".venv"]
            seen += [os.path.join(top, f) for f in files]
        found["tree_files"] = seen
        print(json.dumps(found))
    """)
    found = report(done)
    assert found["layers"] == "FileNotFoundError"
    assert found["grader"] == "FileNotFoundError"
    assert found["root_listing"] == "['.venv']"  # the venv runs the code; nothing else
    assert found["tree_files"] == []
    assert found["grader_cmdline"] == "FileNotFoundError"  # its own pid namespace
    assert found["grader_cwd"] == "FileNotFoundError"
    assert found["pids"] == [1, 2]  # bwrap's init and the program itself


def test_writes_reach_only_the_scratch_folder(tmp_path):
    token = secrets.token_hex(8)
    readonly = tmp_path / "notebooks"
    readonly.mkdir()
    (readonly / "given.txt").write_text("given\n")
    before = SOLUTION_FILE.read_bytes()
    home = Path.home()
    done = hostile(tmp_path, f"""
        def write(path):
            with open(path, "a") as handle:
                handle.write("written by the sandbox\\n")
            return "written"
        attempt("tmp", lambda: write("/tmp/{token}"))
        attempt("host_home", lambda: write({str(home / token)!r}))
        attempt("solution", lambda: write({str(SOLUTION_FILE)!r}))
        attempt("readable", lambda: write({str(readonly / 'given.txt')!r}))
        attempt("root", lambda: write("/{token}"))
        attempt("scratch", lambda: write("{token}"))
        print(json.dumps(found))
    """, readable=[readonly])
    found = report(done)
    assert found["tmp"] == "'written'"  # its own /tmp, gone with it
    assert found["scratch"] == "'written'"
    assert found["readable"] == "OSError"  # read-only bind: EROFS
    assert found["host_home"] in {"OSError", "FileNotFoundError"}
    assert found["solution"] in {"OSError", "FileNotFoundError"}
    assert found["root"] == "OSError"
    assert not Path(f"/tmp/{token}").exists()
    assert not (home / token).exists()
    assert SOLUTION_FILE.read_bytes() == before
    assert (readonly / "given.txt").read_text() == "given\n"
    assert (tmp_path / "scratch" / token).exists()


def test_a_double_forked_sleeper_dies_with_the_run(tmp_path):
    token = secrets.token_hex(8)
    done = hostile(tmp_path, SLEEPER.format(token=token))
    assert done.stdout.strip() == b"forked"
    assert wait_until_gone(token, timeout=2) == []


def test_a_run_that_times_out_leaves_nothing(tmp_path):
    token = secrets.token_hex(8)
    done = hostile(tmp_path, SLEEPER.format(token=token) + "time.sleep(300)\n", timeout=3)
    assert done.timed_out
    assert wait_until_gone(token, timeout=2) == []


def test_nothing_survives_when_the_caller_is_killed(tmp_path):
    token = secrets.token_hex(8)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    caller = textwrap.dedent(f"""
        from pathlib import Path
        from kit import isolation
        code = {(SLEEPER.format(token=token) + "time.sleep(300)").strip()!r}
        scratch = Path({str(scratch)!r})
        isolation.run([isolation.python_executable(), "-c", code], readable=[],
                      writable=[scratch], cwd=scratch, env=isolation.minimal_env(scratch),
                      memory_mb=512, max_pids=32, timeout=300)
    """)
    grader = subprocess.Popen([PYTHON, "-c", caller], cwd=ROOT)
    deadline = time.monotonic() + 30
    while not processes_with(token) and time.monotonic() < deadline:
        assert grader.poll() is None, "the grader stopped before its sandbox started"
        time.sleep(0.05)
    assert processes_with(token), "the sleeper never started"
    groups = list(Path("/sys/fs/cgroup").glob(f"*/**/{PREFIX}{grader.pid}-*"))
    private = list(Path(tempfile.gettempdir()).glob(
        f"{isolation.PRIVATE_PREFIX}{grader.pid}-*"))
    assert len(private) == 1
    os.kill(grader.pid, signal.SIGKILL)
    grader.wait()
    assert wait_until_gone(token) == []
    # Its cgroups outlive it (nobody could remove them); the next sandbox removes them.
    with isolation.Sandbox(env={}, memory_mb=64, max_pids=8, writable=[scratch]) as box:
        assert len(groups) == (2 if box.cap == "cgroup v1" else 1 if box.cap == "cgroup v2"
                               else 0)
    assert [group for group in groups if group.exists()] == []
    assert not private[0].exists()


def test_the_network_is_a_loopback_of_its_own(tmp_path):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    seen: list[object] = []

    def accept() -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not stop.is_set():
            try:
                seen.append(listener.accept())
            except TimeoutError:
                continue

    stop = threading.Event()
    watcher = threading.Thread(target=accept)
    watcher.start()
    try:
        done = hostile(tmp_path, f"""
            import socket
            attempt("tcp", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3))
            attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    .sendto(b"x", ("10.0.0.1", 53)))
            found["devices"] = [line.split(":")[0].strip()
                                for line in open("/proc/net/dev").readlines()[2:]]
            print(json.dumps(found))
        """)
    finally:
        stop.set()
        watcher.join()
        listener.close()
    found = report(done)
    assert found["tcp"] == "ConnectionRefusedError"  # its 127.0.0.1 is not ours
    assert found["udp"] == "OSError"  # network unreachable
    assert found["devices"] == ["lo"]
    assert seen == []


def test_one_memory_cap_over_three_children(tmp_path):
    # Three children each try to touch 1.4 GB (4.2 GB in all) under a 1 GB cap.
    done = hostile(tmp_path, """
        import os, sys
        children = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                try:
                    blocks = []
                    for _ in range(14):
                        block = bytearray(100 * 2**20)
                        block[::4096] = b"x" * len(range(0, len(block), 4096))
                        blocks.append(block)
                    print("allocated 1.4 GB", flush=True)
                finally:
                    os._exit(0)
            children.append(pid)
        print([os.waitpid(pid, 0)[1] for pid in children], flush=True)
    """, memory_mb=1024, timeout=120)
    assert b"allocated" not in done.stdout
    if done.cap.startswith("cgroup"):
        assert done.memory_exceeded
    print(f"cap: {done.cap}; child statuses: {done.stdout.decode().strip()}")


def test_a_fork_bomb_meets_the_process_cap(tmp_path):
    token = secrets.token_hex(8)
    with isolation.Sandbox(env={}, memory_mb=64, max_pids=8) as probe:
        if probe.cap == "rlimit" and os.geteuid() == 0:
            pytest.skip("no cgroup here, and RLIMIT_NPROC does not bind root: no process cap")
    done = hostile(tmp_path, f"""
        import os, time
        first, refused = os.getpid(), 0
        while refused < 20 or os.getpid() != first:
            try:
                os.fork()
            except OSError:
                refused += 1
                time.sleep(0.01)
        print("fork refused", {token!r}, flush=True)
    """, max_pids=40, timeout=30)
    assert b"fork refused" in done.stdout
    assert done.pids_exceeded
    assert not done.timed_out
    assert wait_until_gone(token, timeout=2) == []


def test_killing_its_parents_kills_nothing_outside(tmp_path):
    done = hostile(tmp_path, f"""
        import signal
        attempt("grader", lambda: os.kill({os.getpid()}, signal.SIGKILL))
        attempt("grader_group", lambda: os.killpg({os.getpgrp()}, signal.SIGKILL))
        attempt("parent", lambda: os.kill(os.getppid(), signal.SIGKILL))
        attempt("everyone", lambda: os.kill(-1, signal.SIGKILL))  # all it may signal
        print(json.dumps(found), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    found = json.loads(done.stdout.decode().strip())
    assert found["grader"] == "ProcessLookupError"  # not in its pid namespace
    assert found["grader_group"] == "ProcessLookupError"
    assert found["parent"] == "None"  # bwrap's init ignores it
    assert found["everyone"] == "ProcessLookupError"  # nobody else in its namespace
    assert done.returncode == 128 + signal.SIGKILL


def test_setup_problems_are_errors_not_results(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        isolation.run(["true"], readable=[tmp_path / "missing"], writable=[], cwd=tmp_path,
                      env={}, memory_mb=64, max_pids=8, timeout=5)
    with pytest.raises(isolation.IsolationError, match="holds"):
        isolation.run(["true"], readable=[ROOT], writable=[], cwd=ROOT, env={}, memory_mb=64,
                      max_pids=8, timeout=5, protect=[ROOT / "course"])
    with pytest.raises(ValueError, match="cwd"):
        isolation.run(["true"], readable=[], writable=[tmp_path], cwd=ROOT, env={},
                      memory_mb=64, max_pids=8, timeout=5)


def test_output_is_capped_and_stdin_is_fed(tmp_path):
    small = isolation.run([PYTHON, "-c", "import sys; print(sys.stdin.read())"],
                          readable=[], writable=[tmp_path], cwd=tmp_path, env={}, memory_mb=256,
                          max_pids=8, timeout=30, stdin=b"hello", output_limit=1000)
    assert small.stdout == b"hello\n"
    big = isolation.run([PYTHON, "-c", "print('x' * 100000)"], readable=[],
                        writable=[tmp_path], cwd=tmp_path, env={}, memory_mb=256, max_pids=8,
                        timeout=30, output_limit=1000)
    assert big.truncated and len(big.stdout) < 1100 and b"bytes cut" in big.stdout


def test_none_is_used_only_when_asked_for(tmp_path):
    assert isolation.choose_mode(None) == "bwrap"
    done = isolation.run(["/usr/bin/id", "-u"], readable=[], writable=[tmp_path], cwd=tmp_path,
                         env={}, memory_mb=256, max_pids=8, timeout=30, mode="none")
    assert done.isolation == "none"
    assert done.stdout.strip() == str(os.geteuid()).encode()
