"""Execute the notebooks headless and render them as a small static site.

``python -m kit site`` (behind ``make run``) runs every notebook in ``notebooks/`` in
course order and writes, into ``build/site/``:

* ``<Name>.ipynb``: the executed notebook,
* ``<Name>.html``: its page: title, navigation, contents, math rendered at build time
  (MathML, no script), solutions and answers folded in closed ``<details>``,
* ``index.html``: the notebooks in order, each with a description, its tasks (from
  ``course/tasks.py``), its run time and the dataset it ran on,
* ``assets/site.css``: the one stylesheet. The site opens from ``file://`` with no network.

``--student`` builds the site from the student release (stubs in place). A cell that
calls a stub stops there, and so do later cells that need its result: each shows one line
saying which task stopped it instead of a traceback through the temporary release tree
(``kit.site_errors``), and the index counts them per notebook. ``--no-execute`` renders
the stored outputs without running anything (seconds instead of minutes; the browser test
uses it).

``python -m kit site --in-place`` (behind ``make notebooks``) instead writes the executed
notebooks back over ``notebooks/``: that is how the reference outputs nbval compares
against are refreshed. Review ``git diff notebooks/`` before committing them.

Safety: ``--out`` is replaced only if this command created it (a ``.kit-site.json`` stamp
proves it); the new site is built in a hidden sibling folder and swapped in at the end,
so an error or Ctrl-C leaves the previous site as it was.

A notebook that fails is still written (its page shows the error), the others still run,
and the command exits non-zero at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from tqdm import tqdm

from course.tasks import TASKS
from kit import cli, outputs, site_errors, site_render
from kit import notebooks as nbs
from kit.errors import KitError

REPO_ROOT = Path(__file__).resolve().parents[1]
STAMP_NAME = ".kit-site.json"
STAMP_TOOL = "python -m kit site"
STAMP = outputs.Stamp(STAMP_NAME, STAMP_TOOL)
BUILD_VERB = "building"
BUILDING = f".{BUILD_VERB}-"  # infix of the temporary sibling a build writes into

# Kernel settings for every run: the Solver prints its final progress line as text (a
# widget would be stored as a bar frozen at 0%, and shows nothing in the site).
KERNEL_ENV = {"COURSE_PROGRESS": "static"}
# For the site only: figures at twice the pixel density (sharp on high-DPI screens).
RETINA_CONFIG = "c.InlineBackend.figure_formats = {'retina'}\n"


class SiteError(KitError):
    """The site cannot be written where asked; the message says what was found and what to do."""


@dataclass
class NotebookResult:
    """What happened to one notebook."""

    name: str
    ok: bool
    seconds: float
    error: str = ""
    # The error outputs the executed (or stored) notebook holds; None: not looked at.
    errors: site_errors.ErrorSummary | None = None
    dataset: str = ""  # "digits", "CIFAR-10", or "" (the outputs do not say)


def find_notebooks(folder: Path) -> list[Path]:
    """Notebooks in ``folder``: course order (``course.tasks.NOTEBOOKS``) first, others by name."""
    return nbs.find_notebooks(folder)


def merge_streams(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)


def drop_volatile_metadata(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        nbs.drop_volatile_cell_metadata(cell)


def normalise_kernelspec(nb: nbformat.NotebookNode) -> None:
    """Store the kernel's display name as the installed kernel reports it.

    JupyterLab rewrites a differing ``display_name`` ("Python 3" -> "Python 3 (ipykernel)")
    as soon as a notebook opens, which marks it modified before the reader did anything.
    """
    spec = nb.metadata.get("kernelspec")
    if not spec or not spec.get("name"):
        return
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        installed = KernelSpecManager().get_kernel_spec(spec["name"])
    except (ImportError, NoSuchKernel):
        return
    spec["display_name"] = installed.display_name


def coalesce_streams(outputs: list) -> list:
    """Merge consecutive writes to the same stream: how they were chunked depends on timing."""
    merged: list = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and last is not None
                and last.get("output_type") == "stream" and last.get("name") == output.get("name")):
            last["text"] = "".join(last["text"]) + "".join(output["text"])
        else:
            merged.append(output)
    return merged


# ``make notebooks`` hygiene: what makes a re-executed notebook differ from the stored one
# only where its outputs do.
HYGIENE_STEPS = (
    nbs.Step("drop per-run cell metadata (timings, UI state)", drop_volatile_metadata),
    nbs.Step("merge consecutive writes to a stream", merge_streams),
    nbs.Step("drop widget views and widget state", site_render.drop_widgets),
    nbs.Step("store the kernel's display name as installed", normalise_kernelspec),
)


def strip_volatile_metadata(nb: nbformat.NotebookNode) -> None:
    """Remove per-run metadata (timings, UI state, widget state) so outputs are the only diff."""
    nbs.run_steps(nb, HYGIENE_STEPS)


def execute_notebook(
    path: Path, timeout: int, position: str, env: dict[str, str], allow_errors: bool = False
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
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_executed=on_cell_executed,
    )
    start = time.perf_counter()
    error = ""
    # The kernel's own stderr (its start-up warnings, its complaints when Ctrl-C closes
    # its sockets) goes to a file: only what a cell prints belongs on the terminal.
    with tempfile.TemporaryFile("w+", prefix="kit-site-kernel-") as kernel_log:
        try:
            _execute_interruptibly(client, env, kernel_log)
        except CellExecutionError as exc:
            # ename/evalue are plain text; the formatted traceback carries colour codes.
            error = f"{exc.ename}: {exc.evalue}"
        except (CellTimeoutError, DeadKernelError) as exc:
            error = f"{type(exc).__name__}: {_last_line(str(exc))}"
            kernel_log.seek(0)
            print(f"{path.name}: the kernel's last words:\n{kernel_log.read()[-2000:]}",
                  file=sys.stderr)
        finally:
            bar.close()
    strip_volatile_metadata(nb)
    return nb, NotebookResult(path.stem, not error, time.perf_counter() - start, error)


def _execute_interruptibly(client: NotebookClient, env: dict[str, str], log: IO[str]) -> None:
    """``client.execute`` in a worker thread, so that Ctrl-C reaches this (main) thread.

    In the main thread nbclient replaces the SIGINT handler with one that kills the kernel
    and then fails in its own clean-up with a bare AssertionError; in a worker it installs
    none. A Ctrl-C then raises KeyboardInterrupt here, and the build stops keeping the old
    site. (A kernel left behind exits by itself once this process is gone.)
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            client.execute(env=env, stderr=log)
        except BaseException as exc:  # handed to the main thread below
            failure.append(exc)

    worker = threading.Thread(target=run, name="kit-site-kernel", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        worker.join(10)  # the kernel got the Ctrl-C too: let nbclient shut it down
        raise
    if failure:
        raise failure[0]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


def kernel_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of the notebook kernels: ours plus ``KERNEL_ENV`` plus ``extra``."""
    return {**os.environ, **KERNEL_ENV, **extra}


@contextlib.contextmanager
def retina_profile() -> Iterator[dict[str, str]]:
    """An IPython directory whose kernel config asks for retina figures (env to use it)."""
    with tempfile.TemporaryDirectory(prefix="kit-site-ipython-") as folder:
        profile = Path(folder) / "profile_default"
        profile.mkdir()
        (profile / "ipython_kernel_config.py").write_text(RETINA_CONFIG, encoding="utf-8")
        yield {"IPYTHONDIR": folder}


# -- where the site may go --------------------------------------------------------------


def check_out_dir(out: Path, notebooks: Path, root: Path | None = None) -> None:
    """Refuse an ``--out`` this command may not replace; ``OutputError`` says what was found.

    ``root`` is the solution tree (default: the one this module belongs to).
    """
    how = "Choose a new folder (the default is build/site) or move that folder away yourself."
    outputs.refuse_overlap(out, [("the tree", root or REPO_ROOT),
                                 ("the current folder", Path.cwd()),
                                 ("the folder of the notebooks being built", notebooks)], how=how)
    outputs.refuse_foreign(out, STAMP, how=how)


def is_site_dir(folder: Path) -> bool:
    """True if ``folder`` holds the stamp this command writes into every site."""
    return STAMP.owns(folder)


# -- building ------------------------------------------------------------------------


@dataclass
class BuildOptions:
    """How to build: where from, where to, and whether to execute."""

    notebooks: list[Path]
    out: Path | None  # None: write the executed notebooks back in place
    timeout: int = 900
    execute: bool = True
    student: bool = False
    pythonpath: Path | None = None  # the tree whose ``course`` the kernels import


def build(options: BuildOptions) -> list[NotebookResult]:
    """Execute (or just read) the notebooks; write the site, or the notebooks in place."""
    extra = {} if options.pythonpath is None else {"PYTHONPATH": str(options.pythonpath)}
    if options.out is None:
        return _run_all(options, kernel_env(extra), sink=None)
    folder = outputs.OwnedFolder(options.out, STAMP, verb=BUILD_VERB)
    folder.remove_stale_temps(lambda stale: print(
        f"removed {stale}, left by an interrupted build", flush=True))
    with folder.building() as tmp:
        STAMP.write(tmp, pid=os.getpid(), student=options.student)
        with retina_profile() as ipython:
            results = _run_all(options, kernel_env({**extra, **ipython}), sink=tmp)
    return results


def _run_all(
    options: BuildOptions, env: dict[str, str], sink: Path | None
) -> list[NotebookResult]:
    results, pages = [], []
    total = len(options.notebooks)
    for i, path in enumerate(options.notebooks, start=1):
        position = f"[{i}/{total}]"
        if options.execute:
            print(f"{position} {path.name}: executing", flush=True)
            nb, result = execute_notebook(path, options.timeout, position, env, options.student)
        else:
            nb = nbformat.read(path, as_version=4)
            strip_volatile_metadata(nb)
            result = NotebookResult(path.stem, True, 0.0)
        result.errors = explain_errors(nb, options)
        result.dataset = site_render.dataset_used(nb)
        results.append(result)
        if sink is None:
            nbs.write_notebook(nb, path)
        else:
            nbs.write_notebook(nb, sink / path.name)
            pages.append(site_render.render_notebook(nb, path.stem, options.student))
        verdict = "done" if result.ok else f"FAILED: {result.error}"
        if options.execute:
            data = f", data: {result.dataset}" if result.dataset else ""
            print(f"{position} {path.name}: {verdict} ({result.seconds:.0f} s{data})", flush=True)
    if sink is not None:
        write_pages(sink, pages, results, options)
    return results


def explain_errors(
    nb: nbformat.NotebookNode, options: BuildOptions
) -> site_errors.ErrorSummary:
    """Classify the notebook's error outputs; for the student site, also shorten them.

    Student mode runs with ``allow_errors`` (every cell after a stub would fail anyway),
    so its error outputs are the normal case there: each becomes one line that says which
    stub stopped it, and the temporary release tree the kernels ran in is taken out of
    every output. The solution site keeps its tracebacks: there an error is a bug to find.
    """
    if not options.student:
        return site_errors.error_summary(nb)
    if options.pythonpath is not None:
        site_errors.scrub_paths(nb, options.pythonpath)
    return site_errors.shorten_errors(nb)


def write_pages(
    out: Path,
    pages: list[site_render.Page],
    results: list[NotebookResult],
    options: BuildOptions,
) -> None:
    """Every notebook's page, the index and the stylesheet."""
    note = (
        "Student release: the solution code is replaced by stubs. A cell that calls one "
        "stops there and says which task is not written yet; a later cell that needs its "
        "result stops too and names the same task."
        if options.student
        else ""
    )
    for i, page in enumerate(pages):
        previous = pages[i - 1] if i > 0 else None
        following = pages[i + 1] if i + 1 < len(pages) else None
        text = site_render.page_html(page, previous, following, note)
        (out / f"{page.name}.html").write_text(text, encoding="utf-8")
    tasks = site_render.tasks_by_notebook(TASKS)
    entries = [
        site_render.IndexEntry(
            page,
            "stored" if not options.execute else ("ok" if r.ok else "failed"),
            r.seconds,
            r.error,
            tasks.get(page.name, []),
            r.errors,
            r.dataset,
        )
        for page, r in zip(pages, results, strict=True)
    ]
    index = site_render.index_html(entries, note, options.student)
    (out / "index.html").write_text(index, encoding="utf-8")
    site_render.write_assets(out)


@contextlib.contextmanager
def student_tree() -> Iterator[Path]:
    """The student release of this tree, written to a temporary folder for the build."""
    from kit import release  # imported late: only --student needs it
    from kit.tree import SolutionTree

    with tempfile.TemporaryDirectory(prefix="kit-site-student-") as folder:
        tree = Path(folder) / "student"
        try:
            release.write_release(release.build_release(SolutionTree.load(REPO_ROOT)), tree)
        except KitError as error:
            raise SiteError(f"--student: the student release cannot be made:\n{error}") from error
        yield tree


# -- command line --------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kit site", description=__doc__.split("\n\n")[0]
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "build" / "site",
        help=f"folder for the site; default build/site. Replaced only if this command "
        f"made it (a {STAMP_NAME} stamp)",
    )
    where.add_argument(
        "--in-place",
        action="store_true",
        help="write executed notebooks back into notebooks/ (refresh reference outputs)",
    )
    parser.add_argument(
        "--notebooks",
        type=Path,
        default=None,
        help="folder of notebooks to run; default notebooks/ (of the student release "
        "with --student)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        default=None,
        help="run only these notebooks (names in any case, .ipynb optional)",
    )
    parser.add_argument(
        "--student",
        action="store_true",
        help="build the site from the student release (stubs in place); make run STUDENT=1",
    )
    parser.add_argument(
        "--no-execute",
        action="store_true",
        help="render the notebooks' stored outputs without running them",
    )
    parser.add_argument(
        "--timeout",
        type=cli.whole_number(1, "a whole number of seconds"),
        default=900,
        help="seconds one cell may run before it is stopped; default 900",
    )
    args = parser.parse_args(argv)
    if args.in_place and (args.student or args.no_execute):
        parser.error("--in-place refreshes the solution notebooks: not with --student/--no-execute")
    return args


