"""nbval outside, its kernel inside the sandbox, talking over Jupyter's ipc transport.

One nbval run over a small notebook built here: the kernel's cells show it runs as the
sandbox user, sees neither the solution nor nbval's control folder, and has no network;
a cell that hangs is interrupted (by message: a signal would not reach the kernel's pid
namespace) and the next cells still run, each with its own verdict. The grader's report
hook (``kit/nbval_report.py``) runs in nbval's process and sends its records through a
pipe the kernel cannot reach.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from kit import isolation

ROOT = Path(__file__).resolve().parents[2]
SOLUTION_FILE = ROOT / "course" / "layers.py"

pytestmark = pytest.mark.skipif(isolation.unavailable("bwrap") is not None,
                                reason=f"bubblewrap cannot run here: "
                                       f"{isolation.unavailable('bwrap')}")


def notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook of code cells with their stored stdout, as nbval compares them."""
    nb = nbformat.v4.new_notebook()
    for number, (source, printed) in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=number)
        if printed:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
        nb.cells.append(cell)
    return nb


def probe_cells(control: Path) -> list[tuple[str, str]]:
    return [
        ("import os, socket\nprint(os.getuid())", f"{isolation.SANDBOX_UID}\n"),
        (f"print(os.path.exists({str(SOLUTION_FILE)!r}), os.path.exists({str(control)!r}))",
         "False False\n"),
        ("try:\n    socket.create_connection(('127.0.0.1', 22), timeout=2)\n"
         "except OSError as error:\n    print(type(error).__name__)",
         "ConnectionRefusedError\n"),
        ("import time\ntime.sleep(120)", ""),  # times out: the kernel must be interrupted
        ("print('still answering')", "still answering\n"),
        ("print('not what was stored')", "stored\n"),  # fails on its own, not "skipped"
    ]


def run_nbval(tmp_path: Path, box: isolation.Sandbox, nb_path: Path, control: Path,
              ipc: Path) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    """nbval with the isolated kernel and the grader's report hook; the hook's records."""
    shutil.copy(ROOT / "kit" / "nbval_report.py", control / "nbval_report.py")
    (control / "pytest.ini").write_text("[pytest]\naddopts =\n")
    args, env = isolation.isolated_kernel(box, control, ipc)
    key_read, key_write = os.pipe()
    os.write(key_write, b"k" * 32)
    os.close(key_write)
    results_read, results_write = os.pipe()
    env.update(PATH=os.environ["PATH"], PYTHONPATH=str(control), HOME=str(tmp_path),
               PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", KIT_GRADE_KEY_FD=str(key_read),
               KIT_GRADE_RESULTS_FD=str(results_write),
               JUPYTER_RUNTIME_DIR=str(control / "runtime"))
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(os.fdopen(results_read, "rb")
                                                              .read()))
    reader.start()
    try:
        done = subprocess.run(
            [isolation.python_executable(), "-m", "pytest", "-c", str(control / "pytest.ini"),
             "-p", "no:cacheprovider", "--noconftest", "-p", "nbval.plugin",
             "-p", "nbval_report", *args, "--nbval", "--nbval-current-env",
             "--nbval-cell-timeout", "5", "-q", str(nb_path)],
            cwd=control, env=env, capture_output=True, text=True, timeout=300,
            pass_fds=(key_read, results_write))
    finally:
        os.close(key_read)
        os.close(results_write)
        reader.join(timeout=30)
    records = [json.loads(json.loads(line)["record"])
               for line in b"".join(received).decode().splitlines()]
    return done, records


def layout(tmp_path: Path) -> dict[str, Path]:
    """The folders of one isolated nbval run: nbval's control folder (outside), the
    kernel's scratch and ipc folders (writable inside), the notebooks (read-only)."""
    folders = {name: tmp_path / name for name in ("control", "scratch", "ipc", "notebooks")}
    for folder in folders.values():
        folder.mkdir()
    return folders


def sandbox_for(folders: dict[str, Path]) -> isolation.Sandbox:
    scratch = folders["scratch"]
    env = isolation.minimal_env(scratch, IPYTHONDIR=str(scratch / "ipython"),
                                JUPYTER_RUNTIME_DIR=str(scratch / "runtime"))
    return isolation.Sandbox(readable=[folders["notebooks"]],
                             writable=[scratch, folders["ipc"]], env=env, memory_mb=1024,
                             max_pids=64, cwd=folders["notebooks"],
                             protect=[ROOT / "course", folders["control"]])


