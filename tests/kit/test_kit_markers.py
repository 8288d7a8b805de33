"""kit.markers on inline texts: stub shape, indentation, line endings, errors, round trip.

Every expected student text below is written out by hand from the format in
CONTRIBUTING.md section 1, not produced by the code under test.
"""

from __future__ import annotations

import ast
import gc
import sys
import traceback

import pytest

from kit import markers
from kit.markers import (
    MarkerError,
    enclosing_function,
    outside_text,
    parse,
    parse_python,
    regions,
    render_student,
    restore,
)

TASKS = {"1.1": None, "1.3": None, "1.8": None}


def student(text: str, path: str = "course/layers.py", cell: int | None = None) -> str:
    return render_student(parse(text, path, TASKS, cell=cell))


def test_function_region_becomes_a_two_line_stub_at_the_marker_indent() -> None:
    source = (
        "def relu_forward(x):\n"
        '    """Doc."""\n'
        "    # BEGIN SOLUTION 1.3\n"
        "    out = np.maximum(x, 0)\n"
        "    # END SOLUTION\n"
        "    return out, x\n"
    )
    expected = (
        "def relu_forward(x):\n"
        '    """Doc."""\n'
        "    # TODO [task 1.3] relu_forward: "
        "write this part (the docstring says what it must do).\n"
        '    raise NotImplementedError("task 1.3 (relu_forward): not written yet; '
        'see the TODO in course/layers.py")\n'
        "    return out, x\n"
    )
    assert student(source) == expected


def test_method_region_with_hint_deep_inside_blocks() -> None:
    source = (
        "class FullyConnectedNet:\n"
        "    def loss(self, X, y=None):\n"
        "        for layer in range(3):\n"
        "            if y is not None:\n"
        "                # BEGIN SOLUTION 1.8: backward pass, from the loss back to W1\n"
        "                grads = {}\n"
        "\n"
        "                grads['W1'] = 0\n"
        "                # END SOLUTION\n"
        "        return grads\n"
    )
    expected = (
        "class FullyConnectedNet:\n"
        "    def loss(self, X, y=None):\n"
        "        for layer in range(3):\n"
        "            if y is not None:\n"
        "                # TODO [task 1.8] FullyConnectedNet.loss: backward pass, from the loss "
        "back to W1\n"
        '                raise NotImplementedError("task 1.8 (FullyConnectedNet.loss): not written '
        'yet; see the TODO in course/classifiers/fc_net.py")\n'
        "        return grads\n"
    )
    assert student(source, "course/classifiers/fc_net.py") == expected


def test_region_outside_any_def_in_a_file_and_in_a_cell() -> None:
    source = "x = 1\n# BEGIN SOLUTION 1.1:   choose y\ny = 2\n# END SOLUTION\nprint(y)"
    assert student(source, "course/top.py") == (
        "x = 1\n"
        "# TODO [task 1.1] module level: choose y\n"
        'raise NotImplementedError("task 1.1 (module level): not written yet; '
        'see the TODO in course/top.py")\n'
        "print(y)"
    )
    assert student(source, "notebooks/N.ipynb", cell=4) == (
        "x = 1\n"
        "# TODO [task 1.1] this cell: choose y\n"
        'raise NotImplementedError("task 1.1 (this cell): not written yet; '
        'see the TODO in notebooks/N.ipynb")\n'
        "print(y)"
    )


def test_default_sentence_outside_a_def() -> None:
    text = student("# BEGIN SOLUTION 1.1\nz = 3\n# END SOLUTION\n", "course/top.py")
    assert text.splitlines()[0] == (
        "# TODO [task 1.1] module level: write this part (the text above says what it must do)."
    )


def test_tab_indent_is_copied_and_text_outside_is_untouched() -> None:
    source = "def f():\n\tx = 0\n\t# BEGIN SOLUTION 1.1\n\tx = 1\n\t# END SOLUTION\n\treturn x\n"
    lines = student(source).split("\n")
    assert lines[:2] == ["def f():", "\tx = 0"]
    assert lines[2] == (
        "\t# TODO [task 1.1] f: write this part (the docstring says what it must do)."
    )
    assert lines[3].startswith('\traise NotImplementedError("task 1.1 (f): ')
    assert lines[4:] == ["\treturn x", ""]


def test_crlf_and_missing_final_newline_are_preserved() -> None:
    source = "def f():\r\n    # BEGIN SOLUTION 1.1\r\n    a = 1\r\n    # END SOLUTION"
    text = student(source)
    assert text.startswith("def f():\r\n    # TODO [task 1.1] f: ")
    assert text.count("\r\n") == 2  # after "def f():" and after the TODO line
    assert text.endswith('see the TODO in course/layers.py")')  # no newline was there


