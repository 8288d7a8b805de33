"""``python -m kit mutants [--task ID...] [--hidden-only] [--jobs N] [--seed S]``

How complete are the checks? Make one-statement mutants of each task's solution region
(a swapped operator, an off-by-one constant, a dropped term or factor, a changed axis,
slice or comparison, a swapped reduction, a deleted in-place update), grade each mutant
as a submission with the hidden checks (``kit.hidden``) and, unless ``--hidden-only``,
run the students' own task tests on it (``pytest --task ID`` in a temporary copy of the
tree), and print per task how many mutants each catches and which survive.

A mutant that changes what the code computes and survives the hidden checks is a gap to
close (a case to add to ``kit/hidden/cases.py``). A mutant that cannot change any result
the API promises is *equivalent*: it is listed in ``EQUIVALENT`` with the reason, and the
report counts it apart. ``make test`` grades a small fixed sample of the mutants
(``sample``) and fails if one survives the hidden checks.

The mutator is written here, over Python's ``ast``: each mutant replaces one expression
(or deletes one statement) of a region, by its exact span in the source, so the rest of
the file is untouched and the mutant names the line it changed.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from course.tasks import TASKS_BY_ID
from kit import cli, markers

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------
# Mutation operators
# ---------------------------------------------------------------------------------------

BINOP_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.Pow: ast.Mult, ast.FloorDiv: ast.Div, ast.MatMult: ast.Mult, ast.Mod: ast.FloorDiv,
}
COMPARE_SWAPS: dict[type, type] = {
    ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
NAME_SWAPS = {
    "max": "min", "min": "max", "sum": "mean", "mean": "sum", "maximum": "minimum",
    "minimum": "maximum", "argmax": "argmin", "argmin": "argmax", "zeros": "ones",
    "ones": "zeros", "zeros_like": "ones_like", "ones_like": "zeros_like",
}
DROPPABLE_CALLS = {"sqrt", "exp", "log", "abs"}  # f(x) -> x
SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
          ast.FloorDiv: "//", ast.MatMult: "@", ast.Mod: "%"}


@dataclass(frozen=True)
class Mutant:
    """One mutant: the region's task, where it changes the file, and how."""

    task: str
    path: str  # "course/layers.py"
    line: int  # 1-based line of the change
    operator: str  # "binop", "compare", "constant", "drop-term", ...
    start: int  # character offsets of the replaced span in the file's text
    end: int
    replacement: str
    before: str  # the changed line(s), as they were and as they become
    after: str
    original: str = ""  # the replaced span itself, checked before applying

    occurrence: int = 1  # the same change of the same text elsewhere in the region

    @property
    def id(self) -> str:
        """Stable while the changed text is, wherever its line moves: the task, the
        operator and a hash of the text before and after."""
        digest = hashlib.sha256(f"{self.before}\0{self.after}".encode()).hexdigest()[:8]
        suffix = f"#{self.occurrence}" if self.occurrence > 1 else ""
        return f"{self.task}:{self.operator}:{digest}{suffix}"

    def apply(self, text: str) -> str:
        """``text`` with the mutation; ValueError if ``text`` is not the file the mutant
        was made from (the span holds something else)."""
        if text[self.start:self.end] != self.original:
            raise ValueError(f"{self.path}:{self.line}: the file changed since the mutant "
                             f"{self.id} was made")
        return text[: self.start] + self.replacement + text[self.end:]

    def describe(self) -> str:
        return f"{self.path}:{self.line} [{self.operator}] {self.before} -> {self.after}"


def _offsets(text: str) -> list[int]:
    """Character offset of the start of each line (1-based line -> offsets[line - 1])."""
    starts, total = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(total)
        total += len(line)
    return starts


def _span(node: ast.AST, starts: list[int], text: str) -> tuple[int, int]:
    # ast offsets are in UTF-8 bytes; the regions are ASCII, so bytes = characters there.
    start = starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
    end = starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
    return start, end


def _needs_parens(node: ast.AST) -> bool:
    return isinstance(node, (ast.BinOp, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.IfExp,
                             ast.Lambda, ast.NamedExpr))


