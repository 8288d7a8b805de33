"""Wrong arguments an instructor types: each ends with a short error naming the argument,
what was expected and what was given, exit status 2, no traceback, and nothing written or
replaced that the command did not make. One test per case that once failed."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from kit_helpers import run_release

from kit import bench, grade, gradescope, mutants, port, site, verify


def run_main(main: Callable[[list[str]], int], *argv: str | Path) -> tuple[int, str]:
    """Call a command's ``main`` in-process: (exit status, stderr). argparse's usage errors
    raise ``SystemExit``; any other exception fails the test with its traceback."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    return code, err.getvalue()


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_site_timeout_must_be_a_positive_whole_number(value: str, tmp_path: Path) -> None:
    code, err = run_main(site.main, "--out", tmp_path / "site", "--no-execute",
                         "--timeout", value)
    assert code == 2
    assert last_line(err).endswith(
        f"argument --timeout: expected a whole number of seconds >= 1, got {value!r}")
    assert not (tmp_path / "site").exists()


def test_site_notebooks_must_be_a_folder(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    for given, found in ((tmp_path / "missing", "nothing"), (a_file, "a file")):
        code, err = run_main(site.main, "--out", tmp_path / "site", "--no-execute",
                             "--notebooks", given)
        assert code == 2
        assert (f"--notebooks {given}: expected a folder of notebooks, found {found} there"
                in err)
    assert a_file.read_text() == "mine\n" and not (tmp_path / "site").exists()


def test_verify_dataset_must_be_one_it_knows(tmp_path: Path) -> None:
    code, err = run_main(verify.main, tmp_path, "--dataset", "imagenet")
    assert code == 2
    assert "argument --dataset: invalid choice: 'imagenet'" in last_line(err)


@pytest.mark.parametrize("option", ["--timeout", "--wall"])
def test_verify_durations_must_be_positive(option: str, tmp_path: Path) -> None:
    code, err = run_main(verify.main, tmp_path, option, "0")
    assert code == 2
    assert last_line(err).endswith(
        f"argument {option}: expected a positive number of seconds, got '0'")


def test_verify_of_a_file_that_is_not_a_zip_is_not_a_success(tmp_path: Path) -> None:
    fake = tmp_path / "work.zip"
    fake.write_text("not a zip\n")
    err = io.StringIO()
    out = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = verify.main([str(fake), "--no-isolation"])
    assert code == 1
    assert "not a readable zip" in out.getvalue()
    assert "nothing verified" in out.getvalue()
    assert fake.read_text() == "not a zip\n"


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--budget", "0", "expected a positive number of seconds, got '0'"),
    ("--budget", "-1", "expected a positive number of seconds, got '-1'"),
    ("--threads", "0", "expected a whole number >= 1, got '0'"),
    ("--threads", "-1", "expected a whole number >= 1, got '-1'"),
])
def test_bench_budget_and_threads_must_be_positive(option: str, value: str,
                                                   expected: str) -> None:
    code, err = run_main(bench.main, option, value)
    assert code == 2
    assert last_line(err).endswith(f"argument {option}: {expected}")


@pytest.mark.parametrize("option", ["--jobs", "--sample"])
def test_mutants_counts_name_the_value_given(option: str) -> None:
    code, err = run_main(mutants.main, option, "0", "--list")
    assert code == 2
    assert last_line(err).endswith(f"argument {option}: expected a whole number >= 1, got '0'")


def test_mutants_unknown_task_is_an_error_not_an_empty_run() -> None:
    code, err = run_main(mutants.main, "--task", "99.1", "--list")
    assert code == 2
    assert "argument --task: no task '99.1'; expected one of 1.1, 1.2" in last_line(err)


def test_gradescope_never_overwrites_a_zip_it_did_not_write(tmp_path: Path) -> None:
    theirs = tmp_path / "handin.zip"
    with zipfile.ZipFile(theirs, "w") as archive:
        archive.writestr("course/layers.py", "# two evenings of work\n")
    before = theirs.read_bytes()
    code, err = run_main(gradescope.main, "--out", theirs)
    assert code == 2
    assert f"--out {theirs}: exists and is not an autograder bundle this command wrote" in err
    assert theirs.read_bytes() == before


def test_gradescope_out_must_be_a_zip_path(tmp_path: Path) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    for given, what in ((folder, "a folder"), (notes, "'notes.txt'")):
        code, err = run_main(gradescope.main, "--out", given)
        assert code == 2
        assert f"--out {given}: expected the path of a .zip file, got {what}" in err
    assert list(folder.iterdir()) == [] and notes.read_text() == "mine\n"


def test_gradescope_replaces_its_own_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "autograder.zip"
    assert run_main(gradescope.main, "--out", bundle)[0] == 0
    assert gradescope.is_our_bundle(bundle)
    assert run_main(gradescope.main, "--out", bundle)[0] == 0


def test_gradescope_run_limits_must_be_positive(tmp_path: Path) -> None:
    code, err = run_main(gradescope.main, "run", "--root", tmp_path, "--timeout", "-5")
    assert code == 2
    assert last_line(err).endswith(
        "argument --timeout: expected a positive number of seconds, got '-5'")


