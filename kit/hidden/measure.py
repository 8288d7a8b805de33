"""Notebook-cell tasks measured in the grader: what the student's cell chose, judged here.

A notebook-cell task (overfitting 50 examples, the best fully connected net) is a choice
made in the student's cell; the check cell after it prints a verdict the student's code
could forge (replace ``check_true`` in ``__main__``, or just print ``check passed``). So:

1. **Export, in the kernel.** ``kit grade`` inserts a kit-written cell right after the
   task's cell (``export_cell``; the sanitize step is in ``kit.grade``, the cell itself
   is made by ``kit.sandbox.kit_cell``: no outputs, ``nbval-ignore-output``, a ``kit-``
   cell ID, and nbval's records of the cells after it mapped back to the reference
   numbering). It writes, as data only (``transport``, no pickle), each value the task
   names in ``NotebookTask.exports``: a trained model through ``drivers.export_model``,
   or the hyperparameters chosen. The cell reads ``drivers.py`` and ``transport.py`` from
   the export folder (``install_helpers``), which the kernel's isolation sandbox may
   write besides its own home; nothing of the solution tree is there.
2. **Judge, in the grader** (``judge_notebook_task``, ``task_verdict``): read the export
   (no pickle, capped), check every field, and decide with the solution's own code on
   data the grader loads itself (``grader_data``: the solution tree's
   ``course.data_utils``):

   * ``"model"`` tasks (1.14): rebuild the model with the solution's
     ``FullyConnectedNet`` and those arrays (a chain of weight shapes that fits the data,
     exactly the parameters the solution's class has, finite float arrays, running
     averages shaped like their layer) and measure its accuracy on the test split
     against the target of the notebook's check cell;
   * ``"replay"`` tasks (1.9): re-run the cell's training with the solution's
     ``FullyConnectedNet`` and ``Solver`` and the student's learning rate and weight
     scale, and require what the check cell requires (100% on the 50 examples at some
     epoch). A replay, not the exported nets: the ``Solver`` leaves a model holding its
     best-*validation* parameters, which on the digits fit 49 of the 50 examples for the
     solution's own 5-layer net although its training accuracy reached 100%. The replay
     (``replay_overfitting``) repeats the notebook cell's given code: change one, change
     the other.

   The result is a ``kit.hidden.run.TaskVerdict``, so ``kit grade`` scores a notebook
   task as any task with hidden checks: its points need its check cell to pass under
   nbval **and** this verdict. Feedback names the task, the model, the accuracy measured
   and the target; a missing, unreadable or malformed export says so.

**Test labels.** The notebooks never need ``y_test`` for a verdict (only an ungraded
``nbval-ignore-output`` cell prints a test accuracy), so the grading kernel's
``course.data_utils`` hands out ``y_test`` as ``-1`` everywhere (same shape and dtype:
the printed shapes do not change; ``kit.sandbox.WITHHOLD_TEST_LABELS``), and the grader
measures 1.14 on the test split with the true labels it loads itself. That stops a best
model trained on ``data["y_test"]``, not a determined cheat: the embedded digits ship
inside scikit-learn, which the kernel must be able to import (``load_digits`` returns all
1797 labels, and the split is the documented seeded permutation), and with CIFAR-10 the
dataset folder the kernel reads holds ``test_batch`` with its labels. Withholding those
would mean a kernel without scikit-learn's data files and a copy of CIFAR-10 without the
test batch; until then a model trained on test labels it rebuilt itself is caught only
by reading the submission.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.hidden import transport

HERE = Path(__file__).resolve().parent
HELPERS = ("drivers.py", "transport.py")  # what the export cell imports (numpy and stdlib only)
NORMALIZATIONS = (None, "batchnorm", "layernorm")
MAX_PARAMETERS = 20_000_000  # floats per model: a net for these datasets is far smaller
WEIGHT_SCALE_NAMES = ("xavier", "he")
MAX_HYPERPARAMETER = 100.0  # a learning rate or weight scale beyond this is not a choice

# Inserted after the student's cell (``export_cell`` fills it in). Every value is found
# and exported on its own, so one missing name does not hide the others; what fails is
# recorded by its exception's type only (the grader shows it; nothing else is trusted).
EXPORT_CELL = """\
# Inserted by kit grade: exports what task {task} chose, as data, for the grader to judge.
def _kit_export():
    import importlib.util
    from pathlib import Path

    def load(name):
        spec = importlib.util.spec_from_file_location(
            "_kit_" + name, str(Path({helpers!r}) / (name + ".py")))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    drivers, transport = load("drivers"), load("transport")
    found = {{}}
    for label, value_of in [
{getters}
    ]:
        try:
            value = value_of()
            found[label] = drivers.export_model(value) if {as_model} else value
        except Exception as error:
            found[label] = {{"error": type(error).__name__}}
    transport.write_message(Path({path!r}), {{"models": found}})


