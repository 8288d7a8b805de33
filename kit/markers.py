"""Solution markers: parse a source text into regions, render the student text, restore it.

The marker syntax is defined in CONTRIBUTING.md, section 1. In short, a region is::

    # BEGIN SOLUTION <task-id>[: <hint>]
    ...solution code...
    # END SOLUTION

and in the student release it becomes a two-line stub, indented like the BEGIN marker::

    # TODO [task 1.3] relu_forward: <the hint, or a default sentence>
    raise NotImplementedError("task 1.3 (relu_forward): not written yet; see the TODO in <path>")

Rules this module enforces (each violation is a ``MarkerError`` naming file and line):

* a *marker line* is a comment-only line whose comment text starts with the capitalised
  word ``BEGIN`` or ``END``; only ``# BEGIN SOLUTION <id>[: hint]`` and ``# END SOLUTION``
  are valid, so ``# BEGIN SOLUTIONS``, ``# END FOO`` and ``# BEGIN something`` are unknown
  markers (``# Begin with ...`` or ``# end of loop`` are ordinary comments);
* a ``# BEGIN SOLUTION`` / ``# END SOLUTION`` comment after code on the same line is an
  error (markers must be alone on their line, otherwise the solution would silently
  survive); the tokenizer tells comments from strings, so docs may mention the markers;
* regions do not nest; every BEGIN is closed; every END has a BEGIN;
* the task ID must be in the task table passed by the caller;
* a line that is exactly a marker inside a multi-line string is an error (it would be
  text, so its solution would ship); prose may still name the markers mid-sentence;
* ``check_student_compiles``: a stub that makes the student file fail to compile (a
  tab-indented marker in space-indented code: ``TabError``) is an error at the marker.

Detection is line based, with the tokenizer's help where the text tokenizes: a
comment-looking line inside a multi-line string is text, not a marker (and is refused if
it is a whole marker line). Line endings are preserved byte for byte: the TODO line takes the
BEGIN line's ending and the ``raise`` line takes the END line's ending (none at the end of
a text without a final newline), so the text outside regions is untouched.
"""

from __future__ import annotations

import ast
import gc
import io
import re
import threading
import tokenize
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from kit.errors import KitError

# The words used for FUNC in a stub when the region is outside any def.
OUTSIDE_DEF_PY = "module level"
OUTSIDE_DEF_CELL = "this cell"

# The default TODO text when the marker has no hint (inside a def / outside any def).
DEFAULT_HINT_IN_DEF = "write this part (the docstring says what it must do)."
DEFAULT_HINT_OUTSIDE = "write this part (the text above says what it must do)."

_MARKERISH = re.compile(r"^[ \t]*#[ \t]*(?:BEGIN|END)(?=[ \t]|$)")
_BEGIN = re.compile(
    r"^(?P<indent>[ \t]*)#[ \t]*BEGIN[ \t]+SOLUTION"
    r"(?:[ \t]+(?P<id>[^\s:]+))?[ \t]*(?::[ \t]*(?P<hint>.*?))?[ \t]*$"
)
_BEGIN_WORDS = re.compile(r"^[ \t]*#[ \t]*BEGIN[ \t]+SOLUTION\b")
_END = re.compile(r"^[ \t]*#[ \t]*END[ \t]+SOLUTION[ \t]*$")
_END_WORDS = re.compile(r"^[ \t]*#[ \t]*END[ \t]+SOLUTION\b")
# A marker hidden after code ("x = 1  # BEGIN SOLUTION 1.3") would never be seen as one.
_INLINE_MARKER = re.compile(r"#[ \t]*(?:BEGIN|END)[ \t]+SOLUTION\b")
# The marker words anywhere in a line of text (a markdown cell must not hold them).
_MARKER_WORDS = re.compile(r"\b(?:BEGIN|END)[ \t]+SOLUTION\b")
# Python's own line breaks; str.splitlines would also split on form feeds and friends.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_LINE_END = re.compile(r"(\r\n|\r|\n)\Z")
_DEF_LINE = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+(\w+)")
_CLASS_LINE = re.compile(r"^([ \t]*)class[ \t]+(\w+)")