def test_nearest_def_wins_and_nested_defs_are_not_methods() -> None:
    source = (
        "class Net:\n"
        "    @staticmethod\n"
        "    def outer():\n"
        "        def inner():\n"
        "            # BEGIN SOLUTION 1.1\n"
        "            return 1\n"
        "            # END SOLUTION\n"
        "        # BEGIN SOLUTION 1.3\n"
        "        return inner\n"
        "        # END SOLUTION\n"
    )
    found = regions(parse(source, "p.py", TASKS))
    assert [r.func for r in found] == ["inner", "Net.outer"]


def test_a_def_that_ended_does_not_own_a_later_block() -> None:
    # Indentation alone would wrongly pick `helper` for the region under the `if`.
    source = (
        "def helper():\n"
        "    return 0\n"
        "if True:\n"
        "    # BEGIN SOLUTION 1.1\n"
        "    value = 1\n"
        "    # END SOLUTION\n"
    )
    assert regions(parse(source, "p.py", TASKS))[0].func == "module level"


def test_function_found_in_notebook_cell_with_magics_and_in_broken_code() -> None:
    cell = "%matplotlib inline\nasync def go():\n    # BEGIN SOLUTION 1.1\n"
    assert enclosing_function(cell, 3, "    ") == "go"
    broken = "class K:\n    def m(self):\n        x = (\n        # BEGIN SOLUTION\n"
    assert enclosing_function(broken, 4, "        ") == "K.m"


def test_ordinary_comments_that_look_a_little_like_markers_are_kept() -> None:
    source = (
        "# Begin with x\n# end of loop\n# BEGINNING\n#ENDPOINT\nx = 'END SOLUTION'\n"
        '"""Docs may name the markers:\n'
        '* the ``# BEGIN SOLUTION 1.3`` marker, and ``# END SOLUTION``."""\n'
        "s = '# BEGIN SOLUTION 1.1'  # a string, then a plain comment\n"
    )
    segments = parse(source, "p.py", TASKS)
    assert regions(segments) == []
    assert render_student(segments) == source


def test_other_comment_lines_in_a_docstring_are_text() -> None:
    source = (
        "def f():\n"
        '    """Mark the solution like this:\n'
        "\n"
        "    # END FOO\n"
        "    # BEGIN SOLUTIONS are not markers\n"
        '    """\n'
        "    # BEGIN SOLUTION 1.3\n"
        "    return 1\n"
        "    # END SOLUTION\n"
    )
    found = regions(parse(source, "p.py", TASKS))
    assert [(r.task_id, r.line) for r in found] == [("1.3", 7)]


def test_a_whole_marker_line_in_a_string_is_an_error() -> None:
    # It would be text, so the "solution" after it would ship (issue 9, item 10).
    source = 'def f():\n    """Like this:\n\n    # BEGIN SOLUTION 1.1\n    """\n'
    with pytest.raises(MarkerError, match=r"^p\.py:4: solution marker .* inside a string"):
        parse(source, "p.py", TASKS)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("x = 1\n    # END SOLUTION\n", 2, "END SOLUTION without a BEGIN SOLUTION"),
        ("a\n# BEGIN SOLUTION 1.1\nb\n", 2, "never closed"),
        ("# BEGIN SOLUTION 1.1\n# BEGIN SOLUTION 1.3\n# END SOLUTION\n", 2, "do not nest"),
        ("x\n\n# BEGIN SOLUTIONS 1.1\n", 3, "unknown marker '# BEGIN SOLUTIONS 1.1'"),
        ("# END FOO\n", 1, "unknown marker '# END FOO'"),
        ("    # BEGIN something\n", 1, "unknown marker '# BEGIN something'"),
        ("# END\n", 1, "unknown marker '# END'"),
        ("# BEGIN SOLUTION\n# END SOLUTION\n", 1, "without a task ID"),
        ("# BEGIN SOLUTION: a hint\n# END SOLUTION\n", 1, "without a task ID"),
        ("\n# BEGIN SOLUTION 9.9\n# END SOLUTION\n", 2, "unknown task ID '9.9'"),
        ("# BEGIN SOLUTION 1.1 extra words\n", 1, "malformed marker"),
        ("# BEGIN SOLUTION 1.1\n# END SOLUTION 1.1\n", 2, "malformed marker"),
        ("y = 0  # BEGIN SOLUTION 1.1\n", 1, "alone on its line"),
    ],
)
def test_marker_errors_name_file_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(MarkerError) as caught:
        parse(text, "course/bad.py", TASKS)
    message = str(caught.value)
    assert message.startswith(f"course/bad.py:{line}: ")
    assert reason in message


def test_marker_error_in_a_cell_names_cell_and_line() -> None:
    with pytest.raises(MarkerError) as caught:
        parse("a = 1\n# END FOO", "notebooks/N.ipynb", TASKS, cell=7)
    assert str(caught.value).startswith("notebooks/N.ipynb: cell 7, line 2: unknown marker")


