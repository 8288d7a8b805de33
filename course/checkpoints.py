"""Solver checkpoints on disk: the file format, safe writes, and the clean-up after a crash.

A checkpoint is one pickle, ``f"{checkpoint_name}_epoch_{epoch}.pkl"``, holding a dict:
``format`` (``CHECKPOINT_FORMAT``) and ``version`` (``CHECKPOINT_VERSION``), then
whatever the Solver put in it (``Solver._checkpoint_state`` says what, and
``Solver.from_checkpoint`` reads it back).

Writes are atomic: the bytes go to a hidden temporary file beside the checkpoint, reach
the disk, and replace the checkpoint in one rename, so a full disk or a Ctrl-C never
leaves a half-written checkpoint. A killed process can leave its temporary file behind;
the next Solver with the same ``checkpoint_name`` removes it (``check_checkpoint_name``).

Only open checkpoints you trust: unpickling can run arbitrary code.
"""

from __future__ import annotations

import os
import pickle
import re
import secrets
import sys
import time
from typing import Any

import numpy as np

from course._checks import invalid
from course.processes import pid_alive

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "STALE_TEMP_AGE",
    "check_checkpoint_name",
    "check_rule_storable",
    "read_checkpoint",
    "remove_stale_checkpoint_temps",
    "rng_from_state",
    "write_atomically",
    "write_checkpoint",
]

CHECKPOINT_FORMAT = "course.solver checkpoint"
CHECKPOINT_VERSION = 1

# ".<prefix>_epoch_<e>.pkl.<pid>.<hex>.tmp": the name write_atomically gives its temp file.
_TEMP_NAME = re.compile(r"^\.(?P<target>.+\.pkl)\.(?P<pid>\d+)\.[0-9a-f]+\.tmp$")
# A temp file whose writer is still alive is not stale, unless it is this old (seconds);
# the pid may have been reused by another process since.
STALE_TEMP_AGE = 24 * 3600


# ---------------------------------------------------------------------------------------
# Before training: fail now rather than after the first epoch
# ---------------------------------------------------------------------------------------


def check_checkpoint_name(name: str | os.PathLike) -> None:
    """The name must end in a file name prefix (not a separator) and its folder must exist
    and accept new files: a probe file is created there and removed again. Temp files
    left by an earlier, killed checkpoint write of the same name are removed (and said).
    """
    text = os.fspath(name)
    if not text or text.endswith(("/", os.sep)) or os.path.basename(text) in ("", ".", ".."):
        raise invalid("Solver", (
            f"checkpoint_name {text!r} must end in a file name prefix, e.g. "
            f"{os.path.join(text.rstrip('/' + os.sep) or '.', 'run')!r}: checkpoints are "
            "written to f'{checkpoint_name}_epoch_{epoch}.pkl'"))
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise invalid("Solver", (
            f"checkpoint_name {text!r}: the folder {os.path.dirname(text) or '.'!r} does "
            "not exist; create it first"))
    probe = os.path.join(folder, f".{os.path.basename(text)}.probe.{os.getpid()}.tmp")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.remove(probe)
    except OSError as error:
        raise invalid("Solver", (
            f"checkpoint_name {text!r}: cannot write files in the folder {folder!r} "
            f"({error.strerror or error}); choose a writable folder")) from None
    for stale in remove_stale_checkpoint_temps(text):
        print(f"Solver: removed {stale}, a temporary file left by an interrupted "
              "checkpoint write", file=sys.stderr)


def check_rule_storable(rule: Any) -> None:
    """A checkpoint stores the update rule by reference (its name, or a module-level
    function); a lambda or a local function cannot be pickled, so say so now."""
    try:
        pickle.dumps(rule)
    except Exception as error:
        raise invalid("Solver", (
            f"update_rule {rule!r} cannot be stored in a checkpoint ({error}); with "
            "checkpoint_name set, pass a rule name or a module-level function")) from None


def remove_stale_checkpoint_temps(checkpoint_name: str | os.PathLike) -> list[str]:
    """Remove temp files of interrupted checkpoint writes of ``checkpoint_name``.

    Only files named like ``write_atomically``'s temp files for this name are touched,
    and only when the process that wrote them is gone (or the file is a day old).
    Returns the paths removed.
    """
    text = os.fspath(checkpoint_name)
    folder = os.path.dirname(os.path.abspath(text))
    prefix = os.path.basename(text) + "_epoch_"
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for entry in names:
        match = _TEMP_NAME.match(entry)
        if not match or not match.group("target").startswith(prefix):
            continue
        path = os.path.join(folder, entry)
        try:
            age = time.time() - os.lstat(path).st_mtime
            if pid_alive(int(match.group("pid"))) and age < STALE_TEMP_AGE:
                continue
            os.remove(path)
        except OSError:
            continue
        removed.append(path)
    return removed


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------


def write_checkpoint(path: str, state: dict[str, Any], epoch: int) -> None:
    """Write ``state``, stamped with the format and version, to ``path`` atomically.

    Raises OSError naming the checkpoint (not the hidden temp file) when it cannot be
    written; ``Solver.train`` has then put the best parameters back (the message says so).
    """
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    try:
        write_atomically(path, payload)
    except OSError as error:
        raise OSError(
            error.errno, f"cannot write the checkpoint {path!r} after epoch {epoch} "
            f"({error.strerror or error}); the best parameters so far were restored "
            "into model.params"
        ) from error


def write_atomically(path: str, payload: Any) -> None:
    """Pickle ``payload`` to ``path`` so that ``path`` is never left half-written.

    The bytes go to a temporary file in the same folder (so that the final rename
    stays on one file system), reach the disk (fsync), and only then replace ``path``
    in one step. If anything fails, the temporary file is removed and ``path`` keeps
    its previous content.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp_path = os.path.join(
        folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    )
    # O_EXCL: never reuse someone else's file; mode 0o666 lets the umask decide, so the
    # checkpoint gets the permissions an ordinary open() would give (mkstemp: 0o600).
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        # BaseException: a Ctrl-C during the write must not leave the temp file either.
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable; not possible on every platform (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The state a Solver wrote to ``path``; ValueError if it is not a readable checkpoint
    of this version (truncated, damaged, another kind of pickle, an older format)."""
    shown = repr(os.fspath(path))
    state = _unpickle(path)
    if not (isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT):
        raise invalid("", f"{shown} is not a Solver checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise invalid("", f"{shown} is a version {state.get('version')} checkpoint; this "
                          f"Solver reads version {CHECKPOINT_VERSION}")
    return state


def _unpickle(path: str | os.PathLike) -> Any:
    """Unpickle ``path``; a truncated or foreign file is a ValueError naming it."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except OSError:
        raise  # missing or unreadable: the OS error already names the file
    except Exception as error:  # pickle raises many unrelated types for bad bytes
        raise invalid("", (
            f"{os.fspath(path)!r} is not a readable Solver checkpoint (truncated, damaged "
            f"or another kind of file: {type(error).__name__}: {error})")) from None


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    """Rebuild a Generator, of the same bit generator kind, from its saved state
    (``generator.bit_generator.state``)."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