class MarkerError(KitError, ValueError):
    """A marker problem at a place in a file: ``path:line: reason``.

    In a notebook the place is a cell (counted from 1 in file order) and a line of that
    cell's source: ``path: cell N, line M: reason``.
    """

    def __init__(self, path: str, line: int | None, reason: str, cell: int | None = None):
        self.path, self.line, self.reason, self.cell = path, line, reason, cell
        super().__init__(self.location() + ": " + reason)

    def location(self) -> str:
        """The ``path:line`` (or ``path: cell N, line M``) prefix of the message."""
        if self.cell is None:
            return f"{self.path}:{self.line}" if self.line is not None else self.path
        if self.line is None:
            return f"{self.path}: cell {self.cell}"
        return f"{self.path}: cell {self.cell}, line {self.line}"


@dataclass(frozen=True)
class Region:
    """One solution region, with everything needed to render its stub and restore it."""

    task_id: str
    hint: str | None
    indent: str
    function: str | None  # "relu_forward", "FullyConnectedNet.loss", None outside any def
    path: str  # posix path relative to the tree root, quoted in the stub message
    begin: str  # the BEGIN marker line, with its line ending
    body: str  # the lines between the markers, with their line endings
    end: str  # the END marker line, with its line ending ("" at the end of the text)
    line: int  # 1-based line of the BEGIN marker
    outside_word: str = OUTSIDE_DEF_PY

    @property
    def source(self) -> str:
        """The region exactly as it appears in the solution text."""
        return self.begin + self.body + self.end

    @property
    def func(self) -> str:
        """The FUNC shown in the stub: the enclosing def, or a word for outside any def."""
        return self.function or self.outside_word

    def message(self) -> str:
        """The NotImplementedError message of the stub."""
        return f"task {self.task_id} ({self.func}): not written yet; see the TODO in {self.path}"

    def stub(self) -> str:
        """The two stub lines that replace the region in the student text."""
        default = DEFAULT_HINT_IN_DEF if self.function else DEFAULT_HINT_OUTSIDE
        todo = f"{self.indent}# TODO [task {self.task_id}] {self.func}: {self.hint or default}"
        raise_line = f"{self.indent}raise NotImplementedError({_py_string(self.message())})"
        return todo + _line_ending(self.begin) + raise_line + _line_ending(self.end)


Segment = str | Region


def split_lines(text: str) -> list[str]:
    """Split like Python's tokenizer does (``\\n``, ``\\r\\n``, ``\\r``), keeping the endings."""
    return _LINE.findall(text)


# CPython 3.11 (3.11.7 here) can raise "SystemError: AST constructor recursion depth
# mismatch" when two threads run ast.parse at once, and `kit grade --jobs N` builds
# sandboxes (which parse student files and render stubs) on N threads: every parse of the
# kit's tools goes through this lock.
_AST_LOCK = threading.Lock()
# The lock is not enough: the counter is shared by the whole interpreter, and a parse the
# kit does not own can still run during ours. The hidden-grade fixture got this error on
# a loaded two-worker make test, inside this lock; which other parse ran was not found.
# One way, reproduced in tests/kit/test_kit_markers.py: a garbage collection while our
# tree is built runs a finalizer that raises, pytest's unraisable-exception hook formats
# its traceback at once, and 3.11's traceback module calls ast.parse to place its carets.
# With the collector paused no Python code runs while our tree is built, and the error,
# which only says the counter was disturbed, gets a fresh try.
_AST_MISMATCH = "AST constructor recursion depth mismatch"
_AST_TRIES = 3


def parse_python(source: str) -> ast.Module:
    """``ast.parse(source)``, one thread at a time, with the garbage collector paused, tried
    again on CPython 3.11's spurious recursion-depth error (see ``_AST_LOCK``)."""
    with _AST_LOCK:
        for attempt in range(1, _AST_TRIES + 1):
            collecting = gc.isenabled()
            gc.disable()
            try:
                return ast.parse(source)
            except SystemError as error:
                if _AST_MISMATCH not in str(error) or attempt == _AST_TRIES:
                    raise
            finally:
                if collecting:
                    gc.enable()
    raise AssertionError("unreachable: the last try returns or raises")


