"""Safety suite, training side (issue 9, items 6, 8, 13, 14, 15).

Each test is a careless or unlucky use that used to lose work or give a raw error or a
silently wrong result; it now gets a clear error naming the argument, or safe behaviour.
"""

from __future__ import annotations

import os
import pickle
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from kit_helpers import dead_pid  # tests/kit is on sys.path (see conftest.py)

from course import checkpoints, data_utils, layers, optim
from course.classifiers.fc_net import FullyConnectedNet
from course.solver import Solver


class Climber:
    """One parameter ``k`` that grows by 1 per step; predicts class 1 only while k == 1.

    So the best validation accuracy is at the end of epoch 1; afterwards the parameters
    drift away from it, which shows whether a failed run restored the best ones.
    """

    def __init__(self) -> None:
        self.params = {"k": np.array(0.0)}

    def loss(self, X, y=None):
        hit = float(self.params["k"]) == 1.0
        scores = np.zeros((len(X), 2))
        scores[:, 1] = 1.0 if hit else -1.0
        if y is None:
            return scores
        return 0.0, {"k": np.array(-1.0)}  # sgd with learning_rate 1: k += 1


def ones_data(n: int = 4) -> dict[str, np.ndarray]:
    X = np.zeros((n, 2))
    y = np.ones(n, dtype=np.int64)
    return {"X_train": X, "y_train": y, "X_val": X, "y_val": y}


def quiet(**kwargs):
    return {"verbose": False, "batch_size": 4, "update_rule": "sgd",
            "optim_config": {"learning_rate": 1.0}, **kwargs}


# -- item 8: checkpoints ---------------------------------------------------------------


def test_checkpoint_name_with_trailing_slash_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must end in a file name prefix"):
        Solver(Climber(), ones_data(), **quiet(checkpoint_name=f"{tmp_path}/"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_checkpoint_folder_is_refused_up_front(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ValueError, match="cannot write files in the folder"):
            Solver(Climber(), ones_data(), **quiet(checkpoint_name=str(folder / "run")))
    finally:
        folder.chmod(0o755)


def test_unwritable_checkpoint_folder_is_refused_up_front(tmp_path: Path,
                                                          monkeypatch) -> None:
    # Works as root too: the probe file's creation fails as it would in a read-only folder.
    real_open = os.open

    def refuse(path, flags, *args):
        if ".probe." in os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ValueError, match=r"cannot write files in the folder .*Permission"):
        Solver(Climber(), ones_data(), **quiet(checkpoint_name=str(tmp_path / "run")))
    assert os.listdir(tmp_path) == []


def test_failed_checkpoint_write_restores_best_params_and_names_the_file(
        tmp_path: Path, monkeypatch) -> None:
    model = Climber()
    solver = Solver(model, ones_data(), **quiet(num_epochs=3,
                                               checkpoint_name=str(tmp_path / "run")))
    real = checkpoints.write_atomically

    def full_disk_after_first(path, payload):
        if path.endswith("_epoch_2.pkl"):
            raise OSError(28, "No space left on device", f".{path}.123.abcd.tmp")
        real(path, payload)

    monkeypatch.setattr(checkpoints, "write_atomically", full_disk_after_first)
    with pytest.raises(OSError) as info:
        solver.train()
    message = str(info.value)
    assert "run_epoch_2.pkl" in message and ".tmp" not in message
    assert "No space left" in message
    # best validation accuracy was after epoch 1 (k == 1); training had moved on to k == 2
    assert float(model.params["k"]) == 1.0


def test_interrupted_training_restores_best_params() -> None:
    class Interrupting(Climber):
        calls = 0

        def loss(self, X, y=None):
            if y is not None:
                self.calls += 1
                if self.calls == 3:
                    raise KeyboardInterrupt
            return super().loss(X, y)

    model = Interrupting()
    with pytest.raises(KeyboardInterrupt):
        Solver(model, ones_data(), **quiet(num_epochs=5)).train()
    assert float(model.params["k"]) == 1.0  # not 2, the parameters of the last step


def test_truncated_checkpoint_error_names_the_file(tmp_path: Path) -> None:
    solver = Solver(Climber(), ones_data(), **quiet(num_epochs=1,
                                                   checkpoint_name=str(tmp_path / "run")))
    solver.train()
    path = tmp_path / "run_epoch_1.pkl"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"run_epoch_1\.pkl.*not a readable Solver checkpoint"):
        Solver.from_checkpoint(path, ones_data())


