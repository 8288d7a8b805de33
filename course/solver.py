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
"""

from __future__ import annotations

import copy
import importlib.util
import os
import pickle
import re
import secrets
import sys
import time
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from course import optim
from course.processes import pid_alive

CHECKPOINT_FORMAT = "course.solver checkpoint"
CHECKPOINT_VERSION = 1

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

# Restored from the checkpoint itself, so from_checkpoint refuses to override them.
_RESTORED_ONLY = ("update_rule", "optim_config", "seed")


class Model(Protocol):
    """What ``Solver`` needs of a model (see the module docstring)."""

    params: dict[str, np.ndarray]

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any: ...


class NonFiniteLossError(FloatingPointError):
    """The training loss became ``inf`` or ``nan``; the message names the iteration."""


def _ordered(postfix: dict[str, str]) -> dict[str, str]:
    """The progress bar shows the loss first, then the latest accuracies."""
    return {key: postfix[key] for key in ("loss", "train_acc", "val_acc") if key in postfix}


PROGRESS_ENV = "COURSE_PROGRESS"


def _progress_bar_class() -> type:
    """How training shows its progress, by ``$COURSE_PROGRESS``.

    ``static``: no bar; one final line of text (the site and the stored notebooks use it:
    a widget bar is stored as a bar frozen at 0% and shows nothing offline). ``text``:
    tqdm's terminal bar. Unset (or anything else): tqdm's live notebook bar in Jupyter
    when ipywidgets is installed (it warns without it), the terminal bar elsewhere.
    """
    mode = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if mode == "static":
        return StaticProgress
    if mode != "text" and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


class StaticProgress:
    """The subset of tqdm's interface ``Solver.train`` uses, printing only the final line.

    The line says where training ended, e.g.
    ``epoch 10/10: 120/120 iterations, loss=0.115, train_acc=0.975, val_acc=0.966``.
    """

    def __init__(
        self, total: int, initial: int = 0, disable: bool = False, desc: str = "", **_: Any
    ) -> None:
        self.total, self.n, self.disable, self.desc = total, initial, disable, desc
        self.postfix: dict[str, str] = {}

    def __enter__(self) -> StaticProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, postfix: Mapping[str, str], refresh: bool = True) -> None:
        self.postfix = dict(postfix)

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def write(self, text: str) -> None:
        if not self.disable:
            print(text, flush=True)

    def close(self) -> None:
        if self.disable:
            return
        self.disable = True  # close() twice prints once
        details = "".join(f", {key}={value}" for key, value in self.postfix.items())
        print(f"{self.desc}: {self.n}/{self.total} iterations{details}", flush=True)


def _check_positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        expected = "a positive int or None" if allow_none else "a positive int"
        raise ValueError(f"{name} must be {expected}; got {value!r}")


def _check_options(options: dict[str, Any]) -> None:
    """Validate the keyword arguments of ``Solver`` (after defaults are filled in)."""
    for name in ("batch_size", "num_epochs", "print_every"):
        _check_positive_int(name, options[name])
    for name in ("num_train_samples", "num_val_samples"):
        _check_positive_int(name, options[name], allow_none=True)
    lr_decay = options["lr_decay"]
    if isinstance(lr_decay, bool) or not isinstance(lr_decay, (int, float)) or lr_decay <= 0:
        raise ValueError(f"lr_decay must be a positive number; got {lr_decay!r}")
    if not isinstance(options["optim_config"], Mapping):
        raise ValueError(
            f"optim_config must be a dict; got {type(options['optim_config']).__name__}"
        )
    if not isinstance(options["verbose"], bool):
        raise ValueError(f"verbose must be True or False; got {options['verbose']!r}")
    name = options["checkpoint_name"]
    if name is not None:
        if not isinstance(name, (str, os.PathLike)):
            raise ValueError(f"checkpoint_name must be a str, a path or None; got {name!r}")
        _check_checkpoint_name(name)


def _check_checkpoint_name(name: str | os.PathLike) -> None:
    """Fail now rather than after the first epoch of training.

    The name must end in a file name prefix (not a separator) and its folder must exist
    and accept new files: a probe file is created there and removed again. Temp files
    left by an earlier, killed checkpoint write of the same name are removed (and said).
    """
    text = os.fspath(name)
    if not text or text.endswith(("/", os.sep)) or os.path.basename(text) in ("", ".", ".."):
        raise ValueError(
            f"checkpoint_name {text!r} must end in a file name prefix, e.g. "
            f"{os.path.join(text.rstrip('/' + os.sep) or '.', 'run')!r}: checkpoints are "
            "written to f'{checkpoint_name}_epoch_{epoch}.pkl'"
        )
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise ValueError(
            f"checkpoint_name {text!r}: the folder {os.path.dirname(text) or '.'!r} does not "
            "exist; create it first"
        )
    probe = os.path.join(folder, f".{os.path.basename(text)}.probe.{os.getpid()}.tmp")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"checkpoint_name {text!r}: cannot write files in the folder {folder!r} "
            f"({error.strerror or error}); choose a writable folder"
        ) from None
    for stale in remove_stale_checkpoint_temps(text):
        print(f"Solver: removed {stale}, a temporary file left by an interrupted "
              "checkpoint write", file=sys.stderr)


# ".<prefix>_epoch_<e>.pkl.<pid>.<hex>.tmp": the name _write_atomically gives its temp file.
_TEMP_NAME = re.compile(r"^\.(?P<target>.+\.pkl)\.(?P<pid>\d+)\.[0-9a-f]+\.tmp$")
# A temp file whose writer is still alive is not stale, unless it is this old (seconds);
# the pid may have been reused by another process since.
STALE_TEMP_AGE = 24 * 3600


def remove_stale_checkpoint_temps(checkpoint_name: str | os.PathLike) -> list[str]:
    """Remove temp files of interrupted checkpoint writes of ``checkpoint_name``.

    Only files named like ``_write_atomically``'s temp files for this name are touched,
    and only when the process that wrote them is gone (or the file is a day old).
    Returns the paths removed.
    """
    text = os.fspath(checkpoint_name)
    folder = os.path.dirname(os.path.abspath(text))
    prefix = os.path.basename(text) + "_epoch_"
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for entry in names:
        match = _TEMP_NAME.match(entry)
        if not match or not match.group("target").startswith(prefix):
            continue
        path = os.path.join(folder, entry)
        try:
            age = time.time() - os.lstat(path).st_mtime
            if pid_alive(int(match.group("pid"))) and age < STALE_TEMP_AGE:
                continue
            os.remove(path)
        except OSError:
            continue
        removed.append(path)
    return removed




def _resolve_update_rule(rule: str | optim.UpdateRule) -> optim.UpdateRule:
    """A name from ``optim.UPDATE_RULES`` or a callable with the rule signature."""
    if callable(rule):
        return rule
    return optim.get_update_rule(rule)


def _check_rule_picklable(rule: str | optim.UpdateRule) -> None:
    """A checkpoint stores the rule by reference; find out now, not after an epoch."""
    try:
        pickle.dumps(rule)
    except Exception as error:
        raise ValueError(
            f"update_rule {rule!r} cannot be stored in a checkpoint ({error}); with "
            "checkpoint_name set, pass a rule name or a module-level function"
        ) from None


def _check_model(model: Any) -> None:
    if not isinstance(getattr(model, "params", None), dict):
        raise ValueError(
            "model must have a params dict (parameter name -> array); "
            f"got {type(model).__name__} without one"
        )
    if not callable(getattr(model, "loss", None)):
        raise ValueError(
            f"model must have a method loss(X, y=None); got {type(model).__name__} without one"
        )


def _check_data(data: Any) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(
            f"data must be a dict with keys {', '.join(DATA_KEYS)}; got {type(data).__name__}"
        )
    missing = [key for key in DATA_KEYS if key not in data]
    if missing:
        raise ValueError(
            f"data is missing {', '.join(repr(k) for k in missing)}; "
            f"it needs {', '.join(DATA_KEYS)}"
        )
    for split in ("train", "val"):
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        _check_data_array(f"X_{split}", X, integer=False)
        _check_data_array(f"y_{split}", y, integer=True)
        if np.ndim(X) < 1 or np.ndim(y) != 1 or len(X) != len(y) or len(y) == 0:
            raise ValueError(
                f"data['X_{split}'] and data['y_{split}'] must hold the same positive "
                f"number of examples, y_{split} of shape (N,); got shapes "
                f"{np.shape(X)} and {np.shape(y)}"
            )


def _check_data_array(key: str, value: Any, integer: bool) -> None:
    """data[key] must be a numpy array of numbers (integer labels for ``y``)."""
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"data[{key!r}] must be a numpy array; got {type(value).__name__} "
            f"(convert it with np.asarray(data[{key!r}]))"
        )
    kind = "iu" if integer else "iuf"
    if value.dtype.kind not in kind:
        expected = "integer class labels" if integer else "numbers (an int or float dtype)"
        raise ValueError(f"data[{key!r}] must hold {expected}; got dtype {value.dtype}")
    if integer and value.size and value.min() < 0:
        raise ValueError(
            f"data[{key!r}] must hold class labels 0, 1, ..., C-1; found {value.min()}"
        )


def _make_rng(seed: Any) -> np.random.Generator:
    """``seed`` may be None, an int, or a Generator (used as is).

    None seeds a new Generator with one draw from numpy's global random state, so that
    ``np.random.seed(231)`` before building the Solver (CS231n's habit) makes its
    minibatches repeat; the Generator, unlike the global state, is saved in checkpoints.
    """
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise ValueError(
            f"seed must be None, a non-negative int or a numpy Generator; got {seed!r}"
        ) from None


def _read_checkpoint(path: str | os.PathLike) -> Any:
    """Unpickle ``path``; a truncated or foreign file is a ValueError naming it."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except OSError:
        raise  # missing or unreadable: the OS error already names the file
    except Exception as error:  # pickle raises many unrelated types for bad bytes
        raise ValueError(
            f"{os.fspath(path)!r} is not a readable Solver checkpoint (truncated, damaged or "
            f"another kind of file: {type(error).__name__}: {error})"
        ) from None


def _rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    """Rebuild a Generator, of the same bit generator kind, from its saved state."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _write_atomically(path: str, payload: Any) -> None:
    """Pickle ``payload`` to ``path`` so that ``path`` is never left half-written.

    The bytes go to a temporary file in the same folder (so that the final rename
    stays on one file system), reach the disk (fsync), and only then replace ``path``
    in one step. If anything fails, the temporary file is removed and ``path`` keeps
    its previous content.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp_path = os.path.join(
        folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    )
    # O_EXCL: never reuse someone else's file; mode 0o666 lets the umask decide, so the
    # checkpoint gets the permissions an ordinary open() would give (mkstemp: 0o600).
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        # BaseException: a Ctrl-C during the write must not leave the temp file either.
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable; not possible on every platform (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    if np.ndim(y) != 1 or len(X) != len(y) or len(y) == 0:
        raise ValueError(
            f"X and y must hold the same positive number of examples, y of shape "
            f"(N,); got shapes {np.shape(X)} and {np.shape(y)}"
        )
    _check_positive_int("batch_size", batch_size)
    predictions = []
    for start in range(0, len(y), batch_size):
        X_batch = X[start:start + batch_size]
        scores = np.asarray(model.loss(X_batch))
        if scores.ndim != 2 or scores.shape[0] != len(X_batch):
            raise ValueError(
                f"model.loss(X) must return scores of shape (N, C) = "
                f"({len(X_batch)}, C); got shape {scores.shape}"
            )
        _check_labels(y[start:start + batch_size], scores.shape[1])
        predictions.append(np.argmax(scores, axis=1))
    return float(np.mean(np.concatenate(predictions) == y))


def _check_labels(y: np.ndarray, num_classes: int) -> None:
    # A label no score column can match would silently count as a wrong prediction.
    bad = (y < 0) | (y >= num_classes)
    if np.any(bad):
        raise ValueError(
            f"labels must be class indices in [0, {num_classes}) for a model with "
            f"{num_classes} class scores; found {y[bad][0]}"
        )


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
            raise ValueError(
                f"unknown keyword argument(s) {', '.join(unknown)}; "
                f"Solver accepts {', '.join(DEFAULTS)}"
            )
        options = {**DEFAULTS, **kwargs}
        _check_model(model)
        _check_data(data)
        _check_options(options)

        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]

        self.update_rule: optim.UpdateRule = _resolve_update_rule(options["update_rule"])
        if options["checkpoint_name"] is not None:
            _check_rule_picklable(options["update_rule"])
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
                raise ValueError(
                    f"model.loss returned no gradient for parameter {name!r}; "
                    f"grads has {sorted(grads)}"
                )
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
        _check_positive_int("num_samples", num_samples, allow_none=True)
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
        bar_class = _progress_bar_class()
        with bar_class(
            total=num_iterations, initial=start, disable=not self.verbose,
            desc=f"epoch {self.epoch + 1}/{self.num_epochs}", unit="it", dynamic_ncols=True,
        ) as bar:
            postfix: dict[str, str] = {}
            if self.epoch == 0 and not self.val_acc_history:
                self._measure_and_report(bar, postfix)
            for iteration in range(start, num_iterations):
                loss = self._step(iteration, num_iterations)
                if self.verbose:
                    postfix["loss"] = f"{loss:.4g}"
                    bar.set_postfix(_ordered(postfix), refresh=False)
                    bar.update(1)
                    if iteration % self.print_every == 0:
                        bar.write(
                            f"(Iteration {iteration + 1} / {num_iterations}) loss: {loss:f}"
                        )
                if (iteration + 1) % per_epoch == 0:
                    self._end_epoch(bar, postfix)

    def _end_epoch(self, bar: Any, postfix: dict[str, str]) -> None:
        self.epoch += 1
        for config in self.optim_configs.values():
            self._decay_learning_rate(config)
        self._measure_and_report(bar, postfix)
        if self.checkpoint_name is not None:
            self._save_checkpoint()
        if self.verbose and self.epoch < self.num_epochs:
            bar.set_description(f"epoch {self.epoch + 1}/{self.num_epochs}", refresh=False)

    def _decay_learning_rate(self, config: dict[str, Any]) -> None:
        if "learning_rate" in config:
            config["learning_rate"] *= self.lr_decay
        elif self.lr_decay != 1.0:
            # A silent no-op would leave the user believing the rate decays.
            raise ValueError(
                f"lr_decay={self.lr_decay} needs a 'learning_rate' in the optimizer config; "
                f"the update rule left only {sorted(config)}"
            )

    def _measure_and_report(self, bar: Any, postfix: dict[str, str]) -> None:
        train_acc, val_acc = self._measure()
        if self.verbose:
            postfix["train_acc"] = f"{train_acc:.3f}"
            postfix["val_acc"] = f"{val_acc:.3f}"
            bar.set_postfix(_ordered(postfix))
            bar.write(
                f"(Epoch {self.epoch} / {self.num_epochs}) "
                f"train acc: {train_acc:f}; val acc: {val_acc:f}"
            )

    def _restore_best_params(self) -> None:
        # Copies, so that training on afterwards cannot change best_params.
        for name, w in self.best_params.items():
            self.model.params[name] = np.copy(w)

    # -----------------------------------------------------------------------------
    # Checkpoints

    def checkpoint_path(self, epoch: int) -> str:
        """The file written after ``epoch``: ``f"{checkpoint_name}_epoch_{epoch}.pkl"``."""
        if self.checkpoint_name is None:
            raise ValueError("checkpoint_name is None: this solver writes no checkpoints")
        return f"{os.fspath(self.checkpoint_name)}_epoch_{epoch}.pkl"

    def _save_checkpoint(self) -> str:
        """Write the state needed to resume after the current epoch; return the path."""
        payload = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model": self.model,
            "update_rule": self._update_rule_spec,
            "lr_decay": self.lr_decay,
            "optim_config": self.optim_config,
            "optim_configs": self.optim_configs,
            "batch_size": self.batch_size,
            "num_epochs": self.num_epochs,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "checkpoint_name": (
                None if self.checkpoint_name is None else os.fspath(self.checkpoint_name)
            ),
            "print_every": self.print_every,
            "verbose": self.verbose,
            "epoch": self.epoch,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
            "best_val_acc": self.best_val_acc,
            "best_params": self.best_params,
            "rng_state": self.rng.bit_generator.state,
        }
        path = self.checkpoint_path(self.epoch)
        try:
            _write_atomically(path, payload)
        except OSError as error:
            # The raw error names the hidden temp file; the user knows only the checkpoint.
            raise OSError(
                error.errno, f"cannot write the checkpoint {path!r} after epoch {self.epoch} "
                f"({error.strerror or error}); the best parameters so far were restored "
                "into model.params"
            ) from error
        return path

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
            raise ValueError(
                f"from_checkpoint cannot override {', '.join(refused)}: the optimizer "
                "state and random generator are restored from the checkpoint"
            )
        state = _read_checkpoint(path)
        if not (isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT):
            raise ValueError(f"{os.fspath(path)!r} is not a Solver checkpoint")
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(
                f"{os.fspath(path)!r} is a version {state.get('version')} checkpoint; "
                f"this Solver reads version {CHECKPOINT_VERSION}"
            )

        options = {key: state[key] for key in DEFAULTS if key != "seed"}
        options.update(overrides)
        solver = cls(state["model"], data, **options)

        if set(state["optim_configs"]) != set(solver.model.params):
            raise ValueError(
                f"{os.fspath(path)!r}: optimizer state for {sorted(state['optim_configs'])} "
                f"but the model has parameters {sorted(solver.model.params)}"
            )
        solver.optim_configs = state["optim_configs"]
        solver.epoch = state["epoch"]
        solver.loss_history = state["loss_history"]
        solver.train_acc_history = state["train_acc_history"]
        solver.val_acc_history = state["val_acc_history"]
        solver.best_val_acc = state["best_val_acc"]
        solver.best_params = state["best_params"]
        solver.rng = _rng_from_state(state["rng_state"])
        return solver

