"""Helpers the experiment cells of the notebooks share: timing, training several models
the same way, and plotting a sweep.

They live here rather than in notebook cells so that every notebook uses one tested
version, and a notebook cell stays one call a reader can follow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from course._checks import expect_int, invalid
from course.solver import Solver
from course.vis_utils import FIGURE_WIDTH, legend_below

__all__ = ["best_times", "plot_sweep", "train_models"]


def best_times(
    functions: Mapping[str, Callable[[], Any]],
    repeats: int = 7,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Best (smallest) wall time in seconds of each function over ``repeats`` calls.

    The calls are interleaved (a, b, a, b, ...) so that a burst of load on a shared
    machine slows every function alike, and the minimum is taken because noise only ever
    adds time: the fastest run is the closest to the function's own cost. ``clock``
    reads the time in seconds (the tests pass a clock of their own).
    """
    expect_int("best_times", "repeats", repeats)
    best = {name: float("inf") for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = clock()
            fn()
            best[name] = min(best[name], clock() - start)
    return best


def train_models(
    models: Mapping[str, Any], data: Mapping[str, np.ndarray], **solver_kwargs: Any
) -> dict[str, Solver]:
    """Train every model with a ``Solver`` built from the same keyword arguments.

    Returns name -> the trained Solver (its histories feed ``plot_training_curves``).
    ``verbose`` defaults to False here, and ``seed`` to 0 so that every model sees the
    same minibatches.
    """
    kwargs = {"verbose": False, "seed": 0, **solver_kwargs}
    solvers = {}
    for name, model in models.items():
        solver = Solver(model, data, **kwargs)
        solver.train()
        solvers[name] = solver
    return solvers


def plot_sweep(
    x: Sequence[float],
    series: Mapping[str, Mapping[str, Sequence[float]]],
    xlabel: str,
    logx: bool = True,
    title: str = "",
) -> Figure:
    """One panel per metric, one line per series, against a swept value ``x``.

    - series: name (e.g. "with batchnorm") -> metric name (e.g. "best val accuracy") ->
      one value per entry of ``x``. Every series must have the same metrics.
    """
    names = list(series)
    if not names:
        raise invalid("plot_sweep", "series must name at least one line")
    metrics = list(series[names[0]])
    # Never wider than a page of the site (vis_utils.FIGURE_WIDTH): it would be shrunk.
    width = min(4.2 * len(metrics), FIGURE_WIDTH)
    fig, axes = plt.subplots(1, len(metrics), figsize=(width, 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, name in enumerate(names):
            values = np.asarray(series[name][metric], dtype=float)
            if values.shape != (len(x),):
                raise invalid("plot_sweep", f"series {name!r}, metric {metric!r} has "
                                            f"{values.size} values; expected {len(x)} (one per x)")
            ax.plot(x, values, marker="o", color=f"C{i}", label=name)
        if logx:
            ax.set_xscale("log")
        if all(float(v).is_integer() for v in x):
            # Integer sweeps (batch sizes, widths): label exactly the values tried.
            ax.set_xticks(list(x), [f"{v:g}" for v in x])
            ax.minorticks_off()
        ax.set(xlabel=xlabel, title=metric)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    legend_below(fig, axes[0, 0])  # series i is colour Ci in every panel
    return fig
