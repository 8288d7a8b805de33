"""Release the real solution tree and use the student tree the way a student would.

For the real tree (the repository holding these tests) and, to check the checks, for the
fixture tree in ``fixtures/solution``:

* every task of the source's task table has exactly one stub, in the task's file, whose
  message names the task (and, for a function, the function);
* no solution-only line reaches the student tree, and putting the regions back gives the
  solution files byte for byte;
* the student ``course`` package imports (stubs raise only when called);
* every test marked ``task(X)`` fails with ``NotImplementedError`` naming task X, run by
  pytest inside the student tree with that tree's ``course`` first on the path;
* every notebook, run with nbclient, stops at the stub of the first task it
  introduces (its first ``[task X]`` heading), with that stub's message.

Slow: it runs pytest and a Jupyter kernel in subprocesses.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kit_helpers import copy_fixture, run_release
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course.tasks import NOTEBOOKS, prerequisites
from kit import markers
from kit.leaks import check_no_leaks
from kit.tree import SolutionTree, load_task_table

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# tree name -> (source tree, or None for a fresh copy of the fixture; its notebooks)
TREES: dict[str, tuple[Path | None, tuple[str, ...]]] = {
    "fixture": (None, ("Demo",)),
    "real": (REPO, NOTEBOOKS),
}

# A stub as CONTRIBUTING.md section 1 shows it: the TODO line, then the raise line.
TODO_LINE = re.compile(r"^(?P<indent>[ \t]*)# TODO \[task (?P<id>[0-9.]+)\] (?P<func>[^:]+): .+$")
RAISE_LINE = re.compile(
    r'^(?P<indent>[ \t]*)raise NotImplementedError\("(?P<message>task (?P<id>[0-9.]+) '
    r'\((?P<func>[^)]+)\): not written yet; see the TODO in (?P<path>[^"]+))"\)$'
)
TASK_HEADING = re.compile(r"^#+ .*\[task (?P<id>[0-9.]+)\]\s*$", re.MULTILINE)

# Loaded into the student's pytest with -p: copies each test's task markers into the
# JUnit XML as properties, so the report says which task every test checks.
TASK_PROPERTY_PLUGIN = '''
def pytest_collection_modifyitems(items):
    for item in items:
        for mark in item.iter_markers("task"):
            if mark.args:
                item.user_properties.append(("task", str(mark.args[0])))
'''


@dataclass(frozen=True)
class Stub:
    """One stub found in the student tree."""

    path: str
    where: str
    task_id: str
    func: str
    message: str


@dataclass(frozen=True)
class Released:
    """A solution tree, its task table, and the student tree released from it."""

    name: str
    source: Path
    student: Path
    tasks: dict[str, Any]
    notebooks: tuple[str, ...]


@pytest.fixture(scope="module", params=list(TREES))
def released(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Released:
    source, notebooks = TREES[request.param]
    if source is None:
        source = copy_fixture(tmp_path_factory.mktemp("source") / "solution")
    student = tmp_path_factory.mktemp(request.param) / "student"
    result = run_release("--source", source, "--out", student)
    assert result.code == 0, f"release of {source} failed:\n{result.err}"
    tasks = dict(load_task_table(source))
    return Released(request.param, source, student, tasks, notebooks)


def student_env(student: Path, *extra_paths: Path) -> dict[str, str]:
    """The environment of a student's process: their tree first on the path, digits data."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (student, *extra_paths))
    env["COURSE_DATASET"] = "digits"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    return env


# -- finding stubs (independently of kit.markers) ----------------------------------------


def code_texts(path: Path, rel: str) -> list[tuple[str, str]]:
    """(place, text) of a .py file, or of each code cell of a notebook."""
    if rel.endswith(".ipynb"):
        cells = nbformat.read(path, as_version=4).cells
        return [(f"{rel}: cell {n}", c.source) for n, c in enumerate(cells, start=1)
                if c.cell_type == "code"]
    return [(rel, path.read_text(encoding="utf-8"))]


def stubs_in(student: Path, rel: str) -> list[Stub]:
    """Every stub (TODO line directly followed by its raise line) in one student file."""
    found = []
    for place, text in code_texts(student / rel, rel):
        lines = text.split("\n")
        for number, line in enumerate(lines[1:], start=2):
            raised, todo = RAISE_LINE.match(line), TODO_LINE.match(lines[number - 2])
            if raised is None:
                continue
            assert todo is not None, f"{place}, line {number}: a raise without its TODO line"
            assert (todo["indent"], todo["id"], todo["func"]) == (
                raised["indent"], raised["id"], raised["func"]), f"{place}, line {number}"
            found.append(Stub(raised["path"], f"{place}, line {number}", raised["id"],
                              raised["func"], raised["message"]))
    return found


