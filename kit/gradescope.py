"""``python -m kit gradescope --out autograder.zip``: a Gradescope autograder bundle.

One machine grading a class: ``kit grade`` (``--jobs N``). A class too large for one
machine: Gradescope, which grades each submission in a container of its own. The bundle
runs the same grader there:

* ``setup.sh`` installs Python, bubblewrap and the kit's requirements (run once, when the
  image is built), creates the unprivileged ``kit-sandbox`` user that student code runs as
  where the container forbids bubblewrap's namespaces, and makes ``source/`` (the
  solution) readable by root only;
* ``run_autograder`` grades ``/autograder/submission`` with ``kit grade``'s sandbox,
  isolation (``kit.isolation``: bubblewrap, else the ``kit-sandbox`` user) and limits,
  and the grader process alone writes ``/autograder/results/results.json`` in
  Gradescope's format (``tests[]`` with ``name``, ``score``, ``max_score``, ``status``,
  ``output``, ``visibility``; top-level ``score``, ``execution_time``, ``output``,
  ``extra_data.isolation``);
* ``source/``: the grader (``kit/``), the pristine ``course/`` package, the reference
  notebooks with their stored outputs, the sanitize file and the requirements.

``python -m kit gradescope run --root DIR`` is what ``run_autograder`` calls; ``--root``
points it at a simulated ``/autograder`` folder (the tests use one in a temp folder).
"""

from __future__ import annotations

import argparse
import json
import stat
import sys
import time
import zipfile
from pathlib import Path

from kit import cli, grade, isolation, outputs
from kit.nbval_runner import Limits
from kit.reports import to_gradescope

ROOT = grade.ROOT

# What the bundle's source/ holds, relative to the solution tree.
SOURCE_ITEMS = ("kit", "course", "notebooks", "tests/nbval_sanitize.cfg", "requirements.txt",
                "pyproject.toml")

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once while building the autograder image.
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv bubblewrap
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --disable-pip-version-check -r /autograder/source/requirements.txt
/autograder/venv/bin/pip install --disable-pip-version-check --no-deps -e /autograder/source
# Where the container forbids bubblewrap's namespaces, student code runs as this user,
# which can read neither the solution (source/) nor the results.
id -u kit-sandbox >/dev/null 2>&1 || \
  useradd --system --no-create-home --shell /usr/sbin/nologin kit-sandbox
chmod 700 /autograder/source
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission: grade /autograder/submission and write
# /autograder/results/results.json.
cd /autograder/source
exec /autograder/venv/bin/python -m kit gradescope run --root /autograder
"""


def _skip(path: Path) -> bool:
    parts = set(path.parts)
    return bool(parts & {"__pycache__", ".ipynb_checkpoints"}) or path.suffix == ".pyc"


def build_bundle(out: Path, root: Path = ROOT) -> Path:
    """Write the autograder zip to ``out`` (atomically) and return its path."""
    with outputs.atomic_file(out) as temp, zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) \
            as archive:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
        for item in SOURCE_ITEMS:
            path = root / item
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                         if p.is_file())
            for file in files:
                rel = file.relative_to(root)
                if not _skip(rel):
                    archive.write(file, f"source/{rel.as_posix()}")
    return out


def run(root_dir: Path, limits: Limits, only: set[str] | None) -> int:
    """Grade ``root_dir/submission`` into ``root_dir/results/results.json``."""
    started = time.monotonic()
    try:
        isolation.choose_mode(limits.isolation)
    except isolation.IsolationError as error:
        print(f"kit gradescope run: {error}", file=sys.stderr)
        return 2
    references = grade.reference_notebooks()
    result = grade.grade_one(root_dir / "submission", references, limits, only)
    payload = to_gradescope(result, time.monotonic() - started)
    outputs.write_atomic(root_dir / "results" / "results.json", json.dumps(payload, indent=1),
                         private=True)
    print(f"score {result.total}/{result.max} ({result.status})")
    return 0


def is_our_bundle(path: Path) -> bool:
    """Whether ``path`` is a zip this command wrote: its ``run_autograder`` is ours."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read("run_autograder").decode() == RUN_AUTOGRADER
    except (OSError, KeyError, UnicodeDecodeError, zipfile.BadZipFile):
        return False


def out_problem(out: Path) -> str | None:
    """Why ``--out`` may not be written (``None`` when it may): only a new path, or a
    bundle this command wrote, is replaced."""
    if out.is_dir():
        return "expected the path of a .zip file, got a folder"
    if out.suffix != ".zip":
        return f"expected the path of a .zip file, got {out.name!r}"
    if out.exists() and not is_our_bundle(out):
        return ("exists and is not an autograder bundle this command wrote; refusing to "
                "overwrite it (move it away or choose another --out)")
    return None


def main(argv: list[str]) -> int:
    if argv and argv[0] == "run":
        p = argparse.ArgumentParser(prog="python -m kit gradescope run")
        p.add_argument("--root", type=Path, default=Path("/autograder"),
                       help="the autograder folder (default /autograder)")
        p.add_argument("--timeout", type=cli.positive_seconds, default=60.0)
        p.add_argument("--wall", type=cli.positive_seconds, default=600.0)
        p.add_argument("--memory", type=cli.whole_number(256, "a number of MB"), default=3072)
        p.add_argument("--only", action="append", default=None, metavar="CHECK")
        p.add_argument("--no-isolation", action="store_true",
                       help="run student code without the isolation sandbox (code you trust)")
        args = p.parse_args(argv[1:])
        if not (args.root / "submission").is_dir():
            print(f"kit gradescope run: {args.root}/submission is not a folder", file=sys.stderr)
            return 2
        return run(args.root, Limits(args.timeout, args.wall, args.memory,
                                     isolation="none" if args.no_isolation else None),
                   set(args.only) if args.only else None)
    p = argparse.ArgumentParser(prog="python -m kit gradescope",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("build/autograder.zip"),
                   help="the bundle's path (build/autograder.zip); an existing file there "
                        "is replaced only if it is a bundle this command wrote")
    args = p.parse_args(argv)
    problem = out_problem(args.out)
    if problem:
        print(f"kit gradescope: --out {args.out}: {problem}", file=sys.stderr)
        return 2
    bundle = build_bundle(args.out)
    print(f"wrote {bundle} ({bundle.stat().st_size / 1e6:.2f} MB)")
    return 0
