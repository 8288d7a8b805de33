"""Points: one scale, out of 100, shared by ``make check`` and ``kit grade``.

The contract both sides follow:

* **Points belong to tasks only.** ``TASK_POINTS`` gives every task of ``course/tasks.py``
  its points, notebook tasks (a choice made in a notebook cell, such as 1.9) included;
  they add up to 100 (``total_points()``).
* **Every graded check cell belongs to exactly one task.** ``CHECKS`` maps
  ``"<Notebook>/<check name>"`` (the cell's ``metadata.check``: stable, never renamed once
  published, because grades are keyed on it) to the ID of the task whose code the cell
  exercises, a task of the same notebook. A check cell that exercises several tasks (a
  sandwich layer, a network trained end to end, a fast layer compared with its naive
  twin) belongs to the last of them in course order: the one that completes what it
  checks. A check cell has no points of its own. ``tests/test_rubric.py`` proves that
  every check cell of every notebook is listed here and every task has points.
* **``kit grade``** awards a task's points when every check cell of the task passes under
  nbval *and* the task's hidden checks (its functions called on other inputs, compared
  with the solution) pass; otherwise it awards 0 for the task.
* **``make check``** (``python -m course check``) awards a pytest-checked task's points
  when its tests pass, and a notebook task's points when the student's *saved* outputs
  of its check cells show that each cell ran and printed only ``check passed`` lines (no
  ``check FAILED``, no error); a check cell never run shows ``NOT RUN`` and 0 points.
  So for a correct submission whose notebooks were run, ``make check`` and ``kit grade``
  give the same total.

The functions below are what both sides call: ``task_points``, ``checks_of_task``,
``task_of_check`` and ``total_points``.
"""

from __future__ import annotations

from course.tasks import TASKS_BY_ID, Task

TASK_POINTS: dict[str, int] = {
    # FullyConnectedNets: 39
    "1.1": 2,
    "1.2": 3,
    "1.3": 1,
    "1.4": 2,
    "1.5": 3,
    "1.6": 3,
    "1.7": 2,
    "1.8": 6,
    "1.9": 3,
    "1.10": 2,
    "1.11": 2,
    "1.12": 3,
    "1.13": 2,
    "1.14": 5,
    # BatchNormalization: 19
    "2.1": 4,
    "2.2": 5,
    "2.3": 3,
    "2.4": 3,
    "2.5": 4,
    # Dropout: 6
    "3.1": 3,
    "3.2": 3,
    # ConvolutionalNetworks: 36
    "4.1": 5,
    "4.2": 5,
    "4.3": 3,
    "4.4": 3,
    "4.5": 2,
    "4.6": 6,
    "4.7": 3,
    "4.8": 3,
    "4.9": 3,
    "4.10": 3,
}

