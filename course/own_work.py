"""Which code a task may not call: the naive convolution and max-pool layers may not call
the given fast layers, and the two batchnorm backward passes may not call each other.

Tasks 4.1 to 4.4 ask for the naive layers, loops and all; ``course/fast_layers.py`` (given
code) computes the very same results, so a naive layer that calls it would pass every
check without being written. ``given_calls`` reads a task's source as text (nothing is
imported or run) and names every place where the task's function, or a helper of the same
file that it calls, reaches ``course.fast_layers``: a name imported from it, the module
itself, or a string that names it (``importlib.import_module("course.fast_layers")``).
The student's tests (``tests/test_own_work.py``) and the grader's hidden checks use it
alike: such a task fails and gets no points.

A reading of the source misses a call spelled so as to hide it (the module's name built
from pieces, say), so both sides also *run* the naive layers with ``course.fast_layers``
replaced by ``stand_in_source``'s module, in which every name refuses to run: a call
that reaches the given layers, however it is spelled, fails there. Only code copied out
of the fast layers into the student's own file gets past both; the rule is stated,
checked the same way on both sides, and never silently waived.

Tasks 2.2 and 2.3 ask for batchnorm's backward pass twice: through the computational
graph, and in closed form. Either would pass its checks by returning the other's result,
earning its points unwritten. ``FORBIDDEN_FUNCTIONS`` names, per task, the other task's
function; both sides run the task on a copy of its file in which that function's body is
replaced by one that refuses to run (``without_function``), so a call fails however it
is spelled (a module-level alias, ``globals()``, an import of the module).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator

__all__ = ["FORBIDDEN_FUNCTIONS", "FORBIDDEN_MODULES", "REFUSED", "REFUSED_FUNCTION",
           "given_calls", "stand_in_source", "without_function"]

# Task ID -> the given module its function may not reach.
FORBIDDEN_MODULES: dict[str, str] = {
    "4.1": "course.fast_layers",
    "4.2": "course.fast_layers",
    "4.3": "course.fast_layers",
    "4.4": "course.fast_layers",
}

# Task ID -> the function of another task, in the same file, that its function may not
# reach (see the module docstring).
FORBIDDEN_FUNCTIONS: dict[str, str] = {
    "2.2": "batchnorm_backward_alt",
    "2.3": "batchnorm_backward",
}


def given_calls(source: str, function: str, module: str = "course.fast_layers",
                parse: Callable[[str], ast.Module] = ast.parse) -> list[str]:
    """Where ``function`` (a module-level function of ``source``, a file of ``course/``)
    reaches ``module``, as ``"conv_forward_fast (line 12)"``, in line order; [] when it
    does not, or when the source does not parse or has no such function (other checks
    report those). ``parse``: how to parse; the grader, which runs submissions on several
    threads, passes its locked parser (CPython 3.11's ``ast.parse`` is not thread-safe)."""
    try:
        tree = parse(source)
    except SyntaxError:
        return []
    functions = {node.name: node for node in tree.body
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    if function not in functions:
        return []
    names, aliases = _imported(tree, module)
    found: dict[tuple[int, str], None] = {}
    for node in _reachable(functions[function], functions):
        said = _reference(node, module, names, aliases)
        if said is not None:
            found[(node.lineno, said)] = None
    return [f"{said} (line {line})" for line, said in sorted(found)]


def _imported(tree: ast.Module, module: str) -> tuple[set[str], set[str]]:
    """(names bound to things imported from ``module``, names bound to ``module``), from
    every import of the file, a function's own imports included."""
    package, _, leaf = module.rpartition(".")
    names: set[str] = set()
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = "." * node.level + (node.module or "")
            for alias in node.names:
                bound = alias.asname or alias.name
                if source in (module, "." + leaf):  # from course.fast_layers import x
                    names.add(bound)
                elif source in (package, ".") and alias.name == leaf:  # from course import it
                    aliases.add(bound)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == module and alias.asname:  # import course.fast_layers as fl
                    aliases.add(alias.asname)
    return names, aliases


def _reachable(start: ast.AST, functions: dict[str, ast.AST]) -> Iterator[ast.AST]:
    """Every node of ``start`` and of the file's functions it calls by name, each once."""
    pending, seen = [start], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for node in ast.walk(current):
            yield node
            if isinstance(node, ast.Name) and node.id in functions:
                pending.append(functions[node.id])


def _reference(node: ast.AST, module: str, names: set[str], aliases: set[str]) -> str | None:
    """What ``node`` reaches of ``module``, or None. A string counts only as an argument
    of a call (``import_module("course.fast_layers")``): a docstring or a comment-like
    string that names the module reaches nothing."""
    if isinstance(node, ast.Name) and (node.id in names or node.id in aliases):
        return node.id
    if isinstance(node, ast.Attribute):
        dotted = _dotted(node)
        if dotted is not None and dotted.startswith(module + "."):
            return dotted
    if isinstance(node, ast.Call):
        leaf = module.rpartition(".")[2]
        for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
            if (isinstance(argument, ast.Constant) and isinstance(argument.value, str)
                    and leaf in argument.value):
                return repr(argument.value)
    return None


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


# The words of a refused call's error, which both sides look for.
REFUSED = "is given code the naive layers may not call"


def stand_in_source(module: str, exported: Iterable[str]) -> str:
    """Python source of a stand-in for ``module``: every name of it, those of ``exported``
    (its ``__all__``, so that star imports bind them) and any other, is a function that
    raises ``GivenCodeRefused`` (a RuntimeError) saying ``REFUSED``. Put in the module's
    place while a naive layer runs, it makes any call to the given layers fail."""
    names = sorted({str(name) for name in exported})
    return f'''"""Stand-in for {module} while the naive layers are checked: nothing here runs."""

__all__ = {names!r}


class GivenCodeRefused(RuntimeError):
    """A naive layer called the given layers of {module}."""


def _refusing(name):
    def refused(*args, **kwargs):
        raise GivenCodeRefused(
            f"{module}.{{name}} {REFUSED}: write the loops of the task yourself (it gets "
            "no points while it calls them)")

    refused.__name__ = refused.__qualname__ = name
    return refused


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _refusing(name)
'''


# The words of a call refused by ``without_function``, which both sides look for.
REFUSED_FUNCTION = "is another task's function, which this task may not call"


def without_function(source: str, function: str,
                     parse: Callable[[str], ast.Module] = ast.parse) -> str:
    """``source`` with the body of its module-level ``function`` replaced by a raise of a
    RuntimeError saying ``REFUSED_FUNCTION``; the signature, the decorators and every
    other line stay, so the file imports as before and line numbers of other code hold.
    ``source`` unchanged when it does not parse or has no such function (the task's own
    checks report those)."""
    try:
        tree = parse(source)
    except SyntaxError:
        return source
    found = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
             and node.name == function]
    if not found:
        return source
    lines = source.splitlines(keepends=True)
    node = found[-1]  # the binding that stands, as Python would take it
    start, stop = node.body[0], node.body[-1]
    first, last = start.lineno, stop.end_lineno or stop.lineno
    # ast's columns count UTF-8 bytes. What precedes the body on its first line (the
    # indentation, or the header of a one-line def) and follows it on its last stays.
    before = lines[first - 1].encode()[:start.col_offset].decode()
    after = lines[last - 1].encode()[stop.end_col_offset or 0:].decode()
    refusal = (f"raise RuntimeError({function!r} + \" {REFUSED_FUNCTION}: write this "
               "task's own computation (it gets no points while it calls the other task's "
               "function)\")")
    # The body's other lines become blank: the code after it keeps its line numbers.
    body = [before + refusal + (after if after.strip() else "\n")] + ["\n"] * (last - first)
    return "".join(lines[:first - 1] + body + lines[last:])
