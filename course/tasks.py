"""The table of student tasks.

A task ID (``"1.3"``: notebook 1, task 3) ties together four things, and this table is
where they meet:

* the ``# BEGIN SOLUTION 1.3`` marker around the solution code (the release tool
  refuses IDs that are not listed here);
* the ``NotImplementedError`` message of the stub that replaces it in the student
  release;
* the ``@pytest.mark.task("1.3")`` marker on the tests that check it
  (``pytest --task 1.3`` runs just those);
* the notebook heading that introduces it, which ends in ``[task 1.3]``.

Most tasks are functions in ``course/`` checked by pytest. A few (``checked_by =
"notebook"``) are choices made in a notebook cell, such as hyperparameters that must reach
a target; the notebook's check cell right after them is their test.

``make check`` prints a scoreboard with one row per task listed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One student task: what to write, where, and which notebook teaches it."""

    id: str
    title: str
    notebook: str
    path: str
    function: str
    checked_by: str = "pytest"  # or "notebook": the check cell after the stub is its test
    # Tasks whose code this task's tests call (a backward test runs the forward pass
    # first), so until those are written its tests fail with *their* stubs.
    requires: tuple[str, ...] = ()


NOTEBOOKS = (
    "FullyConnectedNets",
    "BatchNormalization",
    "Dropout",
    "ConvolutionalNetworks",
)

