"""The site builder executes notebooks, renders them and links them from an index page."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]


def _notebook(path: Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# demo")] + [
        nbformat.v4.new_code_cell(src) for src in sources
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def _run_site(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kit", "site", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
def test_site_executes_renders_and_indexes(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(src / "Good.ipynb", "print(6 * 7)")
    _notebook(
        src / "Broken.ipynb",
        "print('before')",
        "raise RuntimeError('boom in cell 2')",
        "print('never')",
    )
    out = tmp_path / "site"

    result = _run_site("--notebooks", str(src), "--out", str(out))

    # One notebook failed, so the command fails, but both are written and indexed.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[1/2] Broken.ipynb: FAILED: RuntimeError: boom in cell 2" in result.stdout
    assert "[2/2] Good.ipynb: done" in result.stdout
    executed = nbformat.read(out / "Good.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "42\n"
    assert "execution" not in executed.cells[1].metadata  # volatile timings stripped
    broken = nbformat.read(out / "Broken.ipynb", as_version=4)
    assert broken.cells[2].outputs[0]["ename"] == "RuntimeError"
    assert broken.cells[3].outputs == []  # execution stopped at the error
    assert "42" in (out / "Good.html").read_text()
    index = (out / "index.html").read_text()
    assert '<a href="Good.html">Good</a>' in index
    assert "stopped with an error: RuntimeError: boom in cell 2" in index


@pytest.mark.slow
def test_site_in_place_rewrites_the_notebook(tmp_path):
    _notebook(tmp_path / "Only.ipynb", "print('fresh output')")
    result = _run_site("--notebooks", str(tmp_path), "--in-place")
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(tmp_path / "Only.ipynb", as_version=4)
    assert nb.cells[1].outputs[0]["text"] == "fresh output\n"
    assert nb.cells[1].execution_count == 1


def test_site_rejects_an_unknown_notebook_name(tmp_path):
    _notebook(tmp_path / "Only.ipynb", "1")
    result = _run_site(
        "--notebooks", str(tmp_path), "--only", "Missing", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2
    assert "--only: no notebook named Missing" in result.stderr
