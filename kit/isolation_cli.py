"""``python -m kit.isolation [--install] [--measure]``: what this machine gives untrusted code.

It prints, for each mode of ``kit.isolation``, whether it can run here (and if not, why
and the fix), the cap that holds over a sandbox's processes, and how the disk cap holds
in the mode that would be chosen. ``--install`` installs
bubblewrap where it can (root with apt-get), otherwise it prints the command.

``--measure`` times, interleaved (plain, isolated, plain, isolated, ...) so that a busy
machine slows both alike, the start of a trivial command (``/usr/bin/true``), of ``python -c pass``,
and of an ipykernel up to its first reply and back down, with and without the sandbox
(the kernel isolated the way nbval's is: bwrap, ipc sockets). Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kit import isolation
from kit.isolation_cgroup import create_cap

REPEAT = 5


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _command(argv: list[str], scratch: Path, isolated: bool) -> Callable[[], object]:
    if not isolated:
        return lambda: subprocess.run(argv, check=True, capture_output=True)

    def sandboxed() -> object:
        done = isolation.run(argv, readable=[], writable=[scratch], cwd=scratch,
                             env=isolation.minimal_env(scratch), memory_mb=1024,
                             max_pids=64, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode(errors="replace"))
        return done

    return sandboxed


def _kernel_round_trip(scratch: Path, isolated: bool) -> None:
    """Start a kernel, wait for its first reply, shut it down (what nbval does per notebook)."""
    from jupyter_client.manager import KernelManager
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

    from kit.isolation_kernel import isolated_manager

    sandbox = None
    manager_class: type = KernelManager
    if isolated:
        ipc = Path(tempfile.mkdtemp(prefix="ipc-", dir=scratch))
        sandbox = isolation.Sandbox(writable=[scratch], cwd=scratch, memory_mb=2048,
                                    max_pids=64, env=isolation.minimal_env(
                                        scratch, IPYTHONDIR=str(scratch / "ipython")))
        manager_class = isolated_manager(KernelManager, sandbox.prefix(), ipc)
    try:
        manager = manager_class(kernel_name=CURRENT_ENV_KERNEL_NAME,
                                kernel_spec_manager=NbvalKernelspecManager())
        manager.start_kernel(cwd=str(scratch), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=False)
    finally:
        if sandbox is not None:
            sandbox.close()


def measure(repeat: int = REPEAT) -> dict[str, tuple[float, float]]:
    """Median seconds (plain, isolated) per case, from ``repeat`` interleaved pairs."""
    python = isolation.python_executable()
    with tempfile.TemporaryDirectory(prefix="kit-iso-measure-") as folder:
        scratch = Path(folder)
        cases: dict[str, Callable[[bool], Callable[[], object]]] = {
            "/usr/bin/true": lambda iso: _command(["/usr/bin/true"], scratch, iso),
            "python -c pass": lambda iso: _command([python, "-c", "pass"], scratch, iso),
            "ipykernel start+stop": lambda iso: lambda: _kernel_round_trip(scratch, iso),
        }
        results = {}
        for name, make in cases.items():
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(repeat):
                for isolated in (False, True):
                    times[isolated].append(_timed(make(isolated)))
            results[name] = (statistics.median(times[False]), statistics.median(times[True]))
    return results


def report(repeat: int = REPEAT) -> str:
    lines = [f"{'case':<22} {'plain s':>8} {'isolated s':>11} {'extra s':>8} {'ratio':>6}"]
    for name, (plain, isolated) in measure(repeat).items():
        lines.append(f"{name:<22} {plain:>8.3f} {isolated:>11.3f} {isolated - plain:>8.3f} "
                     f"{isolated / plain:>6.1f}")
    lines.append(f"(medians of {repeat} interleaved pairs; isolation: "
                 f"{isolation.choose_mode()})")
    return "\n".join(lines)


def status_lines() -> list[str]:
    """What this machine offers, one line per mode, and the cap."""
    lines = []
    for mode in isolation.MODES:
        problem = isolation.unavailable(mode)
        label = "available" if problem is None else f"not available: {problem}"
        if mode == "none":
            label = "only when asked for (--no-isolation; code you trust)"
        lines.append(f"{mode:<6} {label}")
    cap = create_cap(256, 64)
    lines.append(f"cap    {cap.kind}")
    cap.remove()
    try:
        lines.append(f"disk   {isolation.disk_cap(isolation.choose_mode())}")
    except isolation.IsolationUnavailableError:
        lines.append(f"disk   {isolation.disk_cap('none')}")
    except ValueError as error:  # a bad $KIT_SANDBOX_DISK_MB
        lines.append(f"disk   {error}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kit.isolation",
        description="Which isolation this machine gives untrusted code (and install it).")
    parser.add_argument("--install", action="store_true",
                        help=f"install bubblewrap if missing ({isolation.INSTALL_COMMAND}; "
                             "root only)")
    parser.add_argument("--measure", action="store_true",
                        help="time a trivial command and an ipykernel with and without it")
    args = parser.parse_args(argv)
    if args.install:
        try:
            print(f"bwrap: {isolation.ensure_bwrap(install=True)}")
        except isolation.IsolationUnavailableError as error:
            print(f"kit.isolation: {error}", file=sys.stderr)
            return 1
    print("\n".join(status_lines()))
    if args.measure:
        print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