_kit_export()
del _kit_export
"""


@dataclass(frozen=True)
class NotebookTask:
    """How a notebook-cell task is exported and judged.

    ``exports``: label -> the notebook expression exported under that label (evaluated
    in the kernel right after the task's cell). ``kind``: ``"model"`` (a trained
    ``FullyConnectedNet``, rebuilt and measured on ``split``) or ``"replay"`` (the
    hyperparameters of a training the grader re-runs). ``targets``: dataset -> the
    accuracy every model must reach (the notebook check cell's own targets)."""

    notebook: str
    function: str
    exports: dict[str, str]
    kind: str
    split: str  # "train50" (the 50 examples the cell fits) or "test"
    targets: dict[str, float]
    depths: dict[str, int] = field(default_factory=dict)  # replay: label -> layers

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.exports)


def _choice_of(depth: int) -> str:
    return f'lambda: {{"learning_rate": learning_rates[{depth}], ' \
           f'"weight_scale": weight_scales[{depth}]}}'


NOTEBOOK_TASKS = {
    "1.9": NotebookTask(
        "FullyConnectedNets", "overfitting cell",
        {f"{depth}-layer net": _choice_of(depth) for depth in (3, 5)},
        "replay", "train50", {"digits": 1.0, "cifar10": 1.0},
        {"3-layer net": 3, "5-layer net": 5}),
    "1.14": NotebookTask(
        "FullyConnectedNets", "best-model cell", {"best model": "lambda: best_model"},
        "model", "test", {"digits": 0.95, "cifar10": 0.50}),
}


def export_path(folder: Path, task: str) -> Path:
    """Where the export cell of ``task`` writes, in the export folder ``folder``."""
    return Path(folder) / f"task-{task.replace('.', '-')}.npz"


def install_helpers(folder: Path) -> None:
    """Copy what the export cell imports (``drivers.py``, ``transport.py``) into the
    export folder, the one the kernel reads them from."""
    for name in HELPERS:
        shutil.copy(HERE / name, Path(folder) / name)
        (Path(folder) / name).chmod(0o644)  # the user mode's sandbox user reads them


def export_cell(task: str, helpers: Path, path: Path) -> str:
    """The code of the export cell of ``task``: ``helpers`` is the folder holding
    ``drivers.py`` and ``transport.py``, ``path`` the file it writes."""
    spec = NOTEBOOK_TASKS[task]
    getters = "\n".join(f"        ({label!r}, {expression}),"
                         for label, expression in spec.exports.items())
    return EXPORT_CELL.format(task=task, helpers=str(helpers), path=str(path),
                              getters=getters, as_model=spec.kind == "model")


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


def _raise_if_failed(export: Any) -> None:
    """An entry the export cell could not make: ``{"error": "NameError"}``."""
    if isinstance(export, dict) and set(export) == {"error"}:
        error = export["error"]
        why = error[:60] if isinstance(error, str) and error.isidentifier() else "an error"
        raise ExportError(f"the notebook had nothing to export after the task's cell "
                          f"({why})")


def rebuild(export: Any, input_dim: int, num_classes: int) -> Any:
    """The solution's ``FullyConnectedNet`` with the exported arrays, in float64."""
    from course.classifiers.fc_net import FullyConnectedNet

    _raise_if_failed(export)
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


def read_export(path: Path) -> dict[str, Any]:
    """The ``models`` of an export file (label -> exported value); ``ExportError`` for a
    missing, unreadable or malformed file (nothing is unpickled)."""
    if not Path(path).exists() and not Path(path).is_symlink():
        raise ExportError("not exported: the notebook's run stopped before the kit's "
                          "export cell after the task's cell")
    try:
        message = transport.read_message(path)
    except transport.MessageError as error:
        raise ExportError(f"the export is unreadable: {error}") from None
    models = message.get("models") if isinstance(message, dict) else None
    if not isinstance(models, dict):
        raise ExportError("the export holds no models")
    return models


def measure_export(path: Path, X: np.ndarray, y: np.ndarray) -> dict[str, Measured]:
    """Every model of an export file, rebuilt and measured on ``X, y`` (the grader's);
    the key ``""`` says why there is none."""
    try:
        models = read_export(path)
    except ExportError as error:
        return {"": Measured(None, [str(error)])}
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


# ---------------------------------------------------------------------------------------
# Replaying a training with the student's hyperparameters
# ---------------------------------------------------------------------------------------

