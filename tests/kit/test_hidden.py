"""The hidden checks' parts on their own: transport, judge, cases, leak check.

* ``transport``: trees of plain values survive a round trip; anything else is rejected
  when written, and reading refuses pickles, symlinks, FIFOs, oversized and malformed
  files without unpickling or blocking.
* ``judge``: relative errors against hand-worked values; each failed property is named.
* ``cases``: every task of the table that lives in course/ has cases, with the edge
  cases the issue names really in their inputs; the seed decides the inputs; the
  solution runs on every case; the worker's request carries no answer.
* the release never ships kit/hidden/ and its leak check finds a copied line of it.

Instructor-only (tests/kit/ is not released).
"""

from __future__ import annotations

import ast
import io
import os
import pickle
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from course.tasks import TASKS
from kit import leaks
from kit import release as kit_release
from kit.hidden import cases as hidden_cases
from kit.hidden import drivers, judge, run, transport
from kit.hidden.transport import MessageError, Rejected
from kit.tree import SolutionTree

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------
# transport
# ---------------------------------------------------------------------------------------

def test_a_tree_of_plain_values_survives_the_round_trip(tmp_path: Path) -> None:
    tree = {"f": 0.1, "i": -3, "b": True, "s": "train", "n": None,
            "l": [np.arange(6, dtype=np.float32).reshape(2, 3), 2],
            "t": (np.array([1, 2], dtype=np.int64), np.array(True)),
            "d": {"running_mean": np.zeros(4), "eps": 1e-5}}
    transport.write_message(tmp_path / "m.npz", tree)
    back = transport.read_message(tmp_path / "m.npz")
    assert back.keys() == tree.keys()
    assert (back["f"], back["i"], back["b"], back["s"], back["n"]) == (0.1, -3, True, "train",
                                                                      None)
    assert isinstance(back["t"], tuple) and isinstance(back["l"], list)
    np.testing.assert_array_equal(back["l"][0], tree["l"][0])
    assert back["l"][0].dtype == np.float32
    np.testing.assert_array_equal(back["t"][0], tree["t"][0])
    assert back["d"]["eps"] == 1e-5 and back["d"]["running_mean"].shape == (4,)


class _Sub(np.ndarray):
    pass


class _Liar:
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


@pytest.mark.parametrize(("value", "why"), [
    (np.zeros(3).view(_Sub), "ndarray subclass"),
    (np.array([1, "a"], dtype=object), "dtype |O"),
    (np.array(["a", "b"]), "dtype <U1"),
    (_Liar(), "not a number or an array"),
    ({1: 2.0}, "keys that are not strings"),
    (np.zeros(2, dtype=complex), "not numbers"),
])
def test_anything_but_plain_numbers_travels_as_rejected(tmp_path: Path, value: object,
                                                         why: str) -> None:
    transport.write_message(tmp_path / "m.npz", {"out": value})
    back = transport.read_message(tmp_path / "m.npz")["out"]
    assert isinstance(back, Rejected) and why in back.why


def _npz(members: dict[str, np.ndarray], *, allow_pickle: bool = False,
         compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, allow_pickle=allow_pickle,
                                                    **members)
    return buffer.getvalue()


