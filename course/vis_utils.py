"""Pictures for the notebooks: image grids, training curves and activation histograms.

Every function that draws returns the matplotlib ``Figure`` it made; a notebook cell
ends with ``plt.show()`` so the figure appears once. Nothing here prints text, so cells
that only draw have stable outputs for nbval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# Widest figure, in inches: at the notebooks' 80 dpi that is 760 px, the width of the
# site's text column, so no figure is shrunk (and its labels with it) to fit the page.
FIGURE_WIDTH = 9.5
HISTOGRAMS_PER_ROW = 5


def visualize_grid(
    Xs: np.ndarray, ubound: float = 255.0, padding: int = 1, fill: float = 0.0
) -> np.ndarray:
    """Tile a batch of images into one image, each rescaled to ``[0, ubound]`` on its own.

    Inputs:
    - Xs: images of shape (N, H, W, C) (channels last, as ``imshow`` wants them; for NCHW
      arrays such as conv weights pass ``W.transpose(0, 2, 3, 1)``).
    - ubound: the value the brightest pixel of each image is mapped to.
    - padding: blank pixels between neighbouring images.
    - fill: the value of those blank pixels and of unused cells. 0 (CS231n's) draws them
      black, like the darkest pixel of every image; ``np.nan`` marks them as no image at
      all, so a plot can draw them in a colour no image has (``show_conv_filters`` does).

    Returns an array of shape (G*H + (G-1)*padding, G*W + (G-1)*padding, C) where
    G = ceil(sqrt(N)), images placed row by row; unused cells stay ``fill``.
    """
    if Xs.ndim != 4:
        raise ValueError(
            f"visualize_grid: Xs must have shape (N, H, W, C); got Xs.shape = {Xs.shape}"
        )
    N, H, W, C = Xs.shape
    side = int(np.ceil(np.sqrt(N)))
    grid = np.full((side * H + (side - 1) * padding, side * W + (side - 1) * padding, C), fill,
                   dtype=np.float64)
    for i, image in enumerate(Xs):
        row, col = divmod(i, side)
        top, left = row * (H + padding), col * (W + padding)
        low, high = image.min(), image.max()
        # A constant image has no range to stretch; leave it at 0 rather than divide by 0.
        scaled = (image - low) / (high - low) * ubound if high > low else np.zeros_like(image)
        grid[top : top + H, left : left + W] = scaled
    return grid


def to_displayable(X: np.ndarray, mean_image: np.ndarray | None = None) -> np.ndarray:
    """Turn NCHW images (possibly mean-subtracted) back into NHWC pixels in [0, 1] for imshow.

    - X: (N, C, H, W); mean_image: (C, H, W) that was subtracted, or None.
    Returns (N, H, W, C) floats; each batch is scaled by the largest pixel value it holds
    (255 for CIFAR-10 and the digits).
    """
    images = X.astype(np.float64) + (0.0 if mean_image is None else mean_image)
    images = images.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    top = max(float(images.max()), 1e-12)
    return np.clip(images / top, 0.0, 1.0)


def show_class_examples(
    X: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    mean_image: np.ndarray | None = None,
    per_class: int = 6,
    seed: int = 0,
) -> Figure:
    """A grid with one column per class and ``per_class`` random examples in each.

    - X: (N, C, H, W) images, y: (N,) labels in [0, len(class_names)).
    - mean_image: the (C, H, W) mean that was subtracted from X, added back for display.
    - seed: which examples are drawn (the figure is the same on every run).
    """
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(y == c), size=min(per_class, int(np.sum(y == c))),
                         replace=False) for c in range(len(class_names))]
    # Only the shown images are converted: all of CIFAR-10 in float64 would take 1.2 GB.
    shown = np.concatenate(picked).astype(np.int64)
    images = dict(zip(shown.tolist(), to_displayable(X[shown], mean_image), strict=True))
    grey = X.shape[1] == 1
    num_classes = len(class_names)
    # Panels shrink when many classes would make the figure wider than a page.
    side = min(1.1, FIGURE_WIDTH / num_classes)
    fig, axes = plt.subplots(
        per_class, num_classes, figsize=(side * num_classes, side * per_class), squeeze=False
    )
    for c, name in enumerate(class_names):
        picks = picked[c]
        for row in range(per_class):
            ax = axes[row, c]
            ax.axis("off")
            if row < picks.size:
                image = images[picks[row]]
                ax.imshow(
                    image[..., 0] if grey else image,
                    cmap="gray" if grey else None,
                    interpolation="nearest",
                )
        axes[0, c].set_title(str(name), fontsize=9)
    fig.tight_layout()
    return fig


def plot_training_curves(histories: Mapping[str, Any], smooth: int = 1) -> Figure:
    """Loss per iteration and train/validation accuracy per epoch, one colour per run.

    - histories: name -> an object with ``loss_history``, ``train_acc_history`` and
      ``val_acc_history`` lists (a ``Solver`` after ``train()``).
    - smooth: window of a moving average over the loss, to see the trend through noise.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(FIGURE_WIDTH, 3.6))
    for i, (name, run) in enumerate(histories.items()):
        colour = f"C{i}"
        loss = np.asarray(run.loss_history, dtype=float)
        if smooth > 1 and loss.size >= smooth:
            loss = np.convolve(loss, np.ones(smooth) / smooth, mode="valid")
        ax_loss.plot(loss, color=colour, label=name, linewidth=1)
        epochs = np.arange(len(run.val_acc_history))
        ax_acc.plot(epochs, run.train_acc_history, color=colour, linestyle="--", marker=".")
        ax_acc.plot(epochs, run.val_acc_history, color=colour, marker="o", label=name)
    ax_loss.set(title="Training loss", xlabel="iteration", ylabel="loss")
    ax_acc.set(
        title="Accuracy (dashed: train, solid: validation)", xlabel="epoch", ylabel="accuracy"
    )
    # Accuracy is measured after whole epochs: no tick at epoch 2.5 (nor steps of 3).
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    legend_below(fig, ax_loss)
    return fig


