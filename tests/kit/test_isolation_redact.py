"""Student-visible text keeps no line of the solution and stays within its cap."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kit import markers
from kit.redact import FRAGMENT_MIN, LIMIT, Redactor, cap, withheld_note
from kit.tree import load_task_table

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor.for_tree(ROOT)


def region_lines(path: Path) -> list[str]:
    """The code lines inside the solution regions of one file (read with kit.markers)."""
    tasks = load_task_table(ROOT)
    segments = markers.parse(path.read_text(encoding="utf-8"), path.name, tasks)
    return [line.strip() for region in markers.regions(segments)
            for line in markers.body_lines(region) if line.strip()]


def test_a_traceback_through_solution_code_loses_those_lines(redactor):
    solution = [line for line in region_lines(ROOT / "course" / "layers.py")
                if redactor.is_solution_line(line)]
    assert len(solution) > 20
    shown = solution[5]
    text = ("Traceback (most recent call last):\n"
            f"\x1b[0;32m---> 12\x1b[0m     {shown}\n"
            f"  File \"course/layers.py\", line 40, in relu_forward\n    {solution[6]}\n"
            "ValueError: shapes (3,4) and (5,6) not aligned\n")
    redacted = redactor.redact(text)
    assert shown not in redacted and solution[6] not in redacted
    assert redacted.count(withheld_note(1)) == 2
    assert "ValueError: shapes (3,4) and (5,6) not aligned" in redacted


def test_printed_solution_source_is_withheld_in_one_note(redactor):
    source = "\n".join(region_lines(ROOT / "course" / "optim.py"))
    text = f"my output\n{source}\ncheck FAILED: adam\n"
    redacted = redactor.redact(text, limit=100_000)
    solution_count = sum(redactor.is_solution_line(line) for line in source.splitlines())
    assert solution_count > 5
    noted = [int(n) for n in re.findall(r"\[(\d+) lines? withheld", redacted)]
    assert sum(noted) == solution_count
    assert redacted.startswith("my output\n") and redacted.endswith("check FAILED: adam\n")
    for line in source.splitlines():
        if redactor.is_solution_line(line):
            assert line.strip() not in redacted


def test_given_code_passes_unless_it_quotes_a_solution_line(redactor):
    tasks = load_task_table(ROOT)
    for path in sorted((ROOT / "course").rglob("*.py")):
        segments = markers.parse(path.read_text(encoding="utf-8"), path.name, tasks)
        for line in markers.outside_text(segments).splitlines():
            if redactor.is_solution_line(line):
                quoted = [s for s in redactor.fragments if s in " ".join(line.split())]
                assert quoted, f"{path.name}: given line withheld: {line!r}"


def test_a_long_text_is_capped_without_leaving_half_a_solution_line(redactor):
    secret = max(redactor.fragments, key=len)
    text = ("x" * 50 + "\n") * 500 + (secret + "\n") * 2000 + ("y" * 50 + "\n") * 500
    redacted = redactor.redact(text)
    assert len(redacted) <= LIMIT
    for start in range(len(secret) - FRAGMENT_MIN + 1):
        assert secret[start:start + FRAGMENT_MIN] not in redacted


def test_cap_keeps_head_and_tail_and_says_what_it_cut():
    assert cap("short") == "short"
    capped = cap("a" * 3000 + "b" * 3000, limit=1000)
    assert len(capped) <= 1000
    assert capped.startswith("a" * 400) and capped.endswith("b" * 400)
    assert "characters cut" in capped
    with pytest.raises(ValueError, match="limit"):
        cap("text", limit=10)


def test_a_redactor_made_from_lines_matches_whole_short_lines_only():
    redactor = Redactor(["t = t + 1", "dx = dout * (x > 0)"])
    assert redactor.is_solution_line("    t = t + 1")
    assert not redactor.is_solution_line("count = t = t + 10")  # too short to be a fragment
    assert redactor.is_solution_line("print('dx = dout * (x > 0)')")  # quoted inside
    assert redactor.redact("a\nt = t + 1\nb\n") == f"a\n{withheld_note(1)}\nb\n"
