"""The disk cap: what a sandboxed process tree can write, per file and in total.

A hostile writer, run through ``kit.isolation``, tries to write several times the cap:
one big file, a child process (``head``) writing one, many files each under the per-file
cap, the private ``/tmp`` and a scratch folder. Each test checks from outside what
reached the host's disk. The writers stop by themselves at ``OVER`` times the cap, so a
broken cap costs the machine a few tens of MB, not its disk; a control run with a cap
far above shows that each writer does write all of it when nothing stops it.
The tests skip, saying why, where bubblewrap cannot run.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import isolation
from kit.isolation_cgroup import TreeCap

PYTHON = isolation.python_executable()
CAP_MB = 8  # a low cap keeps the tests fast
OVER = 8  # each writer stops by itself at OVER * CAP_MB
PAUSE = 0.01  # seconds after each MB, in the writers the watch must stop (100 MB/s)
NO_CAP_MB = 100 * CAP_MB  # the control runs: a cap the writers never reach

pytestmark = pytest.mark.skipif(isolation.unavailable("bwrap") is not None,
                                reason=f"bubblewrap cannot run here: "
                                       f"{isolation.unavailable('bwrap')}")

# ``fill(name, folder, per_file_mb, total_mb)`` writes 1 MB blocks into files of
# ``per_file_mb`` until ``total_mb`` or an OSError; ``found`` records how far each attempt
# got. ``pause`` seconds after each block (a writer to the page cache goes at GB/s: the
# watch stops it one interval, about 20 ms, past the cap; the pause keeps that interval
# short of the whole OVER * CAP_MB on a busy machine too).
WRITER = """
import json, os, subprocess, sys, time
found = {}
def fill(name, folder, per_file_mb, total_mb, pause=0.0):
    written, index = 0, 0
    try:
        while written < total_mb:
            with open(os.path.join(folder, f"{name}-{index}"), "wb") as handle:
                for _ in range(min(per_file_mb, total_mb - written)):
                    handle.write(b"x" * 2**20)
                    handle.flush()
                    written += 1
                    time.sleep(pause)
            index += 1
        found[name] = [written, "done"]
    except OSError as error:
        found[name] = [written, os.strerror(error.errno)]
    print(json.dumps(found), flush=True)