def test_foreign_checkpoint_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.pkl"
    path.write_text("these are my notes, not a pickle\n")
    with pytest.raises(ValueError, match=r"notes\.pkl"):
        Solver.from_checkpoint(path, ones_data())
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match=r"other\.pkl.*is not a Solver checkpoint"):
        Solver.from_checkpoint(other, ones_data())


# -- item 6: stale checkpoint temps ----------------------------------------------------




def test_stale_checkpoint_temp_of_a_killed_run_is_removed_and_reported(
        tmp_path: Path, capsys) -> None:
    stale = tmp_path / f".run_epoch_3.pkl.{dead_pid()}.0badcafe.tmp"
    live = tmp_path / f".run_epoch_3.pkl.{os.getpid()}.12345678.tmp"
    mine = tmp_path / f".other_epoch_1.pkl.{dead_pid()}.0badcafe.tmp"
    notes = tmp_path / ".run_epoch_3.pkl.notes.tmp"
    for path in (stale, live, mine, notes):
        path.write_bytes(b"x" * 10)
    Solver(Climber(), ones_data(), **quiet(checkpoint_name=str(tmp_path / "run")))
    assert not stale.exists()
    assert live.exists() and mine.exists() and notes.exists()  # not ours, or still alive
    assert stale.name in capsys.readouterr().err


def test_old_temp_is_stale_even_if_its_pid_was_reused(tmp_path: Path) -> None:
    old = tmp_path / f".run_epoch_1.pkl.{os.getppid()}.abcdef01.tmp"
    old.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    assert checkpoints.remove_stale_checkpoint_temps(tmp_path / "run") == [str(old)]


# -- item 13: layers and the network ---------------------------------------------------


@pytest.mark.parametrize("bad", [np.array([[True, False]]), np.array([["a", "b"]]),
                                 np.array([[1, None]], dtype=object)],
                         ids=["bool", "str", "object"])
def test_affine_forward_rejects_non_numeric_x(bad: np.ndarray) -> None:
    w, b = np.ones((2, 3)), np.zeros(3)
    with pytest.raises(ValueError, match=rf"affine_forward: x must be an array of real "
                                         rf"numbers.*{bad.dtype}"):
        layers.affine_forward(bad, w, b)


def test_affine_forward_rejects_bool_weights() -> None:
    with pytest.raises(ValueError, match="affine_forward: w must be an array of real numbers"):
        layers.affine_forward(np.ones((1, 2)), np.ones((2, 3), dtype=bool), np.zeros(3))


@pytest.mark.parametrize("func", [layers.relu_forward,
                                  lambda x: layers.softmax_loss(x, np.array([0])),
                                  lambda x: layers.svm_loss(x, np.array([0]))])
def test_other_layers_reject_string_input(func) -> None:
    with pytest.raises(ValueError, match="must be an array of real numbers"):
        func(np.array([["1", "2"]]))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"weight_scale": float("inf")}, r"weight_scale must be a finite number > 0 .*; got inf"),
    ({"weight_scale": float("nan")}, r"weight_scale must be a finite number > 0 .*; got nan"),
    ({"reg": float("inf")}, "reg must be a finite number >= 0; got inf"),
    ({"dtype": "nonsense"}, "dtype must be a floating-point dtype .*got 'nonsense'"),
    ({"seed": "abc"}, "seed must be None, a non-negative int or a numpy Generator; got 'abc'"),
    ({"seed": -1}, "seed must be None, a non-negative int or a numpy Generator; got -1"),
    ({"seed": 1.5}, "seed must be None, a non-negative int or a numpy Generator; got 1.5"),
])
def test_network_rejects_nonsense_hyperparameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"FullyConnectedNet: {message}"):
        FullyConnectedNet([3], input_dim=4, num_classes=2, **kwargs)


# -- item 14: update rules -------------------------------------------------------------


