"""kit grade's batch: when a saved result is reused, how submissions are named, what
grades.csv holds, and what is not a submission.

Grading itself is stubbed (``grade_one`` replaced by a function that scores a zip by a
file it holds), so each rule runs in a fraction of a second; the zoo
(test_grade_zoo.py) grades real submissions.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from course.rubric import CHECKS, TASK_POINTS
from kit import grade
from kit import reports as rp
from kit import submissions as subs
from kit.nbval_runner import Limits

ROOT = Path(__file__).resolve().parents[2]
LIMITS = Limits(isolation="none")  # nothing runs: the stub grades
NOTEBOOK = "FullyConnectedNets"


def make_zip(path: Path, files: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def handin(path: Path, passing: str) -> Path:
    """A zip whose ``course/layers.py`` names the checks the stub lets pass ("all",
    "none", or check names separated by spaces)."""
    return make_zip(path, {"course/layers.py": f"# passing: {passing}\n"})


class Stub:
    """Stands for ``grade.grade_one``: every selected check passes when the zip's
    layers.py says so. Records the names it graded."""

    def __init__(self) -> None:
        self.graded: list[str] = []

    def __call__(self, submission: Path, references: dict[str, Any], limits: Limits,
                 only_checks: set[str] | None = None, root: Path = ROOT,
                 prepared: Any = None, name: str | None = None) -> rp.GradeResult:
        name = name or grade.submission_name(submission)
        self.graded.append(name)
        with zipfile.ZipFile(submission) as archive:
            text = archive.read("course/layers.py").decode()
        passing = text.split("passing:")[1].split()
        checks = []
        for notebook, found in grade.select_checks(references, only_checks).checks.items():
            for check in found:
                ok = "all" in passing or check.name in passing
                verdict = rp.Verdict(True) if ok else rp.Verdict(
                    False, rp.Reason(rp.FailureKind.WRONG_OUTPUT, "wrong output"))
                checks.append(rp.CheckResult(check.name, notebook, check.heading, verdict,
                                             None, CHECKS.get(f"{notebook}/{check.name}")))
        return rp.GradeResult(name, runs=[], checks=checks,
                              status=rp.overall_status(checks, []))


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Stub:
    fake = Stub()
    monkeypatch.setattr(grade, "grade_one", fake)
    monkeypatch.setattr(grade.hidden, "prepare", lambda tasks: None)
    return fake


def batch(paths: list[Path], out: Path, **options: Any) -> tuple[dict[str, rp.GradeResult],
                                                                 list[str]]:
    """Grade ``paths`` into ``out`` on FullyConnectedNets; the results by name, and the
    lines the batch said."""
    said: list[str] = []
    results = grade.grade_batch(paths, out, limits=options.pop("limits", LIMITS),
                                notebooks=[NOTEBOOK], say=said.append, **options)
    return {r.submission: r for r in results}, said


def fc_points() -> int:
    return sum(p for t, p in TASK_POINTS.items() if t.startswith("1."))


def test_a_replaced_zip_is_regraded_and_an_unchanged_one_reused_saying_so(tmp_path, stub):
    subs_dir, out = tmp_path / "subs", tmp_path / "grades"
    a = handin(subs_dir / "subA.zip", "all")
    b = handin(subs_dir / "subB.zip", "affine-forward")
    first, _ = batch([a, b], out)
    assert first["subB"].total == TASK_POINTS["1.1"]
    # subC's zip copied over subB.zip: same file name, other content.
    handin(subs_dir / "subB.zip", "all")
    stub.graded.clear()
    again, said = batch([a, b], out)
    assert stub.graded == ["subB"]
    assert again["subB"].total == again["subB"].max == fc_points()
    assert f"{b} changed since it was last graded: regrading" in said
    assert "subA: unchanged since its last grading, result reused (--force regrades)" in said
    saved = json.loads((out / "subB.json").read_text())
    assert saved["graded_with"]["submission_sha256"] == subs.content_hash(b)
    # --force regrades everything, reusing nothing.
    stub.graded.clear()
    batch([a, b], out, force=True)
    assert sorted(stub.graded) == ["subA", "subB"]


def test_a_quick_only_trial_is_not_taken_for_the_full_grade(tmp_path, stub):
    out = tmp_path / "grades"
    a = handin(tmp_path / "subA.zip", "affine-forward")
    trial, _ = batch([a], out, only_checks={"FullyConnectedNets/affine-forward"})
    assert (trial["subA"].total, trial["subA"].max) == (2, 2)
    full, said = batch([a], out)
    assert stub.graded == ["subA", "subA"]
    assert full["subA"].max == fc_points() and full["subA"].status == "graded"
    assert any(line.startswith("subA: last graded with other options (--only was "
                               "FullyConnectedNets/affine-forward, now all checks)")
               for line in said), said
    # Nor may a trial replace the full grade: refused before grading, the grade kept.
    saved = (out / "subA.json").read_text()
    graded = rf"\({full['subA'].total}/{fc_points()}\)"
    with pytest.raises(ValueError, match=rf"holds the grade of subA {graded} over every "
                                         "check; this trial"):
        batch([a], out, only_checks={"affine-forward"})
    assert (out / "subA.json").read_text() == saved and stub.graded == ["subA", "subA"]
    # Trials in a folder of their own: the same selection named the short way is the
    # same grading, reused.
    trials = tmp_path / "trials"
    batch([a], trials, only_checks={"affine-forward"})
    _, said = batch([a], trials, only_checks={"FullyConnectedNets/affine-forward"})
    assert said == ["subA: unchanged since its last grading, result reused (--force regrades)"]
    # Other limits: regraded, saying which.
    _, said = batch([a], trials, only_checks={"affine-forward"},
                    limits=Limits(cell_timeout=5, isolation="none"))
    assert any("--timeout was 60, now 5" in line for line in said), said
    _, said = batch([a], trials, only_checks={"affine-forward"},
                    limits=Limits(cell_timeout=5, isolation="none", disk_mb=64))
    assert any("--disk (or $KIT_SANDBOX_DISK_MB) was the default, now 64" in line
               for line in said), said


def test_a_changed_kit_or_an_unfingerprinted_report_is_regraded(tmp_path, stub, monkeypatch):
    out = tmp_path / "grades"
    a = handin(tmp_path / "subA.zip", "all")
    batch([a], out)
    monkeypatch.setattr(subs, "material_hash", lambda root: "sha256:another-solution")
    _, said = batch([a], out)
    assert said == ["subA: the kit, the solution or the reference notebooks changed since "
                    "it was last graded: regrading"]
    saved = json.loads((out / "subA.json").read_text())
    del saved["graded_with"]  # as written before results said what they were graded from
    (out / "subA.json").write_text(json.dumps(saved))
    _, said = batch([a], out)
    assert len(stub.graded) == 3 and "was graded from" in said[0] and "regrading" in said[0]


def test_grades_csv_keeps_the_submissions_graded_earlier_into_the_same_out(tmp_path, stub):
    out = tmp_path / "grades"
    batch([handin(tmp_path / "zoe.zip", "all")], out)
    batch([handin(tmp_path / "adam.zip", "none")], out)
    rows = list(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))
    assert [(r["submission"], int(r["total"])) for r in rows] == [("adam", 0),
                                                                  ("zoe", fc_points())]
    assert all(int(r[NOTEBOOK]) == int(r["total"]) for r in rows)


def test_each_row_of_grades_csv_says_the_options_it_was_graded_with(tmp_path, stub):
    # Rows graded into one --out by different runs: each says its own options.
    out = tmp_path / "grades"
    batch([handin(tmp_path / "zoe.zip", "all")], out)
    batch([handin(tmp_path / "adam.zip", "none")], out,
          limits=Limits(cell_timeout=90, wall=1200, memory_mb=2048, disk_mb=64,
                        isolation="none"))
    rows = {r["submission"]: r["options"]
            for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert rows == {
        "zoe": f"--timeout 60 --wall 600 --memory 3072 --no-isolation --notebook {NOTEBOOK}",
        "adam": f"--timeout 90 --wall 1200 --memory 2048 --disk 64 --no-isolation "
                f"--notebook {NOTEBOOK}"}
    saved = json.loads((out / "zoe.json").read_text())
    del saved["graded_with"]  # a result written before results said what they were graded from
    (out / "zoe.json").write_text(json.dumps(saved))
    batch([handin(tmp_path / "bea.zip", "all")], out,
          only_checks={f"{NOTEBOOK}/affine-forward"})
    rows = {r["submission"]: r["options"]
            for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert rows["zoe"] == "unknown"
    assert rows["bea"].endswith(f"--notebook {NOTEBOOK} --only affine-forward")


def test_handin_zips_in_one_folder_per_student_are_named_by_their_folders(tmp_path, stub):
    lms, out = tmp_path / "lms", tmp_path / "grades"
    paths = [handin(lms / who / "handin.zip", "all") for who in ("alice", "bob")]
    solo = handin(tmp_path / "carol.zip", "none")
    results, said = batch([*paths, solo], out)
    assert sorted(results) == ["alice", "bob", "carol"]
    assert {p.name for p in out.glob("*.json")} == {"alice.json", "bob.json", "carol.json"}
    assert any("named by the folder holding it: alice, bob" in line for line in said), said
    # Still clashing by folder: refused before anything is graded, naming every path.
    twins = [handin(tmp_path / term / "alice" / "handin.zip", "all")
             for term in ("fall", "spring")]
    with pytest.raises(subs.NameClashError) as refused:
        batch(twins, tmp_path / "other")
    message = str(refused.value)
    assert all(str(p) in message for p in twins) and "subs/<student>.zip" in message
    assert not (tmp_path / "other").exists()


def test_the_same_zip_given_twice_is_graded_once(tmp_path, stub):
    a = handin(tmp_path / "subA.zip", "all")
    results, _ = batch([a, tmp_path / "." / "subA.zip"], tmp_path / "grades")
    assert list(results) == ["subA"] and stub.graded == ["subA"]


def test_a_folder_hash_follows_its_content_not_its_place(tmp_path):
    one, two = tmp_path / "one" / "sub", tmp_path / "two" / "sub"
    for folder in (one, two):
        (folder / "course").mkdir(parents=True)
        (folder / "course" / "layers.py").write_text("x = 1\n")
    (two / "course" / "__pycache__").mkdir()  # never read by the grader
    (two / "course" / "__pycache__" / "layers.cpython-312.pyc").write_bytes(b"\0")
    assert subs.content_hash(one) == subs.content_hash(two)
    (two / "course" / "layers.py").write_text("x = 2\n")
    assert subs.content_hash(one) != subs.content_hash(two)


# -- not a submission ----------------------------------------------------------------------


def test_what_holds_no_course_code_and_no_notebook_is_not_a_submission(tmp_path):
    notebooks = grade.course_notebooks(ROOT)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    cases = {
        make_zip(tmp_path / "empty.zip", {}): "(the zip is empty)",
        make_zip(tmp_path / "random.zip", {"holiday/photo.jpg": "jpeg",
                                           "notes.txt": "hi"}):
            "(the zip holds 2 file(s): holiday/photo.jpg, notes.txt)",
        empty_dir: "(the folder is empty)",
        make_zip(tmp_path / "emptycourse.zip", {"course/README.md": "no code"}):
            "course/README.md",
    }
    for path, detail in cases.items():
        why = subs.not_a_submission(path, notebooks)
        assert why is not None and why.startswith("no course/ folder with .py files")
        assert why.endswith(detail) or detail in why, why
    submissions = [
        make_zip(tmp_path / "a.zip", {"course/layers.py": ""}),
        make_zip(tmp_path / "b.zip", {"handin/course/classifiers/fc_net.py": ""}),
        make_zip(tmp_path / "c.zip", {"layers.py": ""}),  # bare files stand for course/
        make_zip(tmp_path / "d.zip", {f"notebooks/{notebooks[0]}.ipynb": "{}"}),
        tmp_path / "broken.zip",  # not a zip at all: the sandbox says it is unreadable
    ]
    (tmp_path / "broken.zip").write_text("not a zip")
    assert [subs.not_a_submission(p, notebooks) for p in submissions] == [None] * 5


def test_a_non_submission_runs_nothing_and_the_table_says_why(tmp_path, monkeypatch):
    def no_sandbox(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a sandbox was built for a non-submission")

    monkeypatch.setattr(grade, "sanitize", no_sandbox)
    references = grade.reference_notebooks(ROOT, [NOTEBOOK])
    empty = make_zip(tmp_path / "subE.zip", {})
    result = grade.grade_one(empty, references, LIMITS)
    assert result.status == "not a submission"
    assert result.max == fc_points() and result.total == 0
    assert result.seconds < 5
    table = rp.summary_table([result]).splitlines()
    assert table[0].split(" | ")[-1] == "WHY"
    assert table[2].split(" | ")[2].strip() == "not a submission"
    assert table[2].endswith("no course/ folder with .py files and no notebook of the "
                             "course (the zip is empty)")
    text = rp.feedback_markdown(result)
    assert "Nothing was run" in text and "Likely cause" not in text
    again = rp.from_json(json.loads(json.dumps(rp.to_json(result))))
    assert (again.status, again.why) == (result.status, result.why)
    # A zip with course code goes on to the sandbox.
    with pytest.raises(AssertionError, match="sandbox was built"):
        grade.grade_one(make_zip(tmp_path / "subF.zip", {"course/layers.py": ""}),
                        references, LIMITS)