def all_stubs(student: Path) -> list[Stub]:
    stubs = []
    for path in sorted(student.rglob("*")):
        rel = path.relative_to(student).as_posix()
        if path.is_file() and rel.endswith((".py", ".ipynb")):
            stubs += stubs_in(student, rel)
    return stubs


# -- the checks --------------------------------------------------------------------------


def test_every_task_has_exactly_one_stub_in_its_file(released: Released) -> None:
    problems = []
    for task in released.tasks.values():
        path = released.student / task.path
        stubs = [s for s in stubs_in(released.student, task.path) if s.task_id == task.id] \
            if path.is_file() else []
        if len(stubs) != 1:
            problems.append(f"task {task.id}: {len(stubs)} stubs in {task.path} "
                            f"({', '.join(s.where for s in stubs) or 'none'})")
            continue
        (stub,) = stubs
        if stub.path != task.path:
            problems.append(f"task {task.id}: its stub points to {stub.path}, not {task.path}")
        if task.path.endswith(".py") and stub.func != task.function:
            problems.append(f"task {task.id}: its stub names {stub.func}, "
                            f"the table says {task.function}")
    assert not problems, "\n".join(problems)


def test_every_stub_belongs_to_a_task_of_the_table(released: Released) -> None:
    stubs = all_stubs(released.student)
    assert stubs, "no stubs at all in the student tree"
    assert [s.where for s in stubs if s.task_id not in released.tasks] == []


def test_no_solution_text_in_the_student_tree(released: Released) -> None:
    check_no_leaks(SolutionTree.load(released.source), released.student)


def test_putting_the_regions_back_gives_the_solution_files(released: Released) -> None:
    restored = 0
    for rel in SolutionTree.load(released.source).released_files():
        if rel.endswith((".py", ".ipynb")):
            for place, cell, solution, student in paired_texts(released, rel):
                found = markers.regions(markers.parse(solution, rel, released.tasks, cell=cell))
                assert markers.restore(student, found) == solution, place
                restored += len(found)
    assert restored == len(all_stubs(released.student))


def paired_texts(released: Released, rel: str) -> list[tuple[str, int | None, str, str]]:
    """(place, cell number or None, solution text, student text) of a file or its cells."""
    if not rel.endswith(".ipynb"):
        return [(rel, None, (released.source / rel).read_text(encoding="utf-8"),
                 (released.student / rel).read_text(encoding="utf-8"))]
    student = {c.get("id"): c.source
               for c in nbformat.read(released.student / rel, as_version=4).cells}
    pairs = []
    for number, cell in enumerate(nbformat.read(released.source / rel, as_version=4).cells,
                                  start=1):
        # Instructor cells are not in the student notebook: nothing to restore there.
        if cell.cell_type == "code" and cell.get("id") in student:
            pairs.append((f"{rel}: cell {number}", number, cell.source, student[cell.get("id")]))
    return pairs


def test_student_package_imports(released: Released) -> None:
    modules = sorted(
        ".".join(p.relative_to(released.student).with_suffix("").parts).removesuffix(".__init__")
        for p in (released.student / "course").rglob("*.py")
    )
    code = f"import {', '.join(modules)}\nimport course\nprint(course.__file__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=released.student,
                            env=student_env(released.student), capture_output=True, text=True,
                            check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(released.student)


def run_task_tests(tree: Path, work: Path, *args: str
                   ) -> tuple[int, list[tuple[str, list[str], str | None]]]:
    """Run the task tests of a student ``tree``: (pytest's exit code, one row per test).

    A row is (test id, its task IDs, failure text or None), read from JUnit XML rather
    than the console, whose lines pytest cuts to the terminal's width.
    """
    work.mkdir(parents=True, exist_ok=True)
    (work / "kit_task_property.py").write_text(TASK_PROPERTY_PLUGIN)
    report = work / "report.xml"
    where = subprocess.run(
        [sys.executable, "-c", "import course; print(course.__file__)"], cwd=tree,
        env=student_env(tree, work), capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(tree), where.stdout
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "kit_task_property", f"--junitxml={report}", *args],
        cwd=tree, env=student_env(tree, work), capture_output=True,
        text=True, check=False, timeout=1200)
    assert report.exists(), f"pytest exit {result.returncode}:\n{result.stdout[-4000:]}"
    cases = []
    for case in ET.parse(report).getroot().iter("testcase"):
        task_ids = [p.get("value", "") for p in case.iter("property") if p.get("name") == "task"]
        problems = [c for c in case if c.tag in {"failure", "error"}]
        text = "\n".join((c.get("message") or "") + "\n" + (c.text or "") for c in problems)
        cases.append((f"{case.get('classname')}::{case.get('name')}", task_ids,
                      text if problems else None))
    return result.returncode, cases


