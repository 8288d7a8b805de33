"""What the isolation tests share: a double-forking program, and finding its processes."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

# Python code that leaves a sleeper behind: a grandchild in a session of its own,
# re-parented away from the program, with ``{token}`` as an argument to find it by.
SLEEPER = textwrap.dedent("""
    import os, sys, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)",
                                      "{token}"])
        os._exit(0)
    time.sleep(0.5)  # the grandchild is running by now
    print("forked", flush=True)
""")


def processes_with(token: str) -> list[int]:
    """Pids of every process on the machine with ``token`` as one of its arguments (a
    program that merely mentions it in a longer argument does not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_until_gone(token: str, timeout: float = 5.0) -> list[int]:
    """The processes holding ``token`` still there after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
