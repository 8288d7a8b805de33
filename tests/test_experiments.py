"""Tests of course.experiments: timing, training several models alike, sweep plots."""

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from course.classifiers.fc_net import FullyConnectedNet
from course.experiments import best_times, plot_sweep, train_models


def test_best_times_takes_the_fastest_of_interleaved_calls() -> None:
    # A clock that moves only when a function "runs", by the time that call takes, so the
    # answer is exact and does not depend on the machine's load.
    now = [0.0]
    calls: list[str] = []
    durations = {"slow": iter([20.0, 3.0, 5.0]), "fast": iter([2.0, 1.0, 4.0])}

    def run(name: str) -> Callable[[], None]:
        def call() -> None:
            calls.append(name)
            now[0] += next(durations[name])
        return call

    best = best_times({"slow": run("slow"), "fast": run("fast")}, repeats=3,
                      clock=lambda: now[0])
    assert calls == ["slow", "fast"] * 3  # interleaved
    assert best == {"slow": 3.0, "fast": 1.0}  # the minimum, whichever call it was
    with pytest.raises(ValueError, match="repeats must be a positive int; got 0"):
        best_times({"f": lambda: None}, repeats=0)


def test_train_models_gives_every_model_the_same_minibatches() -> None:
    rng = np.random.default_rng(0)
    data = {"X_train": rng.standard_normal((40, 5)), "y_train": rng.integers(0, 3, 40),
            "X_val": rng.standard_normal((10, 5)), "y_val": rng.integers(0, 3, 10)}
    models = {name: FullyConnectedNet([4], input_dim=5, num_classes=3, seed=1)
              for name in ("a", "b")}
    solvers = train_models(models, data, num_epochs=2, batch_size=10)
    assert list(solvers) == ["a", "b"]
    assert solvers["a"].loss_history == solvers["b"].loss_history  # same model, same data
    assert len(solvers["a"].loss_history) == 8


def test_plot_sweep_draws_one_panel_per_metric_and_checks_lengths() -> None:
    series = {"x": {"acc": [0.1, 0.2], "loss": [2.0, 1.0]}, "y": {"acc": [0.3, 0.4],
                                                                   "loss": [1.5, 0.5]}}
    fig = plot_sweep([1e-2, 1e-1], series, "scale")
    assert [ax.get_title() for ax in fig.axes] == ["acc", "loss"]
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_xscale() == "log"
    integer_sweep = plot_sweep([2, 8, 32], {"x": {"acc": [0.1, 0.2, 0.3]}}, "batch size")
    assert [t.get_text() for t in integer_sweep.axes[0].get_xticklabels()] == ["2", "8", "32"]
    with pytest.raises(ValueError, match=r"series 'x', metric 'acc' has 1 values; expected 2"):
        plot_sweep([1, 2], {"x": {"acc": [0.1]}}, "scale")
