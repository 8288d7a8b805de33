"""A pytest plugin the grader loads into its nbval run: one signed result per notebook cell.

``kit grade`` copies this file into a control folder outside the sandbox and runs
``pytest -p nbval_report ...`` there. It must not import the kit: the run sees only the
sandbox (the student's code) and this folder.

* Results go to the grader through a pipe (``KIT_GRADE_RESULTS_FD``), not a file on disk:
  the student's code, which runs in the notebook's kernel, has no handle on it, and no
  submission graded in parallel can overwrite another's results. The grader reads the pipe
  as the cells finish, so a run stopped at its wall-clock limit keeps what it finished.
* Each record is signed with an HMAC whose key arrives through another pipe
  (``KIT_GRADE_KEY_FD``), read and closed before the kernel starts; the grader drops
  records whose signature does not match.
* stderr is not compared (warnings from correct code are no failure).
* A kernel that dies is noticed within a second instead of after the cell timeout: the
  wait for a cell's reply polls whether the kernel process is still alive.
* Each record says whether the kernel was alive when the cell started and when it ended
  (and, if it died, the exit status the kernel's process gave): the grader finds the cell
  the kernel died in from these, and reruns the notebook without it
  (``kit.nbval_runner``). A cell that found the kernel dead at its start has no verdict.
* Loaded before nbval (``-p nbval_report -p nbval.plugin``), it keeps jsonschema's optional
  IRI format checker out of the run (``_skip_the_iri_format_checker``): 2 s of every
  notebook's start on these machines, for a format no notebook schema uses.
* nbval marks every cell after a timed-out cell "expected to fail", which turns their
  failures into a bare ``skipped`` that hides what went wrong; the grader decides each cell
  on its own, so that marking is turned off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
from queue import Empty
from typing import Any

import pytest

_STATE: dict[str, Any] = {}


def _skip_the_iri_format_checker() -> None:
    """nbval imports nbformat, whose validator imports jsonschema, which imports the
    optional ``rfc3987_syntax`` for its "iri" format when it is installed (jupyterlab pulls
    it in). That import builds an Earley parser: 1.7 to 2.6 s here, in every notebook run.
    No notebook schema uses the format, so the import is made to fail as if the package
    were missing, which jsonschema expects (it then has no "iri" checker)."""
    sys.modules.setdefault("rfc3987_syntax", None)  # None in sys.modules: ImportError


_skip_the_iri_format_checker()  # at import: this plugin is loaded before nbval's


class KernelDiedError(RuntimeError):
    """The kernel process exited while a cell was running."""


def pytest_configure(config: pytest.Config) -> None:
    out_fd = int(os.environ.pop("KIT_GRADE_RESULTS_FD", "-1"))
    key_fd = int(os.environ.pop("KIT_GRADE_KEY_FD", "-1"))
    if out_fd < 0 or key_fd < 0:
        return
    with os.fdopen(key_fd, "rb") as pipe:
        key = pipe.read().strip()
    os.set_inheritable(out_fd, False)  # the kernel must not get it
    _STATE.update(key=key, out=os.fdopen(out_fd, "w", encoding="utf-8", buffering=1))
    _watch_for_dead_kernels()
    _ignore_stderr()
    _no_xfail_after_timeouts()


def _no_xfail_after_timeouts() -> None:
    """Each cell gets its own verdict: nbval's setup, which marks every cell after a
    timeout as expected to fail (its failure then reads as a reasonless ``skipped``), does
    nothing here."""
    from nbval.plugin import IPyNbCell

    def setup(self: Any) -> None:
        return None

    IPyNbCell.setup = setup


def _ignore_stderr() -> None:
    """Compare what cells print to stdout (and display), never stderr: warnings that correct
    code emits (a deprecation, a numpy RuntimeWarning) must not fail a check."""
    from nbval.plugin import IPyNbCell

    original = IPyNbCell.compare_outputs

    def without_stderr(outputs: Any) -> list[Any]:
        return [o for o in outputs
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]

    def compare_outputs(self: Any, test: Any, ref: Any, skip_compare: Any = None) -> Any:
        return original(self, without_stderr(test), without_stderr(ref), skip_compare)

    IPyNbCell.compare_outputs = compare_outputs


def _watch_for_dead_kernels() -> None:
    from nbval.kernel import RunningKernel

    original = RunningKernel.await_reply

    def await_reply(self: Any, msg_id: str, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        while True:
            left = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return original(self, msg_id, timeout=min(1.0, left))
            except Empty:
                if not self.is_alive():
                    code = _exit_code(self)
                    raise KernelDiedError(
                        "kernel died: the kernel process exited while this cell ran"
                        + (f" (exit code {code})" if code is not None else "")
                    ) from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    RunningKernel.await_reply = await_reply


def _exit_code(kernel: Any) -> int | None:
    """The exit status of a dead kernel's process (the sandbox's, which passes its child's
    on), or None when unknown (nbval stopped it itself, or the process is not reaped)."""
    process = getattr(getattr(getattr(kernel, "km", None), "provisioner", None),
                      "process", None)
    code = getattr(process, "returncode", None)
    return code if isinstance(code, int) else None


def _kernel_alive(item: pytest.Item) -> bool:
    """Whether the notebook's kernel is running (False before it started)."""
    kernel = getattr(getattr(item, "parent", None), "kernel", None)
    try:
        return kernel is not None and bool(kernel.is_alive())
    except Exception:  # a half-stopped kernel (its manager gone): not alive
        return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    item._kit_alive_before = _kernel_alive(item)  # type: ignore[attr-defined]
    yield


def _text(outputs: Any) -> str:
    """The text a cell printed: streams, plain-text results and errors."""
    parts = []
    for out in outputs or []:
        kind = out.get("output_type")
        if kind == "stream":
            parts.append(out.get("text", ""))
        elif kind in {"execute_result", "display_data"}:
            parts.append(out.get("data", {}).get("text/plain", ""))
        elif kind == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
    return "".join(parts)


def _write(record: dict[str, Any]) -> None:
    payload = json.dumps(record, sort_keys=True)
    mac = hmac.new(_STATE["key"], payload.encode(), hashlib.sha256).hexdigest()
    _STATE["out"].write(json.dumps({"record": payload, "mac": mac}) + "\n")
    _STATE["out"].flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if "out" not in _STATE or not hasattr(item, "cell_num"):
        return
    if report.when != "call" and not (report.failed or report.skipped):
        return
    alive_after = _kernel_alive(item)
    kernel = getattr(item.parent, "kernel", None)
    _write({
        "cell": item.cell_num,
        "when": report.when,
        "outcome": report.outcome,
        "message": report.longreprtext[-6000:] if report.failed else "",
        "expected": _text(item.cell.get("outputs")),
        "actual": _text(getattr(item, "test_outputs", None)),
        "alive_before": bool(getattr(item, "_kit_alive_before", False)),
        "alive_after": alive_after,
        "exit_code": None if alive_after or kernel is None else _exit_code(kernel),
    })
