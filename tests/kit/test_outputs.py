"""kit/outputs.py: what a command may write. (The commands' own refusals are tested in
tests/safety; these pin the shared rules.)"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from kit_helpers import dead_pid

from kit import outputs

STAMP = outputs.Stamp(".kit-test.json", "python -m kit test")


def test_write_atomic_keeps_the_old_file_and_leaves_no_temp_when_interrupted(tmp_path,
                                                                           monkeypatch):
    path = tmp_path / "report.json"
    outputs.write_atomic(path, "old\n")
    path.chmod(0o640)

    def interrupted(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        outputs.write_atomic(path, "new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    outputs.write_atomic(path, "new\n")
    assert path.read_text() == "new\n" and path.stat().st_mode & 0o777 == 0o640
    outputs.write_atomic(tmp_path / "private.json", "x", private=True)
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600


def test_a_folder_is_ours_only_with_our_stamp(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    assert not STAMP.owns(folder)
    (folder / STAMP.name).write_text(json.dumps({"tool": "someone else"}))
    assert not STAMP.owns(folder)
    STAMP.write(folder, pid=7)
    assert STAMP.read(folder) == {"tool": STAMP.tool, "pid": 7}


def test_refuse_foreign_names_what_it_found_and_accepts_empty_or_stamped(tmp_path):
    mine, empty, theirs = (tmp_path / n for n in ("mine", "empty", "theirs"))
    for folder in (mine, empty, theirs):
        folder.mkdir()
    STAMP.write(mine)
    (mine / "page.html").write_text("ours")
    (theirs / "thesis.tex").write_text("theirs")
    outputs.refuse_foreign(mine, STAMP)
    outputs.refuse_foreign(empty, STAMP)
    outputs.refuse_foreign(tmp_path / "missing", STAMP)
    with pytest.raises(outputs.OutputError, match=r"holds 1 entry \(thesis\.tex\)"):
        outputs.refuse_foreign(theirs, STAMP)
    (theirs / "notes.txt").write_text("theirs too")
    with pytest.raises(outputs.OutputError, match=r"holds 2 entries \(notes\.txt, thesis"):
        outputs.refuse_foreign(theirs, STAMP)
    (tmp_path / "link").symlink_to(mine)
    with pytest.raises(outputs.OutputError, match="not a plain folder"):
        outputs.refuse_foreign(tmp_path / "link", STAMP)


def test_refuse_overlap_protects_a_tree_its_parents_and_git_folders(tmp_path):
    tree = tmp_path / "tree"
    (tree / ".git").mkdir(parents=True)
    protected = [("the tree", tree)]
    with pytest.raises(outputs.OutputError, match="is the tree"):
        outputs.refuse_overlap(tree, protected)
    with pytest.raises(outputs.OutputError, match="is a parent of the tree"):
        outputs.refuse_overlap(tmp_path, protected)
    with pytest.raises(outputs.OutputError, match=r"inside a \.git folder"):
        outputs.refuse_overlap(tree / ".git" / "site", protected)
    outputs.refuse_overlap(tree / "build" / "site", protected)


def test_building_swaps_in_on_success_and_keeps_the_old_folder_on_error(tmp_path):
    out = tmp_path / "site"
    folder = outputs.OwnedFolder(out, STAMP)
    with folder.building() as temp:
        STAMP.write(temp)
        (temp / "index.html").write_text("first")
    with pytest.raises(RuntimeError), folder.building() as temp:
        (temp / "index.html").write_text("second")
        raise RuntimeError("the build failed")
    assert (out / "index.html").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_stale_temps_are_only_those_provably_ours_whose_writer_is_gone(tmp_path):
    out = tmp_path / "site"
    folder = outputs.OwnedFolder(out, STAMP)
    gone = dead_pid()

    def make(name: str, stamp: dict | None = None) -> Path:
        path = tmp_path / name
        path.mkdir()
        if stamp is not None:
            (path / STAMP.name).write_text(json.dumps({"tool": STAMP.tool, **stamp}))
        return path

    stale = [make(f".site.building-{gone}-abc"),  # pid in the name, gone
             make(".site.building-x", {"pid": gone}),  # pid in the stamp, gone
             make(f".site.old-{gone}-def", {})]  # an old folder with our stamp
    ancient = make(f".site.building-{os.getppid()}-old")  # pid alive but reused: too old
    two_days = time.time() - 2 * 24 * 3600
    os.utime(ancient, (two_days, two_days))
    kept = [make(f".site.building-{os.getpid()}-live"),  # its writer is running
            make(".site.building-nopid"),  # no pid anywhere: not provably ours
            make(f".site.old-{gone}-nostamp"),  # an old folder without our stamp
            make(f".other.building-{gone}-abc")]  # another output's
    removed = folder.remove_stale_temps()
    assert sorted(removed) == sorted([*stale, ancient])
    assert all(path.exists() for path in kept)
