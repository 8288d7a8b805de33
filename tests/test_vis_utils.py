"""Tests of the drawing helpers: geometry and scaling worked out by hand."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from course.vis_utils import (
    plot_activation_histograms,
    plot_training_curves,
    show_class_examples,
    to_displayable,
    visualize_grid,
)


def test_visualize_grid_places_and_rescales_each_image():
    # Three 2x2 one-channel images -> a 2x2 grid of cells (ceil(sqrt(3)) = 2) with 1 px padding:
    # 2*2 + 1 = 5 pixels on each side; the fourth cell stays empty.
    Xs = np.stack([np.full((2, 2, 1), 7.0), np.arange(4.0).reshape(2, 2, 1), -np.ones((2, 2, 1))])
    Xs[0, 0, 0, 0] = 9.0  # image 0 spans 7..9
    grid = visualize_grid(Xs, ubound=1.0, padding=1)
    assert grid.shape == (5, 5, 1)
    # image 0: (v - 7) / 2 -> 1 at the 9, 0 elsewhere
    np.testing.assert_allclose(grid[0:2, 0:2, 0], [[1.0, 0.0], [0.0, 0.0]])
    # image 1 sits in the top-right cell, columns 3..4: (v - 0) / 3
    np.testing.assert_allclose(grid[0:2, 3:5, 0], [[0.0, 1 / 3], [2 / 3, 1.0]])
    # image 2 is constant: drawn as zeros rather than dividing by a zero range
    np.testing.assert_allclose(grid[3:5, 0:2, 0], 0.0)
    # the padding row and column stay blank
    assert not grid[2].any() and not grid[:, 2].any()


def test_visualize_grid_names_the_bad_shape():
    with pytest.raises(
        ValueError, match=r"Xs must have shape \(N, H, W, C\); got Xs.shape = \(3, 4\)"
    ):
        visualize_grid(np.zeros((3, 4)))


def test_to_displayable_adds_the_mean_back_and_moves_channels_last():
    mean = np.full((3, 2, 2), 100.0)
    X = np.zeros((1, 3, 2, 2))
    X[0, 2] = 155.0  # blue plane: 100 + 155 = 255 after adding the mean
    images = to_displayable(X, mean)
    assert images.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(images[0, :, :, 2], 1.0)
    np.testing.assert_allclose(images[0, :, :, 0], 100 / 255)


def test_show_class_examples_draws_one_column_per_class():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 1, 4, 4))
    y = np.repeat(np.arange(4), 10)
    fig = show_class_examples(X, y, ["a", "b", "c", "d"], per_class=3)
    assert len(fig.axes) == 12
    assert [ax.get_title() for ax in fig.axes[:4]] == ["a", "b", "c", "d"]


class _Run:
    def __init__(self, n_iter, n_epochs):
        self.loss_history = list(np.linspace(2.0, 0.5, n_iter))
        self.train_acc_history = list(np.linspace(0.1, 0.9, n_epochs))
        self.val_acc_history = list(np.linspace(0.1, 0.8, n_epochs))


def test_plot_training_curves_draws_every_run():
    fig = plot_training_curves({"sgd": _Run(50, 5), "adam": _Run(50, 5)}, smooth=5)
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.lines) == 2
    # moving average of window 5 over 50 points leaves 46
    assert len(ax_loss.lines[0].get_xdata()) == 46
    assert len(ax_acc.lines) == 4  # train and validation per run


def test_the_accuracy_axis_ticks_whole_epochs():
    # 21 epochs (0..20): matplotlib's default ticks would be 0, 2.5, 5, ..., 17.5, 20, and
    # integers alone 0, 3, ..., 21 (a tick past the last epoch).
    fig = plot_training_curves({"run": _Run(40, 21)})
    _, ax_acc = fig.axes
    low, high = ax_acc.get_xlim()
    ticks = [t for t in ax_acc.get_xticks() if low <= t <= high]
    assert len(ticks) >= 3 and all(t == int(t) for t in ticks), ticks
    assert ticks[1] - ticks[0] in (1, 2, 5, 10) and ticks[-1] <= 20, ticks


def test_plot_activation_histograms_one_panel_per_layer():
    fig = plot_activation_histograms([np.ones((4, 3)), np.zeros(5), -np.ones(2)], "demo")
    assert len(fig.axes) == 3
