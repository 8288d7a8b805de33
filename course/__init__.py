"""Support package for the neural-network notebooks.

Modules follow the order the notebooks teach them: ``layers`` and ``layer_utils``
(forward/backward pairs), ``gradient_check`` (numeric gradients and the check lines
notebooks print), ``optim`` (update rules), ``solver`` (the training loop),
``classifiers`` (the networks) and ``data_utils`` (CIFAR-10 and the embedded digits).

Given plumbing they share: ``_checks`` (the input validators every module calls),
``progress`` (the Solver's progress bar and log lines), ``checkpoints`` (the Solver's
checkpoint files), ``processes`` (telling a killed run's temporary files apart) and
``experiments`` (what the notebooks' experiment cells share).

The assignment's own bookkeeping: ``tasks`` (the task table), ``rubric`` (the points,
one scale for ``make check`` and the grade), ``notebook_outputs`` (what saved notebooks
show), ``handin`` (the zip to hand in) and ``__main__`` (``python -m course``: the student
commands without make).
"""

__version__ = "0.1.0"
