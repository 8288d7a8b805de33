"""The ``user`` fallback (no namespaces): a dedicated user, unreadable source, no sockets.

It needs root (to switch users) and a Python the sandbox user can reach: the system's
``/usr/bin/python3`` (the grader's venv may sit in a folder other users cannot open, as
it does under /root here, which is the kind of thing the mode's checks report). The
tests use the machine's ``nobody`` as the sandbox user.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from isolation_helpers import SLEEPER, wait_until_gone

from kit import isolation

SYSTEM_PYTHON = Path("/usr/bin/python3")
USER = "nobody"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the user mode switches users: needs root"),
    pytest.mark.skipif(not SYSTEM_PYTHON.exists(),
                       reason="no /usr/bin/python3 for the sandbox user to run"),
]


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A folder the sandbox user can reach (pytest's tmp_path is closed to other users)."""
    folder = Path(tempfile.mkdtemp(prefix="kit-iso-test-", dir="/tmp"))
    folder.chmod(0o711)  # others may pass through, not list
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_as_user(folder: Path, code: str, protect: list[Path]) -> isolation.Completed:
    scratch = folder / "scratch"
    scratch.mkdir(exist_ok=True)
    return isolation.run(
        [str(SYSTEM_PYTHON), "-c", textwrap.dedent(code)], readable=[], writable=[scratch],
        cwd=scratch, env={"PATH": "/usr/bin:/bin", "HOME": str(scratch)}, memory_mb=512,
        max_pids=32, timeout=30, mode="user", user=USER, protect=protect)


def test_runs_as_the_user_without_sockets_or_the_protected_tree(public_tmp):
    solution = public_tmp / "solution"
    solution.mkdir(mode=0o700)
    (solution / "layers.py").write_text("answer = 42\n")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        done = run_as_user(public_tmp, f"""
            import json, os, socket
            found = {{"uid": os.getuid()}}
            def attempt(name, action):
                try:
                    found[name] = repr(action())
                except Exception as error:
                    found[name] = type(error).__name__
            attempt("tcp", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
            attempt("inet6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
            attempt("unix", lambda: socket.socket(socket.AF_UNIX).close())
            attempt("solution", lambda: open({str(solution / 'layers.py')!r}).read())
            attempt("scratch", lambda: open("notes.txt", "w").write("mine"))
            print(json.dumps(found))
        """, protect=[solution])
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()
    found = json.loads(done.stdout)
    assert done.isolation == "user"
    assert found["uid"] == 65534
    assert found["tcp"] == "PermissionError"  # the seccomp filter: EACCES
    assert found["inet6"] == "PermissionError"
    assert found["unix"] == "None"  # unix sockets stay allowed (Jupyter's ipc transport)
    assert found["solution"] == "PermissionError"
    assert found["scratch"] == "4"


def test_refuses_when_the_user_could_read_a_protected_path(public_tmp):
    readable_solution = public_tmp / "solution"
    readable_solution.mkdir(mode=0o755)
    with pytest.raises(isolation.IsolationError, match="can read"):
        run_as_user(public_tmp, "print(1)", protect=[readable_solution])


def test_a_double_forked_sleeper_is_killed_at_the_end(public_tmp):
    token = secrets.token_hex(8)
    done = run_as_user(public_tmp, SLEEPER.format(token=token), protect=[])
    assert done.stdout.strip() == b"forked"
    if done.cap == "rlimit":
        pytest.skip("no cgroup here: a process that left the session is not found")
    assert wait_until_gone(token, timeout=2) == []
