"""Notebook-cell tasks measured in the grader: the trained model, rebuilt and scored here.

A notebook-cell task (overfitting 50 examples, the best fully connected net) is a choice
made in the student's cell; the check cell after it prints a verdict the student's code
could forge. So after the student's cell, kit code in the kernel exports each trained
model as plain data (``export_cell``: ``drivers.export_model`` written with
``transport``), and this module, in the grader process:

1. reads the export (no pickle, capped) and checks every field: the class, the
   normalisation, a chain of weight shapes that fits the grader's data, exactly the
   parameters the solution's class has, finite float arrays, running averages shaped
   like their layer;
2. rebuilds the model with the solution's own ``FullyConnectedNet`` and those arrays;
3. measures its accuracy on data the grader loads itself (``NOTEBOOK_TASKS`` says which:
   the 50 training examples for 1.9, the test split, whose labels the notebook never
   needs, for 1.14) against the target the notebook's check cell states.

The wiring into the notebook run (the export cell, the worker's labels withheld) comes
with the grading integration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.hidden import transport

NORMALIZATIONS = (None, "batchnorm", "layernorm")
MAX_PARAMETERS = 20_000_000  # floats per model: a net for these datasets is far smaller

# Appended after the student's cell by the integration (``export_cell`` fills it in).
EXPORT_CELL = """\
import sys as _kit_sys
from pathlib import Path as _KitPath

_kit_sys.path.insert(0, {control!r})
import drivers as _kit_drivers
import transport as _kit_transport

_kit_transport.write_message(_KitPath({path!r}), {{"models": {{
    _kit_label: _kit_drivers.export_model(_kit_model)
    for _kit_label, _kit_model in {models}.items()}}}})
