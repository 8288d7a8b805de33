"""Command-line entry point: ``python -m kit <command> [options]``."""

from __future__ import annotations

import importlib
import sys

# Before any command loads numpy: course/runtime.py's settings (OpenBLAS's idle threads
# sleep sooner) apply only to an OpenBLAS loaded after them.
import course  # noqa: F401

# command -> (module, one-line description); each module exposes main(argv) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "release": ("kit.release", "build the student release (a folder, optionally a git branch)"),
    "bench": ("kit.bench", "time the conv/pool layers: naive, fast, and PyTorch when installed"),
    "port": ("kit.port", "port CS231n-style notebooks: rename imports, drop Colab/Cython cells"),
    "site": ("kit.site", "execute the notebooks and write the static site to build/site"),
    "grade": ("kit.grade", "regrade submissions with nbval in a sandbox (CSV, JSON, feedback)"),
    "verify": ("kit.verify", "check that a submission's stored notebook outputs reproduce"),
    "gradescope": ("kit.gradescope", "build a Gradescope autograder bundle (autograder.zip)"),
    "mutants": ("kit.mutants", "one-line mutants of the solutions: what checks and tests catch"),
}


def usage() -> str:
    lines = ["usage: python -m kit <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {about}" for name, (_, about) in COMMANDS.items()]
    lines.append("\n'python -m kit <command> --help' describes a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"kit: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
