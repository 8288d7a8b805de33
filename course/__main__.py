"""The student commands without ``make`` (Windows, Colab): ``python -m course <command>``.

* ``python -m course check [TASK ...]``: the scoreboard, as ``make check [TASK=...]``
  (one row per task; with task IDs, only those rows and what stops each of them).
* ``python -m course test``: lint, every test and every notebook run top to bottom, as
  ``make test`` in the student tree.

Run it with the Python of the project's virtual environment (``.venv/bin/python`` on
Linux and macOS, ``.venv\\Scripts\\python`` on Windows) from anywhere: it finds the tree
from this package's location. Each command runs pytest (and ruff) in a child process with
the settings ``make`` uses, and returns its exit status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

TREE = Path(__file__).resolve().parent.parent
# As the Makefile's TEST_ENV: the tests (and the reference outputs) use the embedded digits.
TEST_ENV = {"COURSE_DATASET": "digits", "PYTHONHASHSEED": "0"}


def _run(args: Sequence[str], **extra_env: str) -> int:
    """Run ``python -m <args>`` in the tree with the test settings; its exit status."""
    env = {**os.environ, **TEST_ENV, **extra_env}
    return subprocess.run([sys.executable, "-m", *args], cwd=TREE, env=env,
                          check=False).returncode


def _require_tests() -> None:
    if not (TREE / "tests").is_dir():
        sys.exit(f"python -m course: no tests/ folder in {TREE}; run it from a copy of the "
                 "assignment (the folder with course/, notebooks/ and tests/).")


def check(task_ids: Sequence[str]) -> int:
    """The scoreboard; a failing task is a row of the table, not an error (as ``make check``)."""
    _require_tests()
    args = ["pytest", "tests", "-q", "-m", "task", "--scoreboard", "-p", "no:cacheprovider",
            "-W", "ignore"]
    args += ["--task", " ".join(task_ids), "--tb=short"] if task_ids else ["--tb=no"]
    status = _run(args)
    return 0 if status == 1 else status  # 1: some task fails, which the table shows


def test() -> int:
    """ruff, then pytest with every notebook run; fails if either fails (as ``make test``)."""
    _require_tests()
    print("== ruff", flush=True)
    lint = _run(["ruff", "check", "."])
    print("== pytest (task tests, other tests, and every notebook run top to bottom)",
          flush=True)
    tests = _run(["pytest", "tests"], COURSE_RUN_NOTEBOOKS="1")
    return 1 if lint or tests else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course",
        description="The assignment's student commands, without make.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check_parser = commands.add_parser(
        "check", help="the task scoreboard (make check); give task IDs for just those")
    check_parser.add_argument("tasks", nargs="*", metavar="TASK",
                              help="task IDs such as 1.3 (default: every task)")
    commands.add_parser(
        "test", help="lint, every test, and every notebook run top to bottom (make test)")
    options = parser.parse_args(argv)
    if options.command == "check":
        return check(options.tasks)
    return test()


if __name__ == "__main__":
    sys.exit(main())
