"""``python -m kit mutants``: the mutator, the equivalent list, and the fixed sample.

* Each mutation operator makes the mutant it names, inside the region's lines only, as
  valid Python that differs from the original in one expression or statement; a
  mutant's id does not change when its line moves.
* Every equivalent mutant listed in ``kit.mutants.EQUIVALENT`` is still made (a stale
  entry would hide nothing and mislead), and every task with a region has mutants.
* ``make test``'s fixed sample (one mutant per task) is caught by the hidden checks.

Instructor-only (tests/kit/ is not released).
"""

from __future__ import annotations

import ast
import contextlib
import io
import textwrap

import pytest

from kit import mutants
from kit.hidden.run import new_seed

SEED = new_seed()  # a fresh secret seed per run, as grading has

TOY = textwrap.dedent("""\
    import numpy as np


    def f(x, y, n):
        before = x + 1
        # BEGIN SOLUTION 9.9
        out = np.maximum(x, 0) * 2.5 - y
        total = out.sum(axis=1, keepdims=True)
        out[0] += 1
        mask = (x > 0) == (y <= n)
        out = -out[1:n].T
        # END SOLUTION
        return out, total, mask
    """)
TOY_FIRST, TOY_LAST = 7, 11  # the region's body lines


def _toy() -> list[mutants.Mutant]:
    return mutants.region_mutants(TOY, "course/toy.py", "9.9", TOY_FIRST, TOY_LAST)


def _after(operator: str) -> set[str]:
    return {m.after for m in _toy() if m.operator == operator}


def test_each_operator_makes_the_mutant_it_names() -> None:
    assert "out = (np.maximum(x, 0) * 2.5 + y)" in _after("binop")
    assert "out = (np.maximum(x, 0) * 2.5)" in _after("drop-term")
    assert "out = np.maximum(x, 1) * 2.5 - y" in _after("constant")
    assert "out = np.maximum(x, 0) * 3.5 - y" in _after("constant")
    assert "out = np.minimum(x, 0) * 2.5 - y" in _after("name")
    assert "total = out.mean(axis=1, keepdims=True)" in _after("name")
    assert "total = out.sum(axis=2, keepdims=True)" in _after("constant")
    assert "total = out.sum(axis=1, keepdims=False)" in _after("constant")
    assert "total = out.sum(keepdims=True)" in _after("drop-keyword")
    assert "pass" in _after("delete")
    assert "mask = (x >= 0) == (y <= n)" in {a.replace("((", "(").replace("))", ")")
                                             for a in _after("compare")}
    assert "out = out[1:n].T" in _after("unary")
    assert "out = -out[1:n]" in _after("transpose")
    assert {"out = -out[:n].T", "out = -out[1:].T"} <= _after("slice")


def test_mutants_stay_in_the_region_and_change_one_span() -> None:
    found = _toy()
    assert len(found) > 20
    for mutant in found:
        assert TOY_FIRST <= mutant.line <= TOY_LAST, mutant.describe()
        text = mutant.apply(TOY)
        ast.parse(text)
        assert text != TOY
        assert text[: mutant.start] == TOY[: mutant.start]
        assert text[mutant.start + len(mutant.replacement):] == TOY[mutant.end:]
    assert len({m.id for m in found}) == len(found)


def test_a_mutants_id_does_not_depend_on_its_line() -> None:
    moved = "# a new first line\n\n" + TOY
    again = mutants.region_mutants(moved, "course/toy.py", "9.9", TOY_FIRST + 2, TOY_LAST + 2)
    assert [m.id for m in again] == [m.id for m in _toy()]
    assert [m.line for m in again] == [m.line + 2 for m in _toy()]


def test_every_task_with_a_region_has_mutants_and_no_equivalent_is_stale() -> None:
    found = mutants.all_mutants()
    tasks = {task for task, *_ in mutants.task_regions()}
    assert {m.task for m in found} == tasks
    ids = {m.id for m in found}
    assert set(mutants.EQUIVALENT) <= ids, set(mutants.EQUIVALENT) - ids


def test_the_sample_is_fixed_one_per_task_and_never_equivalent() -> None:
    found = mutants.all_mutants()
    chosen = mutants.sample(found, per_task=1)
    assert [m.id for m in chosen] == [m.id for m in mutants.sample(found, per_task=1)]
    assert len({m.task for m in chosen}) == len(chosen) == len({m.task for m in found})
    assert not {m.id for m in chosen} & set(mutants.EQUIVALENT)


def test_the_command_lists_and_reports() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert mutants.main(["--list", "--task", "1.3"]) == 0
    assert out.getvalue().count("1.3:") == len(mutants.all_mutants(tasks=["1.3"]))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert mutants.main(["--hidden-only", "--task", "1.3", "--seed", "4"]) == 0
    assert "1.3    |       3 |     0 |      3 |     - | 0" in out.getvalue()
    assert "Survivors of the hidden checks (0)" in out.getvalue()


@pytest.mark.slow
def test_the_fixed_sample_of_mutants_is_caught_by_the_hidden_checks() -> None:
    survivors = []
    for mutant in mutants.sample(mutants.all_mutants(), per_task=1):
        outcome = mutants.run_task(mutant.task, [mutant], seed=SEED, student_tests=False)[0]
        if not outcome.hidden:
            survivors.append(mutant.describe())
    assert not survivors, f"{survivors} (replay with --seed {SEED})"
