"""``python -m kit site`` replaces only a site it wrote, and Ctrl-C keeps the old site.

Issue 9, item 1 and the second half of item 16. Each test works on a small fake tree in
``tmp_path`` (``kit.site.REPO_ROOT`` is pointed at it), never on this clone: a
regression here must not be able to delete real work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

site = pytest.importorskip("kit.site", reason="the site tool is instructor-only (not released)")

REPO = Path(__file__).resolve().parents[2]


def _notebook(path: Path, code: str = "print(6 * 7)", output: str = "42\n") -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(code)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo\n\nA demo notebook."), cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake solution tree (notebooks/, course/, .git/, work) that is the current folder."""
    root = tmp_path / "tree"
    (root / "notebooks").mkdir(parents=True)
    _notebook(root / "notebooks" / "Demo.ipynb")
    (root / "course").mkdir()
    (root / "course" / "layers.py").write_text("# my uncommitted work\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "notes.txt").write_text("uncommitted notes\n")
    monkeypatch.setattr(site, "REPO_ROOT", root)
    monkeypatch.chdir(root)
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _site(*args: str) -> int:
    return site.main(["--no-execute", "--notebooks", "notebooks", *args])


@pytest.mark.parametrize(
    ("out", "says"),
    [
        (".", "replacing it would delete the tree"),
        ("..", "a parent of the tree"),
        ("notebooks", "the folder of the notebooks being built"),
        ("course", "has no .kit-site.json stamp"),
        (".git/site", "inside a .git folder"),
    ],
)
def test_out_refuses_the_tree_its_parents_and_its_folders(tree, capsys, out, says):
    before = _files(tree)
    assert _site("--out", out) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "nothing written" in err
    assert _files(tree) == before


def test_out_refuses_a_foreign_folder_and_names_what_it_holds(tree, tmp_path, capsys):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    assert _site("--out", str(foreign)) == 2
    err = capsys.readouterr().err
    assert "holds 1 entry (holiday.jpg)" in err
    assert "Choose a new folder" in err
    assert (foreign / "holiday.jpg").read_bytes() == b"\xff\xd8"


def test_out_refuses_a_link_and_a_file(tree, tmp_path, capsys):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("keep")
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "afile").write_text("a file")
    assert _site("--out", str(tmp_path / "link")) == 2
    assert _site("--out", str(tmp_path / "afile")) == 2
    assert capsys.readouterr().err.count("not a plain folder") == 2
    assert (target / "keep.txt").read_text() == "keep"
    assert (tmp_path / "afile").read_text() == "a file"


def test_a_site_it_wrote_is_replaced_and_leaves_no_temporary_folder(tree):
    out = tree / "build" / "site"
    assert _site("--out", str(out)) == 0
    assert json.loads((out / site.STAMP_NAME).read_text())["tool"] == site.STAMP_TOOL
    (out / "stale.html").write_text("from an older build")
    assert _site("--out", str(out)) == 0
    assert not (out / "stale.html").exists()  # the old site went: it was ours
    assert (out / "Demo.html").is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["site"]


def test_an_empty_folder_is_used(tree, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert _site("--out", str(out)) == 0
    assert (out / "index.html").is_file()


def test_an_error_during_the_build_keeps_the_old_site(tree, monkeypatch, capsys):
    out = tree / "build" / "site"
    assert _site("--out", str(out)) == 0
    before = _files(out)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(site.site_render, "render_notebook", interrupted)
    assert _site("--out", str(out)) == 130
    err = capsys.readouterr().err
    assert f"interrupted; the previous site in {out} is unchanged" in err
    assert _files(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["site"]  # temp folder removed


def test_stale_temporary_folders_are_removed_only_when_stamped_by_a_dead_build(tree, capsys):
    out = tree / "build" / "site"
    out.parent.mkdir()
    dead = out.parent / f".site{site.BUILDING}dead"
    dead.mkdir()
    pid = _dead_pid()
    (dead / site.STAMP_NAME).write_text(json.dumps({"tool": site.STAMP_TOOL, "pid": pid}))
    foreign = out.parent / f".site{site.BUILDING}mine"
    foreign.mkdir()
    (foreign / "work.txt").write_text("not the tool's")
    assert _site("--out", str(out)) == 0
    assert not dead.exists()
    assert (foreign / "work.txt").read_text() == "not the tool's"
    assert "left by an interrupted build" in capsys.readouterr().out


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.slow
def test_ctrl_c_while_executing_keeps_the_old_site_without_a_traceback(tmp_path):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    _notebook(notebooks / "Slow.ipynb", "import time\ntime.sleep(60)", "")
    out = tmp_path / "site"
    out.mkdir()
    (out / site.STAMP_NAME).write_text(json.dumps({"tool": site.STAMP_TOOL, "pid": 1}))
    (out / "index.html").write_text("the old site")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kit", "site", "--notebooks", str(notebooks), "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own process group, as in a terminal
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "[1/1] Slow.ipynb: executing"
    assert "executing" in line, line
    time.sleep(3)  # the kernel is up and inside time.sleep
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the tool and its kernel alike
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted; the previous site" in stderr
    assert "Traceback" not in stderr
    assert (out / "index.html").read_text() == "the old site"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nbs", "site"]
