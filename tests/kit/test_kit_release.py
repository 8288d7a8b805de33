"""``python -m kit release`` on the fixture tree: files, stubs, notebooks, errors, --out.

Expected texts are written by hand from CONTRIBUTING.md; the fixture tree is in
``fixtures/solution`` (its own task table: 1.1-1.3 in course/layers.py, 2.1-2.2 in
notebooks/Demo.ipynb).
"""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from kit_helpers import Run, git, run_release, snapshot

from kit import leaks, markers
from kit.tree import SolutionTree, load_task_table

TODO_11 = ("    # TODO [task 1.1] scale_forward: "
           "write this part (the docstring says what it must do).\n")
RAISE_11 = ('    raise NotImplementedError("task 1.1 (scale_forward): not written yet; '
            'see the TODO in course/layers.py")\n')
TODO_12 = "        # TODO [task 1.2] Affine.forward: flatten x, multiply by w, add b\n"
RAISE_12 = ('        raise NotImplementedError("task 1.2 (Affine.forward): not written yet; '
            'see the TODO in course/layers.py")\n')
TODO_13 = ("            # TODO [task 1.3] clip_all: "
           "write this part (the docstring says what it must do).\n")
RAISE_13 = ('            raise NotImplementedError("task 1.3 (clip_all): not written yet; '
            'see the TODO in course/layers.py")\n')

STUDENT_FILES = {
    ".gitignore", ".release.json", "README.md", "course/__init__.py", "course/layers.py",
    "course/tasks.py", "course/utils.py", "datasets/README.md", "notebooks/Demo.ipynb",
    "pyproject.toml", "scripts/hello.sh", "tests/test_layers.py",
}


def released(src: Path, out: Path, *extra: str) -> Run:
    result = run_release("--source", src, "--out", out, *extra)
    assert result.code == 0, result.err
    return result