def parse(
    text: str,
    path: str,
    task_ids: Collection[str],
    *,
    cell: int | None = None,
) -> list[Segment]:
    """Split ``text`` into plain-text strings and ``Region`` objects, in order.

    ``path`` names the file in error messages and in stub messages; ``cell`` (1-based) says
    the text is a notebook code cell, which also changes the FUNC word outside any def.
    ``"".join(seg if isinstance(seg, str) else seg.source for seg in result) == text``.
    Raises ``MarkerError`` on the first malformed, unknown, nested or unbalanced marker.
    """
    lines = split_lines(text)
    inline, in_strings = _token_facts(text)
    segments: list[Segment] = []
    plain: list[str] = []
    opened: tuple[int, re.Match[str]] | None = None  # (index of BEGIN line, its match)
    for index, line in enumerate(lines):
        if index + 1 in inline:
            raise MarkerError(path, index + 1, "a solution marker must be alone on its line "
                              f"(found {inline[index + 1]!r} after code)", cell)
        if index + 1 in in_strings:
            _check_not_a_marker_in_string(line, path, index + 1, cell)
            kind, match = None, None  # a docstring may mention markers in its prose
        else:
            kind, match = _classify(line, path, index + 1, cell)
        if kind == "begin":
            if opened is not None:
                raise MarkerError(path, index + 1, "BEGIN SOLUTION inside the region opened "
                                  f"on line {opened[0] + 1} (regions do not nest)", cell)
            _check_task_id(match, path, index + 1, cell, task_ids)
            segments.append("".join(plain))
            plain, opened = [], (index, match)
        elif kind == "end":
            if opened is None:
                raise MarkerError(path, index + 1, "END SOLUTION without a BEGIN SOLUTION", cell)
            segments.append(_region(text, lines, opened, index, path, cell))
            opened = None
        elif opened is None:
            plain.append(line)
    if opened is not None:
        raise MarkerError(path, opened[0] + 1,
                          "BEGIN SOLUTION is never closed by an END SOLUTION", cell)
    segments.append("".join(plain))
    return [seg for seg in segments if seg != ""]


def regions(segments: Sequence[Segment]) -> list[Region]:
    """The regions of a parsed text, in order."""
    return [seg for seg in segments if isinstance(seg, Region)]


def render_student(segments: Sequence[Segment]) -> str:
    """The student text: every region replaced by its stub, everything else unchanged."""
    return "".join(seg if isinstance(seg, str) else seg.stub() for seg in segments)


def outside_text(segments: Sequence[Segment]) -> str:
    """The text outside every region (marker lines excluded), for leak checks."""
    return "".join(seg for seg in segments if isinstance(seg, str))


def restore(student_text: str, solution_regions: Sequence[Region]) -> str:
    """Put the solution regions back into a student text, in order.

    Each region's stub must appear, in order, at the start of a line of ``student_text``;
    the text around the stubs is kept as it is, so for an untouched student text
    ``restore(render_student(segs), regions(segs))`` is the solution text byte for byte.
    Raises ``ValueError`` naming the region if its stub is missing.
    """
    parts: list[str] = []
    pos = 0
    for region in solution_regions:
        at = _find_at_line_start(student_text, region.stub(), pos)
        if at < 0:
            raise ValueError(f"{region.path}:{region.line}: the stub of task {region.task_id} "
                             f"({region.func}) is not in the student text")
        parts += [student_text[pos:at], region.source]
        pos = at + len(region.stub())
    parts.append(student_text[pos:])
    return "".join(parts)


def mentions_marker(line: str) -> bool:
    """True if the line holds the words of a marker anywhere (``BEGIN SOLUTION``, ...)."""
    return bool(_MARKER_WORDS.search(line))


def marker_line(line: str) -> tuple[str, str] | None:
    """``("begin", what follows the words)`` or ``("end", "")`` for a comment line that
    opens or closes a region, else None. Lenient (nothing is checked): for showing code
    whose markers ``parse`` has checked elsewhere."""
    if begin := _BEGIN_WORDS.match(line):
        return "begin", line[begin.end():].strip()
    if _END_WORDS.match(line):
        return "end", ""
    return None


def body_lines(region: Region) -> list[str]:
    """The stripped, non-blank lines of a region's body."""
    return [line.strip() for line in split_lines(region.body) if line.strip()]


