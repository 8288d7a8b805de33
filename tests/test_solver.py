"""Tests of ``course.solver.Solver`` with tiny models defined here.

The models are module-level classes so that checkpoints can pickle them:

* ``SoftmaxRegression``: a real linear softmax classifier, for end-to-end runs;
* ``ConstantSlope``: loss ``sum(w)``, gradient ones, so every SGD step moves ``w`` by
  exactly ``-learning_rate`` and the loss history can be written down by hand;
* ``Peak``: accuracy 1 only when its parameter ``k`` is in a chosen set (by default
  ``{2}``), trained with an update rule that adds 1 per step, so ``k`` equals the
  epoch and the best epoch is known in advance.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from course import solver as solver_module
from course.solver import NonFiniteLossError, Solver, accuracy


class SoftmaxRegression:
    """Scores ``X @ W + b``; softmax cross-entropy loss averaged over the batch."""

    def __init__(self, D: int = 4, C: int = 3, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.params = {"W": 0.1 * rng.standard_normal((D, C)), "b": np.zeros(C)}

    def loss(self, X, y=None):
        scores = X @ self.params["W"] + self.params["b"]
        if y is None:
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = -np.log(probs[rows, y]).mean()
        dscores = probs.copy()
        dscores[rows, y] -= 1
        dscores /= len(y)
        return loss, {"W": X.T @ dscores, "b": dscores.sum(axis=0)}


class TrainingInterruptedError(Exception):
    """Stands for Ctrl-C or a crash in the middle of training."""


class InterruptedSoftmax(SoftmaxRegression):
    """Raises ``TrainingInterruptedError`` on training call number ``stop_at`` (1-based)."""

    def __init__(self, stop_at: int | None, **kwargs):
        super().__init__(**kwargs)
        self.stop_at = stop_at
        self.calls = 0

    def loss(self, X, y=None):
        if y is not None:
            self.calls += 1
            if self.stop_at is not None and self.calls == self.stop_at:
                raise TrainingInterruptedError
        return super().loss(X, y)


class ConstantSlope:
    """Loss ``sum(w)`` with gradient ones; always predicts class 0 out of 2.

    ``nan_at``: return a nan loss on that training call (1-based).
    """

    def __init__(self, nan_at: int | None = None):
        self.params = {"w": np.zeros(1)}
        self.nan_at = nan_at
        self.calls = 0

    def loss(self, X, y=None):
        if y is None:
            return np.tile([1.0, 0.0], (len(X), 1))
        self.calls += 1
        loss = np.nan if self.calls == self.nan_at else float(self.params["w"].sum())
        return loss, {"w": np.ones_like(self.params["w"])}


class Peak:
    """Predicts class 1 exactly when its parameter ``k`` is in ``good``, else class 0."""

    def __init__(self, good=(2.0,)):
        self.params = {"k": np.array(0.0)}
        self.good = good

    def loss(self, X, y=None):
        hit = float(self.params["k"]) in self.good
        scores = np.zeros((len(X), 2))
        scores[:, 1] = 1.0 if hit else -1.0
        if y is None:
            return scores
        return 0.0 if hit else 1.0, {"k": np.array(0.0)}


def add_one(w, dw, config=None):
    """A fake update rule: every step adds 1, whatever the gradient."""
    return w + 1, config if config is not None else {}


def shrinking_sgd(w, dw, config=None):
    """A stateful rule that is none of the student tasks (so these tests run in the
    student release too): SGD whose step shrinks like 1/sqrt(steps), keeping a step
    count and, as array state shaped like ``w``, the sum of all gradients seen.
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config["steps"] = config.get("steps", 0) + 1
    config["grad_sum"] = config.get("grad_sum", np.zeros_like(w)) + dw
    return w - config["learning_rate"] * dw / np.sqrt(config["steps"]), config


def add_one_in_place(w, dw, config=None):
    """The same, but changing ``w`` in place (as CS231n's own ``sgd`` does)."""
    w += 1
    return w, config if config is not None else {}


