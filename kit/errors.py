"""The kit's one error base class.

Every error a kit command reports to its user (a refused ``--out``, a marker problem, a
submission that cannot be read) derives from ``KitError``, so a command's ``main`` can
catch the kit's own failures in one clause and let real bugs surface as tracebacks.
"""

from __future__ import annotations


class KitError(Exception):
    """A problem the user can act on; the message says what was found and what to do."""
