"""Opening a stored notebook in JupyterLab does not mark it modified.

JupyterLab rewrites notebook metadata that disagrees with the running kernel (the
kernel's display name, ``language_info``) as soon as the notebook opens, and a reader
then sees an unsaved-changes dot on a notebook they have not touched. This test starts
JupyterLab on 127.0.0.1 (as ``make lab`` does; ``--allow-root`` because CI runs as root),
opens every notebook in headless Chromium, waits for its kernel, and asserts that no tab
is marked dirty and that no file changed on disk.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import Browser, find_chromium

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = find_chromium()
JUPYTER = Path(sys.executable).parent / "jupyter"
TOKEN = "kit-lab-test"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (apt-get install chromium)"),
    pytest.mark.skipif(not JUPYTER.exists(), reason="jupyter is not installed beside this Python"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path: Path):
    root = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", root)
    port = _free_port()
    home = tmp_path / "jupyter"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "COURSE_DATASET": "digits"}
    proc = subprocess.Popen(
        [str(JUPYTER), "lab", "--allow-root", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         f"--LabApp.workspaces_dir={home / 'workspaces'}",
         f"--LabApp.user_settings_dir={home / 'settings'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("JupyterLab did not start within 60 s")
                time.sleep(0.5)
        yield base, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


DIRTY = ("[...document.querySelectorAll('.lm-TabBar-tab.jp-mod-dirty')]"
         ".map(t => t.textContent.trim())")
IDLE = ("[...document.querySelectorAll('.jp-KernelStatus, .jp-Notebook-ExecutionIndicator')]"
        ".map(e => e.textContent + ' ' + (e.title || '')).join(' ')")


def test_opening_a_notebook_in_lab_does_not_mark_it_modified(lab):
    base, root = lab
    before = {p.name: p.read_bytes() for p in root.glob("*.ipynb")}
    assert before, "no notebooks to open"
    for name in sorted(before):
        with Browser(CHROMIUM, local_host="127.0.0.1") as browser:
            browser.goto(f"{base}/lab/tree/{name}?token={TOKEN}", timeout=60)
            deadline = time.monotonic() + 90
            while "Idle" not in str(browser.evaluate(IDLE)):  # the kernel has connected
                assert time.monotonic() < deadline, f"{name}: the kernel never became idle"
                time.sleep(1)
            time.sleep(3)  # metadata updates follow the kernel's info reply
            assert browser.evaluate(DIRTY) == [], f"{name} is marked modified on open"
    after = {p.name: p.read_bytes() for p in root.glob("*.ipynb")}
    assert after == before
