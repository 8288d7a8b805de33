"""What a student's saved notebooks show: whether they ran, and what each check cell printed.

``make check`` scores a notebook task (a choice made in a notebook cell, such as 1.9) from
the outputs saved in the notebook file, and ``python -m course handin`` refuses notebooks
that were never run; both read the notebook's JSON here, without running anything.

A check cell *passed* when its saved output shows that it ran and printed only
``check passed`` lines: no ``check FAILED`` line, no error, nothing else (the grader
compares a check cell's output with the reference exactly, so a stray ``print`` costs the
check there too).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSED_PREFIX = "check passed"
FAILED_PREFIX = "check FAILED"
# The line a release writes in place of a solution, in a file or a notebook cell:
# raise NotImplementedError("task 1.9 (this cell): not written yet; ..."), and its message.
STUB_RAISE = re.compile(r"NotImplementedError\(\s*[\"']task (\d+(?:\.\d+)+) \(")
STUB_MESSAGE = re.compile(r"task (\d+(?:\.\d+)+) \([^)]*\): not written yet")


@dataclass(frozen=True)
class SavedCheck:
    """The saved verdict of one check cell."""

    notebook: str  # "FullyConnectedNets"
    name: str  # the cell's metadata.check, "overfit-small-data"
    ran: bool
    passed: bool
    reason: str = ""  # why it did not pass: the first FAILED line, the error, a stray line


def load_notebook(path: Path) -> dict[str, Any]:
    """The notebook at ``path`` as JSON; ``ValueError`` naming the file if it is not one."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable notebook ({error})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError(f"{path} is not a notebook (no list of cells)")
    return notebook


def _text(value: Any) -> str:
    """A notebook string field, stored as one string or as a list of lines."""
    return "".join(value) if isinstance(value, list) else str(value or "")


def _code_cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in notebook["cells"] if isinstance(c, dict) and c.get("cell_type") == "code"]


def cell_ran(cell: dict[str, Any]) -> bool:
    """Whether a code cell was executed (it has an execution count or outputs)."""
    return cell.get("execution_count") is not None or bool(cell.get("outputs"))


def was_run(notebook: dict[str, Any]) -> bool:
    """Whether any code cell of the notebook was ever executed and saved."""
    return any(cell_ran(cell) for cell in _code_cells(notebook))


def stubs_in_text(text: str) -> set[str]:
    """The tasks whose stub (``raise NotImplementedError("task ...``) is in ``text``, the
    source of a file or of a cell."""
    return {match.group(1) for match in STUB_RAISE.finditer(text)}


def stubbed_tasks(notebook: dict[str, Any]) -> set[str]:
    """The tasks whose stub is still in a cell of ``notebook``."""
    return set().union(*(stubs_in_text(_text(c.get("source"))) for c in _code_cells(notebook)))


def _error_reason(output: dict[str, Any]) -> str:
    name, value = output.get("ename", "error"), _text(output.get("evalue")).strip()
    stub = STUB_MESSAGE.search(value)
    if name == "NotImplementedError" and stub:
        return f"stopped at the stub of task {stub.group(1)}"
    first = value.splitlines()[0] if value else ""
    return f"{name}: {first}" if first else name


def verdict(cell: dict[str, Any]) -> tuple[bool, str]:
    """(passed, reason) for a check cell that ran, from its saved outputs.

    Consecutive stream outputs of one stream are read as one text, as the grader's
    comparison reads them: a kernel may save ``check passed: a`` and ``\ncheck passed: b``
    as two outputs, which are two check lines, not a line and an empty stray one.
    """
    lines: list[str] = []
    stream: tuple[str, list[str]] | None = None  # (name, texts) of the stream being read
    for output in [*(cell.get("outputs") or []), {"output_type": "end"}]:
        kind = output.get("output_type")
        if kind == "stream" and stream is not None and stream[0] == output.get("name"):
            stream[1].append(_text(output.get("text")))
            continue
        if stream is not None:
            lines += "".join(stream[1]).splitlines()
            stream = None
        if kind == "end":
            break
        if kind == "error":
            return False, _error_reason(output)
        if kind == "stream":
            stream = (str(output.get("name")), [_text(output.get("text"))])
        else:  # a value or a figure: not a check line
            shown = _text((output.get("data") or {}).get("text/plain")).strip()
            lines.append(shown or f"({kind})")
    failed = next((line for line in lines if line.startswith(FAILED_PREFIX)), None)
    if failed is not None:
        return False, failed
    stray = next((line for line in lines if not line.startswith(PASSED_PREFIX)), None)
    if stray is not None:
        shown = stray if len(stray) <= 80 else stray[:77] + "..."
        return False, (f"printed {shown!r}, which is not a check line (the grader compares "
                       "this cell's output exactly: remove extra prints)")
    if not lines:
        return False, "ran but printed no check line"
    return True, ""


def saved_checks(notebook: dict[str, Any], name: str) -> dict[str, SavedCheck]:
    """Every check cell of ``notebook`` (called ``name``), by check name, in order."""
    found: dict[str, SavedCheck] = {}
    for cell in _code_cells(notebook):
        metadata = cell.get("metadata") or {}
        check = metadata.get("check")
        if "check" not in (metadata.get("tags") or []) or not isinstance(check, str):
            continue
        if not cell_ran(cell):
            found[check] = SavedCheck(name, check, ran=False, passed=False,
                                      reason="not run (or not saved since it ran)")
        else:
            passed, reason = verdict(cell)
            found[check] = SavedCheck(name, check, ran=True, passed=passed, reason=reason)
    return found
