"""kit/sandbox.py's ``unpack``: a zip is read for what the grader uses, and nothing of it
lands outside the folder it is extracted into.

A student who zips their whole working folder (``zip -r sub.zip sub``, with its ``.venv``
and the ``datasets/`` of ``make data``) hands in far more than the size cap; only the
``course/`` files and the notebooks are extracted and counted, and the rest is named in
a note. The defences stay: a zip bomb among the members read, absolute paths, ``..``, a
path beside the target folder that shares its name as a prefix, and links.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from kit import leaks, sandbox

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


# -- a folder submission: read for its regular files, links never followed ----------------

SOLUTION_LAYERS = sandbox.ROOT / "course" / "layers.py"


def secret_lines_in(folder: Path) -> list[str]:
    """The solution-only lines of this tree (kit/leaks.py) found in ``folder``."""
    secret = leaks.solution_only_lines(sandbox.ROOT)
    return leaks.find_leaks(folder, secret, leaks.embeddable_lines(sandbox.ROOT))


def test_a_folder_is_copied_for_its_regular_files_the_grader_reads(tmp_path):
    sub = tmp_path / "subF"
    for rel in ("course/__init__.py", "course/layers.py", "notebooks/FullyConnectedNets.ipynb",
                ".venv/lib/site-packages/pkg/demo.ipynb", "datasets/data_batch_1", "Makefile"):
        (sub / rel).parent.mkdir(parents=True, exist_ok=True)
        (sub / rel).write_text(f"# {rel}\n")
    (sub / "course" / "optim.py").symlink_to(sub / "course" / "layers.py")
    (sub / "course" / "classifiers").symlink_to(tmp_path, target_is_directory=True)
    (sub / "datasets" / "shared").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(sub / "notebooks" / "Dropout.ipynb")  # reading it would block the grader
    found = sandbox.unpack(sub, tmp_path / "_submission")
    assert found.folder == tmp_path / "_submission"
    assert files_under(found.folder) == [
        "course/__init__.py", "course/layers.py", "notebooks/FullyConnectedNets.ipynb"]
    assert (found.folder / "course" / "layers.py").read_text() == "# course/layers.py\n"
    assert found.not_regular == ("course/classifiers/", "course/optim.py",
                                 "notebooks/Dropout.ipynb")
    [note] = found.notes()
    assert note.kind is sandbox.NoteKind.UNREADABLE
    assert note.text.startswith("left out course/classifiers/, course/optim.py, "
                                "notebooks/Dropout.ipynb: a symlink or special file")


def test_a_folder_over_the_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "MAX_UNZIPPED", 1000)
    sub = tmp_path / "big"
    (sub / "course").mkdir(parents=True)
    (sub / "course" / "layers.py").write_text("#" * 5000)
    (sub / "datasets").mkdir()
    (sub / "datasets" / "data").write_bytes(b"\0" * 5000)  # not read: not counted
    with pytest.raises(sandbox.SubmissionError, match=r"come to 0 MB \(more than 0 MB\)"):
        sandbox.unpack(sub, tmp_path / "_submission")
    (sub / "course" / "layers.py").write_text("# small\n")
    assert files_under(sandbox.unpack(sub, tmp_path / "_ok").folder) == ["course/layers.py"]


@pytest.mark.parametrize("link", ["course/layers.py", "course"])
def test_a_link_to_the_solution_in_a_folder_submission_is_not_graded(tmp_path, link):
    """Hostile: a student's repository holds ``course/layers.py`` (or ``course/``) as a
    symlink to where the instructor keeps the kit. Graded in place, the link was followed
    and the solution merged in as the student's code: every layers task passed."""
    sub = tmp_path / "cheat"
    sub.mkdir()
    (sub / "notebooks").mkdir()
    (sub / "course").mkdir() if link != "course" else None
    target = SOLUTION_LAYERS if link == "course/layers.py" else SOLUTION_LAYERS.parent
    (sub / link).symlink_to(target, target_is_directory=target.is_dir())
    for build in (lambda: sandbox.build(sub, {}), lambda: sandbox.build_own(sub)):
        box = build()
        try:
            assert secret_lines_in(box.root / "course") == []
            assert "NotImplementedError" in (box.root / "course" / "layers.py").read_text()
            assert any(n.text.startswith(f"left out {link}") for n in box.notes), box.notes
        finally:
            box.cleanup()


def test_kit_verifys_sandbox_holds_no_solution_code_for_a_file_left_out(tmp_path):
    """``kit verify`` runs a student's own package; where the submission lacks a file,
    the sandbox has its stubs, not the solution (which student code could print)."""
    sub = tmp_path / "notebooks_only"
    (sub / "notebooks").mkdir(parents=True)
    (sub / "course").mkdir()
    (sub / "course" / "optim.py").write_text("def sgd(w, dw, config=None):\n    return w, {}\n")
    box = sandbox.build_own(sub)
    try:
        assert secret_lines_in(box.root / "course") == []
        assert "return w, {}" in (box.root / "course" / "optim.py").read_text()
        layers = (box.root / "course" / "layers.py").read_text()
        assert "affine_forward: course/layers.py is not in the submission" in layers
    finally:
        box.cleanup()
