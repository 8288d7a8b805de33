"""Student-visible text without the solution: every line of a solution region withheld, the
whole capped.

What a student reads after grading (a failed check's output in the JSON and the Markdown
feedback, Gradescope's ``output``) comes from processes that ran next to the solution:
a traceback through given code, a submission that found and printed solution source.
``Redactor.redact`` removes every line that is *solution-only*, i.e. a line of a solution
region (or of an ``answer`` or ``instructor`` notebook cell) that the student release
does not contain anywhere (``kit.leaks.solution_only_lines``, which finds the regions
with ``kit.markers``), and puts one note where lines were taken out; then it caps the
text (``cap``). A line counts as a solution line when, with ANSI colours, a traceback's
``---> 12`` prefix and runs of spaces removed, it *is* one, or it *holds* one of at least
``FRAGMENT_MIN`` characters (a line quoted inside a longer one). Short solution lines
(``t = t + 1``) are matched whole only: as fragments they would hide innocent text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1200  # characters of one student-visible text (a failed check's output)
FRAGMENT_MIN = 12  # solution lines this long are also found inside other lines
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TRACEBACK_PREFIX = re.compile(r"^(?:-*>\s*)?\d+\s+")  # IPython's "---> 12 " and "     13 "
_SPACES = re.compile(r"\s+")


def withheld_note(count: int) -> str:
    """The line that stands where ``count`` solution lines were taken out."""
    lines = "1 line" if count == 1 else f"{count} lines"
    return f"[{lines} withheld: part of the solution]"


def normalize(line: str) -> str:
    """A line as compared with solution lines: no colours, no traceback prefix, single
    spaces, no surrounding blanks."""
    text = _SPACES.sub(" ", _ANSI.sub("", line)).strip()
    return _TRACEBACK_PREFIX.sub("", text, count=1)


def cap(text: str, limit: int = LIMIT) -> str:
    """``text`` if it is at most ``limit`` characters, else its head and tail around a
    note that says how much was cut."""
    if limit < 100:
        raise ValueError(f"limit: expected at least 100 characters, got {limit}")
    if len(text) <= limit:
        return text
    half = (limit - 40) // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut} characters cut ...]\n{text[-half:]}"


def _whole_lines_around(text: str, keep: int) -> str:
    """At most ``keep`` characters from each end of ``text``, cut at line breaks (so no
    line is left half there, where it would no longer match)."""
    if len(text) <= 2 * keep:
        return text
    head = text[:keep].rsplit("\n", 1)[0]
    tail = text[-keep:].split("\n", 1)[-1]
    return f"{head}\n[... cut ...]\n{tail}"


class Redactor:
    """Withholds the lines of one solution tree from student-visible texts."""

    def __init__(self, solution_lines: Iterable[str]) -> None:
        self.whole = {normalize(line) for line in solution_lines} - {""}
        self.fragments = sorted(line for line in self.whole if len(line) >= FRAGMENT_MIN)

    @classmethod
    def for_tree(cls, root: Path = ROOT) -> Redactor:
        """The redactor for the solution tree at ``root`` (reads its sources once)."""
        from kit.leaks import solution_only_lines

        return cls(solution_only_lines(root))

    def is_solution_line(self, line: str) -> bool:
        text = normalize(line)
        return bool(text) and (text in self.whole or any(f in text for f in self.fragments))

    def redact(self, text: str, limit: int = LIMIT) -> str:
        """``text`` with its solution lines withheld (one note per run of them), capped
        at ``limit`` characters."""
        kept: list[str] = []
        run = 0
        for line in _whole_lines_around(text, 20 * limit).splitlines(keepends=True):
            if self.is_solution_line(line):
                run += 1
                continue
            if run:
                kept.append(withheld_note(run) + "\n")
                run = 0
            kept.append(line)
        if run:
            kept.append(withheld_note(run) + ("\n" if text.endswith("\n") else ""))
        return cap("".join(kept), limit)