@pytest.mark.slow  # a whole nbval run
def test_nbval_runs_its_kernel_inside_the_sandbox_over_ipc(tmp_path):
    folders = layout(tmp_path)
    nb_path = folders["notebooks"] / "probe.ipynb"
    nbformat.write(notebook(probe_cells(folders["control"])), nb_path)
    with sandbox_for(folders) as box:
        done, records = run_nbval(tmp_path, box, nb_path, folders["control"], folders["ipc"])
        deadline = time.monotonic() + 5
        while (left := box.pids()) and time.monotonic() < deadline:
            time.sleep(0.05)  # a killed process is listed until it is reaped
    outcomes = {r["cell"]: r["outcome"] for r in records if r["when"] == "call"}
    assert outcomes == {0: "passed", 1: "passed", 2: "passed", 3: "failed", 4: "passed",
                        5: "failed"}, done.stdout[-3000:]
    assert "Timeout" in next(r["message"] for r in records if r["cell"] == 3)
    assert "Cell outputs differ" in next(r["message"] for r in records if r["cell"] == 5)
    # The interrupted kernel lived on: no record reports a death (kit.nbval_runner).
    assert all(r["alive_before"] and r["alive_after"] for r in records if r["when"] == "call")
    assert left == set()  # nbval shut the kernel down; nothing of the sandbox remains
    assert list(folders["ipc"].iterdir()) == []  # jupyter_client removed its sockets


def test_the_kernel_dies_with_nbval(tmp_path):
    folders = layout(tmp_path)
    busy = folders["scratch"] / "busy"
    nb_path = folders["notebooks"] / "hang.ipynb"
    nbformat.write(notebook([(f"import time\nopen({str(busy)!r}, 'w').close()\n"
                              "time.sleep(300)", "")]), nb_path)
    (folders["control"] / "pytest.ini").write_text("[pytest]\naddopts =\n")
    with sandbox_for(folders) as box:
        args, env = isolation.isolated_kernel(box, folders["control"], folders["ipc"])
        env.update(PATH=os.environ["PATH"], PYTHONPATH=str(folders["control"]),
                   HOME=str(tmp_path), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        nbval = subprocess.Popen(
            [isolation.python_executable(), "-m", "pytest", "-c",
             str(folders["control"] / "pytest.ini"), "-p", "no:cacheprovider", "-p",
             "nbval.plugin", *args, "--nbval", "--nbval-current-env", "-q", str(nb_path)],
            cwd=folders["control"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not busy.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert busy.exists(), "the kernel never ran the cell"
        assert mentioning(folders["ipc"])  # bwrap and the kernel (its connection file)
        nbval.kill()
        nbval.wait()
        deadline = time.monotonic() + 5
        while (mentioning(folders["ipc"]) or box.pids()) and time.monotonic() < deadline:
            time.sleep(0.05)  # the killed processes are reaped by now (or never)
        assert mentioning(folders["ipc"]) == []  # gone with nbval, before the clean-up
        assert box.pids() == set()


def mentioning(path: Path) -> list[int]:
    """Processes whose command line mentions ``path``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(path).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_the_ipc_folder_must_be_writable_in_the_sandbox(tmp_path):
    with isolation.Sandbox(readable=[tmp_path], env={}, memory_mb=64, max_pids=8) as box, \
            pytest.raises(ValueError, match="ipc_dir"):
        isolation.isolated_kernel(box, tmp_path, tmp_path)


def test_the_plugin_prefixes_the_kernel_command_and_interrupts_by_message(tmp_path):
    sys.path.insert(0, str(ROOT / "kit"))
    try:
        import isolation_kernel  # as nbval's run imports it: by file, not as kit.*
    finally:
        sys.path.remove(str(ROOT / "kit"))
    from jupyter_client.manager import KernelManager
    from nbval.kernel import NbvalKernelspecManager

    manager_class = isolation_kernel.isolated_manager(KernelManager, ["PREFIX", "--"], tmp_path)
    manager = manager_class(kernel_name=":nbval-parent-env",
                            kernel_spec_manager=NbvalKernelspecManager())
    assert manager.transport == "ipc"
    assert manager.ip.startswith(str(tmp_path / "kernel-"))
    assert manager.kernel_spec.interrupt_mode == "message"
    command = manager.format_kernel_cmd()
    assert command[:2] == ["PREFIX", "--"]
    assert command[2] == sys.executable and str(tmp_path) in command[-1]
