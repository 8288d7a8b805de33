"""What isolation costs: ``python -m kit.isolation --measure``.

Times, interleaved (plain, isolated, plain, isolated, ...) so that a busy machine slows
both alike, the start of a trivial command (``/usr/bin/true``), of ``python -c pass``,
and of an ipykernel up to its first reply and back down, with and without the sandbox
(the kernel isolated the way nbval's is: bwrap, ipc sockets). Prints medians and ratios.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kit import isolation

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
