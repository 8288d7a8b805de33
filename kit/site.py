"""Execute the notebooks headless and render them as a small static site.

``python -m kit site`` (behind ``make run``) runs every notebook in ``notebooks/`` in
course order and writes, into ``build/site/``:

* ``<Name>.ipynb``: the executed notebook,
* ``<Name>.html``: the same, rendered by nbconvert,
* ``index.html``: a page linking them, with each notebook's status and run time.

``python -m kit site --in-place`` (behind ``make notebooks``) instead writes the executed
notebooks back over ``notebooks/``: that is how the reference outputs nbval compares
against are refreshed. Review ``git diff notebooks/`` before committing them.

A notebook that fails is still written (its HTML shows the error), the others still run,
and the command exits non-zero at the end.
"""

from __future__ import annotations

import argparse
import html
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from tqdm import tqdm

from course.tasks import NOTEBOOKS

REPO_ROOT = Path(__file__).resolve().parents[1]

# Metadata that changes on every execution; stripped so re-executed notebooks diff cleanly.
VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled")


@dataclass
class NotebookResult:
    """What happened to one notebook."""

    name: str
    ok: bool
    seconds: float
    error: str = ""


def find_notebooks(folder: Path) -> list[Path]:
    """Notebooks in ``folder``: course order (``course.tasks.NOTEBOOKS``) first, others by name."""
    found = {p.stem: p for p in folder.glob("*.ipynb")}
    ordered = [found.pop(name) for name in NOTEBOOKS if name in found]
    return ordered + [found[name] for name in sorted(found)]


def strip_volatile_metadata(nb: nbformat.NotebookNode) -> None:
    """Remove per-run metadata (timings, UI state) so outputs are the only diff."""
    for cell in nb.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)


def execute_notebook(
    path: Path, timeout: int, position: str
) -> tuple[nbformat.NotebookNode, NotebookResult]:
    """Run ``path`` top to bottom in a fresh kernel (cwd = its folder), with per-cell progress."""
    nb = nbformat.read(path, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
    bar = tqdm(
        total=code_cells,
        desc=f"{position} {path.stem}",
        unit="cell",
        leave=False,
        file=sys.stdout,
        disable=None,
    )

    def on_cell_executed(cell, **_: object) -> None:
        if cell.cell_type == "code":
            bar.update(1)

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_executed=on_cell_executed,
    )
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
    except CellExecutionError as exc:
        # ename/evalue are plain text; the formatted traceback carries colour codes.
        error = f"{exc.ename}: {exc.evalue}"
    except (CellTimeoutError, DeadKernelError) as exc:
        error = f"{type(exc).__name__}: {_last_line(str(exc))}"
    finally:
        bar.close()
    strip_volatile_metadata(nb)
    return nb, NotebookResult(path.stem, not error, time.perf_counter() - start, error)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


def render_html(nb: nbformat.NotebookNode) -> str:
    """The notebook as a standalone HTML page (nbconvert's lab template)."""
    from nbconvert import HTMLExporter  # imported late: slow, and not needed for --in-place

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return body


def render_index(results: list[NotebookResult]) -> str:
    """The site's front page: one row per notebook with its status and run time."""
    rows = []
    for r in results:
        status = "ran without errors" if r.ok else f"stopped with an error: {html.escape(r.error)}"
        rows.append(
            f'<li class="{"ok" if r.ok else "failed"}"><a href="{r.name}.html">{r.name}</a>'
            f' <span class="meta">({status}; {r.seconds:.0f} s;'
            f' <a href="{r.name}.ipynb">notebook file</a>)</span></li>'
        )
    return _INDEX_TEMPLATE.format(rows="\n".join(rows))


_INDEX_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Neural networks from scratch: executed notebooks</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 3rem auto; padding: 0 1rem;
        line-height: 1.5; color: #222; }}
 li {{ margin: .6rem 0; }} .meta {{ color: #666; font-size: .9em; }}
 li.failed a:first-child {{ color: #b00; }}
</style></head>
<body>
<h1>Neural networks from scratch</h1>
<p>The course notebooks, executed top to bottom. Read them in this order; each builds on
the one before.</p>
<ol>
{rows}
</ol>
</body></html>
"""


def build(notebooks: list[Path], out: Path | None, timeout: int) -> list[NotebookResult]:
    """Execute ``notebooks``; write the site into ``out``, or back in place when ``out`` is None."""
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
    results = []
    for i, path in enumerate(notebooks, start=1):
        position = f"[{i}/{len(notebooks)}]"
        print(f"{position} {path.name}: executing", flush=True)
        nb, result = execute_notebook(path, timeout, position)
        results.append(result)
        if out is None:
            nbformat.write(nb, path)
        else:
            nbformat.write(nb, out / path.name)
            (out / f"{path.stem}.html").write_text(render_html(nb), encoding="utf-8")
        verdict = "done" if result.ok else f"FAILED: {result.error}"
        print(f"{position} {path.name}: {verdict} ({result.seconds:.0f} s)", flush=True)
    if out is not None:
        (out / "index.html").write_text(render_index(results), encoding="utf-8")
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kit site", description=__doc__.split("\n\n")[0]
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "build" / "site",
        help="folder for the site (replaced); default build/site",
    )
    where.add_argument(
        "--in-place",
        action="store_true",
        help="write executed notebooks back into notebooks/ (refresh reference outputs)",
    )
    parser.add_argument(
        "--notebooks",
        type=Path,
        default=REPO_ROOT / "notebooks",
        help="folder of notebooks to run; default notebooks/",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        default=None,
        help="run only these notebooks (names without .ipynb)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=900,
        help="seconds one cell may run before it is stopped; default 900",
    )
    args = parser.parse_args(argv)

    notebooks = find_notebooks(args.notebooks)
    if args.only:
        unknown = sorted(set(args.only) - {p.stem for p in notebooks})
        if unknown:
            parser.error(f"--only: no notebook named {', '.join(unknown)} in {args.notebooks}")
        notebooks = [p for p in notebooks if p.stem in args.only]
    if not notebooks:
        parser.error(f"no notebooks found in {args.notebooks}")

    out = None if args.in_place else args.out
    results = build(notebooks, out, args.timeout)
    failed = [r.name for r in results if not r.ok]
    if out is not None:
        print(f"Site written: {out / 'index.html'}  (open it in a browser)")
    else:
        print(
            f"Notebooks rewritten in place in {args.notebooks}; "
            "review 'git diff' before committing."
        )
    if failed:
        print(
            f"{len(failed)} notebook(s) stopped with an error: {', '.join(failed)}", file=sys.stderr
        )
        return 1
    return 0
