"""Tests of get_datasets.sh, fed a small archive in the CIFAR-10 layout.

The script is pointed at the fixture with CIFAR_URL / CIFAR_MD5 / CIFAR_SIZE: a file://
URL for curl, a throw-away HTTP server on 127.0.0.1 for wget (which has no file://).
Nothing leaves the machine. Every run has a timeout. The MD5s the script must match are
computed here with hashlib, not with the tools the script uses.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cifar_fixture import (
    FOLDER,
    TEST_ROWS,
    TRAIN_ROWS,
    expected_images,
    expected_labels,
    make_cifar_archive,
)

from course.data_utils import load_CIFAR10

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "get_datasets.sh"
TIMEOUT = 60  # seconds per script run; a healthy run takes well under one
N_TRAIN = sum(TRAIN_ROWS)
# Variables the script reads, plus proxies (a proxy must not intercept 127.0.0.1).
_SCRUB = {"DATASETS_DIR", "COURSE_DATA_DIR", "CIFAR_URL", "CIFAR_MD5", "CIFAR_SIZE",
          "DOWNLOADER", "http_proxy", "https_proxy", "all_proxy", "ftp_proxy"}


class Archive:
    """A fixture archive and the facts the script must check against it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.md5 = hashlib.md5(self.data).hexdigest()
        self.size = len(self.data)
        self.url = path.as_uri()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return Archive(make_cifar_archive(tmp_path_factory.mktemp("archive")))


def script_env(datasets: Path, archive: Archive | None = None, **overrides: str) -> dict[str, str]:
    """The test process's environment without proxies or script settings, plus these."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in {s.lower() for s in _SCRUB}}
    env["DATASETS_DIR"] = str(datasets)
    if archive is not None:
        env.update(CIFAR_URL=archive.url, CIFAR_MD5=archive.md5, CIFAR_SIZE=str(archive.size),
                   DOWNLOADER="curl")
    env.update(overrides)
    return env


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)


def assert_failed_with(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Non-zero exit and exactly one stderr line that contains every fragment."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("get_datasets.sh: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def assert_fixture_dataset(folder: Path) -> None:
    Xtr, Ytr, Xte, Yte = load_CIFAR10(folder)
    np.testing.assert_array_equal(Xtr, expected_images(range(N_TRAIN), "train"))
    np.testing.assert_array_equal(Ytr, expected_labels(range(N_TRAIN), "train"))
    np.testing.assert_array_equal(Xte, expected_images(range(TEST_ROWS), "test"))
    np.testing.assert_array_equal(Yte, expected_labels(range(TEST_ROWS), "test"))


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (any free port): (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def fake_bin(tmp_path: Path, tools: list[str]) -> Path:
    """A folder of symlinks to just these tools, to run the script with a chosen PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed")
        (bin_dir / tool).symlink_to(found)
    return bin_dir


# What the script needs besides a downloader and an MD5 tool.
BASE_TOOLS = ["bash", "dirname", "mktemp", "mkdir", "rm", "rmdir", "mv", "wc", "tr", "cut",
              "tar", "gzip", "grep", "tail"]


# ----------------------------------------------------------------------------- success


def test_script_is_an_executable_bash_script() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=TIMEOUT)


def test_curl_file_url_download_then_idempotent_rerun(tmp_path: Path, archive: Archive) -> None:
    datasets = tmp_path / "datasets"  # does not exist yet: the script creates it
    proc = run_script(script_env(datasets, archive))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "CIFAR-10 is ready in" in proc.stdout
    # Only the dataset is left: no archive, no temporary folder.
    assert sorted(p.name for p in datasets.iterdir()) == [FOLDER]
    assert_fixture_dataset(datasets / FOLDER)

    before = {p.name: p.stat().st_mtime_ns for p in (datasets / FOLDER).iterdir()}
    # A URL that cannot work proves the second run downloads nothing.
    again = run_script(script_env(datasets, archive, CIFAR_URL="file:///nonexistent/cifar.tgz"))
    assert again.returncode == 0, again.stderr
    assert "already present" in again.stdout and again.stderr == ""
    assert {p.name: p.stat().st_mtime_ns for p in (datasets / FOLDER).iterdir()} == before