CHECKS: dict[str, str] = {
    "FullyConnectedNets/affine-forward": "1.1",
    "FullyConnectedNets/affine-backward": "1.2",
    "FullyConnectedNets/relu-forward": "1.3",
    "FullyConnectedNets/relu-backward": "1.4",
    # affine_relu_forward/backward: tasks 1.1 to 1.4 together.
    "FullyConnectedNets/affine-relu-sandwich": "1.4",
    "FullyConnectedNets/softmax-loss": "1.5",
    "FullyConnectedNets/svm-loss": "1.6",
    "FullyConnectedNets/fc-net-init": "1.7",
    "FullyConnectedNets/fc-net-loss-gradients": "1.8",
    # A FullyConnectedNet trained with the given SGD: its loss and gradients at work.
    "FullyConnectedNets/two-layer-net-training": "1.8",
    "FullyConnectedNets/overfit-small-data": "1.9",
    "FullyConnectedNets/sgd-momentum": "1.10",
    "FullyConnectedNets/rmsprop": "1.11",
    "FullyConnectedNets/adam": "1.12",
    "FullyConnectedNets/adagrad": "1.13",
    # The He and Xavier scales are drawn by the initialisation the student writes.
    "FullyConnectedNets/weight-init-scales": "1.7",
    "FullyConnectedNets/best-model-accuracy": "1.14",
    "BatchNormalization/bn-train-stats": "2.1",
    "BatchNormalization/bn-test-stats": "2.1",
    "BatchNormalization/bn-backward": "2.2",
    "BatchNormalization/bn-alt-matches": "2.3",
    "BatchNormalization/bn-alt-not-slower": "2.3",
    # A FullyConnectedNet with batchnorm layers: batchnorm's forward and backward passes.
    "BatchNormalization/fc-bn-gradients": "2.2",
    "BatchNormalization/ln-forward": "2.4",
    "BatchNormalization/ln-backward": "2.5",
    "BatchNormalization/fc-ln-gradients": "2.5",
    "Dropout/dropout-forward-stats": "3.1",
    "Dropout/dropout-forward-seed": "3.1",
    "Dropout/dropout-backward": "3.2",
    "Dropout/fc-dropout-gradients": "3.2",
    "ConvolutionalNetworks/conv-forward-naive": "4.1",
    "ConvolutionalNetworks/conv-backward-naive": "4.2",
    "ConvolutionalNetworks/max-pool-forward-naive": "4.3",
    "ConvolutionalNetworks/max-pool-backward-naive": "4.4",
    # The four naive layers (4.1 to 4.4) against the given fast ones.
    "ConvolutionalNetworks/fast-matches-naive": "4.4",
    # Given fast layers and the ReLU of notebook 1: the building block of 4.6's network.
    "ConvolutionalNetworks/conv-relu-pool-sandwich": "4.6",
    "ConvolutionalNetworks/cnn-init": "4.5",
    "ConvolutionalNetworks/cnn-initial-loss": "4.6",
    "ConvolutionalNetworks/cnn-gradients": "4.6",
    "ConvolutionalNetworks/cnn-overfit": "4.6",
    "ConvolutionalNetworks/cnn-train-target": "4.6",
    "ConvolutionalNetworks/spatial-batchnorm-forward": "4.7",
    "ConvolutionalNetworks/spatial-batchnorm-backward": "4.8",
    "ConvolutionalNetworks/spatial-groupnorm-forward": "4.9",
    "ConvolutionalNetworks/spatial-groupnorm-backward": "4.10",
    # Spatial batchnorm (4.7, 4.8) between a given convolution and ReLU.
    "ConvolutionalNetworks/conv-bn-relu-sandwich": "4.8",
}


def _task_id(task: Task | str) -> str:
    return task if isinstance(task, str) else task.id


def task_points(task: Task | str) -> int:
    """Points of a task (a ``Task`` or its ID); ``KeyError`` naming it if it has none."""
    task_id = _task_id(task)
    try:
        return TASK_POINTS[task_id]
    except KeyError:
        raise KeyError(f"task {task_id} has no points in course/rubric.py (TASK_POINTS)"
                       ) from None


def checks_of_task(task_id: str) -> list[str]:
    """The ``"<Notebook>/<check name>"`` keys of the check cells of task ``task_id``, in
    notebook order."""
    return [key for key, owner in CHECKS.items() if owner == task_id]


def task_of_check(notebook: str, check_name: str) -> str:
    """The ID of the task that check cell ``check_name`` of ``notebook`` belongs to;
    ``KeyError`` naming the missing ``CHECKS`` key if it belongs to none."""
    key = f"{notebook}/{check_name}"
    try:
        return CHECKS[key]
    except KeyError:
        raise KeyError(f"check cell {key} belongs to no task: add it to CHECKS in "
                       "course/rubric.py") from None


def total_points() -> int:
    """The points of every task: what a correct, complete submission earns (100)."""
    return sum(TASK_POINTS[task_id] for task_id in TASKS_BY_ID)
