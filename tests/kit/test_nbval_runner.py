"""kit/nbval_runner.py: what a cell's record means, and which records are believed."""

from __future__ import annotations

import json

from kit.nbval_runner import CellRecord, Limits, read_records, reason_of
from kit.reports import FailureKind, Reason


def test_reason_of_names_timeouts_memory_and_dead_kernels():
    limits = Limits(cell_timeout=5, memory_mb=512)

    def kind(message="", actual=""):
        return reason_of(CellRecord(0, "failed", message=message, actual=actual), None,
                         limits).kind

    assert kind("Timeout of 5 seconds exceeded executing cell") is FailureKind.TIMEOUT
    assert kind("Cell execution caused an exception",
                "MemoryError: Unable to allocate") is FailureKind.MEMORY
    assert kind("KernelDiedError: kernel died: exited") is FailureKind.KERNEL_DIED
    assert kind("Cell outputs differ") is FailureKind.WRONG_OUTPUT
    assert kind("Cell execution caused an exception", "ValueError: bad") is FailureKind.ERROR
    wall = Reason(FailureKind.WALL_CLOCK, "wall-clock limit of 9 s reached")
    assert reason_of(None, wall, limits) is wall
    assert reason_of(None, None, limits).kind is FailureKind.NOT_RUN
    assert reason_of(CellRecord(0, "passed"), None, limits) is None
    # The phrases the reports show say what the limit was.
    assert reason_of(CellRecord(0, "failed", message="Timeout of 5 seconds"), None,
                     limits).text == "timeout: the cell ran longer than 5 s"


def test_results_with_a_bad_signature_are_ignored():
    good = json.dumps({"cell": 1, "outcome": "passed"}, sort_keys=True)
    import hashlib
    import hmac

    mac = hmac.new(b"k", good.encode(), hashlib.sha256).hexdigest()
    forged = json.dumps({"cell": 2, "outcome": "passed"}, sort_keys=True)
    text = "\n".join([json.dumps({"record": good, "mac": mac}),
                      json.dumps({"record": forged, "mac": "0" * 64}), "garbage"])
    assert set(read_records(text, "k")) == {1}