# -- helpers -----------------------------------------------------------------------------


def _classify(
    line: str, path: str, lineno: int, cell: int | None
) -> tuple[str | None, re.Match[str] | None]:
    """Return ("begin", match), ("end", None) or (None, None); raise on a bad marker."""
    content = _LINE_END.sub("", line)
    if not _MARKERISH.match(content):
        return None, None
    if match := _BEGIN.match(content):
        return "begin", match
    if _END.match(content):
        return "end", None
    if _BEGIN_WORDS.match(content) or _END_WORDS.match(content):
        reason = (f"malformed marker {content.strip()!r}: write '# BEGIN SOLUTION <task-id>' "
                  "(optionally ': <hint>') or '# END SOLUTION' alone on the line")
    else:
        reason = (f"unknown marker {content.strip()!r}: the only markers are "
                  "'# BEGIN SOLUTION <task-id>[: hint]' and '# END SOLUTION'")
    raise MarkerError(path, lineno, reason, cell)


def _check_not_a_marker_in_string(line: str, path: str, lineno: int, cell: int | None) -> None:
    """A whole marker line inside a multi-line string is text, so its "region" would ship.

    Prose may name the markers (``# BEGIN SOLUTION`` inside a sentence); a line that is
    exactly a marker is refused, since nothing can tell it from a misplaced real one.
    """
    content = _LINE_END.sub("", line)
    if _BEGIN_WORDS.match(content) or _END_WORDS.match(content):
        raise MarkerError(path, lineno, f"solution marker {content.strip()!r} inside a string "
                          "literal: markers work only as comment lines in code, so the text "
                          "after it would reach students. Move it out of the string, or "
                          "mention it inside a sentence in docs", cell)


