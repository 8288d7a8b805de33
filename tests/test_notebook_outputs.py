"""course/notebook_outputs.py: the verdict of a check cell from its saved outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from course.notebook_outputs import (
    load_notebook,
    saved_checks,
    stubbed_tasks,
    stubs_in_text,
    verdict,
    was_run,
)


def _cell(*outputs: dict, count: int | None = 1, check: str | None = "a-check",
          source: str = "") -> dict:
    metadata = {"tags": ["check"], "check": check} if check else {}
    return {"cell_type": "code", "execution_count": count, "metadata": metadata,
            "outputs": list(outputs), "source": source}


def _out(text: str | list[str], name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def test_only_check_passed_lines_pass_whether_stored_as_a_string_or_lines():
    assert verdict(_cell(_out("check passed: a\ncheck passed: b\n"))) == (True, "")
    assert verdict(_cell(_out(["check passed: a\n", "check passed: b\n"]))) == (True, "")


def test_a_stream_saved_in_pieces_is_read_as_one_text():
    # nbconvert saved one cell's stdout as "check passed: a" then "\ncheck passed: b\n":
    # two check lines, not "check passed: a", an empty line and "check passed: b".
    pieces = _cell(_out("check passed: a"), _out("\ncheck passed: b\n"))
    assert verdict(pieces) == (True, "")
    # A line split across pieces is one line, judged whole.
    assert verdict(_cell(_out("check pa"), _out("ssed: a\n"))) == (True, "")
    # An empty line printed for real is still a stray line, as are stderr's lines,
    # which are another stream even when they come between two stdout pieces.
    assert not verdict(_cell(_out("check passed: a\n\n")))[0]
    split = _cell(_out("check passed: a"), _out("warning\n", "stderr"), _out("\n"))
    assert verdict(split)[1].startswith("printed 'warning'")


@pytest.mark.parametrize(("outputs", "reason"), [
    ([_out("check passed: a\ncheck FAILED: b, error 0.5\n")], "check FAILED: b, error 0.5"),
    ([_out("check passed: a\n"), _out("RuntimeWarning: overflow\n", "stderr")],
     "printed 'RuntimeWarning: overflow', which is not a check line"),
    ([{"output_type": "execute_result", "data": {"text/plain": "0.97"}, "metadata": {},
       "execution_count": 1}], "printed '0.97', which is not a check line"),
    ([{"output_type": "error", "ename": "NotImplementedError", "traceback": [],
       "evalue": "task 1.9 (this cell): not written yet; see the TODO"}],
     "stopped at the stub of task 1.9"),
    ([{"output_type": "error", "ename": "ValueError", "traceback": [],
       "evalue": "affine_forward: w must have shape (D, M)\nmore"}],
     "ValueError: affine_forward: w must have shape (D, M)"),
    ([], "ran but printed no check line"),
])
def test_anything_else_fails_with_the_reason(outputs, reason):
    passed, why = verdict(_cell(*outputs))
    assert not passed and why.startswith(reason)


def test_saved_checks_tell_run_from_not_run_and_skip_other_cells():
    notebook = {"cells": [_cell(_out("check passed: a\n"), check="first"),
                          _cell(count=None, check="second"),
                          _cell(_out("hello\n"), check=None),
                          {"cell_type": "markdown", "metadata": {}, "source": "# x"}]}
    found = saved_checks(notebook, "Demo")
    assert list(found) == ["first", "second"]
    assert found["first"].ran and found["first"].passed
    assert not found["second"].ran and found["second"].reason.startswith("not run")
    assert was_run(notebook)
    assert not was_run({"cells": [_cell(count=None), notebook["cells"][3]]})


def test_stubs_are_found_in_cells_and_in_text():
    stub = 'raise NotImplementedError("task 1.14 (this cell): not written yet; see ...")'
    assert stubbed_tasks({"cells": [_cell(source=stub), _cell(source="x = 1")]}) == {"1.14"}
    assert stubs_in_text("    raise NotImplementedError(\n        'task 2.1 (f): ...')") == {"2.1"}
    assert stubs_in_text("# task 2.1 (f) is done") == set()


def test_a_file_that_is_not_a_notebook_is_an_error_naming_it(tmp_path: Path):
    (tmp_path / "a.ipynb").write_text("{")
    (tmp_path / "b.ipynb").write_text("[]")
    for name in ("a.ipynb", "b.ipynb", "missing.ipynb"):
        with pytest.raises(ValueError, match=name):
            load_notebook(tmp_path / name)
