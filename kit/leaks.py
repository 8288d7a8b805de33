"""The leak check: no line of a solution reaches the student tree.

A *secret line* is a stripped line that occurs inside a solution region (or in an
``answer`` or ``instructor`` cell) of a released file of the solution tree and nowhere
outside one: ``return out`` also occurs outside regions, so it is no secret. The release
runs ``check_no_leaks`` on the tree it built, before swapping it in, and refuses to
publish a leak; the release tests run it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kit import markers
from kit import notebooks as nbs
from kit.errors import KitError
from kit.tree import SolutionTree


class LeakError(KitError):
    """Solution text was found in a student tree; the message lists every place."""


def _tree(source: SolutionTree | Path) -> SolutionTree:
    return source if isinstance(source, SolutionTree) else SolutionTree.load(source)


def solution_only_lines(source: SolutionTree | Path, skip: Path | None = None) -> set[str]:
    """Stripped lines of solution regions (and answer/instructor cells) found nowhere else
    in the released files of the tree (read from its root if a path is given). Raises
    ``MarkerError`` on marker errors."""
    tree = _tree(source)
    hidden: set[str] = set()
    visible: set[str] = set()
    for rel in tree.released_files(skip):
        _collect_lines(tree.root, rel, tree.tasks, hidden, visible)
    return hidden - visible


def _collect_lines(source: Path, rel: str, tasks: object, hidden: set[str],
                   visible: set[str]) -> None:
    if rel.endswith(".ipynb"):
        for number, cell in enumerate(nbs.read_notebook(source / rel, rel).cells, start=1):
            if nbs.has_tag(cell, nbs.INSTRUCTOR) or nbs.has_tag(cell, nbs.ANSWER):
                hidden.update(_stripped(cell.source))
            elif nbs.is_code(cell):
                _split_regions(markers.parse(cell.source, rel, tasks, cell=number),
                               hidden, visible)
            else:
                visible.update(_stripped(cell.source))
        return
    try:
        text = (source / rel).read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return  # binary files hold no solution text
    if rel.endswith(".py"):
        _split_regions(markers.parse(text, rel, tasks), hidden, visible)
    else:
        visible.update(_stripped(text))


def _split_regions(segments: list[markers.Segment], hidden: set[str], visible: set[str]) -> None:
    for region in markers.regions(segments):
        hidden.update(markers.body_lines(region))
    visible.update(_stripped(markers.outside_text(segments)))


def _stripped(text: str) -> set[str]:
    return {line.strip() for line in markers.split_lines(text) if line.strip()}


def find_leaks(student: Path, secret_lines: set[str]) -> list[str]:
    """Every ``path:line: text`` of the student tree whose stripped text is a secret line.

    Notebooks are searched cell by cell (their JSON would hide lines inside strings).
    """
    leaks = []
    for path in sorted(p for p in student.rglob("*") if p.is_file()):
        rel = path.relative_to(student).as_posix()
        for where, line in _student_lines(path, rel):
            if line.strip() in secret_lines:
                leaks.append(f"{where}: {line.strip()}")
    return leaks


def _student_lines(path: Path, rel: str) -> Iterable[tuple[str, str]]:
    if rel.endswith(".ipynb"):
        for number, cell in enumerate(nbs.read_notebook(path, rel).cells, start=1):
            for lineno, line in enumerate(markers.split_lines(cell.source), start=1):
                yield f"{rel}: cell {number}, line {lineno}", line
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return
    for lineno, line in enumerate(markers.split_lines(text), start=1):
        yield f"{rel}:{lineno}", line


def check_no_leaks(source: SolutionTree | Path, student: Path, skip: Path | None = None) -> None:
    """Raise ``LeakError`` listing every solution-only line found in the student tree."""
    leaks = find_leaks(student, solution_only_lines(source, skip))
    if leaks:
        raise LeakError("solution text in the student tree:\n" + "\n".join(leaks))
