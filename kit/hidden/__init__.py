"""Hidden checks: each task's code called on inputs only the grader knows, judged outside it.

For every task of ``course/tasks.py`` that lives in ``course/``, ``cases`` draws inputs
from a secret per-run seed (random shapes and values plus the named edge cases), the
grader computes the solution's answers in its own process, a worker (``worker.py``)
calls the submission's functions inside the sandbox and sends back plain data
(``transport``: ``.npz`` without pickle), and ``judge`` compares, here, in float64.
Nothing the submission runs can print, patch or forge a verdict.

The API the grader needs::

    report = run_hidden_checks(box_root)          # a built sandbox (its course/)
    report.tasks["4.2"].passed                    # per task: bool
    report.tasks["4.2"].feedback                  # lines for the student (no inputs)
    report.to_json()                              # for the instructor's JSON
    report.isolation                              # "bwrap", "user", "none" or "subprocess"

To grade many submissions on the same cases (one secret seed per batch, references
computed once): ``prepared = prepare()`` then ``run_prepared(box, prepared)`` per
submission. ``launch`` is the one function that starts student code here.

Instructor-only: ``kit/`` is never released, and the release's leak check treats the
lines of this package as solution text.
"""

from kit.hidden.launcher import Launched, launch
from kit.hidden.run import (
    HiddenLimits,
    HiddenReport,
    Prepared,
    TaskVerdict,
    prepare,
    run_hidden_checks,
    run_prepared,
)

__all__ = [
    "HiddenLimits",
    "HiddenReport",
    "Launched",
    "Prepared",
    "TaskVerdict",
    "launch",
    "prepare",
    "run_hidden_checks",
    "run_prepared",
]
