"""``python -m kit grade SUBMISSION... [--out DIR] [--jobs N] [--timeout S] [--memory MB]``

Regrade submissions by running the reference notebooks against each student's code.

For each submission (a folder or a ``.zip``): build a sandbox (``kit.sandbox``: pristine
reference notebooks, pristine ``course/`` with the student's task code merged in), then run
nbval over each notebook in its own process, with settings the grader controls (its own
``-c`` config, ``--noconftest``, no plugin autoloading, no cache, the kit's sanitize file),
a per-cell timeout, a wall-clock limit for the submission and an address-space limit
(``RLIMIT_AS``) on every process of the run. Per-cell results come from the grader's own
report hook (``kit/nbval_report.py``), signed and sent through a pipe the student's code
cannot reach, never from stdout. Experiment cells are skipped; each check cell's result is
its named check, worth the points ``course/rubric.py`` gives it.

Writes into ``--out`` (atomically: temp file + rename): ``grades.csv`` (one row per
submission: ``submission, total, max, status`` and a subtotal per notebook), one
``<submission>.json`` (every check: name, notebook, points, max, status, reason, and for a
failed check the expected vs actual output, trimmed) and one ``<submission>.md`` for the
student. Submissions already graded in ``--out`` are skipped unless ``--force``, so a killed
batch resumes where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.rubric import CHECKS, DEFAULT_POINTS, check_points
from course.tasks import NOTEBOOKS
from kit import sandbox as sb

ROOT = sb.ROOT
PLUGIN = Path(__file__).resolve().parent / "nbval_report.py"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
TRIM = 1200  # characters of expected / actual output kept per failed check
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 60.0  # seconds per cell
    wall: float = 600.0  # seconds for the whole submission
    memory_mb: int = 3072  # address space per process


# ---------------------------------------------------------------------------------------
# Reference notebooks and their checks
# ---------------------------------------------------------------------------------------

def reference_notebooks(root: Path = ROOT, names: Iterable[str] | None = None) -> dict[str, Any]:
    """Every notebook of the tree (``notebooks/*.ipynb``) as loaded JSON, by name, in
    course order (``course.tasks.NOTEBOOKS``, then any others by name)."""
    order = {name: index for index, name in enumerate(NOTEBOOKS)}
    paths = sorted((root / "notebooks").glob("*.ipynb"),
                   key=lambda p: (order.get(p.stem, len(order)), p.stem))
    wanted = None if names is None else set(names)
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in paths if wanted is None or p.stem in wanted
    }


def check_cells(notebook: Any) -> dict[int, str]:
    """Code-cell index (nbval's "Cell N") -> check name, for the notebook's check cells."""
    found: dict[int, str] = {}
    index = 0
    for cell in notebook["cells"]:
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {})
        if "check" in meta.get("tags", []):
            found[index] = meta.get("check") or f"cell-{index}"
        index += 1
    return found


def heading_of_cells(notebook: Any) -> dict[int, str]:
    """Code-cell index -> the markdown heading above it (how a student finds the cell)."""
    headings: dict[int, str] = {}
    heading, index = "", 0
    for cell in notebook["cells"]:
        source = "".join(cell.get("source", []))
        if cell.get("cell_type") == "markdown" and source.lstrip().startswith("#"):
            heading = source.lstrip().splitlines()[0].lstrip("#").strip()
        elif cell.get("cell_type") == "code":
            headings[index] = heading
            index += 1
    return headings


# ---------------------------------------------------------------------------------------
# Running one notebook
# ---------------------------------------------------------------------------------------

# Sets the limits, then becomes the real command. (Popen's preexec_fn would do the same,
# but it is unsafe in a threaded program, and --jobs grades in threads.)
_LIMIT_SHIM = (
    "import os, resource, sys\n"
    "limit = int(sys.argv[1]) * 1024 * 1024\n"
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def with_limits(cmd: list[str], megabytes: int) -> list[str]:
    """``cmd`` run under an address-space limit that every process it starts inherits."""
    return [sys.executable, "-c", _LIMIT_SHIM, str(megabytes), *cmd]


def _kill_tree(pid: int) -> None:
    """Kill a process and every descendant (the kernel runs in a session of its own)."""
    try:
        import psutil

        try:
            parent = psutil.Process(pid)
            procs = [*parent.children(recursive=True), parent]
        except psutil.NoSuchProcess:
            procs = []
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        return
    except ImportError:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _control_dir(base: Path) -> Path:
    control = Path(tempfile.mkdtemp(prefix="kit-grade-control-", dir=base))
    shutil.copy(PLUGIN, control / "nbval_report.py")
    shutil.copy(SANITIZE, control / "sanitize.cfg")
    (control / "pytest.ini").write_text("[pytest]\naddopts =\n")
    for sub in ("ipython", "jupyter-config", "jupyter-runtime"):
        (control / sub).mkdir()
    return control


def _env(box: Path, control: Path, dataset: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COURSE_"))}
    env.pop("PYTHONSTARTUP", None)
    env.update(
        PYTHONPATH=f"{box}{os.pathsep}{control}",
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        COURSE_DATASET=dataset,
        MPLBACKEND="Agg",
        IPYTHONDIR=str(control / "ipython"),  # no user profile or startup files
        JUPYTER_CONFIG_DIR=str(control / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(control / "jupyter-runtime"),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


def run_notebook(box: Path, name: str, limits: Limits, deadline: float, workdir: Path,
                 dataset: str = "digits") -> tuple[dict[int, dict[str, Any]], str | None]:
    """Run nbval over one sandbox notebook; return the verified per-cell records and, if
    the run was stopped or ended abnormally, why."""
    control = _control_dir(workdir)
    key = secrets.token_hex(32)
    cmd = [
        sys.executable, "-m", "pytest", "-c", str(control / "pytest.ini"),
        "--rootdir", str(box), "--noconftest", "-p", "no:cacheprovider",
        "-p", "nbval.plugin", "-p", "nbval_report", "--nbval", "--nbval-current-env",
        "--nbval-sanitize-with", str(control / "sanitize.cfg"),
        "--nbval-cell-timeout", str(int(limits.cell_timeout)), "-q", "--tb=short",
        "-W", "ignore", str(box / "notebooks" / f"{name}.ipynb"),
    ]
    left = deadline - time.monotonic()
    if left <= 0:
        return {}, "wall-clock limit reached before this notebook started"
    key_read, key_write = os.pipe()
    os.write(key_write, key.encode())
    os.close(key_write)
    results_read, results_write = os.pipe()
    env = _env(box, control, dataset)
    env.update(KIT_GRADE_KEY_FD=str(key_read), KIT_GRADE_RESULTS_FD=str(results_write))
    try:
        proc = subprocess.Popen(
            with_limits(cmd, limits.memory_mb), cwd=box, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            pass_fds=(key_read, results_write),
        )
    finally:
        os.close(key_read)
        os.close(results_write)
    received: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(results_read, received), daemon=True)
    reader.start()
    problem = None
    try:
        _, err = proc.communicate(timeout=left)
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        proc.communicate()
        problem = f"wall-clock limit of {limits.wall:g} s reached"
    else:
        _kill_tree(proc.pid)  # a kernel left behind by a crashed run
        if proc.returncode not in (0, 1):
            tail = _ANSI.sub("", err.decode(errors="replace")).strip().splitlines()[-3:]
            problem = f"the test run ended with status {proc.returncode}: {' / '.join(tail)}"
    reader.join(timeout=10)
    text = b"".join(received).decode("utf-8", errors="replace")
    (control / "results.jsonl").write_text(text)  # kept beside the run, for debugging
    records = read_records(text, key)
    shutil.rmtree(control, ignore_errors=True)
    return records, problem


def _drain(fd: int, into: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read1(65536) if hasattr(pipe, "read1") else pipe.read(65536):
            into.append(chunk)


def read_records(text: str, key: str) -> dict[int, dict[str, Any]]:
    """The records whose signature checks out, by cell (the last one wins)."""
    import hashlib
    import hmac

    found: dict[int, dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            payload, mac = entry["record"], entry["mac"]
        except (ValueError, KeyError, TypeError):
            continue
        good = hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if isinstance(mac, str) and hmac.compare_digest(good, mac):
            record = json.loads(payload)
            found[int(record["cell"])] = record
    return found


# ---------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------

def _trim(text: str) -> str:
    text = _ANSI.sub("", text or "")
    return text if len(text) <= TRIM else text[: TRIM // 2] + "\n[...]\n" + text[-TRIM // 2:]


def reason_of(record: dict[str, Any] | None, problem: str | None, limits: Limits) -> str:
    """One phrase for why a check did not pass (empty when it passed)."""
    if record is None:
        return problem or "no result (the run stopped before this cell)"
    if record["outcome"] == "passed":
        return ""
    if record["outcome"] == "skipped":
        return "skipped"
    message = _ANSI.sub("", record.get("message", ""))
    actual = record.get("actual", "")
    if "kernel died" in message or "Kernel dead" in message:
        return "kernel died (the student's code ended the Python process)"
    if "MemoryError" in actual or "MemoryError" in message:
        return f"memory: the code needed more than the {limits.memory_mb} MB limit"
    if "Timeout of" in message:
        return f"timeout: the cell ran longer than {limits.cell_timeout:g} s"
    if "Cell execution caused an exception" in message:
        errors = [ln for ln in actual.splitlines() if re.match(r"\w+(Error|Exception)?: ", ln)]
        return f"error: {errors[-1] if errors else 'the cell raised an exception'}"
    if "Cell outputs differ" in message:
        return "wrong output"
    return "failed"


def score_notebook(name: str, notebook: Any, records: Mapping[int, dict[str, Any]],
                   problem: str | None, limits: Limits,
                   only_checks: set[str] | None) -> list[dict[str, Any]]:
    headings = heading_of_cells(notebook)
    rows = []
    for cell, check in check_cells(notebook).items():
        if not sb.selected(name, check, only_checks):
            continue
        points = check_points(name, check)
        record = records.get(cell)
        passed = record is not None and record["outcome"] == "passed"
        row = {
            "name": check,
            "notebook": name,
            "cell": headings.get(cell, ""),
            "points": points if passed else 0,
            "max": points,
            "status": "passed" if passed else "failed",
            "reason": reason_of(record, problem, limits),
        }
        if not passed and record is not None:
            row["expected"] = _trim(record.get("expected", ""))
            row["actual"] = _trim(record.get("actual", "") or record.get("message", ""))
        rows.append(row)
    return rows


def grade_one(submission: Path, references: Mapping[str, Any], limits: Limits,
              only_checks: set[str] | None = None, root: Path = ROOT) -> dict[str, Any]:
    """Grade one submission; never raises for anything the submission does."""
    started = time.monotonic()
    deadline = started + limits.wall
    result: dict[str, Any] = {"submission": submission_name(submission), "notes": []}
    workdir = Path(tempfile.mkdtemp(prefix="kit-grade-run-"))
    box = None
    checks: list[dict[str, Any]] = []
    try:
        try:
            box = sb.build(submission, references, root=root, only_checks=only_checks)
        except sb.SubmissionError as error:
            result["notes"].append(str(error))
        if box is not None:
            result["notes"] += box.notes
            result["notebook_seconds"] = {}
            for name in references:
                begun = time.monotonic()
                box.restore()  # undo whatever the previous notebook's run wrote
                records, problem = run_notebook(box.root, name, limits, deadline, workdir)
                result["notebook_seconds"][name] = round(time.monotonic() - begun, 1)
                checks += score_notebook(name, box.notebooks[name], records, problem, limits,
                                         only_checks)
        else:
            for name, notebook in references.items():
                checks += score_notebook(name, notebook, {}, "the submission could not be read",
                                         limits, only_checks)
    finally:
        if box is not None:
            box.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    result["checks"] = checks
    result["total"] = sum(c["points"] for c in checks)
    result["max"] = sum(c["max"] for c in checks)
    result["status"] = _status(checks, result["notes"])
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def _status(checks: list[dict[str, Any]], notes: list[str]) -> str:
    reasons = {c["reason"].split(":")[0].split(" (")[0] for c in checks if c["reason"]}
    for serious in ("kernel died", "memory", "timeout", "wall-clock limit"):
        if any(r.startswith(serious) for r in reasons):
            return serious
    if any(n.startswith("syntax error") for n in notes):
        return "syntax error"
    if any("could not be read" in n or "not a folder" in n for n in notes):
        return "unreadable"
    return "complete" if checks and all(c["status"] == "passed" for c in checks) else "graded"


def submission_name(path: Path) -> str:
    return path.name[:-4] if path.name.endswith(".zip") else path.name


# ---------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------

def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def feedback_markdown(result: dict[str, Any]) -> str:
    lines = [f"# Grading report: {result['submission']}", "",
             f"**Score: {result['total']} / {result['max']}** ({result['status']})", ""]
    if result["notes"]:
        lines += ["Notes on the submission:", ""] + [f"- {n}" for n in result["notes"]] + [""]
    notebook = None
    for check in result["checks"]:
        if check["notebook"] != notebook:
            notebook = check["notebook"]
            lines += [f"## {notebook}", "", "| check | under heading | points | result |",
                      "| --- | --- | --- | --- |"]
        verdict = "passed" if check["status"] == "passed" else check["reason"] or "failed"
        lines.append(f"| `{check['name']}` | {check['cell']} | {check['points']}/{check['max']} "
                     f"| {verdict} |")
        if check["status"] != "passed" and check.get("expected") is not None:
            lines += ["", f"<details><summary>{check['name']}: expected vs your output</summary>",
                      "", "Expected:", "", "```", check["expected"].rstrip(), "```", "",
                      "Yours:", "", "```", check.get("actual", "").rstrip(), "```",
                      "</details>", "", "| check | under heading | points | result |",
                      "| --- | --- | --- | --- |"]
    return "\n".join(lines) + "\n"


def grades_csv(results: list[dict[str, Any]], notebooks: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "total", "max", "status", *notebooks])
    for result in sorted(results, key=lambda r: r["submission"]):
        subtotal = {n: sum(c["points"] for c in result["checks"] if c["notebook"] == n)
                    for n in notebooks}
        writer.writerow([result["submission"], result["total"], result["max"], result["status"],
                         *(subtotal[n] for n in notebooks)])
    return buffer.getvalue()


def save_result(out: Path, result: dict[str, Any]) -> None:
    name = result["submission"]
    write_atomic(out / f"{name}.md", feedback_markdown(result))
    write_atomic(out / f"{name}.json", json.dumps(result, indent=1) + "\n")  # last: "done"


def load_result(out: Path, name: str) -> dict[str, Any] | None:
    try:
        result = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and "checks" in result else None


OUT_MARKER = ".kit-grade"


def claim_out_dir(out: Path) -> None:
    """Use ``out`` only if it is new, empty, or made by kit grade (it holds the marker):
    the reports overwrite files by name, so a folder of someone's work is refused."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / OUT_MARKER).exists():
        raise ValueError(f"--out {out} already holds files that kit grade did not write "
                         f"(no {OUT_MARKER} marker); choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_MARKER).write_text("reports written by python -m kit grade\n")


def summary_table(results: list[dict[str, Any]]) -> str:
    width = max([10, *(len(r["submission"]) for r in results)])
    lines = [f"{'SUBMISSION':<{width}} | {'SCORE':>9} | {'STATUS':<13} | SECONDS",
             "-" * (width + 40)]
    for r in sorted(results, key=lambda r: r["submission"]):
        score = f"{r['total']}/{r['max']}"
        lines.append(f"{r['submission']:<{width}} | {score:>9} | {r['status']:<13} | "
                     f"{r.get('seconds', '-')}")
    return "\n".join(lines)


class Progress:
    """A one-line progress bar on stderr (one line per submission when not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.lock = total, 0, threading.Lock()
        self.tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        with self.lock:
            self.done += 1
            filled = int(30 * self.done / max(1, self.total))
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {label}"
            sys.stderr.write(("\r" + bar[:100].ljust(100)) if self.tty else bar + "\n")
            if self.tty and self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def grade_batch(submissions: list[Path], out: Path, *, jobs: int = 1,
                limits: Limits = Limits(), force: bool = False,
                only_checks: set[str] | None = None, root: Path = ROOT,
                notebooks: Iterable[str] | None = None,
                notebooks_for: Mapping[str, Iterable[str]] | None = None,
                ) -> list[dict[str, Any]]:
    """Grade every submission (skipping those already in ``out`` unless ``force``).

    ``notebooks`` limits the notebooks graded; ``notebooks_for`` limits them further for
    some submissions (by name), as the tests' zoo does to stay fast.
    """
    references = reference_notebooks(root, notebooks)
    unrated = [f"{name}/{check}" for name, nb in references.items()
               for check in check_cells(nb).values() if f"{name}/{check}" not in CHECKS]
    if unrated:
        print(f"kit grade: no points in course/rubric.py for {', '.join(unrated)}; "
              f"each counts {DEFAULT_POINTS}", file=sys.stderr)
    limited = {name: list(nbs) for name, nbs in (notebooks_for or {}).items()}

    def refs_for(path: Path) -> dict[str, Any]:
        wanted = limited.get(submission_name(path))
        return dict(references) if wanted is None else {
            n: nb for n, nb in references.items() if n in wanted}

    names = [submission_name(s) for s in submissions]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"submissions with the same name: {', '.join(sorted(duplicates))}")
    claim_out_dir(out)
    results: dict[str, dict[str, Any]] = {}
    pending = []
    for path in submissions:
        previous = None if force else load_result(out, submission_name(path))
        if previous is not None:
            results[previous["submission"]] = previous
        else:
            pending.append(path)
    progress = Progress(len(pending))
    csv_lock = threading.Lock()

    def finish(result: dict[str, Any]) -> None:
        save_result(out, result)
        with csv_lock:
            results[result["submission"]] = result
            write_atomic(out / "grades.csv", grades_csv(list(results.values()), list(references)))
        progress.step(f"{result['submission']}: {result['total']}/{result['max']}")

    if pending:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(grade_one, p, refs_for(p), limits, only_checks, root)
                       for p in pending]
            for future in as_completed(futures):
                finish(future.result())
    write_atomic(out / "grades.csv", grades_csv(list(results.values()), list(references)))
    return [results[n] for n in names]


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kit grade", description=__doc__.split("\n\n")[1])
    p.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                   help="a folder or .zip with the student's course/ files (and notebooks)")
    p.add_argument("--out", type=Path, default=Path("build/grades"),
                   help="where grades.csv and the per-submission reports go (build/grades)")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (1)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per cell (60)")
    p.add_argument("--wall", type=float, default=600.0,
                   help="seconds for one submission's notebooks together (600)")
    p.add_argument("--memory", type=int, default=3072,
                   help="address-space limit per process, MB (3072)")
    p.add_argument("--force", action="store_true", help="regrade submissions already graded")
    p.add_argument("--only", action="append", default=None, metavar="CHECK",
                   help="grade only these check names (repeatable; for quick trials)")
    p.add_argument("--notebook", action="append", default=None, metavar="NAME",
                   help="grade only these notebooks (repeatable)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.jobs < 1 or args.timeout <= 0 or args.wall <= 0 or args.memory < 256:
        print("kit grade: --jobs must be >= 1, --timeout and --wall positive, "
              "--memory at least 256 MB", file=sys.stderr)
        return 2
    missing = [str(s) for s in args.submissions if not s.exists()]
    if missing:
        print(f"kit grade: no such submission: {', '.join(missing)}", file=sys.stderr)
        return 2
    limits = Limits(args.timeout, args.wall, args.memory)
    try:
        results = grade_batch(args.submissions, args.out, jobs=args.jobs, limits=limits,
                              force=args.force, notebooks=args.notebook,
                              only_checks=set(args.only) if args.only else None)
    except ValueError as error:
        print(f"kit grade: {error}", file=sys.stderr)
        return 2
    print(summary_table(results))
    print(f"\nReports in {args.out}/ (grades.csv, <submission>.json, <submission>.md)")
    return 0