LEGEND_COLUMNS = 5
LEGEND_ROW_INCHES = 0.25


def legend_below(fig: Figure, ax: Any) -> None:
    """One legend for the whole figure, under its panels, with the entries of ``ax``.

    Inside a panel, even at matplotlib's "best" spot, a legend hid curves whenever they
    filled the panel (five update rules, or sweeps that cross the middle). Every panel
    of these figures draws run i in colour Ci, so one legend serves them all. The figure
    grows by the legend's height, so the panels keep their size; call this instead of
    ``fig.tight_layout()``, which it does with the legend's strip left free.
    """
    handles, labels = ax.get_legend_handles_labels()
    if not labels:
        fig.tight_layout()
        return
    rows = -(-len(labels) // LEGEND_COLUMNS)
    strip = LEGEND_ROW_INCHES * rows + 0.1  # inches: the rows and a little air above them
    fig.set_figheight(fig.get_figheight() + strip)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), LEGEND_COLUMNS),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, strip / fig.get_figheight(), 1, 1))


def plot_activation_histograms(
    activations: Sequence[np.ndarray], title: str, bins: int = 40
) -> Figure:
    """One histogram per layer of the values its units output, in rows of five.

    - activations: one array per hidden layer (any shape; all values are pooled).
    The x range is shared so layers can be compared by eye. Rows of at most
    ``HISTOGRAMS_PER_ROW`` keep each panel and its title legible at a page's width
    (ten layers side by side made titles a few pixels high).
    """
    values = [np.ravel(a) for a in activations]
    high = max(float(np.abs(v).max()) for v in values) or 1.0
    columns = min(HISTOGRAMS_PER_ROW, len(values))
    rows = -(-len(values) // columns)
    width = FIGURE_WIDTH * columns / HISTOGRAMS_PER_ROW
    fig, axes = plt.subplots(
        rows, columns, figsize=(width, 1.9 * rows + 0.5), sharex=True, squeeze=False
    )
    flat = list(axes.ravel())
    for unused in flat[len(values):]:
        fig.delaxes(unused)
    for i, (ax, v) in enumerate(zip(flat, values, strict=False), start=1):
        ax.hist(v, bins=bins, range=(-high if v.min() < 0 else 0.0, high), color="C0")
        ax.set_title(f"layer {i}", fontsize=10)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=8)
    _label_histogram_axes(flat[: len(values)], columns)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _label_histogram_axes(panels: Sequence[Any], columns: int) -> None:
    """Name the axes of a grid of histograms: x under each column, y beside each row.

    The x axis is shared, so one label under the lowest panel of a column is enough; that
    panel also gets its tick labels back, since sharing hid them on every row but the last
    (a column whose last-row panel was deleted would otherwise show no scale at all). The
    y ticks are off (counts differ by layer and only the shape matters), so the label says
    what the height is without a scale.
    """
    for i, ax in enumerate(panels):
        if i + columns >= len(panels):  # nothing below it in its column
            ax.set_xlabel("activation value", fontsize=9)
            ax.xaxis.set_tick_params(labelbottom=True)
        if i % columns == 0:
            ax.set_ylabel("count of values", fontsize=9)