@pytest.fixture(scope="module")
def task_test_report(released: Released, tmp_path_factory: pytest.TempPathFactory
                     ) -> list[tuple[str, list[str], str | None]]:
    """(test id, its task IDs, failure text or None) for every task test of the student tree."""
    work = tmp_path_factory.mktemp(f"{released.name}-pytest")
    code, cases = run_task_tests(released.student, work, "-m", "task")
    # 1: some tests failed (expected); 0 would mean every task test passes on stubs.
    assert code == 1, f"pytest exit {code}"
    return cases


def test_no_task_test_passes_or_fails_otherwise_on_the_stubs(task_test_report: list) -> None:
    assert task_test_report, "no test marked task(...) ran"
    problems = []
    for test_id, task_ids, failure in task_test_report:
        if not task_ids:
            problems.append(f"{test_id}: not a task test (a collection error?): {failure}")
        elif failure is None:
            problems.append(f"{test_id} (task {', '.join(task_ids)}): passes on the stubs")
        elif "NotImplementedError" not in failure or not re.search(r"task [0-9.]+ \(", failure):
            problems.append(f"{test_id}: fails without a stub message: {first_line(failure)}")
    assert not problems, "\n".join(problems)


def test_every_task_test_fails_with_its_own_or_a_prerequisites_stub(
    released: Released, task_test_report: list
) -> None:
    # A backward test builds its cache with the forward pass, so on a fresh release it may
    # fail with the forward's stub; that is allowed only when the table says so
    # (``requires``). Any other task's stub means a test is blamed on the wrong task.
    problems = []
    for test_id, task_ids, failure in task_test_report:
        if failure is not None and not stops_at_one_of(failure, task_ids, released.tasks):
            problems.append(f"{test_id} (task {', '.join(task_ids)}): {first_line(failure)}")
    assert not problems, (f"{len(problems)} task tests fail with an unrelated task's stub:\n"
                          + "\n".join(problems))


def partially_solved(released: Released, rel: str, solved: set[str]) -> str:
    """The student text of ``rel`` with the regions of the ``solved`` tasks left in place."""
    text = (released.source / rel).read_text(encoding="utf-8")
    segments = markers.parse(text, rel, released.tasks)
    return "".join(seg if isinstance(seg, str) else
                   (seg.source if seg.task_id in solved else seg.stub()) for seg in segments)


# One pytest run per waiting task, on a copy of the tree: it grows with the task table,
# so it gets more than the default per-test timeout.
@pytest.mark.timeout(1200)
def test_every_stub_is_reached_by_its_own_tests(
    released: Released, task_test_report: list, tmp_path: Path
) -> None:
    tested = {t for _, task_ids, _ in task_test_report for t in task_ids}
    reached = {t for _, task_ids, failure in task_test_report for t in task_ids
               if failure is not None and f"task {t} (" in failure}
    # A task whose tests all stop at a prerequisite's stub must be reached once the
    # prerequisites are written: check that on a copy with their solutions put back.
    waiting = sorted(tested - reached)
    problems = [f"task {t}: no test reaches its stub and it has no prerequisites"
                for t in waiting if not prerequisites(t, released.tasks)]
    for task_id in waiting:
        solved = prerequisites(task_id, released.tasks)
        if not solved:
            continue
        copy = tmp_path / f"solved-{task_id}"
        shutil.copytree(released.student, copy)
        for rel in {released.tasks[t].path for t in solved}:
            (copy / rel).write_text(partially_solved(released, rel, solved), encoding="utf-8")
        code, cases = run_task_tests(copy, tmp_path / f"work-{task_id}", "--task", task_id)
        own = [test for test, _, failure in cases
               if failure is not None and f"task {task_id} (" in failure]
        # A test marked with several tasks (a network test of batchnorm is also one of
        # the network's loss) may stop at the stub of another task it is marked with.
        others = [f"{test}: {first_line(failure or 'passed')}" for test, marks, failure in cases
                  if test not in own and not stops_at_one_of(failure, marks, released.tasks)]
        if code != 1 or not own or others:
            problems.append(f"task {task_id} with {sorted(solved)} solved: {len(own)} of "
                            f"{len(cases)} tests stop at its stub; " + "; ".join(others))
    assert not problems, "\n".join(problems)


def stops_at_one_of(failure: str | None, task_ids: list[str], tasks: dict) -> bool:
    """True when ``failure`` is the stub of one of ``task_ids`` or of their prerequisites."""
    allowed = set(task_ids).union(*(prerequisites(t, tasks) for t in task_ids))
    return failure is not None and any(f"task {t} (" in failure for t in allowed)


def first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def test_every_pytest_task_has_task_tests(released: Released, task_test_report: list) -> None:
    tested = {t for _, task_ids, _ in task_test_report for t in task_ids}
    untested = [task.id for task in released.tasks.values()
                if task.checked_by == "pytest" and task.id not in tested]
    assert untested == []


