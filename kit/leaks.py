"""The leak check: no line of a solution reaches the student tree.

A *secret line* is a stripped line that occurs inside a solution region (or in an
``answer`` or ``instructor`` cell) of a released file of the solution tree and nowhere
outside one: ``return out`` also occurs outside regions, so it is no secret. The lines
of the hidden checks (``kit/hidden/``) are secret lines too. The release
runs ``check_no_leaks`` on the tree it built, before swapping it in, and refuses to
publish a leak; the release tests run it too.

A student line leaks when it is a secret line, and also when it contains one of at
least EMBEDDED_MIN characters (``embeddable_lines``): a hint comment written above a
region that quotes a line of it (``# hint: log_probs = shifted - log_norm``) is published
with the comment, so matching whole lines only would miss it. Shorter secret lines
(``row[mask] = low``) turn up inside ordinary code and prose, and a long one that a
released line of the solution tree already contains is no secret either.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kit import markers
from kit import notebooks as nbs
from kit.errors import KitError
from kit.tree import SolutionTree

HIDDEN_CHECKS = "kit/hidden/"  # under kit/, so never released; its lines are secret too
EMBEDDED_MIN = 24  # characters of a secret line searched for inside other lines
_KEY = 16  # characters of the index that finds candidates (at most EMBEDDED_MIN)


class LeakError(KitError):
    """Solution text was found in a student tree; the message lists every place."""


def _tree(source: SolutionTree | Path) -> SolutionTree:
    return source if isinstance(source, SolutionTree) else SolutionTree.load(source)


def solution_only_lines(source: SolutionTree | Path, skip: Path | None = None) -> set[str]:
    """Stripped lines of solution regions (and answer/instructor cells) and of the hidden
    checks (``HIDDEN_CHECKS``) found nowhere else in the released files of the tree (read
    from its root if a path is given). Raises ``MarkerError`` on marker errors."""
    hidden, visible = _hidden_and_visible(_tree(source), skip)
    return hidden - visible


def embeddable_lines(source: SolutionTree | Path, skip: Path | None = None) -> set[str]:
    """The secret lines of at least EMBEDDED_MIN characters that no released line of the
    tree contains: those that leak inside a longer student line too."""
    return _embeddable(*_hidden_and_visible(_tree(source), skip))


def _embeddable(hidden: set[str], visible: set[str]) -> set[str]:
    long = {line for line in hidden - visible if len(line) >= EMBEDDED_MIN}
    index = _index(long)
    return long - {needle for line in visible for needle in _contained(line, index)}


def _hidden_and_visible(tree: SolutionTree, skip: Path | None) -> tuple[set[str], set[str]]:
    hidden: set[str] = set()
    visible: set[str] = set()
    for rel in tree.released_files(skip):
        _collect_lines(tree.root, rel, tree.tasks, hidden, visible)
    # The hidden checks (instructor-only, like all of kit/) are answers too: their inputs
    # and judges must never reach students, whatever file a line would land in.
    for path in sorted((tree.root / HIDDEN_CHECKS).glob("*.py")):
        hidden.update(_stripped(path.read_text(encoding="utf-8")))
    return hidden, visible


def _index(needles: Iterable[str]) -> dict[str, list[str]]:
    """Needles by their first _KEY characters: a line is then searched at each of its
    positions with one dict look-up, not once per needle."""
    index: dict[str, list[str]] = {}
    for needle in needles:
        index.setdefault(needle[:_KEY], []).append(needle)
    return index


def _contained(line: str, index: dict[str, list[str]]) -> list[str]:
    """The needles of ``index`` that occur in ``line``."""
    return [needle for start in range(len(line) - _KEY + 1)
            for needle in index.get(line[start:start + _KEY], ())
            if line.startswith(needle, start)]


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


def find_leaks(student: Path, secret_lines: set[str],
               embeddable: Iterable[str] = ()) -> list[str]:
    """Every ``path:line: text`` of the student tree whose stripped text is a secret line
    or contains one of ``embeddable`` (from ``embeddable_lines``).

    Notebooks are searched cell by cell (their JSON would hide lines inside strings).
    """
    index = _index(embeddable)
    leaks = []
    for path in sorted(p for p in student.rglob("*") if p.is_file()):
        rel = path.relative_to(student).as_posix()
        for where, line in _student_lines(path, rel):
            text = line.strip()
            if text in secret_lines or (index and _contained(text, index)):
                leaks.append(f"{where}: {text}")
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
    hidden, visible = _hidden_and_visible(_tree(source), skip)
    leaks = find_leaks(student, hidden - visible, _embeddable(hidden, visible))
    if leaks:
        raise LeakError("solution text in the student tree:\n" + "\n".join(leaks))
