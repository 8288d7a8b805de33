"""Points: the one place that says what each task and each graded check cell is worth.

Two kinds of entries live here.

* ``TASK_POINTS``: the points of each task that pytest checks (``make check`` shows them).
* ``CHECKS``: the points of each graded notebook check cell, keyed ``"<Notebook>/<name>"``
  where ``<name>`` is the cell's ``metadata.check`` (stable: never renamed once published,
  because grades are keyed on it). A check that belongs to a notebook task (a choice made in
  a notebook cell, such as 1.9) names that task; such a task's points are the sum of its
  checks' points.

``kit grade`` scores a submission by its check cells; ``make check`` scores the pytest tasks
and lists the notebook tasks with their checks. A check cell or task that is missing here is
worth ``DEFAULT_POINTS`` (so a new notebook grades before its rubric is written) and
``tests/test_rubric.py`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from course.tasks import TASKS, Task

DEFAULT_POINTS = 1


@dataclass(frozen=True)
class Check:
    """One graded check cell: its points and, for a notebook task, that task's ID."""

    points: int
    task: str | None = None


TASK_POINTS: dict[str, int] = {
    # FullyConnectedNets (1.9 and 1.14 are notebook tasks: see CHECKS)
    "1.1": 2,
    "1.2": 3,
    "1.3": 1,
    "1.4": 1,
    "1.5": 3,
    "1.6": 3,
    "1.7": 2,
    "1.8": 5,
    "1.10": 2,
    "1.11": 2,
    "1.12": 3,
    "1.13": 2,
    # BatchNormalization
    "2.1": 4,
    "2.2": 4,
    "2.3": 3,
    "2.4": 3,
    "2.5": 3,
    # Dropout
    "3.1": 2,
    "3.2": 2,
    # ConvolutionalNetworks
    "4.1": 4,
    "4.2": 4,
    "4.3": 2,
    "4.4": 2,
    "4.5": 2,
    "4.6": 4,
    "4.7": 2,
    "4.8": 2,
    "4.9": 2,
    "4.10": 2,
}

CHECKS: dict[str, Check] = {
    "FullyConnectedNets/affine-forward": Check(2),
    "FullyConnectedNets/affine-backward": Check(3),
    "FullyConnectedNets/relu-forward": Check(1),
    "FullyConnectedNets/relu-backward": Check(1),
    "FullyConnectedNets/affine-relu-sandwich": Check(1),
    "FullyConnectedNets/softmax-loss": Check(3),
    "FullyConnectedNets/svm-loss": Check(3),
    "FullyConnectedNets/fc-net-init": Check(2),
    "FullyConnectedNets/fc-net-loss-gradients": Check(5),
    "FullyConnectedNets/two-layer-net-training": Check(2),
    "FullyConnectedNets/overfit-small-data": Check(3, task="1.9"),
    "FullyConnectedNets/sgd-momentum": Check(2),
    "FullyConnectedNets/rmsprop": Check(2),
    "FullyConnectedNets/adam": Check(3),
    "FullyConnectedNets/adagrad": Check(2),
    "FullyConnectedNets/weight-init-scales": Check(1),
    "FullyConnectedNets/best-model-accuracy": Check(5, task="1.14"),
    "BatchNormalization/bn-train-stats": Check(2),
    "BatchNormalization/bn-test-stats": Check(2),
    "BatchNormalization/bn-backward": Check(4),
    "BatchNormalization/bn-alt-matches": Check(3),
    "BatchNormalization/bn-alt-not-slower": Check(1),
    "BatchNormalization/fc-bn-gradients": Check(3),
    "BatchNormalization/ln-forward": Check(3),
    "BatchNormalization/ln-backward": Check(3),
    "BatchNormalization/fc-ln-gradients": Check(2),
    "Dropout/dropout-forward-stats": Check(2),
    "Dropout/dropout-forward-seed": Check(1),
    "Dropout/dropout-backward": Check(2),
    "Dropout/fc-dropout-gradients": Check(2),
    "ConvolutionalNetworks/conv-forward-naive": Check(4),
    "ConvolutionalNetworks/conv-backward-naive": Check(4),
    "ConvolutionalNetworks/max-pool-forward-naive": Check(2),
    "ConvolutionalNetworks/max-pool-backward-naive": Check(2),
    "ConvolutionalNetworks/fast-matches-naive": Check(1),
    "ConvolutionalNetworks/conv-relu-pool-sandwich": Check(1),
    "ConvolutionalNetworks/cnn-init": Check(2),
    "ConvolutionalNetworks/cnn-initial-loss": Check(1),
    "ConvolutionalNetworks/cnn-gradients": Check(4),
    "ConvolutionalNetworks/cnn-overfit": Check(2),
    "ConvolutionalNetworks/cnn-train-target": Check(2),
    "ConvolutionalNetworks/spatial-batchnorm-forward": Check(2),
    "ConvolutionalNetworks/spatial-batchnorm-backward": Check(2),
    "ConvolutionalNetworks/spatial-groupnorm-forward": Check(2),
    "ConvolutionalNetworks/spatial-groupnorm-backward": Check(2),
    "ConvolutionalNetworks/conv-bn-relu-sandwich": Check(1),
}


def check_points(notebook: str, name: str) -> int:
    """Points of the check cell ``name`` of ``notebook`` (``DEFAULT_POINTS`` if unlisted)."""
    entry = CHECKS.get(f"{notebook}/{name}")
    return DEFAULT_POINTS if entry is None else entry.points


def checks_of_task(task_id: str) -> list[str]:
    """The ``"<Notebook>/<name>"`` keys of the check cells that grade notebook task ``task_id``."""
    return [key for key, check in CHECKS.items() if check.task == task_id]


def task_points(task: Task) -> int:
    """Points of a task: its ``TASK_POINTS`` entry, or for a notebook task its checks' sum."""
    if task.checked_by == "notebook":
        keys = checks_of_task(task.id)
        return sum(CHECKS[key].points for key in keys) if keys else DEFAULT_POINTS
    return TASK_POINTS.get(task.id, DEFAULT_POINTS)


def total_points() -> int:
    """Points of every task in the table (what ``make check`` totals)."""
    return sum(task_points(task) for task in TASKS)