def first_task_of(nb: Any) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (match := TASK_HEADING.search(cell.source)):
            return match["id"]
    raise AssertionError("the notebook has no heading ending in [task X]")


def test_each_notebook_stops_at_the_stub_of_its_first_task(released: Released) -> None:
    problems = []
    for name in released.notebooks:
        try:
            check_notebook_stops_at_its_first_stub(released, name)
        except AssertionError as error:
            problems.append(f"{name}: {error}")
    assert not problems, "\n".join(problems)


def check_notebook_stops_at_its_first_stub(released: Released, name: str) -> None:
    rel = f"notebooks/{name}.ipynb"
    path = released.student / rel
    assert path.is_file(), f"{rel} is not in the student tree"
    nb = nbformat.read(path, as_version=4)
    task_id = first_task_of(nb)
    task = released.tasks[task_id]
    (stub,) = [s for s in stubs_in(released.student, task.path) if s.task_id == task_id]
    # A first cell that proves the kernel imports the student's course package.
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        "import course, pathlib\n"
        f"assert pathlib.Path(course.__file__).is_relative_to({str(released.student)!r}), "
        "course.__file__"))
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute(env=student_env(released.student))
    except CellExecutionError as error:
        assert stub.message in str(error), f"stopped elsewhere: {first_line(str(error))}"
    else:
        raise AssertionError(f"ran to the end; expected the stub of task {task_id}")


# -- lint: clean as released, and `ruff check --fix` cannot break a task -----------------


def ruff(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """ruff run in ``tree``, so it reads that tree's own pyproject.toml."""
    return subprocess.run([sys.executable, "-m", "ruff", "check", *args, "."], cwd=tree,
                          capture_output=True, text=True, check=False, timeout=300)


def solve_every_stub(released: Released, tree: Path) -> int:
    """Put the solution back into every stubbed .py file of ``tree``; return the count."""
    solved = 0
    for rel in SolutionTree.load(released.source).released_files():
        if rel.endswith(".py"):
            solution = (released.source / rel).read_text(encoding="utf-8")
            found = markers.regions(markers.parse(solution, rel, released.tasks))
            if found:
                student = (tree / rel).read_text(encoding="utf-8")
                (tree / rel).write_text(markers.restore(student, found), encoding="utf-8")
                solved += len(found)
    return solved


def test_ruff_fix_keeps_every_task_solvable(released: Released, tmp_path: Path) -> None:
    if released.name != "real":
        pytest.skip("the fixture tree has no ruff settings")
    tree = tmp_path / "student"
    shutil.copytree(released.student, tree)
    clean = ruff(tree)
    assert clean.returncode == 0, f"the release is not ruff-clean:\n{clean.stdout}"
    fixed = ruff(tree, "--fix")
    assert fixed.returncode == 0, fixed.stdout
    changed = [rel for rel in SolutionTree.load(released.source).released_files()
               if rel.endswith((".py", ".ipynb")) and (tree / rel).exists()
               and (tree / rel).read_bytes() != (released.student / rel).read_bytes()]
    assert changed == [], f"ruff --fix rewrote {changed}"
    assert solve_every_stub(released, tree) > 0
    code, cases = run_task_tests(tree, tmp_path / "work", "-m", "task")
    failures = [f"{test}: {first_line(failure)}" for test, _, failure in cases if failure]
    assert code == 0 and cases and not failures, "\n".join(failures)


@pytest.mark.slow
def test_scoreboard_of_the_student_release_lists_every_task_as_not_started(tmp_path):
    from course.rubric import task_points
    from course.tasks import TASKS

    out = tmp_path / "student"
    release = subprocess.run([sys.executable, "-m", "kit", "release", "--out", str(out)],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert release.returncode == 0, release.stderr
    # make check's command; every import it makes is listed on stderr.
    env = {**os.environ, "PYTHONPATH": str(out), "COURSE_DATASET": "digits",
           "PYTHONPROFILEIMPORTTIME": "1"}
    run = subprocess.run([sys.executable, "-m", "course", "check"], cwd=out,
                         capture_output=True, text=True, timeout=900, env=env)
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")]
            for line in run.stdout.splitlines() if line.count("|") == 3}
    for task in TASKS:  # notebook tasks too: their stubs are in the notebook
        status, points = rows[task.id][1], rows[task.id][2]
        assert (status, points) == ("TODO", f"0/{task_points(task)}"), rows[task.id]
    assert "Total: 0 of 100 points" in run.stdout
    # Nor does it import nbformat (about 2 s of every check here): no notebook runs.
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines()
                if line.startswith("import time:")}
    assert "numpy" in imported and "nbformat" not in imported
