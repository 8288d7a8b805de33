"""The first program of every sandbox: set up, then become the sandbox (``execve``).

``kit.isolation`` starts it directly (never through a shell) as
``python -I -S isolation_shim.py CONFIG_JSON COMMAND...``. It:

1. asks for SIGKILL when its parent dies, and exits if that parent is already gone
   (bwrap's own ``--die-with-parent`` starts only after this process has become bwrap);
2. joins the sandbox's cgroups (``cgroup_procs``: the files to write its pid into), so
   every process the sandbox ever starts is counted by one memory and one process cap;
3. appends its pid and start time to ``register`` (a file of the grader's, outside the
   sandbox), so the grader can kill the sandbox even where no cgroup holds it (a disk
   watch that trips; the start time tells a reused pid from this process);
4. sets per-process limits (``rlimits``: ``RLIMIT_CORE`` and ``RLIMIT_FSIZE``, the disk
   cap per file, always; the memory and process caps where no cgroup), which every
   process it starts inherits and none can raise;
5. in the ``user`` mode: installs a seccomp filter that refuses every socket but unix
   sockets, drops to the sandbox user (``user``: uid and gid) and sets its umask;
6. changes to ``cwd`` and replaces itself with the command, with exactly ``env``.

``execve`` keeps the pid and the parent: the grader's child is the shim, then bwrap (or
the command), never a shell. It must not import the kit (it runs with ``-I -S``: only the
standard library). A failure before the command starts exits with 125 and a message on
stderr that starts with ``isolation shim:``.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import signal
import struct
import sys

SETUP_FAILED = 125
PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
AF_UNIX = 1
# Per machine: audit architecture, socket(2) and io_uring_setup(2) numbers. io_uring can
# open sockets without calling socket(2), so it is refused too.
SYSCALLS = {
    "x86_64": (0xC000003E, 41, 425),
    "aarch64": (0xC00000B7, 198, 425),
}
X32_BIT = 0x40000000  # x86_64's x32 calls: another way in to socket(2)
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EACCES = 13


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _prctl(libc: ctypes.CDLL, option: int, arg: int | ctypes.c_void_p = 0) -> None:
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}) failed: {os.strerror(errno)}")


def socket_filter(machine: str) -> bytes:
    """A seccomp BPF program: ``socket(2)`` only for ``AF_UNIX``; no io_uring; no other ABI.

    Raises ``KeyError`` for a machine whose syscall numbers are not in ``SYSCALLS``.
    """
    arch, socket_nr, io_uring_nr = SYSCALLS[machine]
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, JMP|JEQ|K, JMP|JGE|K, RET|K
    deny = SECCOMP_RET_ERRNO | EACCES
    program = [
        (ld, 0, 0, 4),  # 0: the call's architecture
        (jeq, 0, 7, arch),  # 1: another ABI (i386 int 0x80): deny
        (ld, 0, 0, 0),  # 2: the call's number
        (jge, 5, 0, X32_BIT),  # 3: x32 numbering: deny
        (jeq, 4, 0, io_uring_nr),  # 4: io_uring_setup: deny
        (jeq, 0, 2, socket_nr),  # 5: not socket: allow
        (ld, 0, 0, 16),  # 6: socket's first argument, the address family
        (jeq, 0, 1, AF_UNIX),  # 7: unix: allow, anything else: deny
        (ret, 0, 0, SECCOMP_RET_ALLOW),  # 8
        (ret, 0, 0, deny),  # 9
    ]
    return b"".join(struct.pack("=HBBI", *op) for op in program)


def install_socket_filter(libc: ctypes.CDLL) -> None:
    """Refuse sockets other than unix sockets for this process and all it starts."""
    code = socket_filter(platform.machine())
    buffer = ctypes.create_string_buffer(code, len(code))
    program = _SockFprog(len(code) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    _prctl(libc, PR_SET_NO_NEW_PRIVS, 1)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"seccomp filter refused: {os.strerror(errno)}")


def _die_with_parent(libc: ctypes.CDLL, parent: int) -> None:
    _prctl(libc, PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent and os.getppid() != parent:
        raise OSError(f"the parent process {parent} is gone")


def _join(files: list[str]) -> None:
    pid = str(os.getpid())
    for path in files:
        with open(path, "w") as handle:
            handle.write(pid)


def _register(path: str) -> None:
    """Append "pid start-time" to ``path`` (one write: lines of concurrent shims stay whole)."""
    with open("/proc/self/stat") as handle:
        start = handle.read().rsplit(")", 1)[1].split()[19]
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(descriptor, f"{os.getpid()} {start}\n".encode())
    finally:
        os.close(descriptor)


def _limit(rlimits: dict[str, int]) -> None:
    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def _become(user: dict[str, int]) -> None:
    os.setgroups([])
    os.setgid(user["gid"])
    os.setuid(user["uid"])  # also clears the parent-death signal: set again below


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    command = argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    _die_with_parent(libc, config.get("parent", 0))
    _join(config.get("cgroup_procs", []))
    if config.get("register"):
        _register(config["register"])
    _limit(config.get("rlimits", {}))
    if config.get("seccomp"):
        install_socket_filter(libc)
    if config.get("user"):
        _become(config["user"])
        _die_with_parent(libc, config.get("parent", 0))
    os.umask(config.get("umask", 0o077))
    if config.get("cwd"):
        os.chdir(config["cwd"])
    env = config.get("env")
    os.execvpe(command[0], command, os.environ if env is None else env)
    return SETUP_FAILED  # not reached: execvpe replaces this process or raises


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, KeyError, ValueError, IndexError) as error:
        sys.stderr.write(f"isolation shim: {error}\n")
        sys.exit(SETUP_FAILED)
