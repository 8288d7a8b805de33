"""The hidden-check worker: runs inside the sandbox, calls the submission's code, sends data.

Started by the grader (``kit.hidden.launcher.launch``) as::

    python -I worker.py CONTROL BOX RESULTS START CASE_SECONDS MEMORY_MB

with ``CONTROL`` holding this file, ``drivers.py``, ``transport.py`` and ``request.npz``
(the cases, as data), ``BOX`` the sandbox whose ``course`` package is the submission's
merged code, and ``RESULTS`` the one folder it may write. It runs the cases from index
``START`` on, in order, each under an alarm of ``CASE_SECONDS`` (and, when
``MEMORY_MB`` is not 0, under an address-space limit set before any student code runs:
the fallback when no sandbox caps the memory), and writes one
``case-NNNN.npz`` per case: ``{"ok": True, "outputs": ...}`` or ``{"ok": False, "error":
"..."}``. What the student's code returned goes through ``transport.encode``, which
turns anything but plain numbers and numeric ndarrays into a "rejected" note.

Nothing here decides anything: this process runs student code, so everything it writes
is evidence for the grader to check, never a verdict.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

MAX_ERROR = 300  # characters of an exception message kept


class CaseTimeout(BaseException):  # not an Exception: student code may catch those
    """Raised by the alarm in the middle of a case that takes too long."""


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout()


def describe_error(error: BaseException, seconds: float) -> str:
    if isinstance(error, CaseTimeout):
        return f"timeout: the case ran longer than {seconds:g} s"
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


class Watchdog:
    """Ends the worker when a case outlives its alarm twice over (student code that
    catches ``BaseException`` in a loop ignores the alarm): the grader then blames that
    case and starts a new worker at the next task."""

    EXIT_STATUS = 124

    def __init__(self, seconds: float) -> None:
        self.limit = 2 * seconds + 1
        self.started: float | None = None
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(0.25)
            started = self.started
            if started is not None and time.monotonic() - started > self.limit:
                os._exit(self.EXIT_STATUS)


def run_case(drivers: Any, case: dict, seconds: float) -> dict:
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        outputs = drivers.run(case["driver"], case["spec"], drivers.resolve)
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {"ok": True, "outputs": outputs}
    except BaseException as error:  # any failure of the student's code
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {"ok": False, "error": describe_error(error, seconds)}


def main(argv: list[str]) -> int:
    control, box, results = Path(argv[0]), Path(argv[1]), Path(argv[2])
    start, seconds, memory_mb = int(argv[3]), float(argv[4]), int(argv[5])
    if memory_mb > 0:  # before any student code: it cannot raise a hard limit again
        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.path[:0] = [str(control), str(box)]
    import drivers  # from CONTROL, put on the path just above
    import transport

    cases = transport.read_message(control / "request.npz")["cases"]
    os.chdir(results)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - what the student prints goes nowhere
    signal.signal(signal.SIGALRM, _alarm)
    watchdog = Watchdog(seconds)
    timed_out: set[str] = set()  # tasks whose code hung once: their later cases would too
    for index in range(start, len(cases)):
        task = cases[index].get("task")
        if task in timed_out:
            result = {"ok": False, "error": "timeout: not run, an earlier case of this task "
                                            "timed out"}
        else:
            watchdog.started = time.monotonic()
            result = run_case(drivers, cases[index], seconds)
            watchdog.started = None
            if str(result.get("error", "")).startswith("timeout:"):
                timed_out.add(task)
        try:
            transport.write_message(results / f"case-{index:04d}.npz", result)
        except BaseException as error:  # e.g. a value that will not encode
            message = {"ok": False, "error": f"the result could not be sent: "
                                             f"{describe_error(error, seconds)}"}
            transport.write_message(results / f"case-{index:04d}.npz", message)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
