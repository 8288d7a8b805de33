"""What a kit command may write: owned output folders and atomic file writes.

The rules of DESIGN.md section 5, in one place for every command (release, site, grade,
verify, port, gradescope):

* **A tool replaces or writes into only a folder it made.** Such a folder holds a stamp
  file (JSON naming the tool). Anything else at that path, a file, a link or a folder
  with someone's files in it, is refused with a message that names what was found.
* **A folder replaced as a whole is built in a temporary sibling and swapped in** at the
  end, so an error or Ctrl-C leaves the previous result as it was. A temporary sibling
  carries its writer's pid in its name (``.NAME.building-PID-xxxx``); the next run removes
  those whose writer is gone, or that are older than a day (pids are reused).
* **A file is written through a temporary file beside it and a rename**, so a reader (or
  a killed run) never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.processes import pid_alive
from kit.errors import KitError

# A temporary sibling is stale after this many seconds even if its pid is alive again.
STALE_AGE = 24 * 3600


class OutputError(KitError):
    """An output path the command may not write; the message names what was found there."""


# -- one file ------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_file(path: Path, *, private: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` on success.

    The temporary file is named ``.NAME.xxxxxxxx.tmp``. It gets the mode of the file it
    replaces, or the default mode for new files (``private``: readable by the owner only).
    On any exception (Ctrl-C included) it is removed and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666))
    try:
        if path.exists() and not private:
            temp.chmod(path.stat().st_mode & 0o7777)
        yield temp
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file and a rename."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(path, private=private) as temp:
        temp.write_bytes(raw)


# -- the stamp that marks a folder as a tool's --------------------------------------------


@dataclass(frozen=True)
class Stamp:
    """The file that marks a folder as written by one tool: ``{"tool": ..., ...}``.

    ``legacy`` lists earlier plain-text contents of the same stamp that still count.
    """

    name: str  # file name inside the folder, e.g. ".kit-site.json"
    tool: str  # e.g. "python -m kit site"
    legacy: tuple[str, ...] = ()

    def read(self, folder: Path) -> dict[str, Any] | None:
        """The stamp's fields if ``folder`` holds this tool's stamp, else None."""
        try:
            text = (folder / self.name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        if text in self.legacy:
            return {"tool": self.tool}
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("tool") == self.tool else None

    def owns(self, folder: Path) -> bool:
        """True if ``folder`` holds this tool's stamp."""
        return self.read(folder) is not None

    def write(self, folder: Path, **fields: Any) -> None:
        """Write the stamp into ``folder`` (the tool's name first, then ``fields``)."""
        text = json.dumps({"tool": self.tool, **fields}) + "\n"
        (folder / self.name).write_text(text, encoding="utf-8")


def describe_contents(folder: Path, shown: int = 5) -> str:
    """``holds 3 entries (a, b, c)``: what a refused folder holds, for the message."""
    names = sorted(p.name for p in folder.iterdir())
    listed = ", ".join(names[:shown]) + (
        f" and {len(names) - shown} more" if len(names) > shown else "")
    return f"holds {len(names)} {'entry' if len(names) == 1 else 'entries'} ({listed})"


# -- refusing what is not ours ------------------------------------------------------------


def refuse_foreign(out: Path, stamp: Stamp, *, option: str = "--out",
                   action: str = "replace it", how: str = "") -> None:
    """Raise ``OutputError`` unless ``out`` is missing, empty, or stamped by ``stamp.tool``.

    A file or a link at ``out`` is always refused (the target of a link is not ours to
    judge). ``action`` says what would have happened (``replace it``, ``write into it``);
    ``how`` is the way out offered to the user.
    """
    tail = f"; refusing to {action}." + (f" {how}" if how else "")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError(f"{option} {out}: exists and is not a plain folder (a file or a "
                          f"link){tail}")
    if out.is_dir() and any(out.iterdir()) and not stamp.owns(out):
        raise OutputError(f"{option} {out}: exists, {describe_contents(out)} and has no "
                          f"{stamp.name} stamp, so '{stamp.tool}' did not create it{tail}")


