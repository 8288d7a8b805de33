"""One memory cap and one process cap over a whole tree of sandboxed processes.

A per-process limit (``RLIMIT_AS``) lets three children take three times the memory, and a
fork bomb is bounded only by the machine. A cgroup counts every process that joins it and
all their descendants together, which is what PrairieLearn's per-container caps give. So
``create_cap`` makes one group per sandbox, below the calling process's own group:

* **cgroup v1**: one group in the ``memory`` hierarchy (``memory.limit_in_bytes``, and
  ``memory.memsw.limit_in_bytes`` where swap accounting exists) and one in the ``pids``
  hierarchy (``pids.max``). Root can create them; this is the case on the grading machine.
* **cgroup v2**: one group with ``memory.max`` (``memory.swap.max`` 0) and ``pids.max``,
  where the controllers are already delegated to the caller's group, or where the caller
  sits in the root group (exempt from v2's no-processes-in-inner-groups rule).
* otherwise **rlimit**: per-process ``RLIMIT_AS`` and ``RLIMIT_NPROC``, set by the exec
  shim (``kit/isolation_shim.py``). Weaker, and said so: the result's ``cap`` is
  ``"rlimit"``. ``RLIMIT_NPROC`` counts processes per user and is not enforced for root.

A process joins by writing its pid into each group's ``cgroup.procs`` (the shim does it
before it becomes bwrap, so nothing runs outside the caps). Groups are named
``kit-iso-<pid>-<token>`` after the creating process: a later run removes groups whose
creator is gone (a grader killed with SIGKILL cannot clean up after itself).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from course.processes import pid_alive

PREFIX = "kit-iso-"
MIB = 1024 * 1024
V1_CONTROLLERS = ("memory", "pids")


@dataclass
class TreeCap:
    """The caps of one sandbox: the groups it made (none for ``rlimit``) and the limits."""

    kind: str  # "cgroup v1", "cgroup v2" or "rlimit"
    memory_mb: int
    max_pids: int
    groups: dict[str, Path] = field(default_factory=dict)  # "memory"/"pids"/"unified" -> dir

    def join_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid into to join every group."""
        return [str(group / "cgroup.procs") for group in self.groups.values()]

    def rlimits(self) -> dict[str, int]:
        """Per-process limits for the shim: no core files ever; the caps when no cgroup."""
        limits = {"RLIMIT_CORE": 0}
        if self.kind == "rlimit":
            limits.update(RLIMIT_AS=self.memory_mb * MIB, RLIMIT_NPROC=self.max_pids)
        return limits

    def pids(self) -> set[int]:
        """Every process in the groups now (pids as this process sees them)."""
        found: set[int] = set()
        for group in self.groups.values():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(line) for line in
                             (group / "cgroup.procs").read_text().split())
        return found

    def kill_all(self, timeout: float = 5.0) -> bool:
        """SIGKILL every process of the groups until none is left; False if some remain.

        Repeats because a process may fork between the read and the kill; the pids cap
        bounds how many it can make.
        """
        unified = self.groups.get("unified")
        if unified is not None and (unified / "cgroup.kill").exists():  # v2, Linux 5.14+
            with contextlib.suppress(OSError):
                (unified / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + timeout
        while True:
            left = self.pids()
            if not left:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def memory_exceeded(self) -> bool:
        """Whether the kernel had to kill a process of the sandbox for memory."""
        if "unified" in self.groups:
            return _event_count(self.groups["unified"] / "memory.events", "oom_kill") > 0
        if "memory" in self.groups:
            return _event_count(self.groups["memory"] / "memory.oom_control", "oom_kill") > 0
        return False

    def pids_exceeded(self) -> bool:
        """Whether a fork was refused because the sandbox had ``max_pids`` processes."""
        group = self.groups.get("unified") or self.groups.get("pids")
        return group is not None and _event_count(group / "pids.events", "max") > 0

    def remove(self) -> None:
        """Kill what is left and delete the groups (a group with processes cannot go)."""
        self.kill_all()
        for group in self.groups.values():
            _rmdir_when_empty(group)
        self.groups = {}


def create_cap(memory_mb: int, max_pids: int, *, use_cgroups: bool = True,
               proc: Path = Path("/proc/self")) -> TreeCap:
    """Caps for a new sandbox: cgroup v1 or v2 where this process may make groups, else rlimit.

    ``proc`` is where ``cgroup`` and ``mountinfo`` are read (tests point it at fakes).
    """
    if memory_mb < 1 or max_pids < 1:
        raise ValueError(f"memory_mb and max_pids must be positive, got {memory_mb} and "
                         f"{max_pids}")
    if use_cgroups:
        own = own_groups((proc / "cgroup").read_text())
        mounts = cgroup_mounts((proc / "mountinfo").read_text())
        for make in (_make_v1, _make_v2):
            with contextlib.suppress(OSError):
                cap = make(own, mounts, memory_mb, max_pids)
                if cap is not None:
                    return cap
    return TreeCap("rlimit", memory_mb, max_pids)


def own_groups(cgroup_text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as controller -> group path (v2's line under ``"unified"``)."""
    found: dict[str, str] = {}
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            found["unified"] = path
        for name in controllers.split(","):
            if name:
                found[name] = path
    return found


def cgroup_mounts(mountinfo_text: str) -> dict[str, tuple[str, Path]]:
    """Mounted hierarchies: controller (or ``"unified"``) -> (root inside it, mount point)."""
    found: dict[str, tuple[str, Path]] = {}
    for line in mountinfo_text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 3:
            continue
        root, point, fstype, options = fields[3], Path(fields[4]), rest[0], rest[2]
        if fstype == "cgroup2":
            found.setdefault("unified", (root, point))
        elif fstype == "cgroup":
            for name in options.split(","):
                found.setdefault(name, (root, point))
    return found


def remove_stale(parent: Path) -> list[Path]:
    """Delete groups under ``parent`` left by processes that are gone; return them."""
    removed = []
    with contextlib.suppress(OSError):
        for group in parent.iterdir():
            owner = _owner_pid(group.name)
            if owner is None or pid_alive(owner):
                continue
            TreeCap("stale", 0, 0, {"stale": group}).kill_all(timeout=2.0)
            if _rmdir_when_empty(group):
                removed.append(group)
    return removed


def _owner_pid(name: str) -> int | None:
    if not name.startswith(PREFIX):
        return None
    pid = name[len(PREFIX):].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _group_dir(mounts: dict[str, tuple[str, Path]], controller: str, own_path: str) -> Path:
    """The folder of this process's own group in ``controller``'s hierarchy."""
    root, point = mounts[controller]
    inside = own_path
    if root != "/" and (own_path == root or own_path.startswith(root.rstrip("/") + "/")):
        inside = own_path[len(root):]  # the mount shows only part of the hierarchy
    return point / inside.lstrip("/")


def _new_name() -> str:
    return f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"


def _make_v1(own: dict[str, str], mounts: dict[str, tuple[str, Path]], memory_mb: int,
             max_pids: int) -> TreeCap | None:
    if not all(c in own and c in mounts for c in V1_CONTROLLERS):
        return None
    name = _new_name()
    cap = TreeCap("cgroup v1", memory_mb, max_pids)
    try:
        for controller in V1_CONTROLLERS:
            parent = _group_dir(mounts, controller, own[controller])
            remove_stale(parent)
            group = parent / name
            group.mkdir()
            cap.groups[controller] = group
        limit = str(memory_mb * MIB)
        (cap.groups["memory"] / "memory.limit_in_bytes").write_text(limit)
        memsw = cap.groups["memory"] / "memory.memsw.limit_in_bytes"
        if memsw.exists():  # swap accounting: the cap covers memory + swap
            memsw.write_text(limit)
        (cap.groups["pids"] / "pids.max").write_text(str(max_pids))
    except OSError:
        cap.remove()
        raise
    return cap


def _make_v2(own: dict[str, str], mounts: dict[str, tuple[str, Path]], memory_mb: int,
             max_pids: int) -> TreeCap | None:
    if "unified" not in own or "unified" not in mounts:
        return None
    parent = _group_dir(mounts, "unified", own["unified"])
    enabled = (parent / "cgroup.subtree_control").read_text().split()
    if not {"memory", "pids"} <= set(enabled):
        offered = (parent / "cgroup.controllers").read_text().split()
        if own["unified"] != "/" or not {"memory", "pids"} <= set(offered):
            return None  # an inner group with processes cannot enable controllers
        (parent / "cgroup.subtree_control").write_text("+memory +pids")
    remove_stale(parent)
    group = parent / _new_name()
    group.mkdir()
    cap = TreeCap("cgroup v2", memory_mb, max_pids, {"unified": group})
    try:
        (group / "memory.max").write_text(str(memory_mb * MIB))
        swap = group / "memory.swap.max"
        if swap.exists():
            swap.write_text("0")
        (group / "pids.max").write_text(str(max_pids))
    except OSError:
        cap.remove()
        raise
    return cap


def _event_count(path: Path, key: str) -> int:
    """The number after ``key`` in a ``key value`` per line file (0 when absent)."""
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
    return 0


def _rmdir_when_empty(group: Path, timeout: float = 2.0) -> bool:
    """rmdir a group; the kernel refuses while a killed process is still being reaped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            group.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
