"""Which heading a notebook cell sits under, for messages that name a cell.

The rule a student can check by scrolling up: the heading nearest above the cell, that is
the last Markdown heading line (``#`` to ``######`` followed by a space, outside code
fences) of the nearest Markdown cell above it that has one. The instructor tools use the
same rule (a test in the instructor-only suite checks that both agree on every check cell);
this copy exists because the student tree ships without them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_HEADING_LINE = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*))?$")
_FENCE_LINE = re.compile(r"^ {0,3}(`{3}|~{3})")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")


def _text(cell: Any) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def last_heading(markdown: str) -> str | None:
    """The text of the last heading line of a Markdown text, or None if it has none."""
    found, fence = None, ""
    for line in markdown.split("\n"):
        marker = _FENCE_LINE.match(line)
        if fence:
            fence = "" if marker and marker.group(1) == fence else fence
            continue
        if marker:
            fence = marker.group(1)
            continue
        match = _HEADING_LINE.match(line)
        if match:
            found = _CLOSING_HASHES.sub("", match.group(1) or "").strip()
    return found


def headings_by_cell(cells: Sequence[Any]) -> list[str]:
    """For each cell of a notebook, the heading it sits under ("" before the first)."""
    current, result = "", []
    for cell in cells:
        result.append(current)
        if cell.get("cell_type") == "markdown":
            heading = last_heading(_text(cell))
            current = current if heading is None else heading
    return result