def select_notebooks(folder: Path, only: list[str] | None) -> list[Path]:
    """The notebooks to build, in course order; ``SiteError`` for an unknown name or none."""
    if not folder.is_dir():
        found = "a file" if folder.exists() else "nothing"
        raise SiteError(f"--notebooks {folder}: expected a folder of notebooks, found {found} "
                        "there")
    notebooks = find_notebooks(folder)
    if only:
        # As kit grade's --notebook: any case, with or without .ipynb.
        def key(name: str) -> str:
            return name.lower().removesuffix(".ipynb")

        wanted = {key(name) for name in only}
        unknown = sorted(name for name in only if key(name) not in {key(p.stem) for p in notebooks})
        if unknown:
            there = ", ".join(p.stem for p in notebooks) or "none"
            raise SiteError(f"--only: no notebook named {', '.join(unknown)} in {folder} "
                            f"(there: {there})")
        notebooks = [p for p in notebooks if key(p.stem) in wanted]
    if not notebooks:
        raise SiteError(f"no notebooks found in {folder}")
    return notebooks


def main(argv: list[str]) -> int:
    return _main_guarded(parse_args(argv))


def _main_guarded(args: argparse.Namespace) -> int:
    try:
        if args.student:
            with student_tree() as tree:
                return _main(args, tree / "notebooks" if args.notebooks is None else args.notebooks,
                             pythonpath=tree)
        return _main(args, args.notebooks or REPO_ROOT / "notebooks", pythonpath=None)
    except (SiteError, outputs.OutputError) as error:
        print(f"site: {error}", file=sys.stderr)
        print("site: stopped; nothing written", file=sys.stderr)
        return 2
    except site_render.MathError as error:
        print(f"site: {error}", file=sys.stderr)
        print("site: stopped; the previous site (if any) is unchanged", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _interrupted(args)


def _interrupted(args: argparse.Namespace) -> int:
    if args.in_place:
        kept = "the notebooks not yet rewritten are unchanged"
    elif args.out.exists():
        kept = f"the previous site in {args.out} is unchanged"
    else:
        kept = "no site was written"
    print(f"\nsite: interrupted; {kept}.", file=sys.stderr)
    return 130


def _main(args: argparse.Namespace, folder: Path, pythonpath: Path | None) -> int:
    notebooks = select_notebooks(folder, args.only)
    out = None if args.in_place else args.out
    if out is not None:
        check_out_dir(out, folder)
    options = BuildOptions(notebooks, out, args.timeout, not args.no_execute, args.student,
                           pythonpath)
    results = build(options)
    failed = [r.name for r in results if not r.ok]
    if out is not None:
        # Which tree it shows, in words: the solution site is not one to hand to students.
        made_from = ("the student release (stubs in place)" if args.student
                     else "the solution tree (solutions and answers folded)")
        print(f"Site written from {made_from}: {out / 'index.html'}  (open it in a browser)")
        for page in sorted(out.glob("*.html")):
            print(f"  {page.name}: {page.stat().st_size / 1024:.0f} KB")
    else:
        print(
            f"Notebooks rewritten in place in {folder}; review 'git diff' before committing."
        )
    if failed and not args.student:
        print(
            f"{len(failed)} notebook(s) stopped with an error: {', '.join(failed)}", file=sys.stderr
        )
        return 1
    return 0
