"""Safety suite, the venv set-up of the Makefile (issue 9, item 7).

``make setup`` runs in a scratch copy of the Makefile and setup_venv.sh with a fake
Python (a bash script) that can make venvs with or without pip, so no package is
installed and nothing is downloaded; the fake logs every pip call.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60

FAKE_PYTHON = r"""#!/usr/bin/env bash
# A fake python: -c runs the real one; -m venv/ensurepip/pip are simulated.
home=$(cd "$(dirname "$0")/.." && pwd)
case "$1" in
    -c) exec "__REAL__" "$@" ;;
    --version) echo "Python 3.11.0 (fake)" ;;
    -m)
        case "$2" in
            venv)
                mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
                if [ -n "${FAKE_VENV_NO_PIP:-}" ]; then
                    echo "Error: ensurepip is not available" >&2; exit 1
                fi
                touch "$3/pip-installed" ;;
            ensurepip)
                [ -z "${FAKE_NO_ENSUREPIP:-}" ] || { echo "No module named ensurepip" >&2; exit 1; }
                touch "$home/pip-installed" ;;
            pip)
                [ -f "$home/pip-installed" ] || { echo "No module named pip" >&2; exit 1; }
                echo "${*:3}" >> "$FAKE_LOG"
                sleep "${FAKE_PIP_SLEEP:-0}" ;;
        esac ;;
esac
"""

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Makefile", "setup_venv.sh", "requirements.txt", "pyproject.toml"):
        shutil.copy2(REPO / name, root / name)
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text(FAKE_PYTHON.replace("__REAL__", sys.executable))
    fake.chmod(0o755)
    return root


def fake_python(project: Path) -> Path:
    return project.parent / "bin" / "python3"


def make_setup(project: Path, **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, "FAKE_LOG": str(project / "pip.log"), **env}
    full.pop("MAKEFLAGS", None)
    return subprocess.Popen(["make", "--no-print-directory", "setup",
                             f"PYTHON={fake_python(project)}"], cwd=project, env=full,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_setup(project: Path, **env: str) -> tuple[int, str, str]:
    proc = make_setup(project, **env)
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


def half_made_venv(project: Path, ours: bool) -> None:
    """A venv whose Python works but that has no pip."""
    (project / ".venv" / "bin").mkdir(parents=True)
    shutil.copy2(fake_python(project), project / ".venv" / "bin" / "python")
    (project / ".venv" / "notes.txt").write_text("is this someone's?\n")
    if ours:
        (project / ".venv" / ".made-by-setup").touch()


def test_fresh_setup_works_and_a_second_one_does_nothing(project: Path) -> None:
    code, out, err = run_setup(project)
    assert code == 0, err
    assert "Creating .venv" in out
    assert list(project.glob(".venv/.installed-*"))
    installs = (project / "pip.log").read_text()
    code, out, err = run_setup(project)
    assert code == 0, err
    assert (project / "pip.log").read_text() == installs  # nothing installed again


def test_half_made_venv_not_ours_is_kept_and_the_fix_is_printed(project: Path) -> None:
    half_made_venv(project, ours=False)
    code, _out, err = run_setup(project, FAKE_NO_ENSUREPIP="1")
    assert code != 0
    assert "has no pip" in err and "rm -rf .venv && make setup" in err
    assert (project / ".venv" / "notes.txt").exists()  # not ours to delete


def test_half_made_venv_of_ours_is_recreated(project: Path) -> None:
    half_made_venv(project, ours=True)
    code, out, err = run_setup(project, FAKE_NO_ENSUREPIP="1")
    assert code == 0, err
    assert "has no pip" in out and "recreating .venv" in out
    assert not (project / ".venv" / "notes.txt").exists()
    assert list(project.glob(".venv/.installed-*"))


def test_half_made_venv_is_repaired_with_ensurepip_where_possible(project: Path) -> None:
    half_made_venv(project, ours=False)
    code, _out, err = run_setup(project)
    assert code == 0, err
    assert (project / ".venv" / "notes.txt").exists()


def test_python_without_ensurepip_gets_a_hint_and_leaves_no_half_venv(project: Path) -> None:
    code, _out, err = run_setup(project, FAKE_VENV_NO_PIP="1", FAKE_NO_ENSUREPIP="1")
    assert code != 0
    assert "python3-venv" in err and "PYTHON=python3.12" in err
    assert not (project / ".venv").exists()
    # and so the next run (with a good Python) is not stuck on a half-made venv
    code, _out, err = run_setup(project)
    assert code == 0, err


def test_two_first_time_setups_at_once_take_turns(project: Path) -> None:
    first = make_setup(project, FAKE_PIP_SLEEP="0.5")
    second = make_setup(project, FAKE_PIP_SLEEP="0.5")
    results = [(*p.communicate(timeout=TIMEOUT), p.returncode) for p in (first, second)]
    assert [code for _, _, code in results] == [0, 0], results
    log = (project / "pip.log").read_text().splitlines()
    assert sum("-r requirements.txt" in line for line in log) == 1, log
    said = "".join(out for out, _, _ in results)
    assert "waiting for it to finish" in said or "set up by another" in said