def test_wget_over_loopback_http(
    tmp_path: Path, archive: Archive, http_dir: tuple[Path, str]
) -> None:
    if shutil.which("wget") is None:
        pytest.skip("wget is not installed")
    served, base = http_dir
    shutil.copy(archive.path, served / "cifar.tar.gz")
    datasets = tmp_path / "datasets"
    proc = run_script(script_env(datasets, archive, CIFAR_URL=f"{base}/cifar.tar.gz",
                                 DOWNLOADER="wget"))
    assert proc.returncode == 0, proc.stderr
    assert "with wget" in proc.stdout
    assert sorted(p.name for p in datasets.iterdir()) == [FOLDER]
    assert_fixture_dataset(datasets / FOLDER)


def test_incomplete_folder_is_replaced(tmp_path: Path, archive: Archive) -> None:
    folder = tmp_path / FOLDER
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"left over from an interrupted copy")
    proc = run_script(script_env(tmp_path, archive))
    assert proc.returncode == 0, proc.stderr
    assert "incomplete" in proc.stdout and "data_batch_2" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOLDER]
    assert_fixture_dataset(folder)


@pytest.mark.parametrize("md5_tool", ["python3", "md5"])
def test_md5_without_md5sum(tmp_path: Path, archive: Archive, md5_tool: str) -> None:
    # A PATH with no md5sum: the script must use macOS's `md5 -q`, or else python3.
    bin_dir = fake_bin(tmp_path, [*BASE_TOOLS, "curl"])
    if md5_tool == "python3":
        (bin_dir / "python3").symlink_to(sys.executable)
    else:
        # A stand-in for macOS md5 that accepts only the documented `md5 -q FILE` form.
        fake = bin_dir / "md5"
        fake.write_text(
            f"#!{sys.executable}\n"
            "import hashlib, sys\n"
            "assert sys.argv[1:2] == ['-q'] and len(sys.argv) == 3, sys.argv\n"
            "print(hashlib.md5(open(sys.argv[2], 'rb').read()).hexdigest())\n"
        )
        fake.chmod(0o755)
    datasets = tmp_path / "datasets"
    proc = run_script(script_env(datasets, archive, PATH=str(bin_dir)))
    assert proc.returncode == 0, proc.stderr
    assert_fixture_dataset(datasets / FOLDER)
    # And the check is real: a wrong MD5 still fails through this tool.
    bad = run_script(script_env(tmp_path / "other", archive, PATH=str(bin_dir), CIFAR_MD5="f" * 32))
    assert_failed_with(bad, "checksum mismatch", f"got {archive.md5}")


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize("datasets_exists", [True, False])
def test_checksum_mismatch(tmp_path: Path, archive: Archive, datasets_exists: bool) -> None:
    datasets = tmp_path / "datasets"
    if datasets_exists:
        datasets.mkdir()
    proc = run_script(script_env(datasets, archive, CIFAR_MD5="0" * 32))
    assert_failed_with(proc, "checksum mismatch", f"expected MD5 {'0' * 32}", f"got {archive.md5}")
    # Nothing left behind; a folder the run created is removed again.
    if datasets_exists:
        assert list(datasets.iterdir()) == []
    else:
        assert not datasets.exists()


def test_size_mismatch(tmp_path: Path, archive: Archive) -> None:
    proc = run_script(script_env(tmp_path, archive, CIFAR_SIZE=str(archive.size + 1)))
    assert_failed_with(proc, "size mismatch",
                       f"expected {archive.size + 1} bytes, got {archive.size} bytes")
    assert list(tmp_path.iterdir()) == []


