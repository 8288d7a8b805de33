"""How ``Solver.train`` shows its progress: a progress bar and CS231n's log lines.

``TrainingProgress`` is the one display a training run talks to. It prints the lines
CS231n's solver prints::

    (Iteration 1 / 120) loss: 2.302585
    (Epoch 1 / 10) train acc: 0.312000; val acc: 0.298000

and drives a progress bar chosen by the environment variable ``COURSE_PROGRESS``:

* unset (or anything else): tqdm's live notebook bar in Jupyter when ipywidgets is
  installed (tqdm warns without it), followed by the final line of ``static`` below when
  training ends (the saved notebook keeps the widget as a bar frozen at 0%); tqdm's
  terminal bar elsewhere;
* ``text``: tqdm's terminal bar;
* ``static``: no bar, one final line of text (``StaticProgress``). The site and the
  stored notebooks use it: a widget bar is stored as a bar frozen at 0% and shows
  nothing offline, whereas the line says where training ended.

With ``verbose=False`` nothing is printed at all.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["PROGRESS_ENV", "StaticProgress", "TrainingProgress", "final_line", "progress_bar_class"]

PROGRESS_ENV = "COURSE_PROGRESS"

# The bar shows the loss first, then the latest accuracies.
_POSTFIX_ORDER = ("loss", "train_acc", "val_acc")


class TrainingProgress:
    """The display of one call of ``Solver.train``: use it as a context manager.

    Args:
        num_iterations: iterations of the whole run (all epochs).
        start: iterations already done (a run resumed from a checkpoint starts later).
        epochs_done: epochs already done; the bar's label names the next one.
        num_epochs: epochs of the whole run.
        print_every: log the loss every this many iterations.
        verbose: ``False`` prints nothing.
    """

    def __init__(self, num_iterations: int, start: int, epochs_done: int, num_epochs: int,
                 print_every: int, verbose: bool) -> None:
        self.num_iterations = num_iterations
        self.num_epochs = num_epochs
        self.print_every = print_every
        self.verbose = verbose
        self._postfix: dict[str, str] = {}
        self._label = self._epoch_label(epochs_done)  # tqdm's own desc gains a ": "
        self._bar = progress_bar_class()(
            total=num_iterations, initial=start, disable=not verbose,
            desc=self._label, unit="it", dynamic_ncols=True,
        )

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.__exit__(*exc)  # closes the bar; StaticProgress prints its line here
        if self.verbose and _is_widget_bar(self._bar):
            # A saved notebook keeps a widget bar as its first frame, 0%, and JupyterLab
            # shows that frame when the notebook is opened again (or handed in): the line
            # of text is what says, in the saved notebook, where training ended.
            print(final_line(self._label, self._bar.n, self.num_iterations,
                             self._ordered_postfix()), flush=True)

    def iteration_done(self, iteration: int, loss: float) -> None:
        """Iteration ``iteration`` (counted from 0 over the run) ended with ``loss``."""
        if not self.verbose:
            return
        self._postfix["loss"] = f"{loss:.4g}"
        self._bar.set_postfix(self._ordered_postfix(), refresh=False)
        self._bar.update(1)
        if iteration % self.print_every == 0:
            self._bar.write(f"(Iteration {iteration + 1} / {self.num_iterations}) "
                            f"loss: {loss:f}")

    def accuracies_measured(self, epochs_done: int, train_acc: float, val_acc: float) -> None:
        """Accuracies measured after ``epochs_done`` epochs (0: before training)."""
        if not self.verbose:
            return
        self._postfix["train_acc"] = f"{train_acc:.3f}"
        self._postfix["val_acc"] = f"{val_acc:.3f}"
        self._bar.set_postfix(self._ordered_postfix())
        self._bar.write(f"(Epoch {epochs_done} / {self.num_epochs}) "
                        f"train acc: {train_acc:f}; val acc: {val_acc:f}")

    def epoch_done(self, epochs_done: int) -> None:
        """Relabel the bar for the next epoch (the last epoch keeps its label)."""
        if self.verbose and epochs_done < self.num_epochs:
            self._label = self._epoch_label(epochs_done)
            self._bar.set_description(self._label, refresh=False)

    def _epoch_label(self, epochs_done: int) -> str:
        return f"epoch {epochs_done + 1}/{self.num_epochs}"

    def _ordered_postfix(self) -> dict[str, str]:
        return {key: self._postfix[key] for key in _POSTFIX_ORDER if key in self._postfix}


def final_line(desc: str, done: int, total: int, postfix: Mapping[str, str]) -> str:
    """Where training ended, e.g.
    ``epoch 10/10: 120/120 iterations, loss=0.115, train_acc=0.975, val_acc=0.966``."""
    details = "".join(f", {key}={value}" for key, value in postfix.items())
    return f"{desc}: {done}/{total} iterations{details}"


def _is_widget_bar(bar: Any) -> bool:
    """Whether ``bar`` is tqdm's Jupyter widget bar (``tqdm.auto`` picks it in a notebook)."""
    return type(bar).__module__.startswith("tqdm.notebook")


def progress_bar_class() -> type:
    """The bar class ``$COURSE_PROGRESS`` asks for (see the module docstring)."""
    mode = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if mode == "static":
        return StaticProgress
    if mode != "text" and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


class StaticProgress:
    """The subset of tqdm's interface ``TrainingProgress`` uses, printing only the final line.

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
        print(final_line(self.desc, self.n, self.total, self.postfix), flush=True)
