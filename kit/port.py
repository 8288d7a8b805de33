"""Port notebooks written for CS231n's package to ``course``: ``python -m kit port``.

Usage::

    python -m kit port NOTEBOOK.ipynb... --out DIR

For each notebook, in order:

1. Cells that set up Google Colab or Google Drive (``google.colab``, ``drive.mount``,
   ``%cd /content/...``) and cells that build CS231n's Cython extension
   (``setup.py build_ext``) are dropped: the kit runs locally and needs no compiler.
2. Imports of ``cs231n`` become imports of ``course`` (``from cs231n.layers import *`` ->
   ``from course.layers import *``, ``import cs231n.x as y`` -> ``import course.x as y``,
   and ``cs231n.x.name`` in code). Strings are left alone; a string mentioning a
   ``cs231n/`` path is reported, because what it should become depends on the course.
3. Every name the notebook takes from ``course`` is looked up by importing the module:
   ``from course.m import a`` needs ``course.m.a``; ``course.m.a`` and ``alias.a`` (after
   ``import course.m as alias``) likewise; a name the notebook uses without defining it
   must come from one of its star imports (or be a builtin). What is missing is reported.

The report names cells as Jupyter shows them (``cell 7``, counting every cell, markdown
included) with the heading they sit under. Ported notebooks are written to ``DIR`` with
the same file names and a ``kit.ported_from`` entry in their metadata; an existing file
in ``DIR`` is replaced only if it carries that entry (so a port never overwrites a
notebook it did not write). The exit status is 0 when every notebook was written, even
with missing names (the report lists them), 1 when an input cannot be read or an output
may not be written (the others are still ported), and 2, before anything is written,
when a notebook named on the command line does not exist or ``--out`` is a file.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib
import inspect
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import notebooks as nbs
from kit.errors import KitError
from kit.markers import parse_python

# A cell containing one of these is set-up for CS231n's Cython build or for Colab / Drive
# (the build cell also mentions Drive, so it is tested first for the more precise label).
SETUP_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Cython build of CS231n's fast layers", re.compile(
        r"setup\.py\s+build_ext|^\s*!\s*pip\s+install\s+cython|cythonize", re.M | re.I)),
    ("Colab / Google Drive set-up", re.compile(
        r"google\.colab|drive\.mount\(|/content/drive|^\s*%cd\s+/content", re.M)),
)
IMPORT_FROM = re.compile(r"^(?P<lead>\s*from\s+)cs231n(?P<rest>(\.\w+)*\s+import\b)")
IMPORT_PLAIN = re.compile(r"^(?P<lead>\s*import\s+)(?P<mods>cs231n\b.*)$")
# cs231n.<name> outside strings and comments (checked per token below).
DOTTED = re.compile(r"\bcs231n(?=\.\w)")
CS231N_PATH = re.compile(r"cs231n/")
PORT_KEY = "kit"
IPYTHON_LINE = re.compile(r"^(\s*)([%!]|\?\w|\w.*\?$)")
BUILTIN_NAMES = set(dir(builtins)) | {"display", "get_ipython", "__file__", "In", "Out"}


class PortError(KitError):
    """A notebook cannot be read or written; the message says which and why."""


@dataclass
class CellReport:
    """What happened to one cell, for the report."""

    number: int  # 1-based over all cells, as Jupyter shows them
    heading: str  # the markdown heading the cell sits under ("" before the first one)
    lines: list[str] = field(default_factory=list)

    def place(self) -> str:
        return f"cell {self.number}" + (f" (under '{self.heading}')" if self.heading else "")


@dataclass
class NotebookReport:
    """The changes made to one notebook and the names it needs that ``course`` lacks."""

    source: Path
    target: Path
    cells: list[CellReport] = field(default_factory=list)
    dropped: int = 0
    changed: int = 0
    missing: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"port: {self.source} -> {self.target}"]
        for cell in self.cells:
            lines += [f"  {cell.place()}: {line}" for line in cell.lines]
        lines.append(f"  summary: {self.dropped} cell(s) dropped, {self.changed} line(s) "
                     f"changed, {len(self.missing)} name(s) missing in course")
        return "\n".join(lines)


# -- rewriting ---------------------------------------------------------------------------


def setup_kind(source: str) -> tuple[str, str] | None:
    """(why, the line that shows it) for a set-up cell to drop, or None to keep it."""
    for kind, pattern in SETUP_PATTERNS:
        if match := pattern.search(source):
            start = source.rfind("\n", 0, match.start()) + 1
            end = source.find("\n", match.end())
            return kind, source[start:end if end >= 0 else None].strip()
    return None


def _outside_strings(line: str, pattern: re.Pattern[str], new: str) -> str:
    """``pattern`` replaced by ``new`` only outside quotes and comments (a light scan)."""
    out, i, quote = [], 0, ""
    while i < len(line):
        ch = line[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(line):
                out.append(line[i + 1])
                i += 1
            elif line.startswith(quote, i):
                out.append(line[i + 1:i + len(quote)])
                i += len(quote) - 1
                quote = ""
        elif ch == "#":
            out.append(line[i:])
            break
        elif ch in "'\"":
            quote = line[i:i + 3] if line[i:i + 3] in ("'''", '"""') else ch
            out.append(quote)
            i += len(quote) - 1
        else:
            match = pattern.match(line, i)
            if match:
                out.append(new)
                i = match.end() - 1
            else:
                out.append(ch)
        i += 1
    return "".join(out)