def _tree(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


class _Trap:
    """Unpickling it would create a file: proof that nothing was unpickled."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.flag,))


def test_a_pickled_member_is_refused_unread(tmp_path: Path) -> None:
    flag = tmp_path / "unpickled"
    trap = np.array([_Trap(flag)], dtype=object)
    data = _npz({"__tree__": _tree('{"array": "a0"}'), "a0": trap}, allow_pickle=True)
    (tmp_path / "m.npz").write_bytes(data)
    with pytest.raises(MessageError):
        transport.read_message(tmp_path / "m.npz")
    assert not flag.exists()
    with np.load(tmp_path / "m.npz", allow_pickle=True) as check:  # the trap is real
        check["a0"]
    assert flag.exists()


def test_a_symlink_is_refused_even_to_a_good_message(tmp_path: Path) -> None:
    transport.write_message(tmp_path / "real.npz", {"ok": True})
    (tmp_path / "link.npz").symlink_to(tmp_path / "real.npz")
    with pytest.raises(MessageError, match="unreadable"):
        transport.read_message(tmp_path / "link.npz")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.npz")
    errors: list[BaseException] = []

    def read() -> None:
        try:
            transport.read_message(tmp_path / "fifo.npz")
        except MessageError as error:
            errors.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert errors and "not a regular file" in str(errors[0])


@pytest.mark.parametrize("case", ["oversized", "bomb", "garbage", "no tree", "bad key",
                                  "deep", "strings"])
def test_malformed_or_oversized_messages_are_refused(tmp_path: Path, case: str) -> None:
    path = tmp_path / "m.npz"
    if case == "oversized":
        transport.write_message(path, {"a": np.zeros(1000)})
        limit = path.stat().st_size - 1
    else:
        limit = transport.MAX_FILE_BYTES
    if case == "bomb":  # a small file that unpacks to more than the cap
        path.write_bytes(_npz({"__tree__": _tree('{"none": true}'),
                               "a0": np.zeros(2 * limit // 8 + 8)}, compress=True))
    elif case == "garbage":
        path.write_bytes(os.urandom(256))
    elif case == "no tree":
        path.write_bytes(_npz({"a0": np.zeros(2)}))
    elif case == "bad key":
        path.write_bytes(_npz({"__tree__": _tree('{"array": "a7"}'), "a0": np.zeros(2)}))
    elif case == "deep":
        path.write_bytes(_npz({"__tree__": _tree('{"list": [' * 40 + "]}" * 40)}))
    elif case == "strings":
        path.write_bytes(_npz({"__tree__": _tree('{"array": "a0"}'), "a0": np.array(["x"])}))
    with pytest.raises(MessageError):
        transport.read_message(path, max_bytes=limit)


# ---------------------------------------------------------------------------------------
# judge
# ---------------------------------------------------------------------------------------

def test_relative_error_against_hand_worked_values() -> None:
    # |2 - 2.002| / (2 + 2.002) = 0.002 / 4.002
    assert judge.relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.002])) == \
        pytest.approx(0.002 / 4.002, rel=1e-12)
    # An entry far below the array's largest is held to an absolute error: the floor is
    # 1e-4 * 1000 = 0.1, so 1e-9 of difference there is 1e-8.
    assert judge.relative_error(np.array([1000.0, 2e-9]), np.array([1000.0, 1e-9])) == \
        pytest.approx(1e-8, rel=1e-9)
    # All zeros expected: the absolute floor 1e-10 applies.
    assert judge.relative_error(np.array([1e-17]), np.array([0.0])) == pytest.approx(1e-7)
    assert judge.relative_error(np.array([1.0]), np.array([0.0])) == pytest.approx(1.0)


CASE = hidden_cases.Case("9.9", "an edge case", "backward", {},
                         options={"names": {"grads": ["dx", "dw"]}})


@pytest.mark.parametrize(("actual", "says"), [
    ([np.zeros((2, 3)), np.zeros(4)], "dx: shape (2, 3), expected (2, 2)"),
    ([np.full((2, 2), np.nan), np.zeros(4)], "dx: 4 entries are NaN or infinite"),
    ([np.ones((2, 2)), np.zeros(4)], "dx: largest relative error 1.00e+00"),
    ([np.zeros((2, 2), dtype=bool), np.zeros(4)], "dx: dtype bool is not a real number type"),
    ([Rejected("an ndarray subclass (x.Y), not a plain ndarray"), np.zeros(4)],
     "dx: the code returned an ndarray subclass"),
    ([np.zeros((2, 2))], "grads: expected 2 values, got 1 values"),
    ([np.zeros((2, 2)), 0.0], "dw: expected a numpy array, got a float"),
])
def test_each_failed_property_is_named_with_its_output(actual: list, says: str) -> None:
    expected = {"grads": [np.zeros((2, 2)), np.zeros(4)]}
    problems = judge.judge(CASE, expected, {"grads": actual})
    assert problems and str(problems[0]).startswith(says), problems


def test_an_array_that_is_off_names_its_worst_entry_and_how_many_are_off() -> None:
    expected = np.arange(1.0, 7.0).reshape(2, 3)
    actual = expected.copy()
    actual[1, 0] = 4.4   # |4.4 - 4| / (4.4 + 4) = 0.4 / 8.4 = 4.76e-02, the worst
    actual[0, 2] = 3.03  # 0.03 / 6.03 = 4.98e-03
    actual[1, 2] = 6.0 * (1 + 1e-8)  # within the tolerance: not counted
    problems = judge.judge(CASE, {"grads": [expected, np.zeros(4)]},
                           {"grads": [actual, np.zeros(4)]})
    assert [str(p) for p in problems] == [
        "dx: largest relative error 4.76e-02 (must be below 1e-06) at [1, 0]; "
        "2 of 6 entries are off"]


def test_numbers_dicts_and_integers() -> None:
    case = hidden_cases.Case("9.9", "x", "call", {})
    assert judge.compare(case, {"loss": 1.5}, {"loss": np.array(1.5)}) == []
    assert judge.compare(case, {"loss": 1.5}, {"loss": 1.5 * (1 + 1e-5)})
    assert judge.compare(case, {"t": 3}, {"t": 3}) == []
    assert judge.compare(case, {"t": 3}, {"t": 4})
    problems = judge.compare(case, {"g": {"W1": np.zeros(2), "b1": np.zeros(2)}},
                             {"g": {"W1": np.zeros(2), "x": np.zeros(2)}})
    assert [str(p) for p in problems] == ["g: missing 'b1'", "g: unexpected 'x'"]


def _solution_output(case: hidden_cases.Case) -> dict:
    return drivers.run(case.driver, case.spec, drivers.resolve)


def test_dropout_judge_passes_the_solution_and_names_each_broken_property() -> None:
    case = hidden_cases.generate(123, ["3.1"])[0]
    good = _solution_output(case)
    assert judge.judge(case, good, good) == []
    p = case.options["p"]
    broken = {
        "kept entries must be 1/p": {"seeded_mask": good["seeded_mask"] * p,
                                     "seeded_out": good["seeded_out"] * p},
        "is not x times the mask": {"seeded_out": good["seeded_out"] * 2},
        "same seed did not repeat": {"seeded_again_out": good["global_out"]},
        "global random state": {"global_again_out": good["global_next_out"]},
        "must equal x": {"test_out": good["seeded_out"]},
        "keeps": {"seeded_mask": np.full_like(good["seeded_mask"], 1 / p),
                  "seeded_out": case.spec["x"] / p},
    }
    for says, change in broken.items():
        problems = judge.judge(case, good, {**good, **change})
        assert any(says in str(problem) for problem in problems), (says, problems)


def test_init_judge_passes_the_solution_and_catches_a_wrong_scale() -> None:
    case = hidden_cases.generate(5, ["1.7"])[0]
    good = _solution_output(case)
    assert judge.judge(case, good, good) == []
    scaled = {k: v * 1.3 if k.startswith("W") else v for k, v in good["params"].items()}
    problems = judge.judge(case, good, {"params": scaled, "again": scaled})
    assert any("standard deviation off by +30" in str(p) for p in problems), problems
    wrong_b = dict(good["params"], b1=good["params"]["b1"] + 1)
    assert judge.judge(case, good, {"params": wrong_b, "again": wrong_b})
    as64 = {k: v.astype(np.float64 if v.dtype == np.float32 else np.float32)
            for k, v in good["params"].items()}
    assert any("dtype" in str(p) for p in judge.judge(case, good, {"params": as64,
                                                                     "again": as64}))


# ---------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------

def test_every_task_in_course_has_hidden_checks_and_no_other_does() -> None:
    in_course = {t.id for t in TASKS if t.checked_by == "pytest" and t.path.startswith("course/")}
    assert set(hidden_cases.GENERATORS) == in_course


def test_every_task_has_several_distinctly_named_cases() -> None:
    for task, generate in hidden_cases.GENERATORS.items():
        found = generate(hidden_cases.task_rng(1, task))
        labels = [case.label for case in found]
        assert len(found) >= 2 and len(set(labels)) == len(labels), task
        assert all(case.task == task for case in found)


def _by_label(task: str, seed: int, words: str) -> hidden_cases.Case:
    return next(c for c in hidden_cases.generate(seed, [task]) if words in c.label)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_named_edge_cases_are_in_the_inputs(seed: int) -> None:
    for task in ("1.3", "1.4"):
        case = _by_label(task, seed, "kink")
        x = case.spec["steps"][0]["args"][0] if task == "1.3" else case.spec["cache"]
        assert (x == 0).any() and (x != 0).any()
    x, y = _by_label("1.6", seed, "kink").spec["args"]
    rows = np.arange(len(y))
    margins = x - x[rows, y][:, None] + 1
    margins[rows, y] = 1
    assert (margins == 0).any()
    for task in ("4.1", "4.2"):
        case = _by_label(task, seed, "pad = 0 and stride 2")
        args = case.spec["steps"][0]["args"] if task == "4.1" else case.spec["cache"]
        assert args[3] == {"stride": 2, "pad": 0}
    x = _by_label("4.4", seed, "ties").spec["cache"][0]
    assert len(np.unique(x)) < x.size
    pool = _by_label("4.4", seed, "overlapping").spec["cache"][1]
    assert pool["stride"] < pool["pool_height"]
    for task in ("1.8", "4.6"):
        regs = [c.spec["kwargs"]["reg"] for c in hidden_cases.generate(seed, [task])]
        assert 0.0 in regs and any(r > 0 for r in regs)
        assert any(c.spec["X"].shape[0] == 1 for c in hidden_cases.generate(seed, [task]))
    for task in ("2.1", "4.7"):
        modes = [s["set"]["mode"] for s in hidden_cases.generate(seed, [task])[0].spec["steps"]]
        assert modes == ["train", "train", "train", "test", "test"]
    for task in hidden_cases.RULES:
        assert all(len(c.spec["dws"]) >= 3 for c in hidden_cases.generate(seed, [task]))


def _arrays(value: object) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _arrays(v)]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _arrays(v)]
    return []


def _same(a: object, b: object) -> bool:
    """Equal trees of specs (arrays by shape and value)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and \
            a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_the_seed_decides_the_inputs() -> None:
    for task in hidden_cases.GENERATORS:
        one = [c.spec for c in hidden_cases.generate(11, [task])]
        assert _same(one, [c.spec for c in hidden_cases.generate(11, [task])]), task
        assert not _same(one, [c.spec for c in hidden_cases.generate(12, [task])]), task


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_the_solution_answers_every_case(seed: int) -> None:
    prepared = run.prepare(seed)
    assert len(prepared.expected) == len(prepared.cases) > 60


def test_the_request_carries_no_answer(tmp_path: Path) -> None:
    prepared = run.prepare(21)
    run._write_control(tmp_path / "control", prepared.cases)
    request = transport.read_message(tmp_path / "control" / "request.npz")
    assert [set(c) for c in request["cases"]] == [{"task", "driver", "spec"}] * len(
        prepared.cases)
    sent = [a for a in _arrays(request) if a.size > 1]
    for case, expected in zip(prepared.cases, prepared.expected, strict=True):
        if case.judge == "match":
            for answer in _arrays(expected):
                inputs = _arrays(case.spec)
                if answer.size > 1 and not any(np.array_equal(answer, a) for a in inputs):
                    assert not any(a.shape == answer.shape and np.array_equal(a, answer)
                                   for a in sent), case.label
    assert sorted(p.name for p in (tmp_path / "control").iterdir()) == \
        sorted(["request.npz", *run.WORKER_FILES])


# ---------------------------------------------------------------------------------------
# The release
# ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_release_never_ships_the_hidden_checks_and_its_leak_check_covers_them(
        tmp_path: Path) -> None:
    released = SolutionTree.load(ROOT).released_files()
    assert not [rel for rel in released if rel.startswith("kit/")]
    out = tmp_path / "student"
    assert kit_release.main(["--out", str(out)]) == 0  # it runs the leak check itself
    assert not list(out.rglob("hidden"))
    leaks.check_no_leaks(ROOT, out)
    shutil.copy(ROOT / "kit" / "hidden" / "judge.py", out / "course" / "_judge.py")
    with pytest.raises(leaks.LeakError, match=r"_judge\.py"):
        leaks.check_no_leaks(ROOT, out)