def check_student_compiles(solution: str, student: str, path: str,
                           found: Sequence[Region], cell: int | None = None) -> None:
    """Refuse stubs that break the student file: a tab-indented marker in space-indented
    code (or any indent that does not fit its block) gives a TabError or IndentationError.

    Only checked when the solution text itself compiles (notebook magics blanked).
    """
    try:
        compile(_blank_magics(split_lines(solution)), path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return
    try:
        compile(_blank_magics(split_lines(student)), path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        region = _region_near(found, getattr(error, "lineno", None))
        raise MarkerError(path, region.line, f"the stub of this marker breaks the student file "
                          f"({type(error).__name__}: {getattr(error, 'msg', error)}): indent "
                          f"the marker like the code around it ({_indent_kind(region.indent)} "
                          "here)", cell) from None


def _region_near(found: Sequence[Region], student_line: int | None) -> Region:
    # Prefer a region whose indent mixes or differs in kind from its own body's indent.
    for region in found:
        body = [line for line in split_lines(region.body) if line.strip()]
        own = body[0][:len(body[0]) - len(body[0].lstrip())] if body else region.indent
        if ("\t" in region.indent) != ("\t" in own) or not own.startswith(region.indent):
            return region
    return found[0]


def _indent_kind(indent: str) -> str:
    if "\t" in indent and " " in indent:
        return "tabs and spaces"
    return "a tab" if "\t" in indent else f"{len(indent)} space(s)"


def _token_facts(text: str) -> tuple[dict[int, str], set[int]]:
    """Marker comments that follow code (line -> comment), and lines inside strings.

    A line inside a multi-line string (after its first line) holds no comment, whatever it
    looks like. Text the tokenizer rejects gets neither fact: line-based rules apply.
    """
    inline: dict[int, str] = {}
    in_strings: set[int] = set()
    string_types = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in string_types:
                in_strings.update(range(token.start[0] + 1, token.end[0] + 1))
            elif (token.type == tokenize.COMMENT and _INLINE_MARKER.match(token.string)
                    and token.line[:token.start[1]].strip()):
                inline[token.start[0]] = token.string
    except (tokenize.TokenError, SyntaxError):
        return {}, set()
    return inline, in_strings


def _check_task_id(
    match: re.Match[str], path: str, lineno: int, cell: int | None, task_ids: Collection[str]
) -> None:
    task_id = match.group("id")
    if task_id is None:
        raise MarkerError(path, lineno, "BEGIN SOLUTION without a task ID "
                          "(write '# BEGIN SOLUTION <task-id>', an ID from course/tasks.py)", cell)
    if task_id not in task_ids:
        known = ", ".join(task_ids) or "none"
        raise MarkerError(path, lineno, f"unknown task ID {task_id!r} "
                          f"(course/tasks.py lists: {known})", cell)


def _region(
    text: str, lines: list[str], opened: tuple[int, re.Match[str]], end_index: int,
    path: str, cell: int | None,
) -> Region:
    begin_index, match = opened
    indent = match.group("indent")
    return Region(
        task_id=match.group("id"),
        hint=match.group("hint") or None,
        indent=indent,
        function=enclosing_function(text, begin_index + 1, indent),
        path=path,
        begin=lines[begin_index],
        body="".join(lines[begin_index + 1:end_index]),
        end=lines[end_index],
        line=begin_index + 1,
        outside_word=OUTSIDE_DEF_PY if cell is None else OUTSIDE_DEF_CELL,
    )


def enclosing_function(text: str, line: int, indent: str) -> str | None:
    """Name of the innermost def around ``line`` (a comment at ``indent``), or None.

    A method is qualified with its class (``FullyConnectedNet.loss``); a def nested in
    another def is not (it is not a method). Uses the syntax tree when the text parses
    (notebook magics are blanked first) and falls back to indentation otherwise.
    """
    lines = split_lines(text)
    width = len(indent.expandtabs())
    try:
        tree = parse_python(_blank_magics(lines))
    except SyntaxError:
        return _enclosing_by_indent(lines, line, width)
    found: list[str] = []
    _visit(tree, [], lines, line, width, found)
    return found[-1] if found else None


def _visit(node: ast.AST, classes: list[str], lines: list[str], line: int, width: int,
           found: list[str]) -> None:
    # Depth-first: the last name appended is the innermost enclosing def.
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            if _encloses(child, lines, line, width):
                found.append(".".join([*classes, child.name]))
                _visit(child, [], lines, line, width, found)
        elif isinstance(child, ast.ClassDef):
            if _encloses(child, lines, line, width):
                _visit(child, [*classes, child.name], lines, line, width, found)
        else:
            _visit(child, classes, lines, line, width, found)


def _encloses(node: ast.stmt, lines: list[str], line: int, width: int) -> bool:
    end = node.end_lineno or node.lineno
    if not node.lineno < line:
        return False
    if line <= end:
        return True
    # The tree ends a block at its last statement; a marker indented under the block and
    # separated from it only by blank or comment lines still belongs to it.
    between = lines[end:line - 1]
    return width > node.col_offset and all(
        not text.strip() or text.lstrip().startswith("#") for text in between
    )


def _blank_magics(lines: list[str]) -> str:
    # IPython magics and shell escapes are not Python; blanking keeps line numbers.
    return "".join("\n" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def _enclosing_by_indent(lines: list[str], line: int, width: int) -> str | None:
    for index in range(line - 2, -1, -1):
        match = _DEF_LINE.match(lines[index])
        if match and _width(lines[index]) < width:
            return _qualify(lines, index, _width(lines[index]), match.group(2))
    return None


def _qualify(lines: list[str], def_index: int, def_width: int, name: str) -> str:
    # The nearest less-indented code line above a def is its owner: a class makes it a method.
    if def_width == 0:
        return name
    for index in range(def_index - 1, -1, -1):
        text = lines[index]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if _width(text) < def_width:
            match = _CLASS_LINE.match(text)
            return f"{match.group(2)}.{name}" if match else name
    return name


def _width(line: str) -> int:
    expanded = line.expandtabs()
    return len(expanded) - len(expanded.lstrip())


def _find_at_line_start(text: str, needle: str, start: int) -> int:
    at = text.find(needle, start)
    while at > 0 and text[at - 1] not in "\r\n":
        at = text.find(needle, at + 1)
    return at


def _line_ending(line: str) -> str:
    match = _LINE_END.search(line)
    return match.group(1) if match else ""


def _py_string(value: str) -> str:
    """A double-quoted Python string literal (the stub style in CONTRIBUTING.md)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
