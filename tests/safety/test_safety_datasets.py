"""Safety suite, get_datasets.sh (issue 9, items 4, 5, 6).

The script is fed the small fixture archive of ``tests/cifar_fixture.py`` over a file://
URL (nothing leaves the machine); every run has a timeout.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cifar_fixture import FOLDER, make_cifar_archive
from kit_helpers import dead_pid

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "get_datasets.sh"
TIMEOUT = 60
FILES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
         "test_batch", "batches.meta"]
_SCRUB = {"DATASETS_DIR", "COURSE_DATA_DIR", "CIFAR_URL", "CIFAR_MD5", "CIFAR_SIZE",
          "DOWNLOADER", "http_proxy", "https_proxy", "all_proxy", "ftp_proxy"}

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cifar_archive(tmp_path_factory.mktemp("archive"))


def env_for(datasets: Path, archive: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in {s.lower() for s in _SCRUB}}
    env["DATASETS_DIR"] = str(datasets)
    if archive is not None:
        data = archive.read_bytes()
        env.update(CIFAR_URL=archive.as_uri(), CIFAR_MD5=hashlib.md5(data).hexdigest(),
                   CIFAR_SIZE=str(len(data)), DOWNLOADER="curl")
    env.update(extra)
    return env


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()




# -- item 4: concurrent runs ------------------------------------------------------------


def test_second_run_waits_for_the_lock_of_the_first(tmp_path: Path, archive: Path) -> None:
    if shutil.which("flock") is None:
        pytest.skip("flock not installed")
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    fd = os.open(datasets, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a first run holding the lock would
    proc = subprocess.Popen([str(SCRIPT)], env=env_for(datasets, archive), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        assert proc.poll() is None, "the script did not wait for the lock"
        assert not (datasets / FOLDER).exists()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert "waiting for it to finish" in out
    assert sorted(p.name for p in (datasets / FOLDER).iterdir() if p.is_file()) == sorted(
        [*FILES, ".md5sums"])


def test_final_rename_refuses_to_nest(tmp_path: Path, archive: Path) -> None:
    # A tar that, like a concurrent run finishing first, leaves a cifar-10-batches-py/
    # in the datasets folder while this run extracts.
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tar").write_text(
        f'#!/bin/sh\n"{shutil.which("tar")}" "$@" || exit $?\n'
        f'mkdir -p "{datasets / FOLDER}"\necho theirs > "{datasets / FOLDER / "theirs.txt"}"\n')
    (bin_dir / "tar").chmod(0o755)
    env = env_for(datasets, archive, PATH=f"{bin_dir}:{os.environ['PATH']}")
    proc = run(env)
    assert proc.returncode != 0
    assert "nest" in proc.stderr
    assert not (datasets / FOLDER / FOLDER).exists()
    assert (datasets / FOLDER / "theirs.txt").read_text() == "theirs\n"


def test_five_runs_at_once_end_with_one_dataset(tmp_path: Path, archive: Path) -> None:
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    procs = [subprocess.Popen([str(SCRIPT)], env=env_for(datasets, archive), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL) for _ in range(5)]
    results = [(p.wait(timeout=TIMEOUT), p.communicate()) for p in procs]
    assert all(code == 0 for code, _ in results), results
    assert not (datasets / FOLDER / FOLDER).exists()
    assert [p.name for p in datasets.iterdir()] == [FOLDER]


# -- item 5: damaged files are detected and repaired -------------------------------------


def test_damaged_file_is_detected_and_repaired(tmp_path: Path, archive: Path) -> None:
    env = env_for(tmp_path, archive)
    assert run(env).returncode == 0
    batch = tmp_path / FOLDER / "data_batch_3"
    good = md5(batch)
    data = bytearray(batch.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped: "exists" is not enough
    batch.write_bytes(bytes(data))
    proc = run(env)
    assert proc.returncode == 0, proc.stderr
    assert "damaged" in proc.stdout and "data_batch_3" in proc.stdout
    assert md5(batch) == good
    again = run(env)
    assert "nothing to do" in again.stdout


def test_official_per_file_md5s_are_checked_without_a_manifest(tmp_path: Path) -> None:
    # A folder from before the manifest existed, with the right names but wrong bytes:
    # checked against the official per-file MD5s, found damaged, and a repair attempted.
    folder = tmp_path / FOLDER
    folder.mkdir()
    for name in FILES:
        (folder / name).write_bytes(b"not the real " + name.encode())
    proc = run(env_for(tmp_path, None, CIFAR_URL=(tmp_path / "nowhere.tar.gz").as_uri(),
                       DOWNLOADER="curl"))
    assert "damaged" in proc.stdout and "data_batch_1" in proc.stdout
    assert proc.returncode != 0  # the repair download fails here (no such file)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # left as it was


def test_the_official_md5_table_is_the_published_one() -> None:
    text = SCRIPT.read_text()
    # The published values (cs.toronto.edu archive; the same list torchvision checks).
    for line in ["c99cafc152244af753f735de768cd75f data_batch_1",
                 "40351d587109b95175f43aff81a1287e test_batch",
                 "5ff9c542aee3614f3951f8cda6e48888 batches.meta"]:
        assert line in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_permission_error_not_damage(tmp_path: Path,
                                                          archive: Path) -> None:
    env = env_for(tmp_path, archive)
    assert run(env).returncode == 0
    batch = tmp_path / FOLDER / "data_batch_2"
    batch.chmod(0)
    try:
        proc = run(env)
    finally:
        batch.chmod(0o644)
    assert proc.returncode != 0
    assert "permission denied" in proc.stderr and "damaged" not in proc.stdout


# -- item 6: temp folders of a killed run ------------------------------------------------


def test_stale_temp_folder_of_a_killed_run_is_removed(tmp_path: Path, archive: Path) -> None:
    stale = tmp_path / f".cifar-10-download.{dead_pid()}.AbC123"
    (stale / "extract").mkdir(parents=True)
    (stale / "cifar-10-python.tar.gz").write_bytes(b"\0" * 1000)
    running = tmp_path / f".cifar-10-download.{os.getpid()}.XyZ789"
    running.mkdir()
    proc = run(env_for(tmp_path, archive))
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists() and running.exists()
    assert f"Removed {stale}" in proc.stdout


def test_stale_lock_folder_is_removed_where_flock_is_missing(tmp_path: Path,
                                                             archive: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ["bash", "dirname", "mktemp", "mkdir", "rm", "rmdir", "mv", "wc", "tr", "cut",
                 "tar", "gzip", "grep", "tail", "curl", "md5sum", "find", "sleep"]:
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed")
        (bin_dir / tool).symlink_to(found)
    datasets = tmp_path / "datasets"
    lock = datasets / ".get_datasets.lock"
    lock.mkdir(parents=True)
    (lock / "pid").write_text(f"{dead_pid()}\n")
    proc = run(env_for(datasets, archive, PATH=str(bin_dir)))
    assert proc.returncode == 0, proc.stderr
    assert "stale lock" in proc.stdout
    assert sorted(p.name for p in datasets.iterdir()) == [FOLDER]
