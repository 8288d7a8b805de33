"""Run untrusted code: every process that executes student code goes through this module.

Three modes, reported with every result (``Completed.isolation``):

``bwrap`` (the default wherever bubblewrap runs)
    The command runs under bubblewrap, started as a direct child of the caller (an exec
    shim, then ``execve``: no shell), with ``--die-with-parent``, ``--unshare-all`` (own
    pid, mount, ipc, uts, cgroup and network namespaces: the network is a loopback device
    of its own), ``--new-session``, ``--cap-drop ALL``, ``--unshare-user --uid 65534 --gid
    65534``, ``--disable-userns`` and ``--clearenv`` plus exactly the caller's ``env``. The
    file system is a read-only skeleton with private ``/proc``, ``/dev`` and ``/tmp``,
    read-only binds of the system (``/usr`` and its links, the loader cache), the Python
    interpreter and the grader's venv, the caller's ``readable`` paths, and read-write
    binds of the caller's ``writable`` paths, all at their own paths. The solution tree,
    the grader's output folder, other submissions and anything else are not there at all.
``user`` (the fallback where namespaces are forbidden, e.g. Docker's default seccomp)
    Gradescope's best practice: the command runs as a dedicated unprivileged user (root
    is needed to switch to it), with a seccomp filter that refuses every socket but unix
    sockets, and only after checking that the user can read none of ``protect`` (the
    solution, the results). The ``writable`` folders are handed to that user (chown).
    The file system is otherwise shared: ``/tmp`` is the machine's.
``none`` (only when asked for by name: ``--no-isolation``, for code you trust)
    The command runs as the caller, with the caps below and nothing else.

In every mode one memory cap and one process cap hold over the whole process tree: a
cgroup where the caller may make one (``kit.isolation_cgroup``), per-process RLIMITs
otherwise (``Completed.cap`` says which). When a run ends, times out or the caller is
killed, nothing of the sandbox survives: bwrap's pid namespace dies with its first
process, and its monitor with the caller; the cgroup is emptied with SIGKILL at the end
of every run in every mode.

A disk cap (``disk_mb``, default ``DISK_MB`` or ``$KIT_SANDBOX_DISK_MB``) bounds what the
tree can write, so that one submission cannot fill the disk the grader and the other
submissions of a batch write to (``disk_cap`` describes it):

* every process of the tree inherits ``RLIMIT_FSIZE`` = ``disk_mb`` (set by the shim, so
  no file grows past it: Python gets ``OSError`` EFBIG, other programs ``SIGXFSZ``);
* bwrap mode (where bwrap has ``--size``): the private ``/tmp`` and every ``scratch``
  folder (a writable folder whose contents the caller never reads, e.g. the kernel's own
  folder) is a tmpfs of ``disk_mb`` inside the sandbox: full is ``ENOSPC``, and nothing of
  it lands on the host's disk (the pages count against the memory cap too);
* the folders the caller reads back (the other ``writable`` ones, every one of them
  outside bwrap mode) are on the host's disk: a thread sums their usage a few times a
  second and kills the whole sandbox once they hold more than ``disk_mb`` together, or
  more than ``MAX_FILES`` entries (``disk_exceeded``, ``disk_reason`` say so).

One-shot commands: ``run(argv, readable=..., writable=..., cwd=..., env=..., memory_mb=...,
max_pids=..., timeout=..., disk_mb=...)``. Long-lived processes (the nbval kernel): a ``Sandbox``
context manager owns the caps and gives the argv that starts a command inside
(``Sandbox.argv``); ``isolated_kernel`` makes nbval start its kernels that way and talk to
them over Jupyter's ``ipc`` transport (unix sockets in a folder bound into the sandbox),
so nbval and the grader's signed records stay outside (``kit/isolation_kernel.py``).
``python -m kit.isolation`` (``kit/isolation_cli.py``) prints which mode and cap this
machine gives, ``--install`` installs bubblewrap where it can, ``--measure`` times the cost.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from course.processes import pid_alive
from kit.errors import KitError
from kit.isolation_cgroup import TreeCap, create_cap

MODES = ("bwrap", "user", "none")
SANDBOX_UID = 65534  # the identity inside bwrap: "nobody"
SANDBOX_USER = os.environ.get("KIT_SANDBOX_USER", "kit-sandbox")  # the ``user`` mode's user
OUTPUT_LIMIT = 4_000_000  # bytes of stdout (and of stderr) kept from one run
MIB = 1024 * 1024
# What a sandbox may write, by default: a notebook run writes a few MB (caches, a
# checkpoint), the hidden checks' results less. $KIT_SANDBOX_DISK_MB overrides it.
DISK_MB = 512
DISK_ENV = "KIT_SANDBOX_DISK_MB"
MAX_FILES = 20_000  # entries in the watched folders (each costs an inode on the host)
# Seconds between two sums of the watched folders: at least WATCH_INTERVAL, and at least
# WATCH_SHARE times what the last sum took (a folder of many files costs more to sum).
# A writer filling the page cache at 1-2 GB/s gets about 20-40 MB past the cap.
WATCH_INTERVAL = 0.02
WATCH_SHARE = 4
SHIM = Path(__file__).resolve().parent / "isolation_shim.py"
KERNEL_PLUGIN = Path(__file__).resolve().parent / "isolation_kernel.py"
SHIM_FAILED = 125  # the shim's exit status when it could not set the sandbox up
PRIVATE_PREFIX = "kit-iso-etc-"  # a sandbox's own /etc/passwd and /etc/group, in the temp dir
STARTED_FILE = "started"  # in that folder: "pid start-time" of each process a shim started
INSTALL_COMMAND = "apt-get install -y bubblewrap"
# Every bwrap run: namespaces, no capabilities, an unprivileged identity, no nested
# user namespaces (a way back to capabilities), a new session (no TIOCSTI into the
# caller's terminal), and death with the caller.
BWRAP_FLAGS = (
    "--die-with-parent", "--unshare-all", "--new-session", "--cap-drop", "ALL",
    "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
    "--disable-userns", "--clearenv", "--hostname", "sandbox",
)


class IsolationError(KitError):
    """The sandbox could not be set up (a problem of the machine or the caller, never of
    the code that was to run in it)."""


class IsolationUnavailableError(IsolationError):
    """The mode asked for cannot run on this machine; the message names the fix."""


@dataclass(frozen=True)
class Completed:
    """What a sandboxed command did.

    ``returncode`` is the command's exit status (128 + N when signal N ended it, as bwrap
    reports it; negative when the caller killed it at the timeout). ``stdout`` and
    ``stderr`` keep at most ``OUTPUT_LIMIT`` bytes each (head and tail, ``truncated``
    says so). ``cap`` is ``"cgroup v1"``, ``"cgroup v2"`` or ``"rlimit"``;
    ``memory_exceeded`` and ``pids_exceeded`` say the cap refused something (cgroups
    only: an RLIMIT shows as the command's own MemoryError or failed fork).
    ``disk_exceeded``: the disk watch killed it (``disk_reason``: ``"disk: wrote more
    than N MB"``); a full tmpfs or ``RLIMIT_FSIZE`` shows as the command's own OSError.
    """

    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool
    isolation: str
    cap: str
    memory_exceeded: bool = False
    pids_exceeded: bool = False
    truncated: bool = False
    seconds: float = 0.0
    disk_exceeded: bool = False  # the disk watch stopped it (``disk_reason`` says why)
    disk_reason: str = ""


# ---------------------------------------------------------------------------------------
# What this machine offers
# ---------------------------------------------------------------------------------------

def install_hint() -> str:
    """The one command that installs bubblewrap here (with sudo when not root)."""
    return INSTALL_COMMAND if os.geteuid() == 0 else f"sudo {INSTALL_COMMAND}"


def ensure_bwrap(install: bool = True) -> str:
    """The path of ``bwrap``; installs Debian's package with apt-get when it is missing,
    ``install`` is true and this process is root. Raises ``IsolationUnavailableError`` naming
    the command to run otherwise."""
    found = shutil.which("bwrap")
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq",
                                                      "bubblewrap"]):
            subprocess.run(step, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, check=False)
        found = shutil.which("bwrap")
        if found:
            _probe_bwrap.cache_clear()
            return found
    raise IsolationUnavailableError(f"bubblewrap (bwrap) is not installed; run: {install_hint()}")


def _try_bwrap(mounts: list[str]) -> tuple[str, str] | None:
    """Start ``true`` under bwrap with our flags and ``mounts``: None when it ran, else
    ``(stage, detail)``: ("missing", ""), ("start", the OS error) or ("failed", the last
    line bwrap printed, or its exit status)."""
    found = shutil.which("bwrap")
    if not found:
        return "missing", ""
    argv = [found, *BWRAP_FLAGS, *mounts, "--", "/usr/bin/true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=30, env={})
    except (OSError, subprocess.TimeoutExpired) as error:
        return "start", str(error)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        return "failed", message[-1] if message else f"exit status {done.returncode}"
    return None


@functools.cache
def _probe_bwrap() -> str | None:
    """Why bwrap cannot run here (None when it can): start ``true`` with every flag we use."""
    problem = _try_bwrap(_system_mounts())
    if problem is None:
        return None
    stage, detail = problem
    if stage == "missing":
        return f"bubblewrap (bwrap) is not installed; run: {install_hint()}"
    if stage == "start":
        return f"bwrap could not start: {detail}"
    if "disable-userns" in detail:
        detail += " (bubblewrap 0.8 or newer is needed)"
    return f"bwrap cannot make a sandbox here: {detail}"


@functools.cache
def _bwrap_size_problem() -> str | None:
    """Why bwrap cannot size a tmpfs here (``--size``, bubblewrap 0.5 and later), or None."""
    problem = _try_bwrap(_system_mounts(MIB))
    if problem is None:
        return None
    stage, detail = problem
    if stage == "missing":
        return "bubblewrap (bwrap) is not installed"
    if stage == "start":
        return f"bwrap could not start: {detail}"
    return f"this bwrap cannot size a tmpfs ({detail}; --size needs bubblewrap 0.5 or newer)"


def default_disk_mb() -> int:
    """The disk cap when the caller gives none: ``$KIT_SANDBOX_DISK_MB``, else ``DISK_MB``."""
    text = os.environ.get(DISK_ENV, "").strip()
    if not text:
        return DISK_MB
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{DISK_ENV}={text!r}: expected a whole number of MB, 1 or more")
    return int(text)


def disk_cap(mode: str, disk_mb: int | None = None) -> str:
    """One line: how ``disk_mb`` (default: ``default_disk_mb()``) is enforced in ``mode``."""
    megabytes = default_disk_mb() if disk_mb is None else disk_mb
    watch = (f"a watch that stops the sandbox when the folders the grader reads hold more "
             f"than {megabytes} MB or {MAX_FILES} entries")
    head = f"{megabytes} MB per file (RLIMIT_FSIZE)"
    if mode != "bwrap":
        tmp = "; /tmp is the machine's (per-file cap only)" if mode == "user" else ""
        return f"{head}; {watch} (every writable folder){tmp}"
    problem = _bwrap_size_problem()
    if problem is not None:
        return (f"{head}; {watch} (every writable folder); /tmp bounded by the memory cap "
                f"only: {problem}")
    return (f"{head}; /tmp and scratch folders are {megabytes} MB tmpfs (bwrap --size); "
            f"{watch}")


def _user_problem(user: str) -> str | None:
    if os.geteuid() != 0:
        return "the user mode switches to another user, which needs root"
    try:
        pwd.getpwnam(user)
    except KeyError:
        return (f"no user {user!r}; create it: useradd --system --no-create-home "
                f"--shell /usr/sbin/nologin {user}")
    return None


def unavailable(mode: str, user: str = SANDBOX_USER) -> str | None:
    """Why ``mode`` cannot run on this machine, or None when it can."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "bwrap":
        return _probe_bwrap()
    if mode == "user":
        return _user_problem(user)
    return None


def choose_mode(requested: str | None = None, user: str = SANDBOX_USER) -> str:
    """The mode to use: ``requested`` if it can run, else (None) bwrap, then user.

    ``none`` is never chosen unless requested. Raises ``IsolationUnavailableError`` naming
    the fix when nothing fits.
    """
    if requested is not None:
        problem = unavailable(requested, user)
        if problem:
            raise IsolationUnavailableError(f"isolation {requested!r} is not available: {problem}")
        return requested
    reasons = {mode: unavailable(mode, user) for mode in ("bwrap", "user")}
    for mode, problem in reasons.items():
        if problem is None:
            return mode
    raise IsolationUnavailableError(
        "no isolation for untrusted code on this machine: "
        + "; ".join(f"{mode}: {why}" for mode, why in reasons.items())
        + ". Install bubblewrap, or grade as root with the sandbox user, or (only for "
          "code you trust) turn isolation off (--no-isolation)")


# ---------------------------------------------------------------------------------------
# What the sandbox sees
# ---------------------------------------------------------------------------------------

def _system_mounts(tmp_bytes: int | None = None) -> list[str]:
    """bwrap arguments for the system: /usr read-only, the merged-/usr links, the loader
    cache, and private /proc, /dev and /tmp (a tmpfs of ``tmp_bytes``, when given)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        if os.path.exists(name):
            args += ["--ro-bind", name, name]
    size = [] if tmp_bytes is None else ["--size", str(tmp_bytes)]
    return [*args, "--proc", "/proc", "--dev", "/dev", *size, "--tmpfs", "/tmp"]


def python_executable() -> str:
    """The grader's Python as a path that exists inside the sandbox (``..`` folded)."""
    return os.path.abspath(sys.executable)


def python_paths() -> list[Path]:
    """What the grader's Python needs: the interpreter's installation and the venv, at
    their real paths and at the paths the interpreter is known by (symlinks)."""
    found = set()
    for path in (sys.base_prefix, sys.prefix, Path(sys.executable).resolve().parent.parent):
        found |= {Path(os.path.abspath(path)), Path(path).resolve()}
    return sorted(p for p in found if not _inside(p, Path("/usr")))


def dataset_paths(dataset: str) -> list[Path]:
    """Data the notebooks read besides the venv: the digits ship with scikit-learn (in
    the venv, always bound); CIFAR-10 is the dataset folder when asked for."""
    if dataset == "digits":
        return []
    if dataset == "cifar10":
        from course.data_utils import CIFAR10_FOLDER, datasets_dir

        return [datasets_dir().resolve() / CIFAR10_FOLDER]
    raise ValueError(f"dataset must be 'digits' or 'cifar10', got {dataset!r}")


def minimal_env(home: Path, **extra: str) -> dict[str, str]:
    """The variables every sandboxed Python needs, with ``home`` as HOME (a writable
    folder), plus ``extra``."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLCONFIGDIR": str(home / ".matplotlib"),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        **extra,
    }


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _checked_paths(paths: Iterable[Path | str], what: str) -> list[Path]:
    checked = []
    for path in paths:
        real = Path(path).resolve()
        if not real.exists():
            raise ValueError(f"{what}: {path} does not exist")
        if real == Path("/") or _inside(Path("/tmp"), real) or real in (Path("/proc"),
                                                                          Path("/dev")):
            raise ValueError(f"{what}: {path} would bind the whole system or its private "
                             "/tmp, /proc or /dev; bind a folder of its own")
        checked.append(real)
    return checked


def _check_protected(bound: Sequence[Path], protect: Sequence[Path]) -> None:
    """No bound path may be, or hold, a protected one."""
    for guarded in protect:
        for path in bound:
            if _inside(guarded, path):
                raise IsolationError(f"{path} is bound into the sandbox but holds {guarded}, "
                                     "which the sandbox must not see")


def _user_can_reach(path: Path, uid: int, gids: set[int], want: int) -> bool:
    """Whether ``uid`` may traverse to ``path`` and use it with permission bits ``want``
    (4 read, 2 write, 1 search), by the mode bits (ACLs are not read)."""
    def allowed(info: os.stat_result, bits: int) -> bool:
        if info.st_uid == uid:
            return (info.st_mode >> 6) & bits == bits
        if info.st_gid in gids:
            return (info.st_mode >> 3) & bits == bits
        return info.st_mode & bits == bits

    for folder in reversed(path.parents):
        if not allowed(os.stat(folder), 1):
            return False
    return allowed(os.stat(path), want)


def _remove_stale_private_folders() -> None:
    """Remove the private folders of sandboxes whose process is gone (killed with SIGKILL,
    it could not); the pid in the name tells."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PRIVATE_PREFIX}*-*"):
        owner = folder.name[len(PRIVATE_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not pid_alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)


def _user_identity(user: str) -> tuple[int, int, set[int]]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid, {entry.pw_gid}


def _process_start(pid: int) -> str | None:
    """A process's start time (clock ticks since boot), which tells it from a later
    process given the same pid; None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def folder_usage(folders: Iterable[Path], stop_at_entries: int | None = None
                 ) -> tuple[int, int]:
    """Bytes of disk (allocated blocks: a sparse file counts what it uses) and entries
    under ``folders``, without following links. Stops counting entries past
    ``stop_at_entries`` (a folder of a million files is over the cap whatever its size)."""
    used, entries = 0, 0
    stack = [str(folder) for folder in folders]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as listing:
            for entry in listing:
                entries += 1
                with contextlib.suppress(OSError):
                    used += entry.stat(follow_symlinks=False).st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                if stop_at_entries is not None and entries > stop_at_entries:
                    return used, entries
    return used, entries


class _DiskWatch:
    """Sums the usage of the folders a sandbox shares with the host a few times a second
    and calls ``stop`` once they hold more than ``megabytes`` or ``MAX_FILES`` entries.

    A watch, not a file system limit: a writer gets one interval of writing past the cap
    (``WATCH_INTERVAL``, longer when summing takes long) before it is killed. It is for
    the folders that must stay on the host (the grader reads them); the others are a
    tmpfs of their own size in bwrap mode.
    """

    def __init__(self, folders: Sequence[Path], megabytes: int,
                 stop: Callable[[], object]) -> None:
        self.folders, self.megabytes, self.stop = list(folders), megabytes, stop
        self.reason = ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name="kit-isolation-disk-watch")
        self._thread.start()

    def check(self) -> str:
        """Sum now; the reason to stop (empty while within the caps)."""
        used, entries = folder_usage(self.folders, stop_at_entries=MAX_FILES)
        if used > self.megabytes * MIB:
            return f"disk: wrote more than {self.megabytes} MB"
        if entries > MAX_FILES:
            return f"disk: made more than {MAX_FILES} files and folders"
        return ""

    def _watch(self) -> None:
        pause = WATCH_INTERVAL
        while not self._done.wait(pause):
            started = time.monotonic()
            reason = self.check()
            pause = min(max(WATCH_INTERVAL, WATCH_SHARE * (time.monotonic() - started)), 1.0)
            if reason:
                self.reason = reason
                self.stop()
                return

    def close(self) -> None:
        self._done.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)


# ---------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------

class Sandbox:
    """One sandbox: its caps (a cgroup, owned here), its binds and its environment.

    ``argv(command)`` is how to start ``command`` inside it: run that list directly
    (``subprocess.Popen``, never through a shell) from a thread that outlives the process.
    Every process started that way shares the one memory and process cap and the disk
    cap. ``close()`` (or leaving the ``with`` block) kills whatever is left and removes
    the caps.

    ``writable`` folders are shared with the caller, which may read what the sandbox
    wrote there; ``scratch`` folders are writable too, but the caller never reads them:
    in bwrap mode each is a fresh tmpfs of ``disk_mb`` inside the sandbox (the host's
    folder stays as it was), elsewhere a watched writable folder. ``writable`` (the
    attribute) lists both.
    """

    def __init__(self, *, readable: Sequence[Path | str] = (),
                 writable: Sequence[Path | str] = (), env: Mapping[str, str],
                 memory_mb: int, max_pids: int, cwd: Path | str | None = None,
                 mode: str | None = None, protect: Sequence[Path | str] = (),
                 user: str = SANDBOX_USER, disk_mb: int | None = None,
                 scratch: Sequence[Path | str] = ()) -> None:
        self.mode = choose_mode(mode, user)
        self.disk_mb = default_disk_mb() if disk_mb is None else disk_mb
        if self.disk_mb < 1:
            raise ValueError(f"disk_mb must be positive, got {self.disk_mb}")
        self.readable = _checked_paths(readable, "readable")
        self.scratch = _checked_paths(scratch, "scratch")
        self.writable = [*_checked_paths(writable, "writable"), *self.scratch]
        self.protect = [Path(p).resolve() for p in protect]
        self.cwd = None if cwd is None else Path(cwd).resolve()
        self.env = dict(env)
        self.user = user
        for key in self.env:
            if not key or "=" in key or "\0" in key:
                raise ValueError(f"env: {key!r} is not a variable name")
        self._check_layout()
        self._watch: _DiskWatch | None = None
        self._cap: TreeCap = create_cap(memory_mb, max_pids)
        _remove_stale_private_folders()
        self._private = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-"))
        try:
            self._write_identity_files()
            if self.mode == "user":
                self._hand_writable_to_user()
        except BaseException:
            self.close()
            raise
        self._restart_watch()

    # -- set-up --

    def _bound(self) -> list[Path]:
        if self.mode != "bwrap":
            return []
        return [*python_paths(), *self.readable, *self.writable]

    def _check_layout(self) -> None:
        _check_protected(self._bound(), self.protect)
        if self.mode == "bwrap" and self.cwd is not None and not any(
                _inside(self.cwd, p) for p in [*self.readable, *self.writable]):
            raise ValueError(f"cwd: {self.cwd} is not inside a readable or writable path")
        if self.mode == "user":
            uid, _, gids = _user_identity(self.user)
            seen = [p for p in self.protect if p.exists() and _user_can_reach(p, uid, gids, 4)]
            if seen:
                raise IsolationError(
                    f"the sandbox user {self.user!r} can read {', '.join(map(str, seen))}; "
                    f"make it unreadable first, e.g. chmod o-rwx {seen[0]}")

    def _write_identity_files(self) -> None:
        """/etc/passwd and /etc/group of the sandbox: only its own identity."""
        home = self.env.get("HOME", "/tmp")
        (self._private / "passwd").write_text(
            f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{home}:/usr/sbin/nologin\n")
        (self._private / "group").write_text(f"sandbox:x:{SANDBOX_UID}:\n")
        for name in ("passwd", "group"):
            os.chmod(self._private / name, 0o644)
        os.chmod(self._private, 0o755)

    def _tmpfs_scratch(self) -> bool:
        """Whether the scratch folders (and /tmp) are size-capped tmpfs mounts."""
        return self.mode == "bwrap" and _bwrap_size_problem() is None

    def shared(self) -> list[Path]:
        """The writable folders on the host's disk, which the disk watch sums: all of them,
        but the scratch folders where those are a tmpfs (the folders shared inside a
        scratch folder stay)."""
        if not self._tmpfs_scratch():
            return list(self.writable)
        return [p for p in self.writable if p not in self.scratch]

    def _restart_watch(self) -> None:
        if self._watch is not None:
            self._watch.close()
        folders = self.shared()
        self._watch = _DiskWatch(folders, self.disk_mb, self.kill) if folders else None

    def make_scratch(self, folder: Path | str, keep: Sequence[Path | str] = ()) -> None:
        """Turn the writable ``folder`` into scratch (the caller never reads it), but for
        the folders ``keep`` inside it, which stay shared: bound from the host on top of
        the tmpfs (e.g. the kernel's ipc sockets). Call it before ``prefix``."""
        path = Path(folder).resolve()
        if path not in self.writable:
            raise ValueError(f"{folder} is not a writable folder of the sandbox")
        kept = _checked_paths(keep, "keep")
        for inner in kept:
            if inner == path or not _inside(inner, path):
                raise ValueError(f"keep: {inner} is not inside {path}")
        if path not in self.scratch:
            self.scratch.append(path)
        self.writable += [p for p in kept if p not in self.writable]
        self._restart_watch()

    def _hand_writable_to_user(self) -> None:
        uid, gid, gids = _user_identity(self.user)
        for path in self.writable:
            os.chown(path, uid, gid)
            if not _user_can_reach(path, uid, gids, 3):
                raise IsolationError(f"the sandbox user {self.user!r} cannot reach {path}: "
                                     "a folder above it is closed to other users")

    # -- the command line --

    def _bwrap_args(self, status_fd: int | None) -> list[str]:
        args = [shutil.which("bwrap") or "bwrap", *BWRAP_FLAGS]
        for key, value in sorted(self.env.items()):
            args += ["--setenv", key, value]
        tmpfs = self._tmpfs_scratch()
        size = self.disk_mb * MIB
        args += _system_mounts(size if tmpfs else None)
        binds = [(p, "--ro-bind") for p in [*python_paths(), *self.readable]]
        binds += [(p, "--tmpfs" if tmpfs and p in self.scratch else "--bind")
                  for p in self.writable]
        # A folder before what is inside it (a bind inside a scratch tmpfs goes on top).
        for path, kind in sorted(binds, key=lambda b: (b[0].parts, b[1] != "--ro-bind")):
            if kind == "--tmpfs":
                args += ["--size", str(size), "--tmpfs", str(path)]
            else:
                args += [kind, str(path), str(path)]
        for name in ("passwd", "group"):
            args += ["--ro-bind", str(self._private / name), f"/etc/{name}"]
        args += ["--remount-ro", "/"]  # the skeleton root: only /tmp and writable are not
        if self.cwd is not None:
            args += ["--chdir", str(self.cwd)]
        if status_fd is not None:
            args += ["--json-status-fd", str(status_fd)]
        return [*args, "--"]

    def _shim_config(self, parent: int) -> dict[str, object]:
        config: dict[str, object] = {
            "parent": parent,
            "cgroup_procs": self._cap.join_files(),
            # Every process of the tree: no file larger than the disk cap.
            "rlimits": {**self._cap.rlimits(), "RLIMIT_FSIZE": self.disk_mb * MIB},
            "umask": 0o077,
            "register": str(self._private / STARTED_FILE),
        }
        if self.mode == "bwrap":
            config["env"] = {}  # bwrap sets the command's environment (--setenv)
            return config
        config.update(env=self.env, cwd=None if self.cwd is None else str(self.cwd))
        if self.mode == "user":
            uid, gid, _ = _user_identity(self.user)
            config.update(user={"uid": uid, "gid": gid}, seccomp=_seccomp_supported())
        return config

    def prefix(self, *, parent: int = 0, status_fd: int | None = None) -> list[str]:
        """The argv that, followed by a command, runs that command inside the sandbox.

        ``parent``: the pid of the process that will start it (0: not checked); the
        sandbox is killed when that process dies. ``status_fd`` (bwrap mode): a file
        descriptor the caller passes on, where bwrap reports that the command started.
        """
        shim = [sys.executable, "-I", "-S", str(SHIM), json.dumps(self._shim_config(parent))]
        if self.mode == "bwrap":
            return [*shim, *self._bwrap_args(status_fd)]
        return shim

    def argv(self, command: Sequence[str], *, parent: int = 0) -> list[str]:
        """The full argv that runs ``command`` inside the sandbox."""
        if not command:
            raise ValueError("command: expected a program and its arguments, got nothing")
        return [*self.prefix(parent=parent), *command]

    # -- while and after it runs --

    @property
    def cap(self) -> str:
        """Which cap holds: ``"cgroup v1"``, ``"cgroup v2"`` or ``"rlimit"``."""
        return self._cap.kind

    @property
    def seccomp(self) -> bool:
        """Whether sockets other than unix sockets are refused by a seccomp filter."""
        return self.mode == "user" and _seccomp_supported()

    def pids(self) -> set[int]:
        """The processes of the sandbox now (cgroup caps only; empty otherwise)."""
        return self._cap.pids()

    def memory_exceeded(self) -> bool:
        return self._cap.memory_exceeded()

    def pids_exceeded(self) -> bool:
        return self._cap.pids_exceeded()

    def disk_exceeded(self) -> bool:
        """Whether the disk watch stopped the sandbox (``disk_reason`` says why)."""
        return bool(self.disk_reason)

    @property
    def disk_reason(self) -> str:
        """``"disk: wrote more than N MB"`` (or too many files) once the watch stopped it."""
        return self._watch.reason if self._watch is not None else ""

    def _started(self) -> list[int]:
        """The sandbox's first processes (each shim registers itself before it becomes
        bwrap or the command) that still run: their pid and start time still match."""
        try:
            lines = (self._private / STARTED_FILE).read_text().splitlines()
        except OSError:
            return []
        found = []
        for line in lines:
            with contextlib.suppress(ValueError):
                pid, start = line.split()
                if _process_start(int(pid)) == start:
                    found.append(int(pid))
        return found

    def kill(self) -> bool:
        """SIGKILL every process of the sandbox; False if some could not be found or
        killed. With a cgroup, every process in it; without, the processes the sandbox
        started (bwrap mode: its pid namespace goes with them; other modes: with their
        session)."""
        done = self._cap.kill_all()
        for pid in self._started():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            if self.mode != "bwrap":
                _kill_session(pid)
        return done

    def close(self) -> None:
        """Kill what is left and remove the caps and the sandbox's private files."""
        if self._watch is not None:
            self._watch.close()
        self.kill()
        self._cap.remove()
        shutil.rmtree(self._private, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _seccomp_supported() -> bool:
    """Whether this machine's syscall numbers are known to the shim's filter and the
    kernel has seccomp filters."""
    import platform

    from kit.isolation_shim import SYSCALLS

    status = Path("/proc/self/status").read_text()
    return platform.machine() in SYSCALLS and "Seccomp:" in status


# ---------------------------------------------------------------------------------------
# One-shot commands
# ---------------------------------------------------------------------------------------

class _Capture:
    """Drain a pipe, keeping its first and last ``limit // 2`` bytes."""

    def __init__(self, pipe: object, limit: int) -> None:
        self.head, self.tail, self.limit, self.dropped = bytearray(), bytearray(), limit, 0
        self.thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self.thread.start()

    def _drain(self, pipe: object) -> None:
        with contextlib.suppress(OSError, ValueError), pipe:  # type: ignore[attr-defined]
            while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
                room = max(self.limit // 2 - len(self.head), 0)
                self.head += chunk[:room]
                self.tail += chunk[room:]
                if len(self.tail) > self.limit // 2:
                    self.dropped += len(self.tail) - self.limit // 2
                    del self.tail[:len(self.tail) - self.limit // 2]

    def result(self) -> bytes:
        if not self.dropped:
            return bytes(self.head + self.tail)
        return bytes(self.head) + f"\n[... {self.dropped} bytes cut ...]\n".encode() + bytes(
            self.tail)


def _feed(pipe: object, data: bytes) -> None:
    with contextlib.suppress(OSError, ValueError):
        pipe.write(data)  # type: ignore[attr-defined]
    with contextlib.suppress(OSError, ValueError):
        pipe.close()  # type: ignore[attr-defined]


def _kill_session(session: int) -> None:
    """SIGKILL every process of a session (the modes without a pid namespace or cgroup)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:
                os.kill(int(entry.name), signal.SIGKILL)


def run(argv: Sequence[str], *, readable: Sequence[Path | str], writable: Sequence[Path | str],
        cwd: Path | str, env: Mapping[str, str], memory_mb: int, max_pids: int,
        timeout: float, stdin: bytes | None = None, mode: str | None = None,
        protect: Sequence[Path | str] = (), output_limit: int = OUTPUT_LIMIT,
        user: str = SANDBOX_USER, disk_mb: int | None = None,
        scratch: Sequence[Path | str] = ()) -> Completed:
    """Run ``argv`` as untrusted code and wait for it (at most ``timeout`` seconds).

    ``readable`` and ``writable``: the only paths it sees besides the system and the
    Python of the grader (bwrap mode). ``cwd`` must be inside one of them. ``env``: its
    whole environment (``minimal_env`` is a start). ``memory_mb`` and ``max_pids``: the
    caps over all its processes together; ``disk_mb`` the disk cap (None: the default,
    ``default_disk_mb()``); ``scratch``: writable folders whose contents the caller does not
    read (a tmpfs inside the sandbox in bwrap mode). ``protect``: paths it must never see (a bound
    path holding one is an error; in the user mode, one the user could read is an error).
    ``mode``: ``"bwrap"``, ``"user"``, ``"none"`` or None for the best available.

    Raises ``IsolationError`` (``IsolationUnavailableError``) when the sandbox cannot be made;
    anything the command does, including crashing, hanging or exhausting its caps, is in
    the returned ``Completed``.
    """
    started = time.monotonic()
    with Sandbox(readable=readable, writable=writable, env=env, memory_mb=memory_mb,
                 max_pids=max_pids, cwd=cwd, mode=mode, protect=protect, user=user,
                 disk_mb=disk_mb, scratch=scratch) as box:
        # bwrap writes {"child-pid": N} here once the command has started: a status of 1
        # without it is bwrap's own failure, not the command's.
        status_read, status_write = os.pipe()
        watched = box.mode == "bwrap"
        command = [*box.prefix(parent=os.getpid(), status_fd=status_write if watched else None),
                   *argv]
        try:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={},
                pass_fds=(status_write,) if watched else (), start_new_session=True)
        except OSError:
            os.close(status_read)
            raise
        finally:
            os.close(status_write)
        out, err = _Capture(proc.stdout, output_limit), _Capture(proc.stderr, output_limit)
        status = _Capture(os.fdopen(status_read, "rb"), 4096)
        if stdin is not None:
            threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True).start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()  # bwrap's monitor: the pid namespace goes with it
            proc.wait()
        box.kill()
        if box.mode != "bwrap":
            _kill_session(proc.pid)
        for capture in (out, err, status):
            capture.thread.join(timeout=5)
        started_ok = b"child-pid" in status.result()
        stderr = err.result()
        _raise_if_not_started(box.mode, proc.returncode, started_ok, stderr, timed_out)
        return Completed(
            returncode=proc.returncode, stdout=out.result(), stderr=stderr,
            timed_out=timed_out, isolation=box.mode, cap=box.cap,
            memory_exceeded=box.memory_exceeded(), pids_exceeded=box.pids_exceeded(),
            truncated=bool(out.dropped or err.dropped),
            seconds=round(time.monotonic() - started, 3),
            disk_exceeded=box.disk_exceeded(), disk_reason=box.disk_reason)


def _raise_if_not_started(mode: str, returncode: int, started_ok: bool, stderr: bytes,
                          timed_out: bool) -> None:
    """Tell a sandbox that never started (the machine's problem) from a failed command."""
    text = stderr.decode(errors="replace").strip()
    if returncode == SHIM_FAILED and text.startswith("isolation shim:"):
        raise IsolationError(text.splitlines()[0])
    if mode == "bwrap" and not started_ok and not timed_out:
        raise IsolationError(f"bwrap could not start the sandbox: {text[-500:]}")


# ---------------------------------------------------------------------------------------
# nbval's kernel inside the sandbox
# ---------------------------------------------------------------------------------------

def isolated_kernel(sandbox: Sandbox, control: Path, ipc_dir: Path) -> tuple[list[str],
                                                                              dict[str, str]]:
    """pytest arguments and environment that make an nbval run start its kernels inside
    ``sandbox``, talking over ``ipc`` sockets in ``ipc_dir``.

    ``control`` is a folder of the caller that is on the nbval run's ``PYTHONPATH`` and
    outside the sandbox: the plugin (``kit/isolation_kernel.py``) and its settings are
    copied there. ``ipc_dir`` must be inside one of the sandbox's writable paths (the
    kernel creates its sockets there; nbval connects from outside). When it is inside,
    not equal to, such a folder, that folder is the kernel's own (its home and working
    folder: what it writes there is never read back) and becomes scratch with only
    ``ipc_dir`` shared (``Sandbox.make_scratch``): in bwrap mode a size-capped tmpfs, so
    the student's writes never reach the host's disk, and of that folder the disk watch
    sums ``ipc_dir`` only.
    """
    ipc = Path(ipc_dir).resolve()
    holder = next((p for p in sandbox.writable if _inside(ipc, p)), None)
    if holder is None:
        raise ValueError(f"ipc_dir: {ipc_dir} must be inside one of the sandbox's writable "
                         "paths (the kernel creates its sockets there)")
    if len(str(ipc)) > 80:
        raise ValueError(f"ipc_dir: {ipc_dir} is too long for a unix socket path "
                         f"({len(str(ipc))} characters; at most 80)")
    if holder != ipc and ipc not in sandbox.writable:
        sandbox.make_scratch(holder, keep=[ipc])
    shutil.copy(KERNEL_PLUGIN, control / "isolation_kernel.py")
    settings = control / "isolation_kernel.json"
    settings.write_text(json.dumps({"prefix": sandbox.prefix(), "ipc_dir": str(ipc)}))
    return ["-p", "isolation_kernel"], {"KIT_ISOLATED_KERNEL": str(settings)}


if __name__ == "__main__":  # python -m kit.isolation: see kit/isolation_cli.py
    from kit.isolation_cli import main

    sys.exit(main())
