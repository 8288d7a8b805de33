"""``python -m kit verify SUBMISSION... [--out DIR] [--timeout S] [--memory MB]``

Re-execute the notebooks a student submitted against their own package (a ``course/``
file they left out runs as its stubs: no solution code enters the sandbox) and report the
cells whose stored outputs do not reproduce, so an instructor sees whether the outputs
handed in are genuine. It runs nbval over the student's notebooks, comparing with *their*
stored outputs under the kit's sanitize rules, in the same sandbox and limits as
``kit grade`` (experiment cells skipped; cells tagged ``nbval-ignore-output`` run but are
not compared). Cells are named as the student sees them: the heading above the cell,
its number among the notebook's cells, and its check name. ``--out`` (new, empty, or
made by ``kit verify``) receives one ``<submission>.verify.json`` per submission.

Exit status: 0 when every compared cell reproduces, 1 when some do not or a submission had
no notebook that could be run (an unreadable zip, no notebooks), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from kit import cli, isolation, outputs
from kit import notebooks as nbs
from kit import sandbox as sb
from kit.errors import KitError
from kit.grade import execute, submission_name
from kit.nbval_runner import Limits, NotebookRun
from kit.reports import trim

OUT_STAMP = outputs.Stamp(".kit-verify", "python -m kit verify")


def cell_labels(notebook: Any) -> dict[int, str]:
    """Code-cell index (nbval's "Cell N") -> 'cell 12 under "Heading" [check check-name]'."""
    labels: dict[int, str] = {}
    for code in nbs.code_cells(notebook):
        check = nbs.declared_check(code.cell)
        label = f"cell {code.number}" + (f' under "{code.heading}"' if code.heading else "")
        labels[code.index] = label + (f" [check {check}]" if check else "")
    return labels


def not_reproduced(notebook: Any, run: NotebookRun, limits: Limits) -> list[dict[str, str]]:
    """Every code cell whose run did not pass (or gave no result), with why."""
    differing = []
    for index, label in cell_labels(notebook).items():
        record = run.records.get(index)
        if record is not None and record.outcome in ("passed", "skipped"):
            continue
        reason = run.reason(index, limits)
        differing.append({
            "cell": label,
            "reason": reason.text if reason is not None else "",
            "stored": trim(record.expected if record else ""),
            "now": trim(record.actual if record else ""),
        })
    return differing


def verify_one(submission: Path, limits: Limits, dataset: str = "digits") -> dict[str, Any]:
    """Run one submission's notebooks; return every cell that did not reproduce."""
    started = time.monotonic()
    report: dict[str, Any] = {"submission": submission_name(submission), "notes": [],
                              "notebooks": {}}
    try:
        box = sb.build_own(submission)
    except sb.SubmissionError as error:
        report["notes"].append(str(error))
        return report
    try:
        report["notes"] += [note.text for note in box.notes]
        if not box.notebooks:
            report["notes"].append("no notebooks in the submission")
        runs = execute(box, box.notebooks, limits, started + limits.wall, dataset)
        for name, notebook in box.notebooks.items():
            report["notebooks"][name] = {
                "cells": len(cell_labels(notebook)),
                "not_reproduced": not_reproduced(notebook, runs[name], limits)}
            report["isolation"] = f"{runs[name].isolation} ({runs[name].cap})"
    finally:
        box.cleanup()
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def render(report: dict[str, Any]) -> str:
    lines = [f"== {report['submission']}"
             + (f" (isolation: {report['isolation']})" if "isolation" in report else "")]
    lines += [f"   note: {n}" for n in report["notes"]]
    if not report["notebooks"]:
        lines.append("   nothing verified: no notebook of this submission was run")
    for name, info in report["notebooks"].items():
        bad = info["not_reproduced"]
        verdict = "every compared cell reproduces" if not bad else f"{len(bad)} cell(s) differ"
        lines.append(f"   {name}.ipynb: {verdict}")
        lines += [f"     - {c['cell']}: {c['reason']}" for c in bad]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m kit verify", description=__doc__.split("\n\n")[1])
    p.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION")
    p.add_argument("--out", type=Path, default=None,
                   help="also write <submission>.verify.json here (a new or empty folder, "
                        "or one kit verify made)")
    p.add_argument("--timeout", type=cli.positive_seconds, default=60.0,
                   help="seconds per cell (60)")
    p.add_argument("--wall", type=cli.positive_seconds, default=900.0,
                   help="seconds per submission (900)")
    p.add_argument("--memory", type=cli.whole_number(256, "a number of MB"), default=3072,
                   help="MB per process (3072)")
    p.add_argument("--dataset", default="digits", choices=("digits", "cifar10"),
                   help="COURSE_DATASET the student ran with (digits; cifar10 needs the data)")
    p.add_argument("--no-isolation", action="store_true",
                   help="run the notebooks without the isolation sandbox (code you trust)")
    args = p.parse_args(argv)
    missing = [str(s) for s in args.submissions if not s.exists()]
    if missing:
        print(f"kit verify: no such submission: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.out is not None:
        try:
            outputs.claim_folder(args.out, OUT_STAMP)
        except KitError as error:
            print(f"kit verify: {error}", file=sys.stderr)
            return 2
    limits = Limits(args.timeout, args.wall, args.memory,
                    isolation="none" if args.no_isolation else None)
    try:
        isolation.choose_mode(limits.isolation)
    except KitError as error:
        print(f"kit verify: {error}", file=sys.stderr)
        return 2
    status = 0
    for submission in args.submissions:
        report = verify_one(submission, limits, args.dataset)
        print(render(report))
        # Nothing verified (an unreadable zip, no notebooks) is no confirmation either.
        if not report["notebooks"] or any(nb["not_reproduced"]
                                          for nb in report["notebooks"].values()):
            status = 1
        if args.out is not None:
            outputs.write_atomic(args.out / f"{report['submission']}.verify.json",
                                 json.dumps(report, indent=1) + "\n", private=True)
    return status