def rename_line(line: str) -> str:
    """One line of code with its ``cs231n`` module references pointing at ``course``."""
    if match := IMPORT_FROM.match(line):
        return match["lead"] + "course" + line[match.end("lead") + len("cs231n"):]
    if match := IMPORT_PLAIN.match(line):
        return match["lead"] + re.sub(r"\bcs231n\b", "course", match["mods"])
    return _outside_strings(line, DOTTED, "course")


def port_cell_source(source: str, report: CellReport) -> tuple[str, int]:
    """The cell's code with imports renamed; (new source, lines changed)."""
    lines, changed = [], 0
    for line in source.split("\n"):
        new = rename_line(line)
        if new != line:
            changed += 1
            report.lines.append(f'renamed: "{line.strip()}" -> "{new.strip()}"')
        if CS231N_PATH.search(new):
            report.lines.append(f'check by hand: a string names a cs231n/ path: "{new.strip()}" '
                                "(the kit's loaders find datasets/ themselves)")
        lines.append(new)
    return "\n".join(lines), changed


# -- names the notebook needs from course ------------------------------------------------


def python_of(source: str) -> str:
    """Cell source with IPython magics and shell lines turned into ``pass``."""
    return "\n".join(m.group(1) + "pass" if (m := IPYTHON_LINE.match(line)) else line
                     for line in source.split("\n"))