TASKS: tuple[Task, ...] = (
    Task(
        "1.1",
        "Affine layer, forward pass",
        "FullyConnectedNets",
        "course/layers.py",
        "affine_forward",
    ),
    Task(
        "1.2",
        "Affine layer, backward pass",
        "FullyConnectedNets",
        "course/layers.py",
        "affine_backward",
        requires=("1.1",),
    ),
    Task("1.3", "ReLU, forward pass", "FullyConnectedNets", "course/layers.py", "relu_forward"),
    Task(
        "1.4",
        "ReLU, backward pass",
        "FullyConnectedNets",
        "course/layers.py",
        "relu_backward",
        requires=("1.3",),
    ),
    Task(
        "1.5", "Softmax loss and gradient", "FullyConnectedNets", "course/layers.py", "softmax_loss"
    ),
    Task(
        "1.6",
        "Multiclass SVM loss and gradient",
        "FullyConnectedNets",
        "course/layers.py",
        "svm_loss",
    ),
    Task(
        "1.7",
        "FullyConnectedNet: parameter initialisation",
        "FullyConnectedNets",
        "course/classifiers/fc_net.py",
        "FullyConnectedNet.__init__",
    ),
    Task(
        "1.8",
        "FullyConnectedNet: loss and gradients",
        "FullyConnectedNets",
        "course/classifiers/fc_net.py",
        "FullyConnectedNet.loss",
        requires=("1.1", "1.2", "1.3", "1.4", "1.5", "1.7"),
    ),
    Task(
        "1.9",
        "Overfit 50 examples with a 3-layer and a 5-layer net",
        "FullyConnectedNets",
        "notebooks/FullyConnectedNets.ipynb",
        "overfitting cell",
        checked_by="notebook",
    ),
    Task("1.10", "SGD with momentum", "FullyConnectedNets", "course/optim.py", "sgd_momentum"),
    Task("1.11", "RMSProp", "FullyConnectedNets", "course/optim.py", "rmsprop"),
    Task("1.12", "Adam", "FullyConnectedNets", "course/optim.py", "adam"),
    Task("1.13", "AdaGrad", "FullyConnectedNets", "course/optim.py", "adagrad"),
    Task(
        "1.14",
        "Train your best fully connected net",
        "FullyConnectedNets",
        "notebooks/FullyConnectedNets.ipynb",
        "best-model cell",
        checked_by="notebook",
    ),
    Task(
        "2.1",
        "Batch normalisation, forward pass",
        "BatchNormalization",
        "course/layers.py",
        "batchnorm_forward",
    ),
    Task(
        "2.2",
        "Batch normalisation, backward pass through the graph",
        "BatchNormalization",
        "course/layers.py",
        "batchnorm_backward",
        requires=("2.1",),
    ),
    Task(
        "2.3",
        "Batch normalisation, backward pass in closed form",
        "BatchNormalization",
        "course/layers.py",
        "batchnorm_backward_alt",
        requires=("2.1", "2.2"),  # its tests compare it with batchnorm_backward
    ),
    Task(
        "2.4",
        "Layer normalisation, forward pass",
        "BatchNormalization",
        "course/layers.py",
        "layernorm_forward",
        requires=("2.1",),  # a test compares it with batchnorm of the transpose
    ),
    Task(
        "2.5",
        "Layer normalisation, backward pass",
        "BatchNormalization",
        "course/layers.py",
        "layernorm_backward",
        requires=("2.4", "2.2"),  # a test compares it with batchnorm_backward's transpose
    ),
    Task("3.1", "Dropout, forward pass", "Dropout", "course/layers.py", "dropout_forward"),
    Task(
        "3.2",
        "Dropout, backward pass",
        "Dropout",
        "course/layers.py",
        "dropout_backward",
        requires=("3.1",),
    ),
    # Notebook 4: convolutional networks. The fast layers are given code, not tasks.
    Task(
        "4.1",
        "Convolution, forward pass (naive)",
        "ConvolutionalNetworks",
        "course/layers.py",
        "conv_forward_naive",
    ),
    Task(
        "4.2",
        "Convolution, backward pass (naive)",
        "ConvolutionalNetworks",
        "course/layers.py",
        "conv_backward_naive",
        requires=("4.1",),
    ),
    Task(
        "4.3",
        "Max pooling, forward pass (naive)",
        "ConvolutionalNetworks",
        "course/layers.py",
        "max_pool_forward_naive",
    ),
    Task(
        "4.4",
        "Max pooling, backward pass (naive)",
        "ConvolutionalNetworks",
        "course/layers.py",
        "max_pool_backward_naive",
        requires=("4.3",),
    ),
    Task(
        "4.5",
        "ThreeLayerConvNet: parameter initialisation",
        "ConvolutionalNetworks",
        "course/classifiers/cnn.py",
        "ThreeLayerConvNet.__init__",
    ),
    Task(
        "4.6",
        "ThreeLayerConvNet: loss and gradients",
        "ConvolutionalNetworks",
        "course/classifiers/cnn.py",
        "ThreeLayerConvNet.loss",
        requires=("1.1", "1.2", "1.3", "1.4", "1.5", "4.5"),
    ),
    Task(
        "4.7",
        "Spatial batch normalisation, forward pass",
        "ConvolutionalNetworks",
        "course/layers.py",
        "spatial_batchnorm_forward",
        requires=("2.1",),  # written with batchnorm_forward
    ),
    Task(
        "4.8",
        "Spatial batch normalisation, backward pass",
        "ConvolutionalNetworks",
        "course/layers.py",
        "spatial_batchnorm_backward",
        requires=("2.1", "2.2", "4.7"),  # written with batchnorm_forward/backward
    ),
    Task(
        "4.9",
        "Spatial group normalisation, forward pass",
        "ConvolutionalNetworks",
        "course/layers.py",
        "spatial_groupnorm_forward",
        requires=("2.4",),  # a test compares G = 1 and G = C with layernorm_forward
    ),
    Task(
        "4.10",
        "Spatial group normalisation, backward pass",
        "ConvolutionalNetworks",
        "course/layers.py",
        "spatial_groupnorm_backward",
        requires=("4.9",),
    ),
)

TASKS_BY_ID: dict[str, Task] = {task.id: task for task in TASKS}


def task_sort_key(task_id: str) -> tuple[int, ...]:
    """Order IDs numerically, so that ``1.10`` comes after ``1.9``."""
    return tuple(int(part) for part in task_id.split("."))


def get_task(task_id: str) -> Task:
    """Return the task with this ID, or raise ``KeyError`` listing the known IDs."""
    try:
        return TASKS_BY_ID[task_id]
    except KeyError:
        known = ", ".join(TASKS_BY_ID)
        raise KeyError(f"unknown task ID {task_id!r}; known IDs: {known}") from None


def prerequisites(task_id: str, tasks: Mapping[str, Task] | None = None) -> set[str]:
    """Every task ``task_id`` needs written first, directly or through another task.

    ``tasks`` maps IDs to tasks (default: this table); the release tests pass the table of
    the tree they release.
    """
    table = TASKS_BY_ID if tasks is None else tasks
    found: set[str] = set()
    pending = list(table[task_id].requires)
    while pending:
        current = pending.pop()
        if current not in found:
            found.add(current)
            pending.extend(table[current].requires)
    return found
