"""Whether a process still runs: how the kit tells a killed run's temporary files from a
live run's.

Temporary files and folders (a checkpoint being written, a release or a site being
built) carry the pid of the process that made them. The next run removes those whose
process is gone; ``pid_alive`` is the one test for that, shared by the Solver and the
instructor tools.
"""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists (ours, or someone else's we may not signal).

    When the answer cannot be known, it is True: keeping a stale file is harmless,
    removing a live run's file is not.
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: an existence check, nothing is sent
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists but belongs to another user, or cannot tell
    return True
