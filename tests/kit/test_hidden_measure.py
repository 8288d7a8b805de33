"""Notebook-cell tasks measured by the grader (``kit.hidden.measure``).

A net trained here stands for the student's: it is exported by the export cell's code
(run in a namespace of its own, as the kernel would), then rebuilt from the export with
the solution's class and measured in this process. The accuracy must be the one
``course.solver.accuracy`` gives the original model; an export that was tampered with
(wrong shapes, missing or extra arrays, NaN, objects, another class) is refused with a
reason, and a model below the notebook's target fails its task. Task 1.9's choice is
replayed (the notebook's own choice passes, one too small to overfit fails), and garbage
where an export should be (a pickled member, a directory, a symlink, wrong trees) is a
failed verdict with a reason, never an exception.

Instructor-only (tests/kit/ is not released).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from course.classifiers.fc_net import FullyConnectedNet
from course.data_utils import get_data
from course.solver import Solver, accuracy
from kit.hidden import drivers, measure, transport


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return get_data("digits")


def _trained(data: dict[str, np.ndarray], normalization: str | None,
             epochs: int = 3) -> FullyConnectedNet:
    model = FullyConnectedNet([40, 30], input_dim=64, num_classes=10,
                              normalization=normalization, weight_scale=1e-2, seed=0)
    Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
           num_epochs=epochs, batch_size=50, verbose=False, seed=0).train()
    return model


def _export(tmp_path: Path, models: dict[str, object], task: str = "1.14") -> Path:
    """Run the export cell of ``task`` as the kernel would: in a namespace of its own
    holding ``models`` (the notebook's names), the helpers in the export folder."""
    folder = tmp_path / "exports"
    folder.mkdir(exist_ok=True)
    measure.install_helpers(folder)
    path = measure.export_path(folder, task)
    exec(measure.export_cell(task, folder, path), dict(models))
    return path


def _export_as(tmp_path: Path, label: str, model: object) -> Path:
    """A one-model export under any label (the export cell's own format)."""
    path = tmp_path / "export.npz"
    transport.write_message(path, {"models": {label: drivers.export_model(model)}})
    return path


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_the_grader_measures_the_accuracy_the_model_has(tmp_path: Path, data: dict,
                                                        normalization: str | None) -> None:
    model = _trained(data, normalization)
    path = _export(tmp_path, {"best_model": model})
    found = measure.measure_export(path, data["X_test"], data["y_test"])
    assert found["best model"].problems == []
    assert found["best model"].accuracy == pytest.approx(
        accuracy(model, data["X_test"], data["y_test"]), abs=1e-12)
    assert found["best model"].accuracy > 0.5


def _tamper(export: dict, how: str) -> dict:
    export = dict(export, params=dict(export["params"]))
    if how == "wrong shape":
        export["params"]["W2"] = export["params"]["W2"][:, :-1]
    elif how == "missing array":
        del export["params"]["b1"]
    elif how == "extra array":
        export["params"]["W9"] = np.zeros((3, 3))
    elif how == "NaN":
        export["params"]["b2"] = np.full_like(export["params"]["b2"], np.nan)
    elif how == "object array":
        export["params"]["W1"] = np.array([object()] * 3, dtype=object)
    elif how == "another class":
        export["class"] = "SomethingElse"
    elif how == "bad normalisation":
        export["normalization"] = "groupnorm"
    elif how == "bad running average":
        export["bn_params"] = [{"running_mean": np.zeros(2), "running_var": np.ones(2)}] * 2
    return export


@pytest.mark.parametrize(("how", "says"), [
    ("wrong shape", "W3: shape"),
    ("missing array", "parameters"),
    ("extra array", "W9"),
    ("NaN", "b2: NaN"),
    ("object array", "not numbers"),
    ("another class", "not an exported FullyConnectedNet"),
    ("bad normalisation", "normalization"),
    ("bad running average", "running_mean"),
])
def test_a_tampered_export_is_refused_with_a_reason(tmp_path: Path, data: dict, how: str,
                                                    says: str) -> None:
    model = _trained(data, "batchnorm", epochs=1)
    export = _tamper(drivers.export_model(model), how)
    transport.write_message(tmp_path / "export.npz", {"models": {"net": export}})
    found = measure.measure_export(tmp_path / "export.npz", data["X_test"], data["y_test"])
    assert found["net"].accuracy is None
    assert says in found["net"].problems[0], found["net"].problems


def test_a_notebook_task_passes_at_its_target_and_fails_below_it(
        tmp_path: Path, data: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _trained(data, None, epochs=5)
    measured = accuracy(model, data["X_test"], data["y_test"])
    path = _export(tmp_path, {"best_model": model})
    task = measure.NOTEBOOK_TASKS["1.14"]
    # The target set exactly at the model's accuracy: reached; a hair above: missed.
    monkeypatch.setitem(task.targets, "digits", measured)
    assert measure.judge_notebook_task("1.14", path, data) == (True, [])
    monkeypatch.setitem(task.targets, "digits", measured + 0.005)
    passed, lines = measure.judge_notebook_task("1.14", path, data)
    assert not passed
    assert lines == [f"task 1.14 (best-model cell): best model: accuracy {measured:.3f} on "
                     f"held-out test images (must reach {measured + 0.005:.2f})"]


def test_a_missing_model_or_unreadable_export_fails_the_task(tmp_path: Path,
                                                             data: dict) -> None:
    path = _export_as(tmp_path, "3-layer net", _trained(data, None, epochs=1))
    passed, lines = measure.judge_notebook_task("1.14", path, data)
    assert not passed and lines == ["task 1.14 (best-model cell): best model: not exported"]
    path.write_bytes(b"not an npz")
    passed, lines = measure.judge_notebook_task("1.14", path, data)
    assert not passed and "the export is unreadable" in lines[0]
    path.unlink()
    passed, lines = measure.judge_notebook_task("1.14", path, data)
    assert not passed and "the notebook's run stopped before the kit's export cell" in lines[0]


def test_the_export_cell_says_which_name_it_could_not_find(tmp_path: Path,
                                                           data: dict) -> None:
    path = _export(tmp_path, {}, task="1.14")  # no best_model in the notebook
    passed, lines = measure.judge_notebook_task("1.14", path, data)
    assert not passed
    assert lines == ["task 1.14 (best-model cell): best model: the notebook had nothing to "
                     "export after the task's cell (NameError)"]
    path = _export(tmp_path, {"best_model": None}, task="1.14")
    assert "(AttributeError)" in measure.judge_notebook_task("1.14", path, data)[1][0]


# ---------------------------------------------------------------------------------------
# Task 1.9: the grader replays the training with the student's hyperparameters
# ---------------------------------------------------------------------------------------

def _overfit_choice(tmp_path: Path, learning_rates: dict, weight_scales: dict) -> Path:
    return _export(tmp_path, {"learning_rates": learning_rates,
                              "weight_scales": weight_scales}, task="1.9")


def test_the_solutions_overfitting_choice_passes_the_replay(tmp_path: Path,
                                                           data: dict) -> None:
    # The notebook's own choice on the digits, trained the way the notebook's cell does.
    path = _overfit_choice(tmp_path, {3: 1e-1, 5: 1e-1}, {3: 1e-1, 5: 1e-1})
    assert measure.judge_notebook_task("1.9", path, data) == (True, [])
    small = {"X_train": data["X_train"][:50], "y_train": data["y_train"][:50],
             "X_val": data["X_val"], "y_val": data["y_val"]}
    model = FullyConnectedNet([100] * 4, input_dim=64, num_classes=10, weight_scale=1e-1,
                              seed=0)
    solver = Solver(model, small, update_rule="sgd", optim_config={"learning_rate": 1e-1},
                    num_epochs=20, batch_size=25, verbose=False, seed=0)
    solver.train()
    # Why a replay: the Solver leaves the best-validation parameters in the model, which
    # need not fit all 50 examples though the training accuracy reached 100%.
    replayed = measure.replay_overfitting({"learning_rate": 1e-1, "weight_scale": 1e-1}, 5,
                                          data)
    assert replayed.accuracy == max(solver.train_acc_history) == 1.0


def test_a_learning_rate_too_small_to_overfit_fails_with_the_replays_accuracy(
        tmp_path: Path, data: dict) -> None:
    path = _overfit_choice(tmp_path, {3: 1e-6, 5: 1e-1}, {3: 1e-1, 5: 1e-1})
    passed, lines = measure.judge_notebook_task("1.9", path, data)
    assert not passed and len(lines) == 1
    assert lines[0].startswith("task 1.9 (overfitting cell): 3-layer net: best training "
                               "accuracy over the epochs of the grader's replay 0.")
    assert lines[0].endswith("on its 50 training examples (must reach 1.00)")


@pytest.mark.parametrize(("learning_rate", "weight_scale", "says"), [
    (float("nan"), 1e-1, "learning_rate: not a number"),
    (-1e-1, 1e-1, "learning_rate: not a number"),
    (True, 1e-1, "learning_rate: not a number"),
    ("fast", 1e-1, "learning_rate: not a number"),
    (1e-1, "gaussian", "weight_scale: not a number"),
    (1e-1, 1e9, "weight_scale: not a number"),
    (1e-1, np.ones(3), "weight_scale: not a number"),
    (50.0, 10.0, "the training loss became inf or nan"),
])
def test_a_choice_out_of_range_fails_with_a_reason(tmp_path: Path, data: dict,
                                                  learning_rate: object,
                                                  weight_scale: object, says: str) -> None:
    path = _overfit_choice(tmp_path, {3: learning_rate, 5: 1e-1}, {3: weight_scale, 5: 1e-1})
    passed, lines = measure.judge_notebook_task("1.9", path, data)
    assert not passed and says in lines[0], lines


# ---------------------------------------------------------------------------------------
# Garbage where the export should be: a verdict with a reason, never an exception
# ---------------------------------------------------------------------------------------

def _garbage(path: Path, how: str) -> None:
    if how == "object array member":
        transport_tree = '{"dict": [["models", {"dict": [["best model", {"array": "a0"}]]}]]}'
        np.savez(path, __tree__=np.frombuffer(transport_tree.encode(), dtype=np.uint8),
                 a0=np.array([object()], dtype=object))  # numpy pickles it: never loaded
    elif how == "a directory":
        path.mkdir()
    elif how == "a symlink to a readable file":
        path.symlink_to(Path(transport.__file__))
    elif how == "models not a dict":
        transport.write_message(path, {"models": [1, 2, 3]})
    elif how == "a model that is a number":
        transport.write_message(path, {"models": {"best model": 7}})
    elif how == "params of strings":
        transport.write_message(path, {"models": {"best model": {
            "class": "FullyConnectedNet", "params": {"W1": "x", "W2": "y"}}}})
    elif how == "a one-dimensional weight":
        transport.write_message(path, {"models": {"best model": {
            "class": "FullyConnectedNet", "params": {"W1": np.zeros(64), "b1": np.zeros(3)}}}})
    elif how == "an error that is not a name":
        transport.write_message(path, {"models": {"best model": {"error": "<script>"}}})


@pytest.mark.parametrize("how", ["object array member", "a directory",
                                 "a symlink to a readable file", "models not a dict",
                                 "a model that is a number", "params of strings",
                                 "a one-dimensional weight", "an error that is not a name"])
@pytest.mark.parametrize("task", ["1.9", "1.14"])
def test_garbage_in_the_export_is_a_failed_verdict_with_a_reason(
        tmp_path: Path, data: dict, how: str, task: str) -> None:
    path = measure.export_path(tmp_path, task)
    _garbage(path, how)
    verdict = measure.task_verdict(task, path, data)
    assert not verdict.passed
    assert verdict.feedback and all(line.startswith(f"task {task} (") for line in verdict.feedback)
    assert not any("<script>" in line for line in verdict.feedback)
    assert {case.label for case in verdict.cases} == set(measure.NOTEBOOK_TASKS[task].models)
    assert not any(case.passed for case in verdict.cases)