RULES = sorted(optim.UPDATE_RULES)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("rate", ["1e-3", None, -1e-3, 0.0, float("nan"), True])
def test_rules_reject_bad_learning_rates(rule: str, rate) -> None:
    w = np.ones(3)
    with pytest.raises(ValueError, match=rf"{rule}: config\['learning_rate'\] must be a "
                                         r"finite number > 0"):
        optim.UPDATE_RULES[rule](w, w, {"learning_rate": rate})


@pytest.mark.parametrize("rule", RULES)
def test_rules_keep_a_float32_parameter_float32(rule: str) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal(5).astype(np.float32)
    config = {"learning_rate": np.logspace(-3, -1, 3)[0]}  # a numpy float64
    for _ in range(3):
        w, config = optim.UPDATE_RULES[rule](w, rng.standard_normal(5).astype(np.float32),
                                             config)
        config["learning_rate"] *= np.float64(0.9)  # a numpy lr_decay
        assert w.dtype == np.float32
        for key, value in config.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32, key


@pytest.mark.parametrize("rule", ["rmsprop", "adam", "adagrad"])
def test_float16_parameters_are_refused_naming_the_dtype(rule: str) -> None:
    w = np.ones(3, dtype=np.float16)
    with pytest.raises(ValueError, match=rf"{rule}: w has dtype float16, in which epsilon"):
        optim.UPDATE_RULES[rule](w, w, {"learning_rate": 1e-3})


def test_solver_with_float32_model_and_numpy_rate_ends_float32() -> None:
    model = FullyConnectedNet([4], input_dim=3, num_classes=2, dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.integers(0, 2, 10)
    data = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
    solver = Solver(model, data, verbose=False, batch_size=5, num_epochs=2,
                    update_rule="adam", lr_decay=np.float64(0.5),
                    optim_config={"learning_rate": np.logspace(-3, -2, 2)[0]})
    solver.train()
    assert {p.dtype for p in model.params.values()} == {np.dtype(np.float32)}


# -- item 15: solver data and the data folder ------------------------------------------


def test_solver_data_as_lists_gets_a_clear_error() -> None:
    data = {key: value.tolist() for key, value in ones_data().items()}
    with pytest.raises(ValueError, match=r"data\['X_train'\] must be a numpy array; got list"):
        Solver(Climber(), data, **quiet())


def test_out_of_range_validation_labels_are_an_error_not_accuracy_zero() -> None:
    data = ones_data()
    data["y_val"] = np.full(4, 7)
    solver = Solver(Climber(), data, **quiet())
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, C\) with C = 2.*got label 7"):
        solver.train()


def test_negative_labels_are_refused_up_front() -> None:
    data = ones_data()
    data["y_train"] = np.full(4, -1)
    with pytest.raises(ValueError, match=r"data\['y_train'\] must hold class labels"):
        Solver(Climber(), data, **quiet())


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_course_data_dir_that_is_not_a_folder_is_reported(tmp_path: Path, monkeypatch,
                                                          kind: str) -> None:
    target = tmp_path / "my-data"
    if kind == "file":
        target.write_text("not a folder")
    monkeypatch.setenv("COURSE_DATA_DIR", str(target))
    monkeypatch.delenv("COURSE_DATASET", raising=False)
    what = "does not exist" if kind == "missing" else "is a file, not a folder"
    with pytest.raises(data_utils.DatasetError, match=f"COURSE_DATA_DIR={target} {what}"):
        data_utils.get_data()


def test_unreadable_cifar_file_is_a_permission_error_not_corrupt(tmp_path: Path,
                                                                 monkeypatch) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"whatever")
    real_open = open

    def denied(file, *args, **kwargs):
        if os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(data_utils.DatasetError, match="permission denied") as info:
        data_utils.load_CIFAR_batch(path)
    assert "corrupt" not in str(info.value)


def test_unreadable_data_folder_is_reported_not_a_traceback(tmp_path: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("COURSE_DATASET", raising=False)
    real_stat = Path.stat

    def denied(self, *args, **kwargs):
        if self.name == data_utils.CIFAR10_FOLDER:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", denied)
    with pytest.raises(data_utils.DatasetError, match="permission denied"):
        data_utils.get_data()
