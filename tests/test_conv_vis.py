"""The notebook-4 pictures: filter grid and the normalisation family."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from course.vis_utils import NORMALIZATION_FAMILY, plot_normalization_family, show_conv_filters


@pytest.mark.parametrize("C", [1, 3, 5])
def test_show_conv_filters_draws_one_grid(C: int) -> None:
    fig = show_conv_filters(np.random.default_rng(0).standard_normal((10, C, 3, 3)))
    image = fig.axes[0].get_images()[0].get_array()
    # 10 filters -> a 4 x 4 grid of 3x3 images with 1 pixel between them.
    assert image.shape[:2] == (4 * 3 + 3, 4 * 3 + 3)
    plt.close(fig)


@pytest.mark.parametrize("C", [1, 3])
def test_show_conv_filters_draws_the_gaps_and_empty_cells_white(C: int) -> None:
    # Filters whose darkest pixel is black: black gaps would merge with them.
    W = np.random.default_rng(1).standard_normal((10, C, 3, 3))
    fig = show_conv_filters(W)
    image = fig.axes[0].get_images()[0]
    rgba = image.to_rgba(image.get_array())
    def white(pixels: np.ndarray) -> bool:
        return bool(np.all(pixels == 1.0))

    assert white(rgba[3, :]) and white(rgba[7, :])  # gap rows between rows of filters
    assert white(rgba[:, 3]) and white(rgba[:, 11])  # gap columns
    assert white(rgba[8:11, 8:11]) and white(rgba[12:, 4:])  # cells 11, 14 and 15: no filter
    assert rgba[0:3, 0:3, :3].min() < 0.01  # a filter still reaches 0: gaps stay apart from it
    plt.close(fig)


def test_show_conv_filters_rejects_non_4d() -> None:
    with pytest.raises(ValueError, match=r"W must have shape \(F, C, HH, WW\)"):
        show_conv_filters(np.zeros((3, 3)))


def test_normalization_family_shades_the_right_cells() -> None:
    N, C, groups = 4, 6, 2
    counts = {name: sum(shaded(n, c, groups, C) for n in range(N) for c in range(C))
              for name, shaded in NORMALIZATION_FAMILY.items()}
    # batch: one channel over N examples; layer: C channels of one example; instance: one;
    # group: C / groups channels of one example.
    assert counts == {"batch norm": N, "layer norm": C, "instance norm": 1, "group norm": 3}
    fig = plot_normalization_family(N, C, groups)
    assert len(fig.axes) == 4
    plt.close(fig)