# ---------------------------------------------------------------------------------------
# Convolutional networks (notebook 4)
# ---------------------------------------------------------------------------------------


def show_conv_filters(W: np.ndarray, padding: int = 1, title: str = "") -> Figure:
    """The filters of a convolutional layer as one grid of small images.

    - W: filters, shape (F, C, HH, WW) (NCHW, as ``ThreeLayerConvNet.params["W1"]``). With
      C = 3 each filter is shown in colour, with C = 1 in grey; other C show channel 0.
    - padding: blank pixels between filters.
    Each filter is stretched to the full range on its own (see ``visualize_grid``), so the
    picture shows patterns, not the relative size of filters. The gaps between filters and
    the unused cells are white: black ones (CS231n's) merge with every filter's darkest
    pixels, and the grid stops reading as separate filters.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 4:
        raise ValueError(f"show_conv_filters: W must have shape (F, C, HH, WW); "
                         f"got W.shape = {W.shape}")
    images = W.transpose(0, 2, 3, 1)  # (F, C, HH, WW) -> (F, HH, WW, C)
    if images.shape[-1] not in (1, 3):
        images = images[..., :1]
    grid = visualize_grid(images, ubound=1.0, padding=padding, fill=np.nan)
    fig, ax = plt.subplots(figsize=(4, 4))
    if grid.shape[-1] == 1:  # grey: the gaps are masked, drawn in the colour map's "bad"
        gray = plt.get_cmap("gray").with_extremes(bad="white")
        ax.imshow(np.ma.masked_invalid(grid[..., 0]), cmap=gray, vmin=0.0, vmax=1.0,
                  interpolation="nearest")
    else:  # colour: imshow takes the pixels as they are, so the gaps are made white here
        ax.imshow(np.nan_to_num(grid, nan=1.0), interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# Which (example, channel) cells of a (N, C) grid share one set of statistics, for each
# normalisation; every cell stands for the H x W pixels of one channel of one example.
NORMALIZATION_FAMILY = {
    "batch norm": lambda n, c, groups, C: c == 0,
    "layer norm": lambda n, c, groups, C: n == 0,
    "instance norm": lambda n, c, groups, C: n == 0 and c == 0,
    "group norm": lambda n, c, groups, C: n == 0 and c < C // groups,
}


def plot_normalization_family(N: int = 4, C: int = 6, groups: int = 2) -> Figure:
    """Which values each normalisation averages over, for activations (N, C, H, W).

    One panel per normalisation (batch, layer, instance, group with ``groups`` groups).
    Rows are the N examples, columns the C channels; each square stands for the H x W
    pixels of one channel of one example. The shaded squares are the values that share one
    mean and variance: batch norm uses one channel across the whole batch, layer norm one
    example across all channels, instance norm one channel of one example, and group norm
    one example across one group of C / groups channels.
    """
    fig, axes = plt.subplots(1, len(NORMALIZATION_FAMILY), figsize=(FIGURE_WIDTH, 2.8))
    for ax, (name, shaded) in zip(axes, NORMALIZATION_FAMILY.items(), strict=True):
        for n in range(N):
            for c in range(C):
                on = shaded(n, c, groups, C)
                ax.add_patch(plt.Rectangle((c, N - 1 - n), 0.92, 0.92,
                                           color="C0" if on else "0.85"))
        ax.set(xlim=(-0.2, C), ylim=(-0.2, N), aspect="equal", title=name)
        ax.set_xticks(np.arange(C) + 0.46, [str(c) for c in range(C)])
        ax.set_yticks(np.arange(N) + 0.46, [str(n) for n in range(N)][::-1])
        ax.set_xlabel("channel C")
        ax.set_ylabel("example N")
        ax.tick_params(length=0, labelsize=8)
        for side in ax.spines.values():
            side.set_visible(False)
    fig.suptitle("Shaded: the values (each square = H x W pixels) that share one mean and "
                 "variance", fontsize=10)
    fig.tight_layout()
    return fig