def blobs(n_train: int = 60, n_val: int = 30, seed: int = 1) -> dict[str, np.ndarray]:
    """Three unit-variance Gaussian blobs in 4-D, centres 3*sqrt(2) apart: learnable."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * np.eye(3, 4)
    n = n_train + n_val
    y = rng.integers(0, 3, size=n)
    X = centres[y] + rng.standard_normal((n, 4))
    return {"X_train": X[:n_train], "y_train": y[:n_train],
            "X_val": X[n_train:], "y_val": y[n_train:]}


def dummy_data(n_train: int = 4, n_val: int = 4, label: int = 0) -> dict[str, np.ndarray]:
    return {"X_train": np.zeros((n_train, 1)), "y_train": np.full(n_train, label),
            "X_val": np.zeros((n_val, 1)), "y_val": np.full(n_val, label)}


def quiet(**kwargs):
    return {"verbose": False, **kwargs}


# ---------------------------------------------------------------------------------
# Arguments


def test_defaults_are_cs231n_defaults():
    s = Solver(SoftmaxRegression(), blobs())
    assert s.update_rule is solver_module.optim.sgd
    assert s.optim_config == {}
    assert (s.lr_decay, s.batch_size, s.num_epochs) == (1.0, 100, 10)
    assert (s.num_train_samples, s.num_val_samples) == (1000, None)
    assert (s.checkpoint_name, s.print_every, s.verbose) == (None, 10, True)


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "rmsprop", "adam", "adagrad"])
def test_update_rule_by_name(name):
    s = Solver(SoftmaxRegression(), blobs(), update_rule=name)
    assert s.update_rule is getattr(solver_module.optim, name)


def test_unknown_keyword_argument_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        Solver(SoftmaxRegression(), blobs(), learnin_rate=0.1)
    message = str(info.value)
    assert "learnin_rate" in message
    for name in ("update_rule", "optim_config", "lr_decay", "batch_size", "num_epochs",
                 "num_train_samples", "num_val_samples", "checkpoint_name", "print_every",
                 "verbose", "seed"):
        assert name in message


def test_unknown_update_rule_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        Solver(SoftmaxRegression(), blobs(), update_rule="adamw")
    message = str(info.value)
    assert "'adamw'" in message
    for name in ("sgd", "sgd_momentum", "rmsprop", "adam", "adagrad"):
        assert repr(name) in message


@pytest.mark.parametrize("key", ["X_train", "y_train", "X_val", "y_val"])
def test_missing_data_key_is_named(key):
    data = blobs()
    del data[key]
    with pytest.raises(ValueError, match=f"data is missing '{key}'"):
        Solver(SoftmaxRegression(), data)


def test_mismatched_data_lengths():
    data = blobs()
    data["y_val"] = data["y_val"][:-1]
    with pytest.raises(ValueError, match=r"X_val.*y_val.*\(30, 4\) and \(29,\)"):
        Solver(SoftmaxRegression(), data)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"batch_size": 0}, "batch_size must be a positive int; got 0"),
    ({"num_epochs": 2.5}, "num_epochs must be a positive int; got 2.5"),
    ({"num_val_samples": -1}, "num_val_samples must be a positive int or None; got -1"),
    ({"lr_decay": 0}, "lr_decay must be a finite number > 0; got 0"),
    ({"verbose": 1}, "verbose must be True or False; got 1"),
    ({"optim_config": 0.1}, "optim_config must be a dict; got float"),
    ({"seed": "abc"}, "seed must be None, a non-negative int or a numpy Generator"),
])
def test_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Solver(SoftmaxRegression(), blobs(), **kwargs)


def test_model_without_params():
    with pytest.raises(ValueError, match="model must have a params dict"):
        Solver(object(), blobs())


def test_checkpoint_folder_must_exist(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Solver(SoftmaxRegression(), blobs(), checkpoint_name=tmp_path / "nowhere" / "run")


def test_unpicklable_rule_with_checkpoints_fails_early(tmp_path):
    with pytest.raises(ValueError, match="cannot be stored in a checkpoint"):
        Solver(ConstantSlope(), dummy_data(), update_rule=lambda w, dw, c=None: (w, c),
               checkpoint_name=tmp_path / "run")


def test_missing_gradient_is_named():
    class NoGrad(ConstantSlope):
        def loss(self, X, y=None):
            if y is None:
                return super().loss(X)
            return 0.0, {}

    s = Solver(NoGrad(), dummy_data(), **quiet(num_epochs=1))
    with pytest.raises(ValueError, match="no gradient for parameter 'w'"):
        s.train()


# ---------------------------------------------------------------------------------
# Training


def test_sgd_steps_and_lr_decay_by_hand():
    # 4 examples, batch 2: two iterations per epoch. The gradient is always 1, so SGD
    # moves w by -lr and the loss (= w before the step) records every learning rate.
    model = ConstantSlope()
    s = Solver(model, dummy_data(), **quiet(
        optim_config={"learning_rate": 0.1}, lr_decay=0.5, batch_size=2, num_epochs=3))
    s.train()
    # epoch 1 at lr 0.1, epoch 2 at 0.05, epoch 3 at 0.025
    expected = [0.0, -0.1, -0.2, -0.25, -0.3, -0.325]
    np.testing.assert_allclose(s.loss_history, expected, rtol=1e-12, atol=1e-15)
    # after 3 epochs: 0.1 * 0.5**3 = 0.0125; the template config is untouched
    assert s.optim_configs["w"]["learning_rate"] == pytest.approx(0.0125, rel=1e-12)
    assert s.optim_config == {"learning_rate": 0.1}
    assert s.epoch == 3


@pytest.mark.parametrize("epochs", [1, 2, 5])
def test_lr_decay_applies_to_every_parameter(epochs):
    s = Solver(SoftmaxRegression(), blobs(), **quiet(
        update_rule=shrinking_sgd, optim_config={"learning_rate": 0.02}, lr_decay=0.9,
        batch_size=20, num_epochs=epochs, seed=0))
    s.train()
    for name in ("W", "b"):
        assert s.optim_configs[name]["learning_rate"] == pytest.approx(0.02 * 0.9**epochs)
    # one config per parameter, each with state shaped like its parameter
    assert s.optim_configs["W"] is not s.optim_configs["b"]
    assert s.optim_configs["W"]["grad_sum"].shape == (4, 3)
    assert s.optim_configs["b"]["grad_sum"].shape == (3,)
    assert s.optim_configs["W"]["steps"] == 3 * epochs  # 60 // 20 = 3 steps per epoch


def test_histories_have_one_entry_per_iteration_and_epoch():
    s = Solver(SoftmaxRegression(), blobs(), **quiet(batch_size=25, num_epochs=4, seed=0))
    s.train()
    assert len(s.loss_history) == 4 * (60 // 25)
    assert len(s.train_acc_history) == len(s.val_acc_history) == 4 + 1
    assert s.best_val_acc == max(s.val_acc_history)


def test_training_learns_the_blobs():
    s = Solver(SoftmaxRegression(), blobs(), **quiet(
        optim_config={"learning_rate": 0.5}, batch_size=10,
        num_epochs=10, seed=0))
    s.train()
    # Chance is 1/3; well-separated blobs are learnt by a linear model.
    assert s.best_val_acc > 0.7
    assert np.mean(s.loss_history[-6:]) < np.mean(s.loss_history[:6])


@pytest.mark.parametrize("rule", [add_one, add_one_in_place])
def test_best_parameters_are_restored(rule):
    # One step per epoch and each step adds 1 to k, so k = epoch; val accuracy is 1 only
    # at k == 2 (epoch 2) and 0 before and after.
    model = Peak(good=(2.0,))
    s = Solver(model, dummy_data(label=1), **quiet(
        update_rule=rule, batch_size=4, num_epochs=4))
    s.train()
    assert s.val_acc_history == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert s.best_val_acc == 1.0
    assert float(model.params["k"]) == 2.0  # not 4.0, where training ended
    # a copy, even when the rule updates in place and when the model changes later
    assert float(s.best_params["k"]) == 2.0
    model.params["k"] += 10
    assert float(s.best_params["k"]) == 2.0


def test_ties_keep_the_earlier_best():
    # Accuracy 1 at k = 1 and k = 2 (epochs 1 and 2): the first to reach it is kept.
    model = Peak(good=(1.0, 2.0))
    s = Solver(model, dummy_data(label=1), **quiet(
        update_rule=add_one, batch_size=4, num_epochs=3))
    s.train()
    assert s.val_acc_history == [0.0, 1.0, 1.0, 0.0]
    assert float(model.params["k"]) == 1.0


def test_resume_keeps_the_best_from_before_the_checkpoint(tmp_path):
    # The best epoch (2) is before the checkpoint (3): resuming must remember it.
    s = Solver(Peak(), dummy_data(label=1), **quiet(
        update_rule=add_one, batch_size=4, num_epochs=3, checkpoint_name=tmp_path / "run"))
    s.train()
    resumed = Solver.from_checkpoint(tmp_path / "run_epoch_3.pkl", dummy_data(label=1),
                                     num_epochs=5)
    resumed.train()
    assert resumed.val_acc_history == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert float(resumed.model.params["k"]) == 2.0


def test_non_finite_loss_names_iteration_and_learning_rate():
    # Two iterations per epoch; the 3rd training call returns nan: iteration 3, which
    # is the first of epoch 2, when the rate has decayed once: 0.5 * 0.5 = 0.25.
    model = ConstantSlope(nan_at=3)
    s = Solver(model, dummy_data(), **quiet(
        optim_config={"learning_rate": 0.5}, lr_decay=0.5, batch_size=2, num_epochs=3))
    with pytest.raises(NonFiniteLossError) as info:
        s.train()
    assert isinstance(info.value, FloatingPointError)
    message = str(info.value)
    assert "iteration 3 of 6" in message
    assert "epoch 2 of 3" in message
    assert "learning_rate" in message and "0.25" in message
    # stopped before the bad step: the two steps of epoch 1 were taken, both at 0.5
    assert s.loss_history == [0.0, -0.5]
    # and the parameters are the best ones measured, not those of the last step
    np.testing.assert_array_equal(model.params["w"], s.best_params["w"])


# ---------------------------------------------------------------------------------
# Randomness


def _run(seed, **kwargs):
    s = Solver(SoftmaxRegression(), blobs(), **quiet(
        optim_config={"learning_rate": 0.05}, batch_size=8,
        num_epochs=2, num_train_samples=20, seed=seed, **kwargs))
    s.train()
    return s


def test_same_seed_same_run():
    a, b = _run(3), _run(3)
    assert a.loss_history == b.loss_history
    assert a.train_acc_history == b.train_acc_history
    for name in a.model.params:
        np.testing.assert_array_equal(a.model.params[name], b.model.params[name])


def test_seed_may_be_a_generator():
    # default_rng(3) and seed=3 produce the same stream.
    assert _run(np.random.default_rng(3)).loss_history == _run(3).loss_history


def test_different_seeds_draw_different_minibatches():
    assert _run(3).loss_history != _run(4).loss_history


# ---------------------------------------------------------------------------------
# check_accuracy


class ReadsColumnZero:
    """Predicts the class written in column 0; records the rows (column 1) it scored."""

    def __init__(self):
        self.params = {}
        self.batches: list[list[int]] = []

    def loss(self, X, y=None):
        self.batches.append([int(r) for r in X[:, 1]])
        return np.eye(3)[X[:, 0].astype(int)]


PRED = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
LABELS = np.array([0, 1, 2, 1, 1, 2, 0, 0, 2, 0])  # differs from PRED at rows 3 and 7
ROWS = np.column_stack([PRED, np.arange(10)]).astype(float)


def _accuracy_solver(seed=0):
    data = {"X_train": ROWS, "y_train": LABELS, "X_val": ROWS, "y_val": LABELS}
    return Solver(ReadsColumnZero(), data, **quiet(seed=seed))


def test_check_accuracy_all_examples_in_batches():
    s = _accuracy_solver()
    # 8 of 10 predictions match the labels
    assert s.check_accuracy(ROWS, LABELS, batch_size=3) == pytest.approx(0.8)
    # ceil(10 / 3) = 4 calls, the last with the one remaining row
    assert s.model.batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


@pytest.mark.parametrize("seed", range(5))
def test_check_accuracy_subsamples_without_replacement(seed):
    s = _accuracy_solver(seed)
    acc = s.check_accuracy(ROWS, LABELS, num_samples=9)
    (seen,) = s.model.batches
    # 9 distinct rows of 10 (drawing with replacement repeats one with
    # probability 1 - 10!/10^9, above 99.9%)
    assert len(seen) == len(set(seen)) == 9
    assert acc == pytest.approx(np.mean([PRED[r] == LABELS[r] for r in seen]))


def test_check_accuracy_subsample_follows_the_seed():
    a, b = _accuracy_solver(seed=5), _accuracy_solver(seed=5)
    a.check_accuracy(ROWS, LABELS, num_samples=4)
    b.check_accuracy(ROWS, LABELS, num_samples=4)
    assert a.model.batches == b.model.batches


def test_check_accuracy_more_samples_than_examples_uses_all():
    s = _accuracy_solver()
    assert s.check_accuracy(ROWS, LABELS, num_samples=50) == pytest.approx(0.8)
    assert sorted(r for batch in s.model.batches for r in batch) == list(range(10))


def test_check_accuracy_rejects_bad_scores():
    class Flat(ReadsColumnZero):
        def loss(self, X, y=None):
            return np.zeros(len(X))

    s = Solver(Flat(), {"X_train": ROWS, "y_train": LABELS, "X_val": ROWS, "y_val": LABELS},
               verbose=False)
    with pytest.raises(ValueError, match=r"scores of shape \(N, C\) = \(10, C\); got shape"):
        s.check_accuracy(ROWS, LABELS)


# ---------------------------------------------------------------------------------
# Output


def test_not_verbose_prints_nothing(capsys):
    Solver(SoftmaxRegression(), blobs(), batch_size=20, num_epochs=2, verbose=False).train()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_verbose_prints_epoch_summaries_and_every_nth_iteration(capsys):
    # 60 examples, batch 30: 2 iterations per epoch, 4 in all; print_every=3 logs the
    # iterations with index 0 and 3, that is iterations 1 and 4.
    s = Solver(SoftmaxRegression(), blobs(), batch_size=30, num_epochs=2, print_every=3,
               seed=0)
    s.train()
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert [line.split(")")[0] + ")" for line in lines] == [
        "(Epoch 0 / 2)", "(Iteration 1 / 4)", "(Epoch 1 / 2)", "(Iteration 4 / 4)",
        "(Epoch 2 / 2)",
    ]
    train_acc, val_acc = s.train_acc_history[2], s.val_acc_history[2]
    assert f"(Epoch 2 / 2) train acc: {train_acc:f}; val acc: {val_acc:f}" in lines
    assert f"(Iteration 1 / 4) loss: {s.loss_history[0]:f}" in lines


# ---------------------------------------------------------------------------------
# Checkpoints


CHECKPOINT_KEYS = {
    "model", "update_rule", "lr_decay", "optim_config", "optim_configs", "batch_size",
    "num_train_samples", "num_val_samples", "epoch", "loss_history", "train_acc_history",
    "val_acc_history", "best_val_acc", "best_params", "rng_state",
}


def test_checkpoint_written_after_each_epoch(tmp_path):
    s = Solver(SoftmaxRegression(), blobs(), **quiet(
        update_rule="sgd", batch_size=20, num_epochs=2, seed=0,
        checkpoint_name=tmp_path / "run"))
    s.train()
    assert sorted(os.listdir(tmp_path)) == ["run_epoch_1.pkl", "run_epoch_2.pkl"]
    with open(tmp_path / "run_epoch_1.pkl", "rb") as f:
        first = pickle.load(f)
    assert set(first) >= CHECKPOINT_KEYS
    assert first["epoch"] == 1
    assert first["update_rule"] == "sgd"  # the name, not the function
    assert first["optim_configs"]["W"] == {"learning_rate": 1e-2}
    assert len(first["loss_history"]) == 3
    assert len(first["val_acc_history"]) == 2  # before training and after epoch 1
    assert isinstance(first["model"], SoftmaxRegression)


def test_resume_after_interruption_equals_straight_run(tmp_path):
    kwargs = quiet(update_rule=shrinking_sgd, optim_config={"learning_rate": 0.3}, lr_decay=0.8,
                   batch_size=10, num_epochs=4, num_train_samples=25, num_val_samples=20,
                   seed=11)
    straight = Solver(SoftmaxRegression(), blobs(), **kwargs)
    straight.train()

    # 6 steps per epoch: call 15 is in epoch 3, after the epoch-2 checkpoint.
    model = InterruptedSoftmax(stop_at=15)
    interrupted = Solver(model, blobs(), checkpoint_name=tmp_path / "run", **kwargs)
    with pytest.raises(TrainingInterruptedError):
        interrupted.train()
    assert sorted(os.listdir(tmp_path)) == ["run_epoch_1.pkl", "run_epoch_2.pkl"]

    resumed = Solver.from_checkpoint(tmp_path / "run_epoch_2.pkl", blobs())
    assert resumed.epoch == 2
    resumed.model.stop_at = None  # the restored model would otherwise stop again
    resumed.train()

    assert resumed.epoch == 4
    assert resumed.loss_history == straight.loss_history
    assert resumed.train_acc_history == straight.train_acc_history
    assert resumed.val_acc_history == straight.val_acc_history
    assert resumed.best_val_acc == straight.best_val_acc
    for name in ("W", "b"):
        np.testing.assert_array_equal(resumed.best_params[name], straight.best_params[name])
        np.testing.assert_array_equal(resumed.model.params[name], straight.model.params[name])
        np.testing.assert_array_equal(resumed.optim_configs[name]["grad_sum"],
                                      straight.optim_configs[name]["grad_sum"])
        assert resumed.optim_configs[name]["steps"] == straight.optim_configs[name]["steps"]
        assert resumed.optim_configs[name]["steps"] == 24
        assert (resumed.optim_configs[name]["learning_rate"]
                == straight.optim_configs[name]["learning_rate"])
    # and it went on writing checkpoints under the same name
    assert sorted(os.listdir(tmp_path)) == [f"run_epoch_{e}.pkl" for e in (1, 2, 3, 4)]


def test_from_checkpoint_overrides(tmp_path):
    s = Solver(ConstantSlope(), dummy_data(), **quiet(
        optim_config={"learning_rate": 0.1}, batch_size=4, num_epochs=2,
        checkpoint_name=tmp_path / "run"))
    s.train()
    resumed = Solver.from_checkpoint(tmp_path / "run_epoch_2.pkl", dummy_data(),
                                     num_epochs=3, checkpoint_name=None)
    assert resumed.verbose is False  # kept from the checkpoint
    resumed.train()
    # one step per epoch at lr 0.1 (no decay): w before each step is 0, -0.1, -0.2
    np.testing.assert_allclose(resumed.loss_history, [0.0, -0.1, -0.2], atol=1e-15)
    assert sorted(os.listdir(tmp_path)) == ["run_epoch_1.pkl", "run_epoch_2.pkl"]


def test_from_checkpoint_refuses_state_overrides(tmp_path):
    s = Solver(ConstantSlope(), dummy_data(), **quiet(
        batch_size=4, num_epochs=1, checkpoint_name=tmp_path / "run"))
    s.train()
    with pytest.raises(ValueError, match="cannot override seed"):
        Solver.from_checkpoint(tmp_path / "run_epoch_1.pkl", dummy_data(), seed=1)


def test_from_checkpoint_rejects_other_pickles(tmp_path):
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps({"epoch": 1}))
    with pytest.raises(ValueError, match="is not a Solver checkpoint"):
        Solver.from_checkpoint(path, dummy_data())


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    kwargs = quiet(optim_config={"learning_rate": 0.1}, batch_size=4, num_epochs=1,
                   checkpoint_name=tmp_path / "run")
    Solver(ConstantSlope(), dummy_data(), **kwargs).train()
    path = tmp_path / "run_epoch_1.pkl"
    before = path.read_bytes()

    def dump_then_fail(obj, file, protocol=None):
        file.write(b"half a pickle")
        raise OSError("disk full")

    monkeypatch.setattr(pickle, "dump", dump_then_fail)
    other = Solver(ConstantSlope(), dummy_data(), **{**kwargs, "optim_config": {}})
    with pytest.raises(OSError, match="disk full"):
        other.train()

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run_epoch_1.pkl"]  # no temporary file left
    monkeypatch.undo()
    with open(path, "rb") as f:
        assert pickle.load(f)["optim_configs"]["w"]["learning_rate"] == 0.1


def test_checkpoint_model_is_a_snapshot(tmp_path):
    # Training on after a checkpoint must not change what the checkpoint holds.
    model = ConstantSlope()
    s = Solver(model, dummy_data(), **quiet(
        optim_config={"learning_rate": 0.1}, batch_size=4, num_epochs=3,
        checkpoint_name=tmp_path / "run"))
    s.train()
    with open(tmp_path / "run_epoch_1.pkl", "rb") as f:
        first = pickle.load(f)
    # one step of -0.1 in epoch 1
    np.testing.assert_allclose(first["model"].params["w"], [-0.1])
    assert first["loss_history"] == [0.0]


# ---------------------------------------------------------------------------------------
# accuracy (module-level; check_accuracy uses it)


class _ArgmaxIsFirstFeature:
    """Scores (N, 3): class int(x[:, 0]) scores 1, the others 0."""

    def __init__(self):
        self.params = {}
        self.batches = []

    def loss(self, X, y=None):
        self.batches.append(len(X))
        scores = np.zeros((len(X), 3))
        scores[np.arange(len(X)), X[:, 0].astype(int)] = 1.0
        return scores


def test_accuracy_counts_matches_over_batches():
    X = np.array([[0], [1], [2], [2], [1]], dtype=float)
    y = np.array([0, 1, 0, 2, 2])  # predictions 0, 1, 2, 2, 1: three right out of five
    model = _ArgmaxIsFirstFeature()
    assert accuracy(model, X, y, batch_size=2) == 3 / 5
    assert model.batches == [2, 2, 1]


def test_accuracy_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"got shapes \(5, 1\) and \(4,\)"):
        accuracy(_ArgmaxIsFirstFeature(), np.zeros((5, 1)), np.zeros(4, dtype=int))


@pytest.mark.parametrize(("model", "said"), [
    (None, r"got None \(the cell that should make it has not run"),
    ("model", r"got 'model'$")])
def test_accuracy_says_the_model_is_missing_instead_of_an_attribute_error(model, said):
    with pytest.raises(ValueError, match=r"accuracy: model must be a model with a loss\(X\) "
                                         r"method.*" + said):
        accuracy(model, np.zeros((2, 1)), np.zeros(2, dtype=int))