"""


def writer(tmp_path: Path, code: str, *, disk_mb: int = CAP_MB, mode: str | None = None,
           scratch: bool = False) -> tuple[isolation.Completed, Path]:
    """Run the writer then ``code`` with one writable folder (``scratch``: as scratch)."""
    folder = tmp_path / "out"
    folder.mkdir(parents=True, exist_ok=True)
    done = isolation.run(
        [PYTHON, "-c", WRITER + textwrap.dedent(code)], readable=[],
        writable=[] if scratch else [folder], scratch=[folder] if scratch else [],
        cwd=folder, env=isolation.minimal_env(folder), memory_mb=1024, max_pids=64,
        timeout=120, mode=mode, disk_mb=disk_mb)
    return done, folder


@pytest.fixture
def short_path() -> Iterator[Path]:
    """A folder with a path short enough for unix sockets below it (pytest's may not be)."""
    with tempfile.TemporaryDirectory(prefix="kit-disk-") as folder:
        yield Path(folder)


def last_report(done: isolation.Completed) -> dict:
    lines = done.stdout.decode().strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def on_disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_no_file_of_the_tree_grows_past_the_cap(tmp_path):
    # One file at a time: together they would meet the cap on the total.
    code = f"""
        fill("python", ".", {OVER * CAP_MB}, {OVER * CAP_MB})
        found["python size"] = os.path.getsize("python-0")
        os.remove("python-0")
        # a child that is not Python: RLIMIT_FSIZE holds over the whole tree
        subprocess.run("head -c {OVER * CAP_MB * 2**20} /dev/zero > child-file", shell=True)
        print(json.dumps(found), flush=True)
    """
    done, folder = writer(tmp_path, code)
    found = last_report(done)
    assert done.returncode == 0, done.stderr.decode()
    assert found["python"] == [CAP_MB, "File too large"]
    assert found["python size"] == CAP_MB * 2**20
    assert (folder / "child-file").stat().st_size == CAP_MB * 2**20
    # Without the cap the same writers write it all.
    done, folder = writer(tmp_path / "control", code, disk_mb=NO_CAP_MB)
    assert last_report(done)["python"] == [OVER * CAP_MB, "done"]
    assert (folder / "child-file").stat().st_size == OVER * CAP_MB * 2**20


def test_many_files_under_the_per_file_cap_meet_the_total_cap(tmp_path):
    # Files of a quarter of the cap each: only the watch over the folder stops them.
    code = f"""
        fill("files", ".", {CAP_MB // 4}, {OVER * CAP_MB}, {PAUSE})
    """
    started = time.monotonic()
    done, folder = writer(tmp_path, code)
    seconds = time.monotonic() - started
    written = on_disk(folder)
    assert done.disk_exceeded, done.stderr.decode()
    assert done.disk_reason == f"disk: wrote more than {CAP_MB} MB"
    assert done.returncode < 0  # killed, not ended
    assert "files" not in last_report(done)  # it never got to say it was done
    assert written < OVER * CAP_MB * 2**20
    print(f"stopped after {seconds:.2f} s with {written / 2**20:.0f} MB written "
          f"(cap {CAP_MB} MB)")
    done, folder = writer(tmp_path / "control", code, disk_mb=NO_CAP_MB)
    assert not done.disk_exceeded and on_disk(folder) == OVER * CAP_MB * 2**20


def test_too_many_files_stop_the_sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(isolation, "MAX_FILES", 300)
    code = """
        for index in range(3000):
            open(f"empty-{index}", "w").close()
        print(json.dumps({"made": 3000}), flush=True)
    """
    done, folder = writer(tmp_path, code)
    assert done.disk_reason == "disk: made more than 300 files and folders"
    assert len(list(folder.iterdir())) < 3000


def test_tmp_and_scratch_folders_are_capped_and_never_reach_the_host_disk(tmp_path):
    if isolation._bwrap_size_problem() is not None:
        pytest.skip(isolation._bwrap_size_problem())
    code = f"""
        fill("tmp", "/tmp", {CAP_MB // 2}, {OVER * CAP_MB})
        fill("scratch", ".", {CAP_MB // 2}, {OVER * CAP_MB})
    """
    done, folder = writer(tmp_path, code, scratch=True)
    found = last_report(done)
    assert done.returncode == 0 and not done.disk_exceeded, done.stderr.decode()
    # A tmpfs of CAP_MB each (less what the file system keeps for itself).
    for name in ("tmp", "scratch"):
        assert CAP_MB - 2 <= found[name][0] <= CAP_MB, found
        assert found[name][1] == "No space left on device"
    assert list(folder.iterdir()) == []  # the host's folder saw nothing


def test_the_kernel_folder_is_scratch_but_its_ipc_folder_stays_shared(short_path):
    """As ``kit.nbval_runner`` lays out a kernel: its home holds the ipc folder."""
    home, control = short_path / "kernel-x", short_path / "control"
    (home / "ipc").mkdir(parents=True)
    control.mkdir()
    with isolation.Sandbox(writable=[home], cwd=home, env=isolation.minimal_env(home),
                           memory_mb=1024, max_pids=64, disk_mb=CAP_MB) as box:
        isolation.isolated_kernel(box, control, home / "ipc")
        assert box.shared() == ([home / "ipc"] if isolation._bwrap_size_problem() is None
                                else [home, home / "ipc"])
        code = f"""
            fill("home", ".", {CAP_MB // 2}, {OVER * CAP_MB})
            open("ipc/kernel.json", "w").write("{{}}")
        """
        done = subprocess.run(box.argv([PYTHON, "-c", WRITER + textwrap.dedent(code)]),
                              capture_output=True, timeout=120, env={})
    assert done.returncode == 0, done.stderr.decode()
    found = json.loads(done.stdout.decode().splitlines()[-1])
    if isolation._bwrap_size_problem() is None:
        assert found["home"][1] == "No space left on device"
        assert sorted(p.name for p in home.iterdir()) == ["ipc"]  # nothing else on the host
    assert (home / "ipc" / "kernel.json").read_text() == "{}"  # what the host must see


def test_without_a_cgroup_the_watch_still_stops_the_whole_sandbox(tmp_path, monkeypatch):
    """No cgroup to empty: the watch kills the processes the shims registered."""
    monkeypatch.setattr(isolation, "create_cap",
                        lambda memory_mb, max_pids: TreeCap("rlimit", memory_mb, max_pids))
    code = """
        if os.fork() == 0:  # a child writes too
            if {new_session}:
                os.setsid()
            fill("child", ".", 1, {total}, {pause})
            os._exit(0)
        fill("files", ".", {quarter}, {total}, {pause})
        os.wait()
    """
    # In bwrap mode even a child in a session of its own (the pid namespace goes with
    # bwrap); without a namespace (``none``: code you trust) the session is what is killed.
    for mode, new_session in (("bwrap", True), ("none", False)):
        done, folder = writer(tmp_path / mode, code.format(
            new_session=new_session, total=OVER * CAP_MB, quarter=CAP_MB // 4, pause=PAUSE),
            mode=mode)
        assert done.cap == "rlimit"
        assert done.disk_reason == f"disk: wrote more than {CAP_MB} MB", mode
        time.sleep(0.5)  # a writer that survived would go on writing
        assert on_disk(folder) < OVER * CAP_MB * 2**20, mode  # both writers stopped


def test_the_default_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(isolation.DISK_ENV, raising=False)
    assert isolation.default_disk_mb() == isolation.DISK_MB
    monkeypatch.setenv(isolation.DISK_ENV, "64")
    assert isolation.default_disk_mb() == 64
    assert "64 MB per file" in isolation.disk_cap("bwrap")
    for bad in ("0", "-1", "lots"):
        monkeypatch.setenv(isolation.DISK_ENV, bad)
        with pytest.raises(ValueError, match=isolation.DISK_ENV):
            isolation.default_disk_mb()


def test_a_watch_that_trips_is_reported_by_the_sandbox(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with isolation.Sandbox(writable=[folder], env={}, memory_mb=64, max_pids=8,
                           disk_mb=1) as box:
        assert not box.disk_exceeded()
        (folder / "big").write_bytes(b"x" * 2 * 2**20)  # the host writes: no process
        deadline = time.monotonic() + 5
        while not box.disk_exceeded() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert box.disk_reason == "disk: wrote more than 1 MB"
    os.remove(folder / "big")