@dataclass
class Uses:
    """What the notebook's code imports from course, defines and uses."""

    star_modules: list[tuple[int, str]] = field(default_factory=list)  # cell, module
    from_imports: list[tuple[int, str, str]] = field(default_factory=list)  # cell, module, name
    attributes: list[tuple[int, str, str]] = field(default_factory=list)  # cell, module, name
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> course module
    defined: set[str] = field(default_factory=set)
    loaded: list[tuple[int, str]] = field(default_factory=list)  # cell, name


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of an Attribute/Name chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def collect_uses(tree: ast.AST, cell: int, uses: Uses) -> None:
    """Add one cell's imports, definitions and name uses to ``uses``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            _collect_import_from(node, cell, uses)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                uses.defined.add(local)
                if alias.name.split(".")[0] == "course":
                    uses.aliases[local] = alias.name if alias.asname else "course"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            uses.defined.add(node.name)
        elif isinstance(node, ast.arg):
            uses.defined.add(node.arg)
        elif isinstance(node, ast.Name):
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                uses.defined.add(node.id)
            else:
                uses.loaded.append((cell, node.id))
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            _collect_attribute(node, cell, uses)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            uses.defined.add(node.name)


def _collect_import_from(node: ast.ImportFrom, cell: int, uses: Uses) -> None:
    module = node.module or ""
    for alias in node.names:
        if alias.name == "*":
            if module.split(".")[0] == "course":
                uses.star_modules.append((cell, module))
            continue
        uses.defined.add(alias.asname or alias.name)
        if module.split(".")[0] == "course":
            uses.from_imports.append((cell, module, alias.name))


def _collect_attribute(node: ast.Attribute, cell: int, uses: Uses) -> None:
    dotted = _dotted(node)
    if dotted is None:
        return
    head, _, rest = dotted.partition(".")
    if head in uses.aliases and rest:
        module = uses.aliases[head]
        # course.layers.affine_forward: the module is the longest importable prefix.
        uses.attributes.append((cell, module, rest))


def _has(module: str, dotted_name: str) -> bool:
    """Whether importing ``module`` gives ``dotted_name`` (submodules imported as needed)."""
    try:
        obj: Any = importlib.import_module(module)
    except ImportError:
        return False
    head, _, rest = dotted_name.partition(".")
    if not hasattr(obj, head):
        # Perhaps a submodule not imported by its package (course.classifiers.fc_net).
        try:
            importlib.import_module(f"{module}.{head}")
        except ImportError:
            return False
        return not rest or _has(f"{module}.{head}", rest)
    obj = getattr(obj, head)
    if not rest:
        return True
    if inspect.ismodule(obj):
        return _has(obj.__name__, rest)
    for part in rest.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def star_names(modules: Iterable[tuple[int, str]]) -> tuple[set[str], list[tuple[int, str]]]:
    """Names the star imports bring in, and (cell, module) of those that do not import."""
    names: set[str] = set()
    broken = []
    for cell, module in modules:
        namespace: dict[str, Any] = {}
        try:
            exec(f"from {module} import *", namespace)
        except ImportError:
            broken.append((cell, module))
            continue
        names |= set(namespace) - {"__builtins__"}
    return names, broken


def missing_names(uses: Uses) -> list[tuple[int, str]]:
    """(cell, message) for every name the notebook needs that course does not provide."""
    missing: list[tuple[int, str]] = []
    seen: set[str] = set()
    provided, broken = star_names(uses.star_modules)
    for cell, module in broken:
        missing.append((cell, f"module {module} (star import) does not exist"))
    for cell, module, name in uses.from_imports:
        full = f"{module}.{name}"
        if full not in seen and not _has(module, name):
            seen.add(full)
            missing.append((cell, f"{full} (imported by name)"))
    for cell, module, name in uses.attributes:
        full = f"{module}.{name}"
        if full not in seen and not _has(module, name):
            seen.add(full)
            missing.append((cell, f"{full} (used as an attribute)"))
    known = uses.defined | provided | BUILTIN_NAMES | set(uses.aliases)
    for cell, name in uses.loaded:
        if name not in known and name not in seen:
            seen.add(name)
            where = ", ".join(m for _, m in uses.star_modules) or "none"
            missing.append((cell, f"{name} (used; defined neither by the notebook nor by "
                                  f"its star imports: {where})"))
    return missing


# -- one notebook ------------------------------------------------------------------------


def port_notebook(nb: Any, report: NotebookReport) -> Any:
    """Rewrite ``nb`` in place (drop set-up cells, rename imports) and fill ``report``."""
    kept, uses = [], Uses()
    by_number: dict[int, CellReport] = {}
    for number, (cell, heading) in enumerate(zip(nb.cells, nbs.headings_above(nb.cells),
                                                 strict=True), start=1):
        cell_report = CellReport(number, heading)
        by_number[number] = cell_report
        if cell.cell_type != "code":
            kept.append(cell)
            continue
        setup = setup_kind(cell.source)
        if setup is not None:
            cell_report.lines.append(f'dropped ({setup[0]}): "{setup[1]}"')
            report.dropped += 1
        else:
            cell.source, changed = port_cell_source(cell.source, cell_report)
            report.changed += changed
            _collect_cell(cell.source, number, uses, cell_report)
            kept.append(cell)
        report.cells.append(cell_report)
    for number, message in missing_names(uses):
        report.missing.append(message)
        target = by_number[number]
        target.lines.append(f"missing in course: {message}")
        if target not in report.cells:
            report.cells.append(target)
    report.cells.sort(key=lambda c: c.number)
    nb.cells = kept
    return nb


def _collect_cell(source: str, number: int, uses: Uses, report: CellReport) -> None:
    try:
        tree = parse_python(python_of(source))
    except SyntaxError as error:
        report.lines.append(f"not parsed as Python ({error.msg}, line {error.lineno}); "
                            "its names were not checked")
        return
    collect_uses(tree, number, uses)


# -- files -------------------------------------------------------------------------------


def read(path: Path) -> Any:
    return nbs.read_notebook(path)


def check_target(target: Path, source: Path) -> None:
    """Refuse to overwrite the input or a file this command did not write."""
    if target.resolve() == source.resolve():
        raise PortError(f"{target}: --out would overwrite the notebook being ported")
    if not target.exists():
        return
    try:
        written_by_us = PORT_KEY in nbs.read_notebook(target).metadata
    except nbs.NotebookError:
        written_by_us = False
    if not written_by_us:
        raise PortError(f"{target}: exists and was not written by 'python -m kit port'; "
                        "refusing to overwrite it (move it or choose another --out)")


def port_file(source: Path, out: Path) -> NotebookReport:
    target = out / source.name
    check_target(target, source)
    nb = read(source)
    report = NotebookReport(source, target)
    port_notebook(nb, report)
    nb.metadata[PORT_KEY] = {"ported_from": source.name}
    nbs.write_notebook(nb, target)
    return report


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kit port",
        description="Port CS231n-style notebooks to the course package: rename cs231n "
                    "imports, drop Colab and Cython set-up cells, report names course lacks.")
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK.ipynb")
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for the ported notebooks (same file names)")
    return parser.parse_args(argv)


def usage_problems(notebooks: list[Path], out: Path) -> list[str]:
    """What is wrong with the arguments themselves (checked before anything is written)."""
    problems = [f"{path}: no such notebook" for path in notebooks if not path.exists()]
    if out.exists() and not out.is_dir():
        problems.append(f"--out {out}: expected a folder for the ported notebooks, "
                        "found a file")
    return problems


def main(argv: list[str]) -> int:
    """``python -m kit port``: 0 when every notebook was written, 1 otherwise, 2 (and
    nothing written) when a notebook named does not exist or ``--out`` is a file."""
    args = parse_args(argv)
    problems = usage_problems(args.notebooks, args.out)
    for problem in problems:
        print(f"port: {problem}", file=sys.stderr)
    if problems:
        return 2
    status = 0
    for source in args.notebooks:
        try:
            print(port_file(source, args.out).render())
        except KitError as error:
            print(f"port: {error}", file=sys.stderr)
            status = 1
    return status
