"""The hidden checks' inputs: a few cases per task, drawn from a secret seed.

Every task of ``course/tasks.py`` that lives in ``course/`` has a generator in this
table (``GENERATORS``; the generators are in ``cases_fc``, ``cases_norm`` and
``cases_conv``, what they share in ``case``). A generator gets a numpy ``Generator``
seeded from the grading run's secret seed and the task's ID, and returns ``Case``
objects: random shapes inside the task's domain and random values, plus the named edge
cases students get wrong (exact zeros at the ReLU kink, ties in max pooling and at the
hinge, pad = 0 with stride > 1, N = 1, reg = 0 and reg > 0, test mode after train mode,
several optimizer steps with their state carried over). The edge case's name is the
case's ``label``: it is what the student's feedback shows, never the inputs.

A case is data only (``spec``): the worker receives it, ``kit.hidden.drivers`` runs it.
Backward passes whose cache layout is part of the API (affine, ReLU, dropout,
convolution, max pooling) get a cache the grader builds, so they are judged on their own;
the normalisations' caches are the student's own, so those run forward then backward.

Instructor-only: never released (``kit/`` is not), and the release's leak check treats
its lines as solution text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from kit.hidden.case import Case
from kit.hidden.cases_conv import (
    cnn_init_cases,
    cnn_loss_cases,
    conv_backward_cases,
    conv_forward_cases,
    groupnorm_backward_cases,
    groupnorm_forward_cases,
    pool_backward_cases,
    pool_forward_cases,
    spatial_batchnorm_backward_cases,
    spatial_batchnorm_forward_cases,
)
from kit.hidden.cases_fc import (
    RULES,
    affine_backward_cases,
    affine_forward_cases,
    fc_init_cases,
    fc_loss_cases,
    relu_backward_cases,
    relu_forward_cases,
    softmax_loss_cases,
    svm_loss_cases,
    update_rule_cases,
)
from kit.hidden.cases_norm import (
    batchnorm_backward_alt_cases,
    batchnorm_backward_cases,
    batchnorm_forward_cases,
    dropout_backward_cases,
    dropout_forward_cases,
    layernorm_backward_cases,
    layernorm_forward_cases,
)

__all__ = ["GENERATORS", "RULES", "Case", "generate", "task_rng"]

GENERATORS: dict[str, Callable[[np.random.Generator], list[Case]]] = {
    "1.1": affine_forward_cases,
    "1.2": affine_backward_cases,
    "1.3": relu_forward_cases,
    "1.4": relu_backward_cases,
    "1.5": softmax_loss_cases,
    "1.6": svm_loss_cases,
    "1.7": fc_init_cases,
    "1.8": fc_loss_cases,
    **{task: update_rule_cases(task) for task in RULES},
    "2.1": batchnorm_forward_cases,
    "2.2": batchnorm_backward_cases,
    "2.3": batchnorm_backward_alt_cases,
    "2.4": layernorm_forward_cases,
    "2.5": layernorm_backward_cases,
    "3.1": dropout_forward_cases,
    "3.2": dropout_backward_cases,
    "4.1": conv_forward_cases,
    "4.2": conv_backward_cases,
    "4.3": pool_forward_cases,
    "4.4": pool_backward_cases,
    "4.5": cnn_init_cases,
    "4.6": cnn_loss_cases,
    "4.7": spatial_batchnorm_forward_cases,
    "4.8": spatial_batchnorm_backward_cases,
    "4.9": groupnorm_forward_cases,
    "4.10": groupnorm_backward_cases,
}


def task_rng(seed: int, task: str) -> np.random.Generator:
    """The task's own generator: adding or changing one task's cases leaves the others'."""
    return np.random.default_rng([seed, *(int(part) for part in task.split("."))])


def generate(seed: int, tasks: Iterable[str] | None = None) -> list[Case]:
    """Every case of the chosen tasks (default: all), in task-table order."""
    chosen = list(GENERATORS) if tasks is None else [t for t in GENERATORS if t in set(tasks)]
    return [case for task in chosen for case in GENERATORS[task](task_rng(seed, task))]