def test_truncated_archive_with_matching_checksum(tmp_path: Path, archive: Archive) -> None:
    # Size and MD5 describe the truncated file, so only extraction can notice the damage.
    cut = tmp_path / "src" / "cut.tar.gz"
    cut.parent.mkdir()
    cut.write_bytes(archive.data[: archive.size // 2])
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    proc = run_script(script_env(datasets, archive, CIFAR_URL=cut.as_uri(),
                                 CIFAR_MD5=hashlib.md5(cut.read_bytes()).hexdigest(),
                                 CIFAR_SIZE=str(cut.stat().st_size)))
    assert_failed_with(proc, "corrupt archive", "tar could not extract it")
    assert list(datasets.iterdir()) == []


def test_truncated_archive_with_the_real_checks(tmp_path: Path, archive: Archive) -> None:
    # An interrupted transfer as it would happen: the expected size catches it first.
    cut = tmp_path / "src" / "cut.tar.gz"
    cut.parent.mkdir()
    cut.write_bytes(archive.data[:1000])
    proc = run_script(script_env(tmp_path / "datasets", archive, CIFAR_URL=cut.as_uri()))
    assert_failed_with(proc, "size mismatch", "got 1000 bytes")
    assert not (tmp_path / "datasets").exists()


def test_archive_without_the_expected_folder(tmp_path: Path) -> None:
    wrong = Archive(make_cifar_archive(tmp_path / "src", folder_name="cifar10-renamed"))
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    proc = run_script(script_env(datasets, wrong))
    assert_failed_with(proc, f"has no {FOLDER}/ folder")
    assert list(datasets.iterdir()) == []


@pytest.mark.parametrize("downloader", ["curl", "wget"])
def test_http_error_is_a_download_failure(
    tmp_path: Path, archive: Archive, http_dir: tuple[Path, str], downloader: str
) -> None:
    if shutil.which(downloader) is None:
        pytest.skip(f"{downloader} is not installed")
    _, base = http_dir  # serves an empty folder: every file is a 404
    url = f"{base}/missing.tar.gz"
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    proc = run_script(script_env(datasets, archive, CIFAR_URL=url, DOWNLOADER=downloader))
    assert_failed_with(proc, f"download of {url} failed", f"{downloader} exit status")
    assert list(datasets.iterdir()) == []


def test_missing_file_url_is_a_download_failure(tmp_path: Path, archive: Archive) -> None:
    proc = run_script(script_env(tmp_path, archive, CIFAR_URL="file:///nonexistent/c.tar.gz"))
    assert_failed_with(proc, "download of file:///nonexistent/c.tar.gz failed")
    assert list(tmp_path.iterdir()) == []


def test_failed_run_leaves_an_existing_incomplete_folder_alone(
    tmp_path: Path, archive: Archive
) -> None:
    folder = tmp_path / FOLDER
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"x")
    proc = run_script(script_env(tmp_path, archive, CIFAR_MD5="1" * 32))
    assert_failed_with(proc, "checksum mismatch")
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOLDER]
    assert [p.name for p in folder.iterdir()] == ["data_batch_1"]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"DOWNLOADER": "ftp"}, "DOWNLOADER must be 'curl' or 'wget', got 'ftp'"),
        ({"DOWNLOADER": "wget"}, "wget cannot download file:// URLs"),
        ({"CIFAR_MD5": "abc"}, "CIFAR_MD5 must be 32 hex digits, got 'abc'"),
        ({"CIFAR_SIZE": "12kB"}, "CIFAR_SIZE must be a whole number of bytes, got '12kB'"),
    ],
)
def test_bad_settings(tmp_path: Path, archive: Archive, overrides: dict, fragment: str) -> None:
    if overrides.get("DOWNLOADER") == "wget" and shutil.which("wget") is None:
        pytest.skip("wget is not installed")
    datasets = tmp_path / "datasets"
    proc = run_script(script_env(datasets, archive, **overrides))
    assert_failed_with(proc, fragment)
    assert not datasets.exists()


def test_no_downloader_installed(tmp_path: Path, archive: Archive) -> None:
    bin_dir = fake_bin(tmp_path, BASE_TOOLS)
    env = script_env(tmp_path / "datasets", archive, PATH=str(bin_dir))
    del env["DOWNLOADER"]
    assert_failed_with(run_script(env), "neither curl nor wget is installed")
    env["DOWNLOADER"] = "curl"
    assert_failed_with(run_script(env), "DOWNLOADER=curl but curl is not installed")
    assert not (tmp_path / "datasets").exists()


def test_interrupted_download_leaves_nothing(tmp_path: Path, archive: Archive) -> None:
    """Ctrl-C (SIGINT to the process group) in the middle of a download cleans up."""
    release = threading.Event()

    class Stalling(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(archive.size))
            self.end_headers()
            self.wfile.write(archive.data[:100])
            self.wfile.flush()
            release.wait(timeout=30)  # bounded: the server never outlives the test by much

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    url = f"http://127.0.0.1:{server.server_address[1]}/cifar.tar.gz"
    env = script_env(datasets, archive, CIFAR_URL=url)
    proc = subprocess.Popen([str(SCRIPT)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True, text=True)
    try:
        # Wait until the partial archive exists inside the temporary folder.
        deadline = time.monotonic() + TIMEOUT
        while not list(datasets.glob(".cifar-10-download.*/cifar-10-python.tar.gz")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
        release.set()
        server.shutdown()
        server.server_close()
    assert proc.returncode != 0
    assert list(datasets.iterdir()) == []
