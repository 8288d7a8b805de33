"""Support package for the neural-network notebooks.

Modules follow the order the notebooks teach them: ``layers`` and ``layer_utils``
(forward/backward pairs), ``gradient_check`` (numeric gradients and the check lines
notebooks print), ``optim`` (update rules), ``solver`` (the training loop),
``classifiers`` (the networks) and ``data_utils`` (CIFAR-10 and the embedded digits).

Given plumbing they share: ``_checks`` (the input validators every module calls),
``progress`` (the Solver's progress bar and log lines), ``checkpoints`` (the Solver's
checkpoint files), ``processes`` (telling a killed run's temporary files apart) and
``experiments`` (what the notebooks' experiment cells share), and ``runtime`` (two process
settings applied here, at import: OpenBLAS's idle threads sleep sooner and malloc keeps
freed memory for the next step; together they make a training step about twice as fast).

The assignment's own bookkeeping: ``tasks`` (the task table), ``rubric`` (the points,
one scale for ``make check`` and the grade), ``notebook_outputs`` (what saved notebooks
show), ``handin`` (the zip to hand in) and ``__main__`` (``python -m course``: the student
commands without make).
"""

# First, before any module of the package loads numpy: OPENBLAS_THREAD_TIMEOUT works only
# if it is in the environment when OpenBLAS loads (see course/runtime.py).
from course import runtime as _runtime

_runtime.TUNING.update(_runtime.tune_process())

__version__ = "0.1.0"
