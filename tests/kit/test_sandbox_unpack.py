"""kit/sandbox.py's ``unpack``: a zip is read for what the grader uses, and nothing of it
lands outside the folder it is extracted into.

A student who zips their whole working folder (``zip -r sub.zip sub``, with its ``.venv``
and the ``datasets/`` of ``make data``) hands in far more than the size cap; only the
``course/`` files and the notebooks are extracted and counted, and the rest is named in
a note. The defences stay: a zip bomb among the members read, absolute paths, ``..``, a
path beside the target folder that shares its name as a prefix, and links.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from kit import sandbox

WHOLE_FOLDER = {  # a working folder as `zip -r` stores it, under its own top folder
    "subB/course/__init__.py": b"",
    "subB/course/layers.py": b"def affine_forward(x, w, b):\n    return 'mine'\n",
    "subB/course/classifiers/fc_net.py": b"# mine\n",
    "subB/notebooks/FullyConnectedNets.ipynb": b'{"cells": []}',
    "subB/notebooks/.ipynb_checkpoints/FullyConnectedNets-checkpoint.ipynb": b"{}",
    "subB/.venv/lib/python3.11/site-packages/numpy/core.py": b"#" * 5000,
    "subB/.venv/lib/python3.11/site-packages/nbformat/example.ipynb": b"{}",
    "subB/venv/lib/python3.11/site-packages/pkg/demo.ipynb": b"{}",
    "subB/datasets/cifar-10-batches-py/data_batch_1": b"\0" * 20000,
    "subB/tests/test_layers.py": b"assert False\n",
    "subB/Makefile": b"all:\n",
}


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_zip_of_the_whole_working_folder_is_read_for_its_course_files_and_notebooks(
        tmp_path, monkeypatch):
    # The cap below the .venv and datasets alone, above what the grader reads.
    monkeypatch.setattr(sandbox, "MAX_UNZIPPED", 1000)
    sub = make_zip(tmp_path / "subB_whole.zip", WHOLE_FOLDER)
    found = sandbox.unpack(sub, tmp_path / "_submission")
    assert files_under(found.folder) == [
        "subB/course/__init__.py", "subB/course/classifiers/fc_net.py",
        "subB/course/layers.py", "subB/notebooks/FullyConnectedNets.ipynb"]
    ignored = {k: v for k, v in WHOLE_FOLDER.items() if k.startswith(
        ("subB/notebooks/.ipynb", "subB/.venv", "subB/venv", "subB/datasets", "subB/tests",
         "subB/Makefile"))}
    assert found.ignored_files == len(ignored) == 7
    assert found.ignored_bytes == sum(len(v) for v in ignored.values())
    [note] = found.notes()
    assert note.kind is sandbox.NoteKind.INFO
    assert note.text.startswith("ignored 7 file(s) of the zip (0.0 MB unpacked)")
    assert sandbox.find_course_dir(found.folder) == found.folder / "subB" / "course"


def test_the_grading_sandbox_takes_the_students_code_and_notes_what_was_left_out(
        tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "MAX_UNZIPPED", 1000)
    sub = make_zip(tmp_path / "subB_whole.zip", WHOLE_FOLDER)
    box = sandbox.build(sub, {})
    try:
        merged = (box.root / "course" / "layers.py").read_text()
        assert "return 'mine'" in merged
        assert any(n.text.startswith("ignored 7 file(s)") for n in box.notes)
        assert not (box.root / "_submission").exists()
    finally:
        box.cleanup()


def test_flat_files_and_a_course_folder_at_the_top_are_read():
    for name in ("layers.py", "course/layers.py", "course/classifiers/cnn.py",
                 "top/course/optim.py", "X.ipynb", "notebooks/X.ipynb", "top/notebooks/X.ipynb"):
        assert sandbox.read_by_grader(name), name
    for name in ("top/layers.py", "a/b/course/layers.py", "course/", "notebooks/X.txt",
                 "top/.ipynb_checkpoints/X-checkpoint.ipynb", ".venv/x/X.ipynb",
                 "env/lib/site-packages/x/X.ipynb", "setup.cfg"):
        assert not sandbox.read_by_grader(name), name


def test_a_zip_bomb_among_the_files_read_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "MAX_UNZIPPED", 1000)
    sub = make_zip(tmp_path / "bomb.zip", {"course/layers.py": b"#" * 5000})
    with pytest.raises(sandbox.SubmissionError, match=r"unpack to 0 MB \(more than 0 MB\)"):
        sandbox.unpack(sub, tmp_path / "_submission")
    assert not (tmp_path / "_submission").exists()


@pytest.mark.parametrize("name", ["/etc/kit-unpack-test", "../outside.py",
                                  "course/../../outside.py", "../_submissionX/course/x.py"])
def test_a_member_outside_the_folder_is_refused(tmp_path, name):
    """``../_submissionX/...`` resolves beside ``_submission``: a string prefix check
    would take it for inside."""
    sub = make_zip(tmp_path / "escape.zip", {"course/layers.py": b"# mine\n", name: b"x"})
    into = tmp_path / "box" / "_submission"
    with pytest.raises(sandbox.SubmissionError, match="unsafe path"):
        sandbox.unpack(sub, into)
    assert not (tmp_path / "box").exists() or files_under(tmp_path / "box") == []
    assert not Path("/etc/kit-unpack-test").exists()


def test_a_link_in_the_zip_is_extracted_as_a_plain_file(tmp_path):
    sub = tmp_path / "link.zip"
    with zipfile.ZipFile(sub, "w") as archive:
        link = zipfile.ZipInfo("course/layers.py")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    found = sandbox.unpack(sub, tmp_path / "_submission")
    extracted = found.folder / "course" / "layers.py"
    assert not extracted.is_symlink()
    assert extracted.read_text() == "/etc/passwd"
