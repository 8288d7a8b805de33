"""Figures fit the site's text column and keep their labels legible.

The site's column is 48 rem (768 px); notebooks draw at 80 dpi, so a figure at most
``FIGURE_WIDTH`` = 9.5 in wide (760 px) is never shrunk to fit, and neither are its titles.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from course import vis_utils

COLUMN_PX, DPI = 768, 80


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_ten_layer_histograms_are_two_rows_of_five_within_the_column():
    layers = [np.random.default_rng(i).normal(size=(50, 8)) for i in range(10)]
    fig = vis_utils.plot_activation_histograms(layers, "ten layers")
    assert len(fig.axes) == 10
    rows = sorted({round(ax.get_position().y0, 3) for ax in fig.axes})
    columns = sorted({round(ax.get_position().x0, 3) for ax in fig.axes})
    assert (len(rows), len(columns)) == (2, 5)
    assert fig.get_figwidth() * DPI <= COLUMN_PX
    # Titles at least 10 pt: about 11 px high at 80 dpi (they were 9 pt, shrunk 2.3x).
    assert all(ax.title.get_fontsize() >= 10 for ax in fig.axes)
    assert [ax.get_title() for ax in fig.axes] == [f"layer {i}" for i in range(1, 11)]


def test_three_layers_make_one_row_of_three():
    fig = vis_utils.plot_activation_histograms([np.ones(4), np.zeros(3), -np.ones(2)], "t")
    assert len(fig.axes) == 3
    assert len({round(ax.get_position().y0, 3) for ax in fig.axes}) == 1


class _Run:
    def __init__(self) -> None:
        self.loss_history = [2.0, 1.0]
        self.train_acc_history = [0.1, 0.5]
        self.val_acc_history = [0.1, 0.4]


def test_the_other_figures_fit_the_column_too():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 1, 8, 8))
    y = np.repeat(np.arange(10), 10)
    figures = [
        vis_utils.plot_training_curves({"run": _Run()}),
        vis_utils.show_class_examples(X, y, [str(c) for c in range(10)],
                                      mean_image=np.zeros((1, 8, 8))),
    ]
    for fig in figures:
        assert fig.get_figwidth() * DPI <= COLUMN_PX


@pytest.mark.parametrize("layers", [10, 7])
def test_histograms_say_what_their_axes_show(layers):
    # 7 layers leave columns 3-5 without a second-row panel: their first-row panel is the
    # lowest, so it carries the label and the scale.
    values = [np.random.default_rng(i).normal(size=200) for i in range(layers)]
    fig = vis_utils.plot_activation_histograms(values, "labels")
    fig.canvas.draw()
    lowest = {}
    for ax in fig.axes:
        column = round(ax.get_position().x0, 3)
        if column not in lowest or ax.get_position().y0 < lowest[column].get_position().y0:
            lowest[column] = ax
    assert len(lowest) == vis_utils.HISTOGRAMS_PER_ROW
    for ax in lowest.values():
        assert ax.get_xlabel() == "activation value"
        assert any(t.get_visible() and t.get_text() for t in ax.get_xticklabels()), ax.get_title()
    leftmost = min(round(ax.get_position().x0, 3) for ax in fig.axes)
    for ax in fig.axes:
        if round(ax.get_position().x0, 3) == leftmost:
            assert ax.get_ylabel(), ax.get_title()


def _legends_and_panels(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return ([lg.get_window_extent(renderer) for lg in legends],
            [ax.get_window_extent(renderer) for ax in fig.axes])


def test_training_curve_legend_is_below_the_panels_and_names_every_run():
    # Five runs whose curves fill both panels (the update-rule comparison): any spot
    # inside a panel, "best" included, covers some of them.
    class Run:
        def __init__(self, k: int) -> None:
            self.loss_history = list(np.linspace(2.3, 0.1 * k, 60))
            self.train_acc_history = list(np.linspace(0.1, 0.5 + 0.1 * k, 6))
            self.val_acc_history = list(np.linspace(0.1, 0.4 + 0.1 * k, 6))

    names = ["sgd", "sgd_momentum", "rmsprop", "adam", "adagrad"]
    fig = vis_utils.plot_training_curves({name: Run(k) for k, name in enumerate(names)})
    legends, panels = _legends_and_panels(fig)
    assert len(legends) == 1
    assert not any(legend.overlaps(panel) for legend in legends for panel in panels)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == names
    assert legends[0].y1 < min(panel.y0 for panel in panels)  # under the panels
    assert fig.get_figwidth() * DPI <= COLUMN_PX


def test_sweep_legend_is_outside_every_panel():
    from course.experiments import plot_sweep

    x = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    rising, falling = list(np.linspace(0.1, 0.9, 5)), list(np.linspace(0.9, 0.1, 5))
    series = {"baseline": {"train": rising, "val": rising},
              "batchnorm": {"train": falling, "val": falling}}
    legends, panels = _legends_and_panels(plot_sweep(x, series, "initial weight scale"))
    assert len(legends) == 1
    assert not any(legend.overlaps(panel) for legend in legends for panel in panels)
