"""Start the hidden-check worker: the one place that decides how it is isolated.

``launch`` runs a command that executes student code. When ``kit.isolation`` is
importable it is used (bubblewrap: no network, read-only binds of ``readable``, one
writable folder, memory and process caps over the whole tree). Until the integration
makes isolation mandatory, a plain subprocess is the fallback: its own session, a clean
environment, killed with its process group at the end or on timeout (the worker sets its
own address-space limit before running student code). ``Launched.isolation`` says which
was used, so every report can show it. (Where ``kit.isolation`` finds no way to isolate,
the fallback runs too, and ``cap`` says why; the integration makes that an error.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STDERR_KEPT = 2000  # characters of the worker's stderr kept for the instructor


@dataclass(frozen=True)
class Launched:
    """How one worker run ended."""

    returncode: int | None
    timed_out: bool
    stderr: str
    isolation: str  # "bwrap", "user", "none" (kit.isolation) or "subprocess" (fallback)
    cap: str = ""  # which memory/process cap held, as kit.isolation reports it
    memory_exceeded: bool = False  # the sandbox's memory cap stopped it
    disk_reason: str = ""  # the sandbox's disk watch stopped it: "disk: wrote more than N MB"


def _isolation() -> Any:
    try:
        from kit import isolation  # optional until the integration
    except ImportError:
        return None
    return isolation if hasattr(isolation, "run") else None


def launch(argv: Sequence[str], *, readable: Sequence[Path], writable: Sequence[Path],
           cwd: Path, env: dict[str, str], memory_mb: int, max_pids: int,
           timeout: float, protect: Sequence[Path] = (), mode: str | None = None,
           fallback: bool = True, disk_mb: int | None = None) -> Launched:
    """Run ``argv`` (student code inside) to the end or ``timeout``; never raises for
    anything the command does. ``protect``: paths it must never see (the solution tree),
    checked by ``kit.isolation``. ``mode``: the isolation mode (None: the best this
    machine has). ``fallback``: where no isolation can be had, run a plain subprocess
    (tools, tests) instead of raising ``kit.isolation``'s error (grading). ``disk_mb``:
    the sandbox's disk cap (None: ``kit.isolation``'s default)."""
    isolation = _isolation()
    if isolation is not None:
        try:
            done = isolation.run(list(argv), readable=list(readable), writable=list(writable),
                                 cwd=cwd, env=env, memory_mb=memory_mb, max_pids=max_pids,
                                 timeout=timeout, mode=mode, **_protect(isolation, protect),
                                 **({} if disk_mb is None else {"disk_mb": disk_mb}))
        except getattr(isolation, "IsolationUnavailableError", ()) as error:
            if not fallback:
                raise
            plain = _subprocess(argv, cwd=cwd, env=env, timeout=timeout)
            return dataclasses.replace(plain, cap=f"no isolation here: {error}"[:300])
        return Launched(done.returncode, bool(done.timed_out), _tail(done.stderr),
                        str(done.isolation), str(getattr(done, "cap", "")),
                        bool(getattr(done, "memory_exceeded", False)),
                        str(getattr(done, "disk_reason", "")))
    if not fallback:
        raise RuntimeError("kit.isolation is not importable: student code cannot be isolated")
    return _subprocess(argv, cwd=cwd, env=env, timeout=timeout)


def chosen_mode(requested: str | None) -> str | None:
    """The isolation mode ``launch`` will use (None: no isolation here)."""
    isolation = _isolation()
    if isolation is None:
        return None
    try:
        return str(isolation.choose_mode(requested))
    except getattr(isolation, "IsolationUnavailableError", ()):
        return None


def open_for_sandbox_user(box: Path, workdir: Path) -> None:
    """In the ``user`` mode the worker runs as another user, with no namespace to bind
    folders into: it must reach the sandbox's package, the control folder and its results
    folder, and nothing else of the sandbox (its notebooks hold reference outputs). The
    notebook runner opens the sandbox the same way; the control files are opened here."""
    from kit.nbval_runner import _let_the_sandbox_user_in

    _let_the_sandbox_user_in(box, workdir)
    for path in (workdir / "control").iterdir():
        path.chmod(0o644)


def _protect(isolation: Any, protect: Sequence[Path]) -> dict[str, Any]:
    """``protect=`` for an isolation module that knows it."""
    wanted = "protect" in inspect.signature(isolation.run).parameters
    return {"protect": list(protect)} if wanted and protect else {}


def _tail(text: Any) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = str(text or "")
    return text[-STDERR_KEPT:]


def _subprocess(argv: Sequence[str], *, cwd: Path, env: dict[str, str],
                timeout: float) -> Launched:
    proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    timed_out = False
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        _, err = proc.communicate()
    _kill_group(proc.pid)  # anything the worker left running in its session
    return Launched(proc.returncode, timed_out, _tail(err), "subprocess")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