def _render(node: ast.AST) -> str:
    text = ast.unparse(node)
    return f"({text})" if _needs_parens(node) else text


def expression_mutations(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """Every ``(operator, replacement)`` of one expression node."""
    if isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAPS:
        yield "binop", ast.BinOp(node.left, BINOP_SWAPS[type(node.op)](), node.right)
        if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            yield "drop-term", node.left
            if isinstance(node.op, (ast.Add, ast.Mult)):
                yield "drop-term", node.right
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 \
            and type(node.ops[0]) in COMPARE_SWAPS:
        yield "compare", ast.Compare(node.left, [COMPARE_SWAPS[type(node.ops[0])]()],
                                     node.comparators)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        yield "unary", node.operand
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        yield "constant", ast.Constant(not node.value)
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        yield "constant", ast.Constant(node.value + 1)
        yield "constant", ast.Constant(node.value - 1)
    elif isinstance(node, ast.Constant) and type(node.value) is float:
        yield "constant", ast.Constant(node.value + 1.0)
    elif isinstance(node, ast.Attribute) and node.attr in NAME_SWAPS:
        yield "name", ast.Attribute(node.value, NAME_SWAPS[node.attr], node.ctx)
    elif isinstance(node, ast.Attribute) and node.attr == "T":
        yield "transpose", node.value
    elif isinstance(node, ast.Call):
        yield from _call_mutations(node)
    elif isinstance(node, ast.Slice):
        if node.lower is not None:
            yield "slice", ast.Slice(None, node.upper, node.step)
        if node.upper is not None:
            yield "slice", ast.Slice(node.lower, None, node.step)


def _call_mutations(node: ast.Call) -> Iterator[tuple[str, ast.AST]]:
    name = node.func.attr if isinstance(node.func, ast.Attribute) else \
        node.func.id if isinstance(node.func, ast.Name) else None
    if name in DROPPABLE_CALLS and len(node.args) == 1 and not node.keywords:
        yield "drop-call", node.args[0]
    for index, keyword in enumerate(node.keywords):
        if keyword.arg in ("axis", "keepdims"):
            kept = node.keywords[:index] + node.keywords[index + 1:]
            yield "drop-keyword", ast.Call(node.func, node.args, kept)


def _is_target(node: ast.AST, targets: set[int]) -> bool:
    return id(node) in targets


def _assignment_targets(tree: ast.AST) -> set[int]:
    """ids of nodes that are (inside) an assignment target: mutating those is not a
    change of a computation but of where it goes, and often not valid Python."""
    found: set[int] = set()
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
            targets = [node.target]
        for target in targets:
            found |= {id(sub) for sub in ast.walk(target)
                      if not isinstance(sub, (ast.Slice, ast.Constant, ast.BinOp))
                      or sub is target}
    return found


def _deletable(node: ast.stmt) -> bool:
    """In-place updates whose deletion leaves valid code: ``x += ...``, ``x[i] = ...``."""
    if isinstance(node, ast.AugAssign):
        return True
    return isinstance(node, ast.Assign) and all(isinstance(t, ast.Subscript)
                                                 for t in node.targets)


COMMENT = re.compile(r"\s+#\s.*$")  # a trailing comment ("x = 1  # why"): not code


def _joined(lines: list[str]) -> str:
    """The code of some lines on one line: comments dropped (a comment edit keeps a
    mutant's id), runs of white space made one space."""
    return " ".join(" ".join(COMMENT.sub("", line) for line in lines).split())


def region_mutants(text: str, path: str, task: str, first: int, last: int) -> list[Mutant]:
    """Every mutant of the lines ``first..last`` (1-based, inclusive) of a file's text."""
    tree = markers.parse_python(text)
    starts = _offsets(text)
    targets = _assignment_targets(tree)
    found: list[Mutant] = []
    seen: set[tuple[int, str]] = set()

    def add(operator: str, node: ast.AST, replacement: str) -> None:
        start, end = _span(node, starts, text)
        first_line, last_line = node.lineno, node.end_lineno  # type: ignore[attr-defined]
        mutated = text[:start] + replacement + text[end:]
        new_last = last_line + replacement.count("\n") - text[start:end].count("\n")
        before = _joined(text.splitlines()[first_line - 1:last_line])
        after = _joined(mutated.splitlines()[first_line - 1:new_last])
        if after == before or (first_line, after) in seen:
            return
        try:
            markers.parse_python(mutated)
        except SyntaxError:
            return
        seen.add((first_line, after))
        found.append(Mutant(task, path, first_line, operator, start, end, replacement,
                            before, after, text[start:end]))

    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if line is None or not (first <= line and node.end_lineno <= last):  # type: ignore[attr-defined]
            continue
        if isinstance(node, ast.stmt) and _deletable(node):
            add("delete", node, "pass")
        if isinstance(node, ast.expr) and _is_target(node, targets):
            continue
        if isinstance(node, (ast.expr, ast.Slice)):
            for operator, replacement in expression_mutations(node):
                add(operator, node, _render(replacement))
    found.sort(key=lambda m: (m.line, m.start, m.operator, m.after))
    counts: dict[tuple[str, str, str], int] = {}
    numbered = []
    for mutant in found:
        key = (mutant.operator, mutant.before, mutant.after)
        counts[key] = counts.get(key, 0) + 1
        numbered.append(dataclasses.replace(mutant, occurrence=counts[key]))
    return numbered


def task_regions(root: Path = ROOT) -> list[tuple[str, str, int, int]]:
    """``(task, path, first body line, last body line)`` of every region in ``course/``
    (the tasks the hidden checks cover; notebook-cell tasks have no region there)."""
    from kit.tree import load_task_table

    tasks = load_task_table(root)
    found = []
    for path in sorted((root / "course").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        for region in markers.regions(markers.parse(text, rel, tasks)):
            body = len(markers.split_lines(region.body))
            found.append((region.task_id, rel, region.line + 1, region.line + body))
    return found


def all_mutants(root: Path = ROOT, tasks: Iterable[str] | None = None) -> list[Mutant]:
    wanted = None if tasks is None else set(tasks)
    found: list[Mutant] = []
    for task, rel, first, last in task_regions(root):
        if wanted is None or task in wanted:
            text = (root / rel).read_text(encoding="utf-8")
            found += region_mutants(text, rel, task, first, last)
    return found


# ---------------------------------------------------------------------------------------
# Equivalent mutants: they cannot change a result the API promises
# ---------------------------------------------------------------------------------------

# id -> why the mutant computes what the solution computes (checked by hand; the report
# lists them apart, and the make-test sample never picks them).
EQUIVALENT: dict[str, str] = {
    "3.1:compare:885b70dd": "rng.random draws from [0, 1) with 2**53 values: '<= p' and "
                            "'< p' differ only when a draw equals p exactly",
    "4.1:constant:9f826838": "the extra padding is an (N + 1)-th example the loops never read",
    "4.1:name:8dce4661": "every entry of out is assigned in the loops, so its initial "
                         "values (zeros or ones) are never read",
    "4.6:constant:f06576dd": "input_grad only says whether the images' gradient, which "
                             "loss() throws away, is computed: a matter of speed",
    "4.9:constant:84825210": "numpy's reshape infers the size of any negative dimension, so "
                             "-2 means what -1 means",
    "4.10:constant:346f3367": "numpy's reshape infers the size of any negative dimension",
    "4.10:constant:f695267c": "numpy's reshape infers the size of any negative dimension",
}


# ---------------------------------------------------------------------------------------
# Running the checks on mutants
# ---------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What the checks made of one mutant (None: not run)."""

    mutant: Mutant
    hidden: bool | None = None  # caught by the task's hidden checks
    tests: bool | None = None  # caught by the students' task tests
    detail: str = ""  # the first hidden-check feedback line, or why it was not judged

    @property
    def equivalent(self) -> str | None:
        return EQUIVALENT.get(self.mutant.id)


class MutantTree:
    """A private copy of the solution tree in which one file at a time is mutated."""

    WITH_TESTS = ("course", "tests", "notebooks", "pyproject.toml")
    SKIPPED = ("kit", "safety", "__pycache__", ".ipynb_checkpoints", ".hypothesis")

    def __init__(self, root: Path, base: Path, tests: bool = True) -> None:
        self.root = base / "tree"
        for name in self.WITH_TESTS if tests else ("course",):
            source = root / name
            if source.is_dir():
                shutil.copytree(source, self.root / name,
                                ignore=shutil.ignore_patterns(*self.SKIPPED))
            elif source.is_file():
                self.root.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, self.root / name)
        self.pristine = {p: p.read_text(encoding="utf-8")
                         for p in (self.root / "course").rglob("*.py")}

    def apply(self, mutant: Mutant) -> None:
        path = self.root / mutant.path
        path.write_text(mutant.apply(self.pristine[path]), encoding="utf-8")

    def restore(self, mutant: Mutant) -> None:
        path = self.root / mutant.path
        path.write_text(self.pristine[path], encoding="utf-8")


def hidden_catches(tree: MutantTree, prepared: object, limits: object) -> tuple[bool, str]:
    """Grade the mutated tree as a submission with the task's hidden checks."""
    from kit import sandbox
    from kit.hidden import run_prepared

    box = sandbox.build(tree.root, {})
    try:
        report = run_prepared(box.root, prepared, limits)  # type: ignore[arg-type]
    finally:
        box.cleanup()
    failing = [v for v in report.tasks.values() if not v.passed]
    return bool(failing), failing[0].feedback[0] if failing else ""


def _pytest(tree: MutantTree, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COURSE_"))}
    env.update(COURSE_DATASET="digits", PYTHONHASHSEED="0", CI="true",
               PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    argv = [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider",
            "-W", "ignore", "--no-header"]
    return subprocess.run(argv, cwd=tree.root, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def task_test_files(tree: MutantTree, task: str) -> list[str]:
    """The test files holding the students' tests of ``task`` (collected once per task, so
    each mutant's run imports only those)."""
    done = _pytest(tree, ["tests", "--task", task, "--collect-only"], timeout=600)
    return sorted({line.split("::")[0] for line in done.stdout.splitlines() if "::" in line})


def tests_catch(tree: MutantTree, task: str, files: list[str],
                timeout: float = 900.0) -> bool:
    """Run the students' tests of ``task`` on the mutated tree (derandomized hypothesis)."""
    if not files:
        return False
    try:
        done = _pytest(tree, [*files, "--task", task, "-x", "--tb=no"], timeout=timeout)
    except subprocess.TimeoutExpired:
        return True
    return done.returncode != 0


def run_task(task: str, mutants: list[Mutant], *, seed: int, student_tests: bool,
             root: Path = ROOT) -> list[Outcome]:
    """Every mutant of one task through the hidden checks (and the students' tests)."""
    from kit.hidden import HiddenLimits, prepare

    prepared = prepare(seed, [task])
    limits = HiddenLimits(case_seconds=5.0, total_seconds=120.0)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="kit-mutants-") as base:
        tree = MutantTree(root, Path(base), tests=student_tests)
        files = task_test_files(tree, task) if student_tests else []
        for mutant in mutants:
            tree.apply(mutant)
            try:
                caught, detail = hidden_catches(tree, prepared, limits)
                tests = tests_catch(tree, task, files) if student_tests else None
            finally:
                tree.restore(mutant)
            outcomes.append(Outcome(mutant, caught, tests, detail))
    return outcomes


def sample(mutants: list[Mutant], per_task: int = 1) -> list[Mutant]:
    """A fixed sample: per task, the non-equivalent mutants whose id hashes lowest."""
    by_task: dict[str, list[Mutant]] = {}
    for mutant in mutants:
        if mutant.id not in EQUIVALENT:
            by_task.setdefault(mutant.task, []).append(mutant)
    chosen = []
    for found in by_task.values():
        found.sort(key=lambda m: hashlib.sha256(m.id.encode()).hexdigest())
        chosen += found[:per_task]
    return chosen


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

def _count(flags: Iterable[bool | None]) -> str:
    values = list(flags)
    return "-" if any(v is None for v in values) else str(sum(bool(v) for v in values))


def report(outcomes: list[Outcome]) -> str:
    """The per-task table, the totals, then every survivor and every equivalent mutant."""
    from course.tasks import task_sort_key

    by_task: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_task.setdefault(outcome.mutant.task, []).append(outcome)
    lines = [f"{'TASK':<6} | {'MUTANTS':>7} | {'EQUIV':>5} | {'HIDDEN':>6} | {'TESTS':>5} | "
             f"SURVIVE HIDDEN", "-" * 60]
    rows = sorted(by_task.items(), key=lambda item: task_sort_key(item[0]))
    for task, found in [*rows, ("total", outcomes)]:
        real = [o for o in found if o.equivalent is None]
        survive = sum(o.hidden is False for o in real)
        lines.append(f"{task:<6} | {len(found):>7} | {len(found) - len(real):>5} | "
                     f"{_count(o.hidden for o in real):>6} | {_count(o.tests for o in real):>5} | "
                     f"{survive}")
    gaps = [o for o in outcomes if o.equivalent is None and o.hidden is False]
    missed = [o for o in outcomes if o.equivalent is None and o.tests is False]
    lines += ["", f"Survivors of the hidden checks ({len(gaps)}):"]
    lines += [f"  {o.mutant.id}  {o.mutant.describe()}" for o in gaps] or ["  none"]
    lines += ["", f"Survivors of the students' task tests ({len(missed)}):"]
    lines += [f"  {o.mutant.id}  {o.mutant.describe()}" for o in missed] or ["  none"]
    equivalent = [o for o in outcomes if o.equivalent is not None]
    lines += ["", f"Equivalent mutants, not counted ({len(equivalent)}):"]
    lines += [f"  {o.mutant.id}  {o.mutant.describe()}\n      {o.equivalent}"
              for o in equivalent] or ["  none"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kit mutants",
                                description=__doc__.split("\n\n")[1])
    p.add_argument("--task", action="append", default=None, metavar="ID",
                   help="only this task's mutants (repeatable)")
    p.add_argument("--hidden-only", action="store_true",
                   help="skip the students' tests (they take seconds per mutant)")
    p.add_argument("--sample", type=cli.whole_number(1), default=None, metavar="K",
                   help="only K mutants per task (the fixed sample make test grades)")
    p.add_argument("--jobs", type=cli.whole_number(1), default=1,
                   help="tasks run at once (1)")
    p.add_argument("--seed", type=int, default=None,
                   help="the hidden checks' seed (default: a fresh secret one)")
    p.add_argument("--list", action="store_true", help="list the mutants and stop")
    return p


def main(argv: list[str]) -> int:
    from kit.hidden.run import new_seed

    args = parser().parse_args(argv)
    unknown = [task for task in args.task or [] if task not in TASKS_BY_ID]
    if unknown:
        parser().error(f"argument --task: no task {', '.join(map(repr, unknown))}; "
                       f"expected one of {', '.join(TASKS_BY_ID)}")
    mutants = all_mutants(ROOT, args.task)
    if args.sample is not None:
        mutants = sample(mutants, args.sample)
    if args.list:
        print("\n".join(f"{m.id}  {m.describe()}" for m in mutants))
        return 0
    seed = new_seed() if args.seed is None else args.seed
    by_task: dict[str, list[Mutant]] = {}
    for mutant in mutants:
        by_task.setdefault(mutant.task, []).append(mutant)
    started = time.monotonic()
    print(f"kit mutants: {len(mutants)} mutants of {len(by_task)} tasks", file=sys.stderr)
    def one_task(task: str, found: list[Mutant]) -> list[Outcome]:
        done = run_task(task, found, seed=seed, student_tests=not args.hidden_only)
        print(f"  task {task}: {len(done)} mutants, hidden checks catch "
              f"{sum(bool(o.hidden) for o in done)}", file=sys.stderr, flush=True)
        return done

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(one_task, task, found) for task, found in by_task.items()]
        outcomes = [o for future in futures for o in future.result()]
    print(report(outcomes))
    print(f"\n{time.monotonic() - started:.0f} s")
    gaps = [o for o in outcomes if o.equivalent is None and o.hidden is False]
    return 1 if gaps else 0