def _positive(name: str, value: Any) -> float:
    if isinstance(value, transport.Rejected):
        raise ExportError(f"{name}: {value.why}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0 < value <= MAX_HYPERPARAMETER:
        raise ExportError(f"{name}: not a number in (0, {MAX_HYPERPARAMETER:g}]")
    return float(value)


def hyperparameters(choice: Any) -> tuple[float, float | str]:
    """The learning rate and weight scale of an exported choice, checked."""
    _raise_if_failed(choice)
    if not isinstance(choice, dict):
        raise ExportError("not a choice of learning_rate and weight_scale")
    scale = choice.get("weight_scale")
    if not (isinstance(scale, str) and scale in WEIGHT_SCALE_NAMES):
        scale = _positive("weight_scale", scale)
    return _positive("learning_rate", choice.get("learning_rate")), scale


def replay_overfitting(choice: Any, depth: int, data: dict[str, np.ndarray]) -> Measured:
    """Task 1.9's training re-run here with the solution's code and the student's
    learning rate and weight scale: the best training accuracy over its epochs (what the
    check cell requires to be 100%)."""
    from course.classifiers.fc_net import FullyConnectedNet
    from course.solver import NonFiniteLossError, Solver

    try:
        learning_rate, weight_scale = hyperparameters(choice)
    except ExportError as error:
        return Measured(None, [str(error)])
    small = {"X_train": data["X_train"][:50], "y_train": data["y_train"][:50],
             "X_val": data["X_val"], "y_val": data["y_val"]}
    model = FullyConnectedNet([100] * (depth - 1), input_dim=int(np.prod(
        small["X_train"].shape[1:])), num_classes=int(data["y_train"].max()) + 1,
        weight_scale=weight_scale, seed=0)
    solver = Solver(model, small, update_rule="sgd",
                    optim_config={"learning_rate": learning_rate}, num_epochs=20,
                    batch_size=25, verbose=False, seed=0)
    try:
        with np.errstate(all="ignore"):
            solver.train()
    except NonFiniteLossError:
        return Measured(None, [f"with learning_rate {learning_rate:g} and weight_scale "
                               f"{weight_scale}, the training loss became inf or nan"])
    return Measured(max(solver.train_acc_history))


# ---------------------------------------------------------------------------------------
# The task's verdict
# ---------------------------------------------------------------------------------------

def task_data(task: str, data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The examples a notebook task is measured on, from data the grader loaded."""
    if NOTEBOOK_TASKS[task].split == "train50":
        return data["X_train"][:50], data["y_train"][:50]
    return data["X_test"], data["y_test"]


def measure_task(task: str, export: Path, data: dict[str, np.ndarray]) -> dict[str, Measured]:
    """Each value the task exports, judged as its kind says (see the module's doc)."""
    spec = NOTEBOOK_TASKS[task]
    if spec.kind == "model":
        return measure_export(export, *task_data(task, data))
    try:
        choices = read_export(export)
    except ExportError as error:
        return {"": Measured(None, [str(error)])}
    return {label: replay_overfitting(choices[label], depth, data)
            for label, depth in spec.depths.items() if label in choices}


def judge_notebook_task(task: str, export: Path, data: dict[str, np.ndarray],
                        dataset: str = "digits") -> tuple[bool, list[str]]:
    """Whether every model the task needs reaches its target, and feedback lines (the
    measured accuracy is the student's own result, so it is shown). Never raises for
    what the export holds."""
    spec = NOTEBOOK_TASKS[task]
    try:
        measured = measure_task(task, export, data)
    except Exception as error:  # a check above missed a case: a verdict, not a crash
        measured = {"": Measured(None, [f"the export could not be judged "
                                        f"({type(error).__name__})"])}
    target = spec.targets[dataset]
    where = "its 50 training examples" if spec.split == "train50" else "held-out test images"
    how = "best training accuracy over the epochs of the grader's replay" \
        if spec.kind == "replay" else "accuracy"
    lines = []
    for label in spec.models:
        result = measured.get(label)
        if result is None:
            problems = measured.get("", Measured(None, ["not exported"])).problems
            lines.append(f"task {task} ({spec.function}): {label}: {problems[0]}")
        elif result.accuracy is None:
            lines.append(f"task {task} ({spec.function}): {label}: {result.problems[0]}")
        elif result.accuracy < target:
            lines.append(f"task {task} ({spec.function}): {label}: {how} "
                         f"{result.accuracy:.3f} on {where} (must reach {target:.2f})")
    return not lines, lines


def task_verdict(task: str, export: Path, data: dict[str, np.ndarray],
                 dataset: str = "digits") -> Any:
    """The grader's verdict on a notebook task as the hidden checks give theirs (a
    ``kit.hidden.run.TaskVerdict``), one case per model the task needs."""
    from kit.hidden.run import CaseOutcome, TaskVerdict

    spec = NOTEBOOK_TASKS[task]
    passed, lines = judge_notebook_task(task, export, data, dataset)
    cases = [CaseOutcome(task, label, not any(f": {label}: " in line for line in lines),
                         [line for line in lines if f": {label}: " in line])
             for label in spec.models]
    return TaskVerdict(task, spec.function, passed, cases, lines)


_DATA_LOCK = threading.Lock()


@functools.lru_cache(maxsize=2)
def _load(dataset: str) -> dict[str, np.ndarray]:
    from course.data_utils import get_data

    with contextlib.redirect_stdout(io.StringIO()):  # its one-line notice
        data = get_data(dataset)
    for array in data.values():
        array.flags.writeable = False  # shared by every submission of the batch
    return data


def grader_data(dataset: str = "digits") -> dict[str, np.ndarray]:
    """The notebooks' data as the grader loads it, with every label, through the solution
    tree's ``course.data_utils`` (refused if this process imports another ``course``),
    once per process."""
    from kit.hidden.run import check_solution_package

    check_solution_package()
    with _DATA_LOCK:
        return _load(dataset)
