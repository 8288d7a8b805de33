"""Two process settings that make a training step about twice as fast, applied once when
``course`` is imported (given code, not a task).

What was measured (the 2-core development VM, load about 0.5: ``ThreeLayerConvNet.loss``
with gradients on 3x32x32 images, float32, the median of 30 calls after a first one): the
step took 62 ms at batch 100 (34 ms at batch 50), while its layers timed one by one added
up to 31 ms. Two causes, neither in the layers' arithmetic:

1. **OpenBLAS's idle threads spin.** After a matrix product big enough to use several
   threads (the affine layers' are), OpenBLAS's worker threads keep polling for new work
   for 2**28 processor cycles, about 0.1 s, before they sleep. Every numpy call in that
   time, and the fast layers' own threads, share the cores with them. The environment
   variable ``OPENBLAS_THREAD_TIMEOUT`` sets that wait to 2**n cycles; OpenBLAS reads it
   once, when numpy loads it. With n = 16 (about 25 us: still enough to keep the threads
   awake between the products of one layer) the step took 38 ms at batch 100 (21 ms at
   50). n = 12 to 20 measured within 10% of each other; 4 (no wait) and 24 were slower.
2. **Page faults.** Each step makes fresh arrays of 3 to 13 MB (layer outputs and
   gradients). glibc's malloc hands blocks that large out as new memory mappings and
   returns them to the system when they are freed, so every step touches about 5,000
   new pages, each a page fault (about 1.5 us on this VM). Raising malloc's mmap
   threshold to 32 MiB (its maximum) and its trim threshold to 128 MiB keeps freed
   blocks for the next step: no faults, and the step took 29 ms at batch 100 (15 ms at
   50). The price is memory: up to 128 MiB that a step freed stays with the process
   for the next one.

To see the difference on a machine of your own, compare the model rows of ``make bench``
with those of ``COURSE_TUNING=0 make bench`` (at batch 100 here: 29 against 53 ms, with
PyTorch's step in the same process 21 against 34 ms: the spinning threads slow it too).

``tune_process`` does both: it sets ``OPENBLAS_THREAD_TIMEOUT`` in the environment unless
the user set it (it takes effect only if numpy is not loaded yet: in this process when
``course`` is imported first, else in the processes this one starts, such as the Jupyter
kernels of ``python -m course lab``; ``make`` exports it to everything it runs), and calls
glibc's ``mallopt`` (Linux with glibc only; elsewhere nothing changes). ``COURSE_TUNING=0``
(or off, no, false) in the environment turns both off. ``TUNING`` records what was done,
for ``make bench``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from collections.abc import Callable, MutableMapping

__all__ = ["MMAP_THRESHOLD", "THREAD_TIMEOUT", "TRIM_THRESHOLD", "TUNING", "tune_process"]

THREAD_TIMEOUT = "16"  # OpenBLAS idle threads wait 2**16 cycles, then sleep
MMAP_THRESHOLD = 32 * 2**20  # blocks up to this size come from malloc's heap
TRIM_THRESHOLD = 128 * 2**20  # free heap kept for reuse before it goes back to the system

# COURSE_TUNING values that turn both settings off (the Makefile accepts the same).
OFF = ("0", "off", "no", "false")

# glibc's mallopt parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

# What tune_process did, one line per setting (filled at import).
TUNING: dict[str, str] = {}


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None on other C libraries and systems."""
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - a static or unusual build
        return None


def tune_process(environ: MutableMapping[str, str] | None = None,
                 numpy_loaded: bool | None = None,
                 mallopt: Callable[[int, int], int] | str | None = "glibc") -> dict[str, str]:
    """Apply the two settings of this module's docstring; return what was done.

    Inputs (for tests; the defaults are this process's):
    - environ: the environment to read and set (``os.environ``).
    - numpy_loaded: whether OpenBLAS is already loaded (``"numpy" in sys.modules``).
    - mallopt: the function to call for malloc's thresholds; "glibc" finds glibc's, None
      means there is none.
    """
    environ = os.environ if environ is None else environ
    numpy_loaded = "numpy" in sys.modules if numpy_loaded is None else numpy_loaded
    switch = environ.get("COURSE_TUNING", "").strip()
    if switch.lower() in OFF:
        return {"OPENBLAS_THREAD_TIMEOUT": f"not set (COURSE_TUNING={switch})",
                "malloc": f"unchanged (COURSE_TUNING={switch})"}
    done = {"OPENBLAS_THREAD_TIMEOUT": _set_thread_timeout(environ, numpy_loaded)}
    done["malloc"] = _set_malloc_thresholds(_glibc_mallopt() if mallopt == "glibc"
                                            else mallopt)
    return done


def _set_malloc_thresholds(mallopt: Callable[[int, int], int] | None) -> str:
    """Raise malloc's mmap and trim thresholds; say which of them took (mallopt answers 0
    when it refuses a value)."""
    if mallopt is None:
        return "unchanged (not glibc)"
    settings = (("mmap threshold", M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                ("trim threshold", M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    taken = [f"{name} {value >> 20} MiB" for name, option, value in settings
             if mallopt(option, value)]
    return ", ".join(taken) if taken else "unchanged (mallopt refused)"


def _set_thread_timeout(environ: MutableMapping[str, str], numpy_loaded: bool) -> str:
    """Set OPENBLAS_THREAD_TIMEOUT unless the user did; say whether this process uses it."""
    if "OPENBLAS_THREAD_TIMEOUT" in environ:
        value = environ["OPENBLAS_THREAD_TIMEOUT"]
        return f"{value} (from the environment)"
    environ["OPENBLAS_THREAD_TIMEOUT"] = THREAD_TIMEOUT
    if numpy_loaded:
        return (f"{THREAD_TIMEOUT} for the processes this one starts; this process loaded "
                "numpy first and keeps OpenBLAS's default (start it with make, or import "
                "course before numpy)")
    return f"{THREAD_TIMEOUT} (set before numpy loaded)"