def refuse_overlap(out: Path, protected: Iterable[tuple[str, Path]], *,
                   option: str = "--out", how: str = "") -> None:
    """Raise ``OutputError`` if ``out`` lies inside a ``.git`` folder, or is (or contains)
    one of the ``protected`` paths, given as ``(what it is, path)`` pairs."""
    target = out.resolve()
    tail = f" {how}" if how else ""
    if ".git" in target.parts or ".git" in out.parts:
        raise OutputError(f"{option} {out}: is inside a .git folder; writing there could "
                          f"corrupt a repository.{tail}")
    for what, path in protected:
        path = path.resolve()
        if path == target:
            raise OutputError(f"{option} {out}: is {what} {path}; replacing it would delete "
                              f"{what}.{tail}")
        if path.is_relative_to(target):
            raise OutputError(f"{option} {out}: is a parent of {what} {path}; replacing it "
                              f"would delete {what}.{tail}")


def claim_folder(out: Path, stamp: Stamp, *, option: str = "--out") -> None:
    """Make ``out`` this tool's folder to write into (reports added file by file): refuse
    a foreign one, create it, and stamp it."""
    refuse_foreign(out, stamp, option=option, action="write into it",
                   how="Choose a new or empty folder.")
    out.mkdir(parents=True, exist_ok=True)
    stamp.write(out)


# -- a folder replaced as a whole ---------------------------------------------------------


@dataclass(frozen=True)
class OwnedFolder:
    """An output folder that a tool replaces as a whole: built beside, then swapped in.

    Temporary siblings: ``.NAME.<verb>-PID-xxxx`` while building, ``.NAME.old-PID-xxxx``
    for the previous folder during the swap.
    """

    out: Path
    stamp: Stamp
    verb: str = "building"

    def _temp_name(self) -> re.Pattern[str]:
        return re.compile(rf"^\.{re.escape(self.out.name)}\.(?P<kind>{re.escape(self.verb)}"
                          r"|old)-(?P<rest>.+)$")

    def stale_temps(self) -> list[Path]:
        """Temporary siblings left by a run that is gone (or that are over a day old).

        Only what is provably this tool's: the writer's pid comes from the name (or, for
        a name without one, from the stamp inside); an ``old-`` folder must hold the stamp.
        """
        pattern, found = self._temp_name(), []
        try:
            entries = sorted(self.out.parent.iterdir())
        except OSError:
            return found
        for entry in entries:
            match = pattern.match(entry.name)
            if not match or entry.is_symlink() or not entry.is_dir():
                continue
            if match["kind"] == "old" and not self.stamp.owns(entry):
                continue
            pid = _pid_of(match["rest"], self.stamp.read(entry))
            if pid is None:
                continue
            if not pid_alive(pid) or time.time() - entry.lstat().st_mtime > STALE_AGE:
                found.append(entry)
        return found

    def remove_stale_temps(self, report: Callable[[Path], None] | None = None) -> list[Path]:
        """Remove ``stale_temps()``; call ``report`` with each one removed."""
        removed = self.stale_temps()
        for entry in removed:
            shutil.rmtree(entry, ignore_errors=True)
            if report is not None:
                report(entry)
        return removed

    @contextlib.contextmanager
    def building(self) -> Iterator[Path]:
        """A fresh temporary sibling to build in; swapped in for ``out`` if the block ends
        normally, removed if it raises (Ctrl-C included)."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.{self.verb}-{os.getpid()}-",
                                     dir=self.out.parent))
        try:
            temp.chmod(0o755)  # mkdtemp makes it private; what we build is meant to be read
            yield temp
            self.swap_in(temp)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise

    def swap_in(self, temp: Path) -> None:
        """Put ``temp`` at ``out``; the previous folder goes only once the new one is in."""
        if not self.out.exists():
            temp.rename(self.out)
            return
        old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
        self.out.rename(old)
        temp.rename(self.out)
        shutil.rmtree(old, ignore_errors=True)


def _pid_of(rest: str, stamp: dict[str, Any] | None) -> int | None:
    """The writer's pid: from ``PID-xxxx`` in the name, else the stamp's ``pid`` field."""
    if match := re.match(r"(\d+)-", rest):
        return int(match.group(1))
    pid = (stamp or {}).get("pid")
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else None
