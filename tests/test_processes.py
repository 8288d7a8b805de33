"""``course.processes.pid_alive``: the test that tells a killed run's temporary files apart."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from course.processes import pid_alive

NOBODY = 65534  # the conventional uid and gid of "nobody"


def test_this_process_is_alive() -> None:
    assert pid_alive(os.getpid())


def test_a_running_child_is_alive_and_a_finished_one_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()  # reaped: the pid no longer names a process
    assert not pid_alive(child.pid)


def test_a_process_we_may_not_signal_counts_as_alive(monkeypatch) -> None:
    """The branch itself: the kernel's refusal (EPERM) means the process exists."""

    def refuse(pid: int, sig: int) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "kill", refuse)
    assert pid_alive(4242)


def _ask_from_another_user(target: int) -> str:
    """Fork a child that drops to uid ``NOBODY`` and asks about ``target``. Returns two
    characters: whether the kernel refused the signal, and pid_alive's answer ("1"/"0");
    "S" when the child could not change its user (no such privilege here)."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never returns into pytest
        answer = b"E"
        try:
            try:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            except OSError:
                answer = b"S"
            else:
                try:
                    os.kill(target, 0)
                    refused = False
                except PermissionError:
                    refused = True
                answer = f"{int(refused)}{int(pid_alive(target))}".encode()
        finally:
            os.write(write_end, answer)
            os._exit(0)
    os.close(write_end)
    try:
        answer = os.read(read_end, 8).decode()
    finally:
        os.close(read_end)
        os.waitpid(child, 0)
    return answer


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_process_of_another_user_counts_as_alive() -> None:
    """For real: a process of another user, which the kernel will not let us signal.

    Root may signal anything, so as root the question is asked by a child that has given
    up root, about this (root) process. Otherwise pid 1 is asked about, when another
    user owns it. Either way the test checks that the refusal really happened, so it
    cannot pass without reaching the branch it is about.
    """
    if os.geteuid() == 0:
        answer = _ask_from_another_user(os.getpid())
        if answer == "S":
            pytest.skip("cannot drop to another user here (no setuid privilege)")
    else:
        if os.stat("/proc/1").st_uid == os.geteuid():
            pytest.skip("pid 1 is ours here: no process of another user to ask about")
        try:
            os.kill(1, 0)
            refused = False
        except PermissionError:
            refused = True
        answer = f"{int(refused)}{int(pid_alive(1))}"
    assert answer == "11", "expected: the signal refused (1) and the process alive (1)"