def test_port_out_that_is_a_file_is_refused_without_a_traceback(tmp_path: Path) -> None:
    notebook = tmp_path / "FC.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    a_file = tmp_path / "out"
    a_file.write_text("mine\n")
    code, err = run_main(port.main, notebook, "--out", a_file)
    assert code == 2
    assert err.strip() == (f"port: --out {a_file}: expected a folder for the ported "
                           "notebooks, found a file")
    assert a_file.read_text() == "mine\n"


def test_port_missing_notebook_is_a_usage_error_and_nothing_is_written(tmp_path: Path) -> None:
    notebook = tmp_path / "FC.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    code, err = run_main(port.main, tmp_path / "missing.ipynb", notebook,
                         "--out", tmp_path / "ported")
    assert code == 2
    assert f"port: {tmp_path / 'missing.ipynb'}: no such notebook" in err
    assert not (tmp_path / "ported").exists()


def test_release_source_that_is_missing_or_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    for given, found in ((tmp_path / "missing", "nothing"), (a_file, "a file")):
        result = run_release("--source", given, "--out", tmp_path / "student")
        assert result.code == 2
        assert (f"--source {given}: expected the solution tree (a folder with course/), "
                f"found {found} there") in result.err
    assert not (tmp_path / "student").exists() and a_file.read_text() == "mine\n"



@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--jobs", "0", "expected a number of submissions >= 1, got '0'"),
    ("--jobs", "-1", "expected a number of submissions >= 1, got '-1'"),
    ("--timeout", "abc", "expected a positive number of seconds, got 'abc'"),
    ("--wall", "0", "expected a positive number of seconds, got '0'"),
    ("--memory", "100", "expected a number of MB >= 256, got '100'"),
    ("--disk", "0", "expected a number of MB >= 1, got '0'"),
    ("--disk", "1GB", "expected a number of MB >= 1, got '1GB'"),
])
def test_grade_numbers_are_checked_and_named(option: str, value: str, expected: str,
                                             tmp_path: Path) -> None:
    sub = tmp_path / "alice"
    sub.mkdir()
    code, err = run_main(grade.main, sub, "--out", tmp_path / "grades", option, value)
    assert code == 2
    assert last_line(err).endswith(f"argument {option}: {expected}")
    assert not (tmp_path / "grades").exists()


def test_grade_names_a_bad_disk_cap_variable_before_grading(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "alice"
    sub.mkdir()
    monkeypatch.setenv("KIT_SANDBOX_DISK_MB", "2GB")
    code, err = run_main(grade.main, sub, "--out", tmp_path / "grades", "--no-isolation")
    assert code == 2
    assert last_line(err).endswith("KIT_SANDBOX_DISK_MB='2GB': expected a whole number of MB, "
                                   "1 or more")
    assert not (tmp_path / "grades").exists()


def test_grade_without_notebook_options_grades_every_notebook(tmp_path: Path) -> None:
    references = grade.reference_notebooks()
    args = grade.parser().parse_args([str(tmp_path), "--only", "affine-forward"])
    args.notebook = grade._notebook_names(args.notebook, references)
    assert grade._usage_problem(args, references) is None and args.notebook is None
    args = grade.parser().parse_args([str(tmp_path), "--notebook", "DROPOUT.ipynb"])
    args.notebook = grade._notebook_names(args.notebook, references)
    assert grade._usage_problem(args, references) is None and args.notebook == ["Dropout"]
    # And a batch that would select nothing is an error, never a "graded" 0/0.
    with pytest.raises(ValueError, match="nothing to grade"):
        grade.grade_batch([tmp_path], tmp_path / "grades", notebooks=[])


def test_grade_refuses_names_it_does_not_know_before_grading(tmp_path: Path) -> None:
    sub = tmp_path / "alice"
    sub.mkdir()
    out = tmp_path / "grades"
    code, err = run_main(grade.main, sub, "--out", out, "--notebook", "ConvNets")
    assert code == 2
    assert "argument --notebook: no notebook 'ConvNets'; expected one of " \
           "FullyConnectedNets, BatchNormalization" in last_line(err)
    # A notebook's name in any case, or its file name, is the notebook; a check of another
    # notebook selects nothing, which is said before grading.
    code, err = run_main(grade.main, sub, "--out", out, "--notebook", "dropout.ipynb",
                         "--only", "affine-forward")
    assert code == 2
    assert last_line(err).endswith("argument --only: none of 'affine-forward' is a check of "
                                   "Dropout (--notebook): nothing would be graded")
    code, err = run_main(grade.main, sub, "--out", out, "--only", "affine-foward")
    assert code == 2
    assert "argument --only: no check cell named 'affine-foward' (did you mean " \
           "affine-forward" in last_line(err)
    assert not out.exists()


def test_grade_submission_must_be_a_folder_or_a_zip(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    for given, expected in ((notes, f"expected a folder or a .zip file, got {notes} (a file)"),
                            (tmp_path / "nobody", "no such file or folder")):
        code, err = run_main(grade.main, given, "--out", tmp_path / "grades")
        assert code == 2
        assert f"argument SUBMISSION: {expected}" in last_line(err)
    assert notes.read_text() == "mine\n" and not (tmp_path / "grades").exists()