"""


def export_cell(control: Path, path: Path, models: str) -> str:
    """The code of the export cell: ``models`` is the notebook expression of a dict from
    label to trained model, e.g. ``{"best model": best_model}``; ``control`` the folder
    holding ``drivers.py`` and ``transport.py`` (the worker's control folder)."""
    return EXPORT_CELL.format(control=str(control), path=str(path), models=models)


@dataclass(frozen=True)
class NotebookTask:
    """How a notebook-cell task is measured: which exported models, on which data, to
    which accuracy (the targets of the notebook's own check cell)."""

    models: tuple[str, ...]
    split: str  # "train50" (the 50 examples the cell fits) or "test"
    targets: dict[str, float]  # dataset -> accuracy every model must reach
    function: str


NOTEBOOK_TASKS = {
    "1.9": NotebookTask(("3-layer net", "5-layer net"), "train50",
                        {"digits": 1.0, "cifar10": 1.0}, "overfitting cell"),
    "1.14": NotebookTask(("best model",), "test", {"digits": 0.95, "cifar10": 0.50},
                         "best-model cell"),
}


@dataclass
class Measured:
    """One exported model: its accuracy, or why it could not be measured."""

    accuracy: float | None
    problems: list[str] = field(default_factory=list)


class ExportError(ValueError):
    """An exported model that the grader will not rebuild."""


# ---------------------------------------------------------------------------------------
# Checking an export and rebuilding the model
# ---------------------------------------------------------------------------------------

def _float_array(name: str, value: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if isinstance(value, transport.Rejected):
        raise ExportError(f"{name}: {value.why}")
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        raise ExportError(f"{name}: not a float array")
    if shape is not None and value.shape != shape:
        raise ExportError(f"{name}: shape {value.shape}, expected {shape}")
    if not np.isfinite(value).all():
        raise ExportError(f"{name}: NaN or infinite entries")
    return value.astype(np.float64)


def layer_dims(params: dict[str, Any], input_dim: int) -> list[int]:
    """The layer sizes a chain of weights ``W1 (input_dim, d1), W2 (d1, d2), ...`` has."""
    dims = [input_dim]
    layer = 1
    while f"W{layer}" in params:
        weight = params[f"W{layer}"]
        if isinstance(weight, transport.Rejected):
            raise ExportError(f"W{layer}: {weight.why}")
        if not isinstance(weight, np.ndarray) or weight.ndim != 2 or weight.shape[0] != dims[-1]:
            got = weight.shape if isinstance(weight, np.ndarray) else type(weight).__name__
            raise ExportError(f"W{layer}: shape {got}, expected ({dims[-1]}, ...)")
        dims.append(int(weight.shape[1]))
        layer += 1
    if len(dims) < 3:
        raise ExportError("a FullyConnectedNet needs W1 and W2 at least")
    return dims


def rebuild(export: Any, input_dim: int, num_classes: int) -> Any:
    """The solution's ``FullyConnectedNet`` with the exported arrays, in float64."""
    from course.classifiers.fc_net import FullyConnectedNet

    if not isinstance(export, dict) or export.get("class") not in ("FullyConnectedNet",
                                                                   "TwoLayerNet"):
        raise ExportError("not an exported FullyConnectedNet")
    params = export.get("params")
    if not isinstance(params, dict):
        raise ExportError("params: not a dict")
    normalization = export.get("normalization")
    keep = export.get("dropout_keep_ratio", 1.0)
    if normalization not in NORMALIZATIONS or isinstance(keep, bool) \
            or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ExportError("normalization or dropout_keep_ratio out of range")
    dims = layer_dims(params, input_dim)
    if dims[-1] != num_classes:
        raise ExportError(f"the last layer has {dims[-1]} outputs; the data has "
                          f"{num_classes} classes")
    if sum(int(np.prod(v.shape)) for v in params.values() if isinstance(v, np.ndarray)) \
            > MAX_PARAMETERS:
        raise ExportError("more parameters than any net for this data needs")
    model = FullyConnectedNet(dims[1:-1], input_dim=input_dim, num_classes=num_classes,
                              normalization=normalization, dropout_keep_ratio=keep,
                              dtype=np.float64, seed=0)
    if set(params) != set(model.params):
        raise ExportError(f"parameters {sorted(params)[:12]}, expected {sorted(model.params)}")
    model.params = {name: _float_array(name, params[name], model.params[name].shape)
                    for name in model.params}
    _restore_running_averages(model, export.get("bn_params"))
    return model


def _restore_running_averages(model: Any, found: Any) -> None:
    if model.normalization != "batchnorm":
        return
    if not isinstance(found, list) or len(found) != len(model.bn_params):
        raise ExportError("bn_params: one dict per hidden layer expected")
    for index, (param, saved) in enumerate(zip(model.bn_params, found, strict=True)):
        width = model.params[f"W{index + 1}"].shape[1]
        if not isinstance(saved, dict):
            raise ExportError(f"bn_params[{index}]: not a dict")
        for key in ("running_mean", "running_var"):
            param[key] = _float_array(f"bn_params[{index}][{key!r}]", saved.get(key), (width,))


# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------

def accuracy_of(model: Any, X: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    """The share of ``X`` whose highest test-mode score is the label, in batches."""
    right = 0
    for start in range(0, len(X), batch):
        scores = model.loss(X[start:start + batch].astype(np.float64))
        right += int(np.sum(np.argmax(scores, axis=1) == y[start:start + batch]))
    return right / len(X)


def measure_export(path: Path, X: np.ndarray, y: np.ndarray) -> dict[str, Measured]:
    """Every model of an export file, rebuilt and measured on ``X, y`` (the grader's)."""
    try:
        message = transport.read_message(path)
    except transport.MessageError as error:
        return {"": Measured(None, [f"the export is unreadable: {error}"])}
    models = message.get("models") if isinstance(message, dict) else None
    if not isinstance(models, dict):
        return {"": Measured(None, ["the export holds no models"])}
    input_dim = int(np.prod(X.shape[1:]))
    classes = int(y.max()) + 1
    found = {}
    for label, export in models.items():
        try:
            model = rebuild(export, input_dim, classes)
        except ExportError as error:
            found[label] = Measured(None, [str(error)])
            continue
        found[label] = Measured(accuracy_of(model, X, y))
    return found


def task_data(task: str, data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The examples a notebook task is measured on, from data the grader loaded."""
    if NOTEBOOK_TASKS[task].split == "train50":
        return data["X_train"][:50], data["y_train"][:50]
    return data["X_test"], data["y_test"]


def judge_notebook_task(task: str, export: Path, data: dict[str, np.ndarray],
                        dataset: str = "digits") -> tuple[bool, list[str]]:
    """Whether every model the task needs reaches its target, and feedback lines (the
    measured accuracy is the student's own result, so it is shown)."""
    spec = NOTEBOOK_TASKS[task]
    X, y = task_data(task, data)
    measured = measure_export(export, X, y)
    target = spec.targets[dataset]
    where = "its 50 training examples" if spec.split == "train50" else "held-out test images"
    lines = []
    for label in spec.models:
        result = measured.get(label)
        if result is None:
            problems = measured.get("", Measured(None, ["not exported"])).problems
            lines.append(f"task {task} ({spec.function}): {label}: {problems[0]}")
        elif result.accuracy is None:
            lines.append(f"task {task} ({spec.function}): {label}: {result.problems[0]}")
        elif result.accuracy < target:
            lines.append(f"task {task} ({spec.function}): {label}: accuracy "
                         f"{result.accuracy:.3f} on {where} (must reach {target:.2f})")
    return not lines, lines
