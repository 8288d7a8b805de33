"""``course.processes.pid_alive``: the test that tells a killed run's temporary files apart."""

from __future__ import annotations

import os
import subprocess
import sys

from course.processes import pid_alive


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


def test_a_process_of_another_user_counts_as_alive() -> None:
    # pid 1 always exists; signalling it may be refused, which must still mean "alive"
    assert pid_alive(1)