def test_layers_regions_become_stubs_and_the_rest_is_unchanged(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    released(src, out)
    source = (src / "course" / "layers.py").read_text()
    expected = (
        source
        .replace("    # BEGIN SOLUTION 1.1\n    out = np.multiply(x, factor)\n"
                 "    # END SOLUTION\n", TODO_11 + RAISE_11)
        .replace("        # BEGIN SOLUTION 1.2: flatten x, multiply by w, add b\n"
                 "        flat = x.reshape(x.shape[0], -1)\n"
                 "        out = flat @ self.w + self.b\n"
                 "        # END SOLUTION\n", TODO_12 + RAISE_12)
        .replace("            # BEGIN SOLUTION 1.3\n"
                 "            mask = row < low\n"
                 "            changed += int(mask.sum())\n"
                 "            row[mask] = low\n"
                 "            # END SOLUTION\n", TODO_13 + RAISE_13)
    )
    assert "BEGIN SOLUTION" not in expected  # the replacements above all matched
    assert (out / "course" / "layers.py").read_text() == expected


def test_file_selection_leaves_out_instructor_files_and_local_clutter(
    src: Path, tmp_path: Path
) -> None:
    for clutter in [".venv/lib/x.py", "build/old/y.py", "datasets/cifar/data_batch_1",
                    "course/__pycache__/layers.cpython-311.pyc", ".pytest_cache/v"]:
        (src / clutter).parent.mkdir(parents=True, exist_ok=True)
        (src / clutter).write_text("clutter\n")
    out = tmp_path / "student"
    released(src, out)
    assert set(snapshot(out)) == STUDENT_FILES


def test_git_source_lists_tracked_files_only(
    git_src: Path, tmp_path: Path
) -> None:
    (git_src / "course" / "extra.py").write_text("EXTRA = 1\n")  # untracked, not ignored
    (git_src / "datasets" / "big.bin").write_bytes(b"\0" * 10)  # ignored by .gitignore
    (git_src / "build").mkdir()
    (git_src / "build" / "z.py").write_text("z = 1\n")
    (git_src / "course" / "utils.py").unlink()  # deleted, still in the index
    out = tmp_path / "student"
    released(git_src, out)
    # course/extra.py is untracked: a scratch file never reaches students (issue 9, item 9)
    assert set(snapshot(out)) == STUDENT_FILES - {"course/utils.py"}


def test_files_without_markers_are_byte_identical_and_keep_their_mode(
    src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    released(src, out)
    for rel in ["course/utils.py", "course/tasks.py", "tests/test_layers.py", ".gitignore",
                "scripts/hello.sh", "datasets/README.md"]:
        assert (out / rel).read_bytes() == (src / rel).read_bytes(), rel
    assert (out / "scripts" / "hello.sh").stat().st_mode & stat.S_IXUSR
    assert not (out / "course" / "utils.py").stat().st_mode & stat.S_IXUSR


def test_student_readme_comes_from_the_template(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    released(src, out)
    readme = (out / "README.md").read_text()
    assert "INSTRUCTOR README" not in readme
    for needed in ["make test", "make lab", "make check", "make check TASK=1.3", "make data",
                   "`TODO`", "`FAIL`", "`PASS`", "COURSE_DATASET=digits",
                   "1. `notebooks/Demo.ipynb`",
                   "| 1.2 | Affine forward | `Affine.forward` in `course/layers.py` |"]:
        assert needed in readme, needed
    assert "{{" not in readme


def read_cells(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


def test_notebook_is_cleaned_and_its_cells_handled_by_tag(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    released(src, out)
    source_cells = {c.id: c for c in read_cells(src / "notebooks" / "Demo.ipynb")}
    nb = nbformat.read(out / "notebooks" / "Demo.ipynb", as_version=4)
    cells = {c.id: c for c in nb.cells}
    assert "instructor" not in cells
    assert [c.id for c in nb.cells] == [i for i in source_cells if i != "instructor"]
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
        assert not {"execution", "scrolled", "collapsed"} & set(cell.metadata), cell.id
    assert cells["answer"].source == "**Your answer:** *write your answer here.*"
    assert cells["answer"].metadata["tags"] == ["answer"]
    assert cells["train"].metadata == {"jupyter": {"source_hidden": False},
                                       "tags": ["experiment", "nbval-ignore-output"]}
    assert cells["double"].source == source_cells["double"].source.replace(
        "    # BEGIN SOLUTION 2.2\n    result = v + v\n    # END SOLUTION\n",
        "    # TODO [task 2.2] double: write this part (the docstring says what it must do).\n"
        '    raise NotImplementedError("task 2.2 (double): not written yet; '
        'see the TODO in notebooks/Demo.ipynb")\n')
    assert cells["train"].source == (
        "%matplotlib inline\n"
        "# TODO [task 2.1] this cell: pick a learning rate and list the first three steps\n"
        'raise NotImplementedError("task 2.1 (this cell): not written yet; '
        'see the TODO in notebooks/Demo.ipynb")\n'
        "len(history)")
    for same in ["intro", "imports", "scaling-check", "question", "end"]:
        assert cells[same].source == source_cells[same].source
    assert "widgets" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "version" not in nb.metadata["language_info"]


def test_notebook_file_is_formatted_like_jupyter_writes_it(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    released(src, out)
    text = (out / "notebooks" / "Demo.ipynb").read_text(encoding="utf-8")
    # Jupyter: one-space indent, sorted keys, non-ASCII kept, final newline.
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True,
                              ensure_ascii=False) + "\n"


def test_notebook_without_markers_still_loses_its_outputs(src: Path, tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "print(1)", execution_count=1,
        outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")])])
    nbformat.write(nb, src / "notebooks" / "Plain.ipynb")
    out = tmp_path / "student"
    result = released(src, out)
    (cell,) = read_cells(out / "notebooks" / "Plain.ipynb")
    assert (cell.source, cell.outputs, cell.execution_count) == ("print(1)", [], None)
    assert "notebooks/Plain.ipynb: 0 stub(s), outputs cleared" in result.out


def test_summary_names_stubs_per_file_notebooks_and_destination(
    src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    result = released(src, out)
    assert f"11 files written to {out}" in result.out  # README.md counted, the stamp not
    assert "course/layers.py: 3 stub(s)" in result.out
    assert ("notebooks/Demo.ipynb: 2 stub(s), outputs cleared, 1 answer cell(s) replaced, "
            "1 instructor cell(s) dropped") in result.out
    assert "1 notebook(s) cleaned" in result.out


BAD_PY = [
    ("def f():\n    # END SOLUTION\n", 2, "END SOLUTION without a BEGIN SOLUTION"),
    ("x = 1\n# BEGIN SOLUTION 1.1\ny = 2\n", 2, "never closed"),
    ("# BEGIN SOLUTION 1.1\n# BEGIN SOLUTION 1.2\n# END SOLUTION\n", 2, "do not nest"),
    ("\n\n# BEGIN SOLUTIONS 1.1\n", 3, "unknown marker"),
    ("# END FOO\n", 1, "unknown marker"),
    ("# BEGIN SOLUTION\n# END SOLUTION\n", 1, "without a task ID"),
    ("# BEGIN SOLUTION 7.7\n# END SOLUTION\n", 1, "unknown task ID '7.7'"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD_PY)
def test_a_bad_marker_stops_the_release_naming_file_and_line_and_writes_nothing(
    src: Path, tmp_path: Path, text: str, line: int, reason: str
) -> None:
    (src / "course" / "bad.py").write_text(text)
    out = tmp_path / "student"
    result = run_release("--source", src, "--out", out)
    assert result.code == 1
    assert f"course/bad.py:{line}: " in result.err and reason in result.err
    assert "nothing written" in result.err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["solution"]  # no temporary folder left


def test_a_failed_release_leaves_the_previous_release_as_it_was(
    src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    released(src, out)
    before = snapshot(out)
    (src / "course" / "layers.py").write_text("# END SOLUTION\n")
    assert run_release("--source", src, "--out", out).code == 1
    assert snapshot(out) == before


def edit_cell(src: Path, cell_id: str, **changes: object) -> None:
    path = src / "notebooks" / "Demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.id == cell_id)
    for key, value in changes.items():
        if key == "tags":
            cell.metadata["tags"] = value
        else:
            cell[key] = value
    nbformat.write(nb, path)


@pytest.mark.parametrize(
    ("cell_id", "changes", "expected"),
    [
        # cell 6 is "double": line 3 holds its BEGIN marker
        ("double", {"source": "def double(v):\n    x = 1\n    # BEGIN SOLUTION 2.2\n"},
         "notebooks/Demo.ipynb: cell 6, line 3: BEGIN SOLUTION is never closed"),
        ("imports", {"source": "import numpy\n# END SOLUTIONS"},
         "notebooks/Demo.ipynb: cell 2, line 2: unknown marker '# END SOLUTIONS'"),
        ("imports", {"source": "# BEGIN SOLUTION 3.1\n# END SOLUTION"},
         "notebooks/Demo.ipynb: cell 2, line 1: unknown task ID '3.1'"),
        ("imports", {"tags": ["check", "solution"]},
         "notebooks/Demo.ipynb: cell 2: unknown cell tag 'solution'"),
        ("intro", {"tags": ["check"]},
         "notebooks/Demo.ipynb: cell 1: tag 'check' is for code cells, not markdown cells"),
        ("imports", {"tags": ["answer"]},
         "notebooks/Demo.ipynb: cell 2: tag 'answer' is for markdown cells, not code cells"),
    ],
)
def test_notebook_errors_name_the_cell_and_line_and_write_nothing(
    src: Path, tmp_path: Path, cell_id: str, changes: dict, expected: str
) -> None:
    edit_cell(src, cell_id, **changes)
    out = tmp_path / "student"
    result = run_release("--source", src, "--out", out)
    assert result.code == 1
    assert expected in result.err
    assert not out.exists()


def test_every_error_of_the_tree_is_reported_at_once(src: Path, tmp_path: Path) -> None:
    (src / "course" / "bad1.py").write_text("# END SOLUTION\n")
    (src / "course" / "bad2.py").write_text("\n# BEGIN SOLUTION 1.1\n")
    result = run_release("--source", src, "--out", tmp_path / "student")
    assert "course/bad1.py:1: " in result.err and "course/bad2.py:2: " in result.err


def test_two_releases_are_identical_and_replace_the_old_tree(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    released(src, out)
    first = snapshot(out)
    released(src, out)
    assert snapshot(out) == first
    (out / "stale.txt").write_text("someone's notes\n")  # refused: not the tool's (item 2)
    assert run_release("--source", src, "--out", out).code == 2
    assert (out / "stale.txt").exists()


def test_stamp_records_the_tool_and_source(git_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    released(git_src, out)
    head = git(git_src, "rev-parse", "HEAD").strip()
    data = json.loads((out / ".release.json").read_text())
    manifest = data.pop("manifest")
    assert data == {"tool": "python -m kit release", "format": 2, "source_commit": head,
                    "source_dirty": False, "files": 11}
    assert set(manifest) == set(snapshot(out)) - {".release.json"}
    assert manifest["course/utils.py"] == hashlib.sha256(
        (out / "course" / "utils.py").read_bytes()).hexdigest()


def test_out_refuses_a_foreign_non_empty_folder(src: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me\n")
    result = run_release("--source", src, "--out", foreign)
    assert result.code == 2
    assert "refusing to replace it" in result.err and ".release.json" in result.err
    assert snapshot(foreign) == {"notes.txt": (b"keep me\n", 0o644)}


def test_out_refuses_a_file_and_the_source_itself(src: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x\n")
    assert run_release("--source", src, "--out", a_file).code == 2
    assert a_file.read_text() == "x\n"
    before = snapshot(src)
    assert run_release("--source", src, "--out", src).code == 2
    assert run_release("--source", src / "course", "--out", src).code == 2
    assert snapshot(src) == before


def test_out_accepts_an_empty_folder_and_a_folder_inside_the_source(src: Path) -> None:
    empty = src.parent / "empty"
    empty.mkdir()
    released(src, empty)
    inside = src / "student"  # not ignored by the fixture's .gitignore
    released(src, inside)
    released(src, inside)  # the first release inside the source is not swallowed
    assert not (inside / "student").exists()
    assert set(snapshot(inside)) == STUDENT_FILES


def test_leak_check_finds_solution_only_lines_and_nothing_in_the_release(
    src: Path, tmp_path: Path
) -> None:
    secret = leaks.solution_only_lines(SolutionTree.load(src))
    for line in ["out = np.multiply(x, factor)", "flat = x.reshape(x.shape[0], -1)",
                 "row[mask] = low", "result = v + v", "learning_rate = 0.5",
                 "INSTRUCTOR_ONLY_CONSTANT = 1234",
                 "Because addition is what doubling means: `v + v` equals `2 * v`."]:
        assert line in secret, line
    # Lines that also occur outside the regions are not secret.
    assert "return out" not in secret and "return result" not in secret
    out = tmp_path / "student"
    released(src, out)
    assert leaks.find_leaks(out, secret) == []
    leaks.check_no_leaks(SolutionTree.load(src), out)


def test_leak_check_reports_a_planted_leak_with_its_place(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    released(src, out)
    with (out / "course" / "utils.py").open("a") as handle:
        handle.write("    mask = row < low\n")
    nb_path = out / "notebooks" / "Demo.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source += "\nresult = v + v"
    nbformat.write(nb, nb_path)
    found = leaks.find_leaks(out, leaks.solution_only_lines(SolutionTree.load(src)))
    assert found == ["course/utils.py:7: mask = row < low",
                     "notebooks/Demo.ipynb: cell 1, line 4: result = v + v"]
    with pytest.raises(leaks.LeakError, match="solution text in the student tree"):
        leaks.check_no_leaks(SolutionTree.load(src), out)


def test_leak_check_finds_a_long_solution_line_quoted_inside_another_line(
        src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    released(src, out)
    # A hint comment that quotes a line of a region: published with the comment, it is
    # no whole secret line, but it holds one. "row[mask] = low" is too short to look for
    # inside other lines (EMBEDDED_MIN), and "return out" is no secret.
    with (out / "course" / "utils.py").open("a") as handle:
        handle.write("# hint: flat = x.reshape(x.shape[0], -1) keeps the batch\n"
                     "# row[mask] = low; return out\n")
    assert len("flat = x.reshape(x.shape[0], -1)") >= leaks.EMBEDDED_MIN
    assert "flat = x.reshape(x.shape[0], -1)" in leaks.embeddable_lines(SolutionTree.load(src))
    with pytest.raises(leaks.LeakError) as raised:
        leaks.check_no_leaks(SolutionTree.load(src), out)
    assert str(raised.value).splitlines()[1:] == [
        "course/utils.py:7: # hint: flat = x.reshape(x.shape[0], -1) keeps the batch"]


def test_the_release_refuses_to_publish_a_tree_with_a_leak(src: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "student"
    released(src, out)
    before = snapshot(out)

    # A release bug: the regions of .py files come out with their solutions in place.
    def solution_text(segments: list[markers.Segment]) -> str:
        return "".join(s if isinstance(s, str) else s.source for s in segments)

    monkeypatch.setattr(markers, "render_student", solution_text)
    result = run_release("--source", src, "--out", out)
    assert result.code == 1
    assert "solution text in the student tree" in result.err
    assert "course/layers.py" in result.err and "The release was not published" in result.err
    assert snapshot(out) == before  # the previous release stays
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".student.")]  # no temp


def test_restoring_the_regions_gives_back_the_solution_files(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    released(src, out)
    tasks = load_task_table(src)
    text = (src / "course" / "layers.py").read_text()
    found = markers.regions(markers.parse(text, "course/layers.py", tasks))
    assert len(found) == 3
    assert markers.restore((out / "course" / "layers.py").read_text(), found) == text
    student_cells = {c.id: c for c in read_cells(out / "notebooks" / "Demo.ipynb")}
    for number, cell in enumerate(read_cells(src / "notebooks" / "Demo.ipynb"), start=1):
        if cell.cell_type != "code" or cell.id == "instructor":
            continue
        cell_regions = markers.regions(
            markers.parse(cell.source, "notebooks/Demo.ipynb", tasks, cell=number))
        assert markers.restore(student_cells[cell.id].source, cell_regions) == cell.source


def test_the_task_table_is_read_from_the_source_tree(src: Path) -> None:
    table = load_task_table(src)
    assert list(table) == ["1.1", "1.2", "1.3", "2.1", "2.2"]
    assert "course" not in str(type(next(iter(table.values()))).__module__).split(".")[:1]


def test_command_line_entry_point_dispatches_to_release(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    result = subprocess.run(
        [sys.executable, "-m", "kit", "release", "--source", str(src), "--out", str(out)],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (out / ".release.json").is_file()
    assert "course/layers.py: 3 stub(s)" in result.stdout


def test_summary_notes_a_task_without_its_region(src: Path, tmp_path: Path) -> None:
    layers = src / "course" / "layers.py"
    text = layers.read_text()
    region = text[text.index("            # BEGIN SOLUTION 1.3\n"):text.index("    return changed")]
    assert region.endswith("# END SOLUTION\n")
    layers.write_text(text.replace(region, "            row[row < low] = low\n"))
    utils = src / "course" / "utils.py"
    utils.write_text(utils.read_text() + "\n\ndef g() -> None:\n    # BEGIN SOLUTION 1.3\n"
                     "    pass\n    # END SOLUTION\n")
    result = released(src, tmp_path / "student")
    assert "note: task 1.3: no solution region in course/layers.py (found in course/utils.py)" \
        in result.out
    assert result.out.count("note:") == 1