ROUND_TRIP_TEXTS = [
    "def f():\n    # BEGIN SOLUTION 1.1\n    return 1\n    # END SOLUTION\n",
    "a\r\n# BEGIN SOLUTION 1.1: h\r\nb\r\n\r\n# END SOLUTION\r\nc",
    "# BEGIN SOLUTION 1.1\n# END SOLUTION",  # empty body, no final newline
    "class A:\n\tdef m(self):\n\t\t# BEGIN SOLUTION 1.3\n\t\tpass\n\t\t# END SOLUTION\n"
    "x = 1\n# BEGIN SOLUTION 1.8\ny = 2\n# END SOLUTION\n\n",
    "no markers at all\n",
]


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_restore_gives_back_the_solution_byte_for_byte(text: str) -> None:
    segments = parse(text, "p.py", TASKS)
    assert restore(render_student(segments), regions(segments)) == text


def test_restore_keeps_student_text_around_the_stubs() -> None:
    segments = parse("def f():\n    # BEGIN SOLUTION 1.1\n    return 1\n    # END SOLUTION\n",
                     "p.py", TASKS)
    edited = "import os\n" + render_student(segments) + "# student note\n"
    assert restore(edited, regions(segments)) == (
        "import os\ndef f():\n    # BEGIN SOLUTION 1.1\n    return 1\n    # END SOLUTION\n"
        "# student note\n"
    )


def test_restore_refuses_a_text_without_the_stub() -> None:
    segments = parse("# BEGIN SOLUTION 1.1\nx = 1\n# END SOLUTION\n", "p.py", TASKS)
    with pytest.raises(ValueError, match=r"p.py:1: the stub of task 1.1"):
        restore("x = 1\n", regions(segments))


def test_outside_text_drops_markers_and_bodies() -> None:
    segments = parse("a\n# BEGIN SOLUTION 1.1\nsecret\n# END SOLUTION\nb\n", "p.py", TASKS)
    assert outside_text(segments) == "a\nb\n"


# -- parse_python under CPython 3.11's shared AST counter -----------------------------------


class _RaisesWhenCollected:
    def __del__(self) -> None:
        raise ValueError("a finalizer that fails")


def _garbage_cycles(count: int) -> None:
    for _ in range(count):
        item = _RaisesWhenCollected()
        item.cycle = item  # only the cycle collector frees it, at a moment it chooses


def _format_like_pytest(unraisable: sys.UnraisableHookArgs) -> None:
    """What pytest's unraisable-exception hook does at once: format the traceback (3.11's
    traceback module parses the failing line to place its carets)."""
    traceback.format_exception(unraisable.exc_type, unraisable.exc_value,
                               unraisable.exc_traceback)


def test_parse_python_survives_finalizers_that_parse_while_its_tree_is_built(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The way the hidden-grade fixture failed: a collection during the parse runs failing
    finalizers whose tracebacks get formatted. Bare ast.parse, under the same storm, is the
    control (on 3.11.7 it raised "recursion depth mismatch" on every try here)."""
    source = "\n".join(f"name{i} = [1, 2, {{'key': (3, {i})}}]" for i in range(3000))
    expected = ast.dump(ast.parse(source))
    monkeypatch.setattr(sys, "unraisablehook", _format_like_pytest)
    thresholds = gc.get_threshold()
    gc.set_threshold(50)
    try:
        control_errors = 0
        for _ in range(5):
            _garbage_cycles(200)
            try:
                ast.parse(source)
            except SystemError:
                control_errors += 1
        trees = []
        for _ in range(5):
            _garbage_cycles(200)
            trees.append(ast.dump(parse_python(source)))
    finally:
        gc.set_threshold(*thresholds)
        gc.collect()
    assert trees == [expected] * 5, f"bare ast.parse failed {control_errors} of 5 times"
    assert gc.isenabled()


def test_parse_python_tries_again_only_on_the_counter_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # ast.parse is patched for the whole process (pytest itself parses when it reports a
    # failure), so the fake fails only on this test's own source.
    real_parse = ast.parse
    ours = "parse_python_retry_probe = 1"
    calls = []

    def failing(kind: str):
        def fake(source: str, *args, **kwargs) -> ast.Module:
            if source != ours:
                return real_parse(source, *args, **kwargs)
            calls.append(gc.isenabled())
            if kind == "once" and len(calls) > 1:
                return real_parse(source)
            raise SystemError("AST constructor recursion depth mismatch (before=57, after=55)"
                              if kind != "other" else "some other interpreter error")
        return fake

    monkeypatch.setattr(ast, "parse", failing("once"))
    assert ast.dump(parse_python(ours)) == ast.dump(real_parse(ours))
    assert calls == [False, False]  # the collector was paused during both tries
    assert gc.isenabled()

    calls.clear()
    monkeypatch.setattr(ast, "parse", failing("always"))
    with pytest.raises(SystemError, match="recursion depth mismatch"):
        parse_python(ours)
    assert len(calls) == markers._AST_TRIES

    calls.clear()
    monkeypatch.setattr(ast, "parse", failing("other"))
    with pytest.raises(SystemError, match="some other"):
        parse_python(ours)
    assert len(calls) == 1
    assert gc.isenabled()
