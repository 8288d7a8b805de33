"""A pytest plugin the grader loads into its nbval run: one signed result per notebook cell.

``kit grade`` copies this file into a control folder outside the sandbox and runs
``pytest -p nbval_report ...`` there. It must not import the kit: the run sees only the
sandbox (the student's code) and this folder.

* The results file's path comes from ``KIT_GRADE_RESULTS``, which is removed from the
  environment before the notebook's kernel starts, and the signing key is read from a
  pipe (``KIT_GRADE_KEY_FD``) that is closed before the kernel starts, so the student's
  code (which runs in that kernel) knows neither.
* Each record is signed with an HMAC; the grader ignores records whose signature does not
  match, so a student module that writes into the file cannot forge a pass. The file is
  appended after every cell (a run killed at its wall-clock limit keeps what it finished)
  and rewritten whole at the end (undoing any overwrite during the run).
* stderr is not compared (warnings from correct code are no failure).
* A kernel that dies is noticed within a second instead of after the cell timeout: the
  wait for a cell's reply polls whether the kernel process is still alive.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from queue import Empty
from typing import Any

import pytest

_STATE: dict[str, Any] = {"lines": []}


class KernelDiedError(RuntimeError):
    """The kernel process exited while a cell was running."""


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.pop("KIT_GRADE_RESULTS", None)
    if path is None:
        return
    fd = int(os.environ.pop("KIT_GRADE_KEY_FD", "-1"))
    key = b""
    if fd >= 0:
        with os.fdopen(fd, "rb") as pipe:  # closed after: the kernel never inherits it
            key = pipe.read().strip()
    _STATE.update(path=path, key=key)
    _watch_for_dead_kernels()
    _ignore_stderr()


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
                    code = getattr(getattr(self.km, "provisioner", None), "exit_code", None)
                    raise KernelDiedError(
                        "kernel died: the kernel process exited while this cell ran"
                        + (f" (exit code {code})" if code is not None else "")
                    ) from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    RunningKernel.await_reply = await_reply


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
    line = json.dumps({"record": payload, "mac": mac}) + "\n"
    _STATE["lines"].append(line)
    with open(_STATE["path"], "a", encoding="utf-8") as handle:
        handle.write(line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if "path" not in _STATE or not hasattr(item, "cell_num"):
        return
    if report.when != "call" and not (report.failed or report.skipped):
        return
    _write({
        "cell": item.cell_num,
        "when": report.when,
        "outcome": report.outcome,
        "message": report.longreprtext[-6000:] if report.failed else "",
        "expected": _text(item.cell.get("outputs")),
        "actual": _text(getattr(item, "test_outputs", None)),
    })


def pytest_unconfigure(config: pytest.Config) -> None:
    if "path" not in _STATE:
        return
    temp = _STATE["path"] + ".final"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.writelines(_STATE["lines"])
    os.replace(temp, _STATE["path"])
