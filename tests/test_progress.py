"""How training reports progress: ``COURSE_PROGRESS=static`` gives one final line of text.

The site and the stored notebooks use it, so a training cell shows where training ended
(epochs, iterations, last loss and accuracies) instead of a widget that is stored as a bar
frozen at 0%. The model here is a hand-written stand-in, not a task of the course.
"""

from __future__ import annotations

import numpy as np
import pytest

from course import progress
from course.solver import Solver


class _Constant:
    """Scores every class alike from one weight; its loss is w**2 + 1, gradient 2w."""

    def __init__(self) -> None:
        self.params = {"w": np.array([0.5])}

    def loss(self, X, y=None):
        scores = np.zeros((len(X), 3)) + self.params["w"]
        if y is None:
            return scores
        return float(self.params["w"][0] ** 2 + 1), {"w": 2 * self.params["w"]}


def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"X_train": rng.normal(size=(20, 2)), "y_train": np.zeros(20, dtype=int),
            "X_val": rng.normal(size=(5, 2)), "y_val": np.zeros(5, dtype=int)}


def _train(monkeypatch, capsys, mode: str, **kwargs) -> str:
    monkeypatch.setenv(progress.PROGRESS_ENV, mode)
    Solver(_Constant(), _data(), num_epochs=2, batch_size=10, print_every=100,
           optim_config={"learning_rate": 0.1}, seed=0, **kwargs).train()
    return capsys.readouterr().out


def test_static_progress_prints_where_training_ended(monkeypatch, capsys):
    out = _train(monkeypatch, capsys, "static")
    lines = out.splitlines()
    # 2 epochs of 20 examples in batches of 10: 4 iterations. Every example is class 0 and
    # every score ties, so argmax picks class 0: accuracy 1. w goes 0.5 -> 0.4 -> 0.32 ->
    # 0.256 -> 0.2048 under SGD at 0.1, and the last loss printed is 0.256**2 + 1.
    assert lines[-1] == "epoch 2/2: 4/4 iterations, loss=1.066, train_acc=1.000, val_acc=1.000"
    assert "\r" not in out and "%|" not in out  # no bar frames
    assert lines[0] == "(Epoch 0 / 2) train acc: 1.000000; val acc: 1.000000"


def test_static_progress_is_silent_when_not_verbose(monkeypatch, capsys):
    assert _train(monkeypatch, capsys, "static", verbose=False) == ""


@pytest.mark.parametrize("mode", ["text", "TEXT "])
def test_text_mode_uses_the_terminal_bar(monkeypatch, mode):
    from tqdm.std import tqdm

    monkeypatch.setenv(progress.PROGRESS_ENV, mode)
    assert progress.progress_bar_class() is tqdm


def test_the_notebook_bar_is_followed_by_the_final_line(monkeypatch, capsys):
    # Outside Jupyter tqdm's widget bar prints its first frame (0%), which is also what a
    # saved notebook keeps of it: the final line after it says where training ended.
    from tqdm.notebook import tqdm

    monkeypatch.setattr(progress, "progress_bar_class", lambda: tqdm)
    out = _train(monkeypatch, capsys, "")
    # The same run as the static test above: 4 iterations, last loss 0.256**2 + 1.
    assert out.splitlines()[-1] == ("epoch 2/2: 4/4 iterations, loss=1.066, train_acc=1.000, "
                                    "val_acc=1.000")
