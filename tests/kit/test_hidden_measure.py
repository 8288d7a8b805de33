"""Notebook-cell tasks measured by the grader (``kit.hidden.measure``).

A net trained here stands for the student's: it is exported by the export cell's code
(run in a namespace of its own, as the kernel would), then rebuilt from the export with
the solution's class and measured in this process. The accuracy must be the one
``course.solver.accuracy`` gives the original model; an export that was tampered with
(wrong shapes, missing or extra arrays, NaN, objects, another class) is refused with a
reason, and a model below the notebook's target fails its task.

Instructor-only (tests/kit/ is not released).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from course.classifiers.fc_net import FullyConnectedNet
from course.data_utils import get_data
from course.solver import Solver, accuracy
from kit.hidden import drivers, measure, transport

HIDDEN = Path(measure.__file__).resolve().parent


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


def _export(tmp_path: Path, models: dict[str, object]) -> Path:
    """Run the export cell as the kernel would: in a namespace holding the models."""
    control = tmp_path / "control"
    control.mkdir(exist_ok=True)
    for name in ("drivers.py", "transport.py"):
        shutil.copy(HIDDEN / name, control / name)
    path = tmp_path / "export.npz"
    namespace = {f"model_{i}": model for i, model in enumerate(models.values())}
    expression = "{" + ", ".join(f"{label!r}: model_{i}"
                                 for i, label in enumerate(models)) + "}"
    exec(measure.export_cell(control, path, expression), namespace)
    return path


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_the_grader_measures_the_accuracy_the_model_has(tmp_path: Path, data: dict,
                                                        normalization: str | None) -> None:
    model = _trained(data, normalization)
    path = _export(tmp_path, {"net": model})
    found = measure.measure_export(path, data["X_test"], data["y_test"])
    assert found["net"].problems == []
    assert found["net"].accuracy == pytest.approx(
        accuracy(model, data["X_test"], data["y_test"]), abs=1e-12)
    assert found["net"].accuracy > 0.5


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
    path = _export(tmp_path, {"best model": model})
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
    path = _export(tmp_path, {"3-layer net": _trained(data, None, epochs=1)})
    passed, lines = measure.judge_notebook_task("1.9", path, data)
    assert not passed and any("5-layer net: not exported" in line for line in lines)
    path.write_bytes(b"not an npz")
    passed, lines = measure.judge_notebook_task("1.9", path, data)
    assert not passed and "the export is unreadable" in lines[0]
