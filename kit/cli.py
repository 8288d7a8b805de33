"""Argument types the kit's commands share, so a wrong number fails the same way everywhere.

Each factory returns a function for ``argparse``'s ``type=``. A value it cannot accept
raises ``argparse.ArgumentTypeError``, which argparse turns into a usage error naming the
option, with exit status 2 and no traceback::

    python -m kit site: error: argument --timeout: expected a positive number of seconds, got '0'

(A bare ``type=int`` says only "invalid int value" and lets 0 and -1 through.)
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

USAGE_ERROR = 2  # the exit status of every usage error, as argparse's own


def whole_number(minimum: int, what: str = "a whole number") -> Callable[[str], int]:
    """A type for integer options: ``what`` at least ``minimum`` (``--jobs``, ``--threads``)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what} >= {minimum}, got {text!r}")
        return value
    return parse


def positive_seconds(text: str) -> float:
    """A type for durations (``--timeout``, ``--budget``): a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value
