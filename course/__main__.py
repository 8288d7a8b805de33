"""The student commands without ``make`` (Windows, Colab): ``python -m course <command>``.

One command per student ``make`` target, with the same name:

* ``setup``: create ``.venv/`` and install the requirements (``make setup``); run it with
  any Python 3.10+, the others with the venv's;
* ``check [TASK ...]``: the scoreboard (``make check [TASK=...]``);
* ``test``: lint, every test and every notebook run top to bottom (``make test``);
* ``quick``: lint and the fast tests (``make quick``);
* ``lint``: ruff (``make lint``);
* ``lab [JUPYTER OPTIONS]``: JupyterLab on ``notebooks/`` (``make lab``);
* ``data``: download CIFAR-10 (``make data``; runs ``get_datasets.sh``, which needs bash);
* ``handin [--out FILE.zip]``: the zip to hand in (``make handin``; ``course/handin.py``);
* ``clean``: remove build output and caches (``make clean``).

Run it with the Python of the project's virtual environment (``.venv/bin/python`` on
Linux and macOS, ``.venv\\Scripts\\python`` on Windows) from anywhere: it finds the tree
from this package's location. Commands that run pytest or ruff run them in a child
process with the settings ``make`` uses and return their exit status. This module
imports nothing beyond the standard library at start, so ``setup`` works before any
requirement is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable, Sequence
from pathlib import Path

TREE = Path(__file__).resolve().parent.parent
# As the Makefile's TEST_ENV: the tests (and the reference outputs) use the embedded digits.
TEST_ENV = {"COURSE_DATASET": "digits", "PYTHONHASHSEED": "0"}
VENV = TREE / ".venv"
USAGE_ERROR = 2  # exit status of a bad argument, as argparse's own
PYTEST_USAGE_ERROR = 4  # pytest's exit status for a bad option value (an unknown --task)

# What `make clean` removes: build output and the tools' caches (never .venv or datasets).
CLEANED = ("build", ".pytest_cache", ".hypothesis", ".ruff_cache")


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
    # no:nbval: the scoreboard runs no notebook, and nbval's import costs about 2 s here.
    args = ["pytest", "tests", "-q", "-m", "task", "--scoreboard", "-p", "no:cacheprovider",
            "-p", "no:nbval", "-W", "ignore"]
    args += ["--task", " ".join(task_ids), "--tb=short"] if task_ids else ["--tb=no"]
    status = _run(args)
    if status == PYTEST_USAGE_ERROR:  # an unknown task ID; pytest printed which
        return USAGE_ERROR
    return 0 if status == 1 else status  # 1: some task fails, which the table shows


def test() -> int:
    """ruff, then pytest with every notebook run; fails if either fails (as ``make test``)."""
    _require_tests()
    print("== ruff", flush=True)
    lint_status = _run(["ruff", "check", "."])
    print("== pytest -n 2 (task tests, other tests, and every notebook run top to bottom)",
          flush=True)
    # Two processes, a test file to each in turn (as make test): 1m58s instead of 2m51s
    # for a solved release on a 2-core machine.
    tests = _run(["pytest", "tests", "-n", "2", "--dist", "loadfile"], COURSE_RUN_NOTEBOOKS="1")
    return 1 if lint_status or tests else 0


def quick() -> int:
    """ruff, then the tests not marked slow (as ``make quick``)."""
    _require_tests()
    print("== ruff", flush=True)
    lint_status = _run(["ruff", "check", "."])
    print("== pytest -m 'not slow' -n 2 (python -m course test runs everything)", flush=True)
    tests = _run(["pytest", "tests", "-m", "not slow", "-n", "2", "-q", "-p",
                  "no:cacheprovider"])
    return 1 if lint_status or tests else 0


def lint(options: Sequence[str]) -> int:
    """ruff over the tree (as ``make lint``); extra options go to ``ruff check``."""
    return _run(["ruff", "check", *options, "."])


def lab(options: Sequence[str]) -> int:
    """JupyterLab on ``notebooks/`` (as ``make lab``); extra options go to JupyterLab."""
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in options:
        print("python -m course lab: you are root, and JupyterLab refuses to run as root "
              "unless asked.\n  In a container, run: python -m course lab --allow-root")
        return 1
    return _run(["jupyter", "lab", *options, "notebooks"])


def data() -> int:
    """Download CIFAR-10 into ``datasets/`` with ``get_datasets.sh`` (as ``make data``)."""
    bash = shutil.which("bash")
    if bash is None:
        print("python -m course data runs get_datasets.sh, which needs bash (on Windows: Git "
              "Bash or WSL). Without it, the notebooks use the digits dataset, which needs "
              "no download.")
        return 1
    return subprocess.run([bash, str(TREE / "get_datasets.sh")], cwd=TREE,
                          check=False).returncode


def handin(out: Path | None) -> int:
    """Write the hand-in zip and say what is in it (as ``make handin``)."""
    from course.handin import HandinError, HandinOutError, make_handin, report

    try:
        made = make_handin(TREE, out)
    except HandinError as error:
        print(f"python -m course handin: {error}", file=sys.stderr)
        return USAGE_ERROR if isinstance(error, HandinOutError) else 1
    print(report(made))
    return 0


def clean(tree: Path = TREE) -> int:
    """Remove build output and caches, keeping ``.venv/`` and ``datasets/`` (as ``make clean``)."""
    for name in CLEANED:
        shutil.rmtree(tree / name, ignore_errors=True)
    for cache in sorted(tree.rglob("__pycache__")):
        if (tree / ".venv") not in cache.parents and cache.is_dir():
            shutil.rmtree(cache, ignore_errors=True)
    return 0


# -- setup -----------------------------------------------------------------------------


def install_stamp() -> Path:
    """The file that marks a finished install: the Makefile's ``$(STAMP)``, named after a
    hash of requirements.txt and pyproject.toml (an edit to either asks for a new install)."""
    digest = hashlib.sha256((TREE / "requirements.txt").read_bytes()
                            + (TREE / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return VENV / f".installed-{digest}"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def setup(runner: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> int:
    """Create ``.venv`` and install the requirements, as ``make setup`` does.

    Where bash exists this runs ``setup_venv.sh`` as ``make`` does (it takes turns with a
    concurrent setup and repairs a half-made venv); elsewhere (Windows) it creates the
    venv with Python's ``venv`` module and installs with its pip. ``runner`` runs the
    commands (``subprocess.run``).
    """
    stamp = install_stamp()
    if stamp.exists() and venv_python().exists():
        print(f"{VENV} is set up already (next: python -m course check).")
        return 0
    bash = shutil.which("bash") if os.name != "nt" else None
    if bash is not None and (TREE / "setup_venv.sh").is_file():
        return runner([bash, str(TREE / "setup_venv.sh"), sys.executable, str(VENV),
                       str(stamp)], cwd=TREE, check=False).returncode
    if not venv_python().exists():
        print(f"Creating {VENV} with Python {sys.version.split()[0]}", flush=True)
        venv.create(VENV, with_pip=True)
    print(f"Installing requirements into {VENV} (first run only: a few minutes)", flush=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for args in (["-r", "requirements.txt"], ["--no-deps", "-e", "."]):
        status = runner([*pip, *args], cwd=TREE, check=False).returncode
        if status:
            print(f"python -m course setup: pip install {' '.join(args)} failed (status "
                  f"{status}); fix what it says and run this again.", file=sys.stderr)
            return status
    for old in VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    print(f"Set-up done: {VENV} is ready (next: python -m course check).")
    return 0


# -- command line ------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    """The commands, one per student make target (``tests/test_course_main.py`` checks)."""
    p = argparse.ArgumentParser(
        prog="python -m course",
        description="The assignment's student commands without make: each does what the "
                    "make target of the same name does.")
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("setup", help="create .venv and install the requirements "
                                      "(run it with any Python 3.10+)")
    check_parser = commands.add_parser(
        "check", help="the task scoreboard; give task IDs for just those")
    check_parser.add_argument("tasks", nargs="*", metavar="TASK",
                              help="task IDs such as 1.3 (default: every task)")
    commands.add_parser("test", help="lint, every test, and every notebook run top to bottom")
    commands.add_parser("quick", help="lint and the fast tests (no notebooks)")
    commands.add_parser("lint", help="ruff over the tree (extra options go to ruff check)")
    commands.add_parser("lab", help="open JupyterLab on notebooks/ (extra options go to "
                                    "JupyterLab, e.g. --allow-root)")
    commands.add_parser("data", help="download CIFAR-10 into datasets/ (needs bash)")
    handin_parser = commands.add_parser(
        "handin", help="zip course/ and the notebooks with their outputs, to hand in")
    handin_parser.add_argument("--out", type=Path, default=None, metavar="FILE.zip",
                               help="where to write the zip (default: handin.zip in the tree)")
    commands.add_parser("clean", help="remove build output and caches (keeps .venv, datasets)")
    return p


# What each command needs installed in the Python that runs it (the venv's, after setup).
NEEDS: dict[str, tuple[str, ...]] = {
    "check": ("numpy", "pytest", "hypothesis", "matplotlib", "nbformat"),
    "test": ("numpy", "pytest", "hypothesis", "matplotlib", "nbformat", "ruff", "nbval"),
    "quick": ("numpy", "pytest", "hypothesis", "matplotlib", "nbformat", "ruff"),
    "lint": ("ruff",),
    "lab": ("jupyterlab",),
    "handin": ("nbformat",),
}


def missing_requirements(command: str) -> list[str]:
    """The modules ``command`` needs that this Python cannot import."""
    import importlib.util

    return [name for name in NEEDS.get(command, ())
            if importlib.util.find_spec(name) is None]


def main(argv: Sequence[str] | None = None) -> int:
    options, extra = parser().parse_known_args(argv)
    if extra and options.command not in ("lint", "lab"):
        parser().error(f"unrecognized arguments: {' '.join(extra)}")
    missing = missing_requirements(options.command)
    if missing:  # most likely the system's Python instead of the project's
        ready = venv_python().exists()
        print(f"python -m course {options.command}: this Python ({sys.executable}) has no "
              f"{', '.join(missing)}. Run it with the project's Python: "
              f"{venv_python().relative_to(TREE)} -m course {options.command}"
              + ("" if ready else " (create it first: python -m course setup, or make "
                                  "setup)"), file=sys.stderr)
        return USAGE_ERROR
    commands: dict[str, Callable[[], int]] = {
        "setup": setup,
        "check": lambda: check(options.tasks),
        "test": test,
        "quick": quick,
        "lint": lambda: lint(extra),
        "lab": lambda: lab(extra),
        "data": data,
        "handin": lambda: handin(options.out),
        "clean": clean,
    }
    return commands[options.command]()


if __name__ == "__main__":
    sys.exit(main())