def test_zip_members_are_counted_before_loading(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(transport.MAX_MEMBERS + 1):
            archive.writestr(f"a{index}.npy", b"")
    (tmp_path / "m.npz").write_bytes(buffer.getvalue())
    with pytest.raises(MessageError, match="members"):
        transport.read_message(tmp_path / "m.npz")


def test_pickle_module_is_never_needed_to_read(tmp_path: Path, monkeypatch) -> None:
    transport.write_message(tmp_path / "m.npz", {"x": np.ones(3), "c": {"t": 2}})

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle was used")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    assert transport.read_message(tmp_path / "m.npz")["c"] == {"t": 2}


def test_references_come_only_from_the_solution_tree(tmp_path: Path, monkeypatch) -> None:
    import course

    impostor = tmp_path / "course" / "__init__.py"
    impostor.parent.mkdir()
    impostor.write_text("")
    monkeypatch.setattr(course, "__file__", str(impostor))
    with pytest.raises(RuntimeError, match="not from the solution tree"):
        run.prepare(1, ["1.1"])


def test_an_error_message_of_the_students_code_shows_no_value_it_quotes() -> None:
    message = "ValueError: x = [[ 0.5 -1.25] [ 3.  4. ]], scale 2.5e-3, got x.shape = (3, 4)"
    shown = run.masked(message)
    assert shown == "ValueError: x = [[...] [...]], scale <number>, got x.shape = (3, 4)"


def test_a_masked_message_keeps_the_course_task_ids_and_nothing_that_only_looks_like_one(
) -> None:
    stub = "NotImplementedError: task 1.1 (affine_forward): not written yet; see task 4.10"
    assert run.masked(stub) == stub
    # Not task IDs of this course: a value written as one, a known ID with more digits, and
    # an ID not after "task ".
    leaks = "ValueError: task 0.37 or task 1.12345 or task 2.1.5, x was 1.1 (task 9.99)"
    assert run.masked(leaks) == ("ValueError: task <number> or task <number> or task "
                                 "<number><number>, x was <number> (task <number>)")


def test_the_fast_layer_rule_parses_under_the_kits_ast_lock(tmp_path, monkeypatch) -> None:
    # kit grade runs submissions on threads, and two ast.parse calls at once can raise
    # "AST constructor recursion depth mismatch" on CPython 3.11: the rule's reading of
    # the source goes through markers.parse_python, which holds the kit's lock.
    from kit import markers
    from kit.hidden import run as hidden_run

    parsed = []

    def recording(source):
        parsed.append(source)
        return ast.parse(source)

    monkeypatch.setattr(markers, "parse_python", recording)
    (tmp_path / "course").mkdir()
    source = ("from course.fast_layers import conv_forward_fast\n\n"
              "def conv_forward_naive(x, w, b, conv_param):\n"
              "    return conv_forward_fast(x, w, b, conv_param)\n")
    (tmp_path / "course" / "layers.py").write_text(source)
    outcomes = hidden_run.own_work_outcomes(tmp_path, {"4.1"})
    assert parsed == [source]
    assert [(o.task, o.passed) for o in outcomes] == [("4.1", False)]
