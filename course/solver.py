"""The training loop: ``Solver`` trains a model with minibatch updates.

A model is anything with

* ``model.params``: a dict from parameter name to numpy array, read and replaced by
  the solver at every step (never copied, so gradient checks that perturb it in place
  keep working);
* ``model.loss(X, y=None)``: with ``y=None`` the class scores, shape ``(N, C)``; with
  labels ``y`` the pair ``(loss, grads)``, ``grads`` a dict with one gradient per
  parameter, shaped like it.

Typical use::

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=100, seed=0)
    solver.train()
    solver.best_val_acc, solver.loss_history

``data`` holds ``X_train``, ``y_train``, ``X_val`` and ``y_val``. Training draws
minibatches at random; after each epoch the solver measures training and validation
accuracy, multiplies every learning rate by ``lr_decay`` and, when ``checkpoint_name``
is set, writes a checkpoint. At the end the parameters with the best validation
accuracy are put back into ``model.params``.

Checkpoints let a stopped run continue: ``Solver.from_checkpoint(path, data)`` rebuilds
the solver as it was at the end of that epoch (model, optimizer state, histories, random
generator), and its ``train()`` gives the same parameters as a run that never stopped.
A loss that becomes ``inf`` or ``nan`` stops training with ``NonFiniteLossError``.

The class comes first; below it are ``accuracy``, the errors and the checks of the
arguments. The plumbing lives in modules of its own: ``course.progress`` (the progress
bar and the log lines), ``course.checkpoints`` (the checkpoint files) and
``course._checks`` (the validators every module of the package shares).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from course import checkpoints, optim
from course._checks import (
    expect_bool,
    expect_dict,
    expect_int,
    expect_labels,
    expect_number,
    expect_real_arrays,
    expect_seed,
    invalid,
)
from course.progress import TrainingProgress


class Solver:
    """Train a model on ``data`` with minibatch gradient steps.

    Args:
        model: an object with ``params`` (dict name -> array) and ``loss(X, y=None)``.
        data: dict with ``X_train`` ``(N_train, ...)``, ``y_train`` ``(N_train,)``,
            ``X_val`` ``(N_val, ...)`` and ``y_val`` ``(N_val,)``; other keys are ignored.
        **kwargs: any of
            ``update_rule`` (``"sgd"``): a name in ``optim.UPDATE_RULES`` or a callable
            ``rule(w, dw, config) -> (next_w, config)`` (to be checkpointed it must
            be a module-level function);
            ``optim_config`` (``{}``): hyperparameters for the rule, copied once per
            parameter;
            ``lr_decay`` (``1.0``): every ``learning_rate`` is multiplied by it after
            each epoch;
            ``batch_size`` (``100``); ``num_epochs`` (``10``);
            ``num_train_samples`` (``1000``): training examples used to measure
            training accuracy each epoch (``None``: all);
            ``num_val_samples`` (``None``: all): the same for validation;
            ``checkpoint_name`` (``None``): if set, ``f"{checkpoint_name}_epoch_{e}.pkl"``
            is written after each epoch ``e``; its folder must exist;
            ``print_every`` (``10``): log the loss every this many iterations;
            ``verbose`` (``True``): progress bar and log lines; ``False`` prints nothing;
            ``seed`` (``None``): an int or ``numpy.random.Generator`` for minibatch
            sampling and accuracy subsampling, so a run can be repeated exactly;
            ``None`` draws from numpy's global random state, so ``np.random.seed``
            before building the Solver repeats a run too.

    Attributes:
        update_rule: the rule function; ``optim_configs``: one config (hyperparameters
        and state) per parameter name; ``epoch``: epochs completed; ``loss_history``:
        the loss of every iteration; ``train_acc_history``, ``val_acc_history``:
        accuracies before training (index 0) and after each epoch; ``best_val_acc`` and
        ``best_params``: the best validation accuracy so far and a copy of the
        parameters that first reached it (ties keep the earlier); ``rng``: the random
        generator.

    Raises:
        ValueError: unknown keyword arguments or update rule, a missing data key, or a
            bad value (the message lists the valid choices).
    """

    def __init__(self, model: Model, data: Mapping[str, np.ndarray], **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(DEFAULTS))
        if unknown:
            raise invalid("Solver", (
                f"unknown keyword argument(s) {', '.join(unknown)}; "
                f"Solver accepts {', '.join(DEFAULTS)}"))
        options = {**DEFAULTS, **kwargs}
        _check_model(model)
        _check_data(data)
        _check_options(options)
        expect_seed("Solver", options["seed"])

        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]

        self.update_rule: optim.UpdateRule = _resolve_update_rule(options["update_rule"])
        if options["checkpoint_name"] is not None:
            checkpoints.check_rule_storable(options["update_rule"])
        # Kept as given, so a checkpoint records the name rather than the function.
        self._update_rule_spec = options["update_rule"]
        self.optim_config: dict[str, Any] = dict(options["optim_config"])
        self.lr_decay: float = options["lr_decay"]
        self.batch_size: int = options["batch_size"]
        self.num_epochs: int = options["num_epochs"]
        self.num_train_samples: int | None = options["num_train_samples"]
        self.num_val_samples: int | None = options["num_val_samples"]
        self.checkpoint_name: str | os.PathLike | None = options["checkpoint_name"]
        self.print_every: int = options["print_every"]
        self.verbose: bool = options["verbose"]
        self.rng = _make_rng(options["seed"])
        self._reset()

    def _reset(self) -> None:
        """Start the bookkeeping of a fresh run: histories, best model, optimizer state."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params: dict[str, np.ndarray] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        # Each parameter gets its own config: the rules keep per-parameter state in it.
        self.optim_configs: dict[str, dict[str, Any]] = {
            name: copy.deepcopy(self.optim_config) for name in self.model.params
        }

    @property
    def iterations_per_epoch(self) -> int:
        """Minibatches per epoch: ``N_train // batch_size``, at least one."""
        return max(len(self.y_train) // self.batch_size, 1)

    # -----------------------------------------------------------------------------
    # One update

    def _step(self, iteration: int, num_iterations: int) -> float:
        """Draw a minibatch, compute loss and gradients, update every parameter.

        ``iteration`` counts from 0 over the whole run; it only serves the error message.
        """
        num_train = len(self.y_train)
        # Without replacement within a minibatch, unless the batch is larger than the set.
        batch = self.rng.choice(
            num_train, size=self.batch_size, replace=self.batch_size > num_train
        )
        loss, grads = self.model.loss(self.X_train[batch], self.y_train[batch])
        loss = float(loss)
        if not np.isfinite(loss):
            raise NonFiniteLossError(self._non_finite_message(loss, iteration, num_iterations))
        self.loss_history.append(loss)

        for name, w in list(self.model.params.items()):
            if name not in grads:
                raise invalid("Solver", (
                    f"model.loss returned no gradient for parameter {name!r}; "
                    f"grads has {sorted(grads)}"))
            next_w, next_config = self.update_rule(w, grads[name], self.optim_configs[name])
            self.model.params[name] = next_w
            self.optim_configs[name] = next_config
        return loss

    def _non_finite_message(self, loss: float, iteration: int, num_iterations: int) -> str:
        rates = [c["learning_rate"] for c in self.optim_configs.values() if "learning_rate" in c]
        if rates:
            advice = (
                f"the steps are probably too large: try a smaller learning_rate than the "
                f"current {max(rates):g} (optim_config['learning_rate'])"
            )
        else:
            advice = "the steps are probably too large: try smaller ones"
        return (
            f"the training loss is {loss} at iteration {iteration + 1} of {num_iterations} "
            f"(epoch {self.epoch + 1} of {self.num_epochs}); training stopped before "
            f"updating the parameters. {advice[0].upper()}{advice[1:]}."
        )

    # -----------------------------------------------------------------------------
    # Accuracy

    def check_accuracy(
        self,
        X: np.ndarray,
        y: np.ndarray,
        num_samples: int | None = None,
        batch_size: int = 100,
    ) -> float:
        """Fraction of examples whose highest score is their label.

        Args:
            X: inputs, shape ``(N, ...)``.
            y: labels, shape ``(N,)``, integers in ``[0, C)``.
            num_samples: if given and smaller than ``N``, score only this many examples
                drawn without replacement with ``self.rng``.
            batch_size: examples per call to ``model.loss`` (bounds memory).

        Returns:
            The accuracy, a float in ``[0, 1]``.
        """
        expect_int("Solver.check_accuracy", "num_samples", num_samples, allow_none=True)
        if num_samples is not None and num_samples < len(y):
            # Draw with the solver's generator so a seeded run measures the same subset.
            subset = self.rng.choice(len(y), size=num_samples, replace=False)
            X, y = X[subset], y[subset]
        return accuracy(self.model, X, y, batch_size)

    def _measure(self) -> tuple[float, float]:
        """Record train/val accuracy; keep a copy of the parameters if val improves.

        Copies, because an update rule may change the arrays in place.
        """
        train_acc = self.check_accuracy(
            self.X_train, self.y_train, num_samples=self.num_train_samples
        )
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if val_acc > self.best_val_acc or not self.best_params:
            self.best_val_acc = val_acc
            self.best_params = {name: np.copy(w) for name, w in self.model.params.items()}
        return train_acc, val_acc

    # -----------------------------------------------------------------------------
    # Training

    def train(self) -> None:
        """Train from the current epoch up to ``num_epochs``.

        Before the first step (of a fresh run) and after every epoch, accuracies are
        measured; after every epoch the learning rates decay and, if
        ``checkpoint_name`` is set, a checkpoint is written. At the end the best
        parameters (by validation accuracy) are copied into ``model.params``.

        Raises:
            NonFiniteLossError: the loss became ``inf`` or ``nan``.
            OSError: a checkpoint could not be written (the message names the file).

        On any error (Ctrl-C included) the best parameters so far are copied into
        ``model.params`` before the error propagates, as at a normal end.
        """
        try:
            self._train_epochs()
        except BaseException:
            # Whatever stopped training (a full disk, Ctrl-C, a bad loss), the model must
            # not be left with the parameters of some mid-training step.
            self._restore_best_params()
            raise
        self._restore_best_params()

    def _train_epochs(self) -> None:
        per_epoch = self.iterations_per_epoch
        num_iterations = self.num_epochs * per_epoch
        start = self.epoch * per_epoch
        with TrainingProgress(num_iterations, start, self.epoch, self.num_epochs,
                              self.print_every, self.verbose) as progress:
            if self.epoch == 0 and not self.val_acc_history:
                progress.accuracies_measured(self.epoch, *self._measure())
            for iteration in range(start, num_iterations):
                loss = self._step(iteration, num_iterations)
                progress.iteration_done(iteration, loss)
                if (iteration + 1) % per_epoch == 0:
                    self._end_epoch(progress)

    def _end_epoch(self, progress: TrainingProgress) -> None:
        self.epoch += 1
        for config in self.optim_configs.values():
            self._decay_learning_rate(config)
        progress.accuracies_measured(self.epoch, *self._measure())
        if self.checkpoint_name is not None:
            self._save_checkpoint()
        progress.epoch_done(self.epoch)

    def _decay_learning_rate(self, config: dict[str, Any]) -> None:
        if "learning_rate" in config:
            config["learning_rate"] *= self.lr_decay
        elif self.lr_decay != 1.0:
            # A silent no-op would leave the user believing the rate decays.
            raise invalid("Solver", (
                f"lr_decay={self.lr_decay} needs a 'learning_rate' in the optimizer config; "
                f"the update rule left only {sorted(config)}"))

    def _restore_best_params(self) -> None:
        # Copies, so that training on afterwards cannot change best_params.
        for name, w in self.best_params.items():
            self.model.params[name] = np.copy(w)

    # -----------------------------------------------------------------------------
    # Checkpoints

    def checkpoint_path(self, epoch: int) -> str:
        """The file written after ``epoch``: ``f"{checkpoint_name}_epoch_{epoch}.pkl"``."""
        if self.checkpoint_name is None:
            raise invalid("Solver", "checkpoint_name is None: this solver writes no checkpoints")
        return f"{os.fspath(self.checkpoint_name)}_epoch_{epoch}.pkl"

    def _save_checkpoint(self) -> str:
        """Write the state needed to resume after the current epoch; return the path."""
        path = self.checkpoint_path(self.epoch)
        checkpoints.write_checkpoint(path, self._checkpoint_state(), self.epoch)
        return path

    def _checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint holds: the model, the run's options, its progress, and the
        random generator's state (``_SAVED_OPTIONS`` and ``_SAVED_PROGRESS`` below name
        the fields; ``from_checkpoint`` reads back the same ones)."""
        options = {name: getattr(self, name) for name in _SAVED_OPTIONS}
        # The rule as given (a name, or a module-level function), not the resolved one.
        options["update_rule"] = self._update_rule_spec
        name = self.checkpoint_name
        options["checkpoint_name"] = None if name is None else os.fspath(name)
        progress = {field: getattr(self, field) for field in _SAVED_PROGRESS}
        return {"model": self.model, **options, **progress,
                "rng_state": self.rng.bit_generator.state}

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, data: Mapping[str, np.ndarray], **overrides: Any
    ) -> Solver:
        """Rebuild the solver that wrote checkpoint ``path``, ready to ``train()`` on.

        Everything is restored: the model, the update rule and every parameter's
        optimizer state (decayed learning rates included), the epoch, the histories,
        the best parameters and the random generator's state. So ``train()`` continues
        with the next epoch exactly as the original run would have.

        Only open checkpoints you trust: unpickling can run arbitrary code.

        Args:
            path: a file written by a solver with ``checkpoint_name`` set.
            data: the same data dict the run used (checkpoints do not store data).
            **overrides: Solver keyword arguments to change for the rest of the run,
                e.g. ``num_epochs=20`` to train longer, ``verbose=False``, or
                ``checkpoint_name=None``. ``update_rule``, ``optim_config`` and ``seed``
                cannot be overridden: their state comes from the checkpoint.

        Raises:
            ValueError: the file is not a solver checkpoint, or a refused override.
        """
        refused = sorted(set(overrides) & set(_RESTORED_ONLY))
        if refused:
            raise invalid("Solver.from_checkpoint", (
                f"cannot override {', '.join(refused)}: the optimizer state and random "
                "generator are restored from the checkpoint"))
        state = checkpoints.read_checkpoint(path)
        options = {name: state[name] for name in _SAVED_OPTIONS}
        solver = cls(state["model"], data, **{**options, **overrides})

        if set(state["optim_configs"]) != set(solver.model.params):
            raise invalid("", (
                f"{os.fspath(path)!r}: optimizer state for {sorted(state['optim_configs'])} "
                f"but the model has parameters {sorted(solver.model.params)}"))
        for field in _SAVED_PROGRESS:
            setattr(solver, field, state[field])
        solver.rng = checkpoints.rng_from_state(state["rng_state"])
        return solver


def accuracy(model: Model, X: np.ndarray, y: np.ndarray, batch_size: int = 100) -> float:
    """Fraction of the examples in ``X`` whose highest score under ``model`` is their label.

    Args:
        model: anything with ``loss(X)`` returning class scores of shape ``(N, C)``.
        X: inputs, shape ``(N, ...)``.
        y: labels, shape ``(N,)``, integers in ``[0, C)``.
        batch_size: examples per call to ``model.loss`` (bounds memory on large sets).

    Returns:
        The accuracy, a float in ``[0, 1]``.
    """
    if not callable(getattr(model, "loss", None)):
        # A notebook's ``best_model = None`` left as it was, or a cell that stopped
        # before it made the model: say so instead of an AttributeError on None.
        raise invalid("accuracy", (
            "model must be a model with a loss(X) method that returns class scores; "
            f"got {model!r:.80}" + (" (the cell that should make it has not run, or left it "
                                     "None)" if model is None else "")))
    if np.ndim(y) != 1 or len(X) != len(y) or len(y) == 0:
        raise invalid("accuracy", (
            "X and y must hold the same positive number of examples, y of shape (N,); "
            f"got shapes {np.shape(X)} and {np.shape(y)}"))
    expect_int("accuracy", "batch_size", batch_size)
    predictions = []
    for start in range(0, len(y), batch_size):
        X_batch = X[start:start + batch_size]
        scores = np.asarray(model.loss(X_batch))
        if scores.ndim != 2 or scores.shape[0] != len(X_batch):
            raise invalid("accuracy", (
                f"model.loss(X) must return scores of shape (N, C) = ({len(X_batch)}, C); "
                f"got shape {scores.shape}"))
        expect_labels("accuracy", "y", np.asarray(y[start:start + batch_size]),
                      scores.shape[1], "(the model's class scores)")
        predictions.append(np.argmax(scores, axis=1))
    return float(np.mean(np.concatenate(predictions) == y))


class NonFiniteLossError(FloatingPointError):
    """The training loss became ``inf`` or ``nan``; the message names the iteration."""


class Model(Protocol):
    """What ``Solver`` needs of a model (see the module docstring)."""

    params: dict[str, np.ndarray]

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any: ...


# ---------------------------------------------------------------------------------------
# The keyword arguments, and what a checkpoint keeps of a run
# ---------------------------------------------------------------------------------------

# The keyword arguments Solver accepts and their defaults (CS231n's, plus ``seed``).
DEFAULTS: dict[str, Any] = {
    "update_rule": "sgd",
    "optim_config": {},
    "lr_decay": 1.0,
    "batch_size": 100,
    "num_epochs": 10,
    "num_train_samples": 1000,
    "num_val_samples": None,
    "checkpoint_name": None,
    "print_every": 10,
    "verbose": True,
    "seed": None,
}

DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")

# A checkpoint records the options of the run (all but seed: the random generator's state
# stands in for it) and the attributes below, its progress. Saving and restoring both
# read these two tuples, so a new field is added in one place.
_SAVED_OPTIONS = tuple(name for name in DEFAULTS if name != "seed")
_SAVED_PROGRESS = (
    "epoch",
    "optim_configs",
    "loss_history",
    "train_acc_history",
    "val_acc_history",
    "best_val_acc",
    "best_params",
)

# Restored from the checkpoint itself, so from_checkpoint refuses to override them.
_RESTORED_ONLY = ("update_rule", "optim_config", "seed")


# ---------------------------------------------------------------------------------------
# Checks of Solver's arguments (the validators are course._checks')
# ---------------------------------------------------------------------------------------


def _check_options(options: dict[str, Any]) -> None:
    """Validate the keyword arguments of ``Solver`` (after defaults are filled in)."""
    for name in ("batch_size", "num_epochs", "print_every"):
        expect_int("Solver", name, options[name])
    for name in ("num_train_samples", "num_val_samples"):
        expect_int("Solver", name, options[name], allow_none=True)
    expect_number("Solver", "lr_decay", options["lr_decay"])
    expect_dict("Solver", "optim_config", options["optim_config"])
    expect_bool("Solver", "verbose", options["verbose"])
    name = options["checkpoint_name"]
    if name is not None:
        if not isinstance(name, (str, os.PathLike)):
            raise invalid("Solver", f"checkpoint_name must be a str, a path or None; "
                                    f"got {name!r}")
        checkpoints.check_checkpoint_name(name)


def _check_model(model: Any) -> None:
    if not isinstance(getattr(model, "params", None), dict):
        raise invalid("Solver", (
            "model must have a params dict (parameter name -> array); "
            f"got {type(model).__name__} without one"))
    if not callable(getattr(model, "loss", None)):
        raise invalid("Solver", (
            f"model must have a method loss(X, y=None); got {type(model).__name__} "
            "without one"))


def _check_data(data: Any) -> None:
    if not isinstance(data, Mapping):
        raise invalid("Solver", (
            f"data must be a dict with keys {', '.join(DATA_KEYS)}; got {type(data).__name__}"))
    missing = [key for key in DATA_KEYS if key not in data]
    if missing:
        raise invalid("Solver", (
            f"data is missing {', '.join(repr(k) for k in missing)}; "
            f"it needs {', '.join(DATA_KEYS)}"))
    for split in ("train", "val"):
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        for key, value in ((f"X_{split}", X), (f"y_{split}", y)):
            if not isinstance(value, np.ndarray):
                raise invalid("Solver", (
                    f"data[{key!r}] must be a numpy array; got {type(value).__name__} "
                    f"(convert it with np.asarray(data[{key!r}]))"))
        expect_real_arrays("Solver", **{f"data['X_{split}']": X})
        expect_labels("Solver", f"data['y_{split}']", y)
        if np.ndim(X) < 1 or np.ndim(y) != 1 or len(X) != len(y) or len(y) == 0:
            raise invalid("Solver", (
                f"data['X_{split}'] and data['y_{split}'] must hold the same positive "
                f"number of examples, y_{split} of shape (N,); got shapes "
                f"{np.shape(X)} and {np.shape(y)}"))


def _resolve_update_rule(rule: str | optim.UpdateRule) -> optim.UpdateRule:
    """A name from ``optim.UPDATE_RULES`` or a callable with the rule signature."""
    if callable(rule):
        return rule
    return optim.get_update_rule(rule)


def _make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """``seed`` is None, an int, or a Generator (used as is).

    None seeds a new Generator with one draw from numpy's global random state, so that
    ``np.random.seed(231)`` before building the Solver (CS231n's habit) makes its
    minibatches repeat; the Generator, unlike the global state, is saved in checkpoints.
    """
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    return np.random.default_rng(seed)
