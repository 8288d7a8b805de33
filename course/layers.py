"""Layers as forward/backward pairs, written naively for clarity.

Every ``<layer>_forward(...)`` returns ``(out, cache)``: the layer's output and whatever its
backward pass needs. Every ``<layer>_backward(dout, cache)`` takes ``dout``, the gradient of
the loss with respect to ``out`` (same shape as ``out``), and returns the gradients with
respect to the forward pass's inputs, each shaped like its input. The losses at the end
return ``(loss, dx)`` directly, because nothing comes after them.

Sections follow the notebooks: affine and ReLU, then the losses (notebook 1). Batch and
layer normalisation (notebook 2), dropout (notebook 3) and the convolutional layers
(notebook 4) follow them, in that order.

Names of sizes: ``N`` rows in a minibatch, ``D`` inputs and ``M`` outputs of an affine
layer, ``C`` classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "affine_backward",
    "affine_forward",
    "relu_backward",
    "relu_forward",
    "softmax_loss",
    "svm_loss",
]


# ---------------------------------------------------------------------------------------
# Input validation. It sits outside the solution regions, so students keep it: a shape
# mistake then fails loudly at the layer that received the bad array, not three layers on.
# ---------------------------------------------------------------------------------------


def _expect_shape(func: str, name: str, arr: np.ndarray, expected: tuple[int, ...],
                  meaning: str = "") -> None:
    """Raise ValueError unless ``arr.shape == expected``; ``meaning`` explains the dims."""
    if arr.shape != tuple(expected):
        dims = f" {meaning}" if meaning else ""
        raise ValueError(
            f"{func}: {name} must have shape {tuple(expected)}{dims}; "
            f"got {name}.shape = {arr.shape}"
        )


def _validate_scores_and_labels(func: str, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``x`` as an (N, C) array and ``y`` as an (N,) integer array with labels in [0, C)."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"{func}: x must have shape (N, C) (one row of class scores per "
                         f"example); got x.shape = {x.shape}")
    N, C = x.shape
    if N == 0 or C == 0:
        raise ValueError(f"{func}: x must have shape (N, C) with N >= 1 and C >= 1; "
                         f"got x.shape = {x.shape}")
    _expect_shape(func, "y", y, (N,), "(one label per row of x)")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{func}: y must hold integer class labels; got y.dtype = {y.dtype}")
    if y.min() < 0 or y.max() >= C:
        bad = y[(y < 0) | (y >= C)][0]
        raise ValueError(f"{func}: y must hold labels in [0, C) with C = {C} (the columns of "
                         f"x); got label {bad}")
    return x, y


# ---------------------------------------------------------------------------------------
# Affine (fully connected) layer
# ---------------------------------------------------------------------------------------


def affine_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Affine (fully connected) layer, forward pass: ``out = x_flat @ w + b``.

    Each example may have any shape ``(d1, ..., dk)``; it is flattened, in C order, into a
    row of ``D = d1 * ... * dk`` numbers, so that ``x`` becomes a matrix ``x_flat`` of
    shape (N, D). Example ``i`` then gives ``out[i] = x_flat[i] @ w + b``.

    Inputs:
    - x: array of shape (N, d1, ..., dk), N examples.
    - w: weights, shape (D, M).
    - b: biases, shape (M,).

    Returns a tuple of:
    - out: output, shape (N, M).
    - cache: ``(x, w, b)``, for the backward pass.

    What to write [task 1.1]: compute the output and store it in ``out``. ``N`` and ``D``
    are already defined for you; the code after your part builds ``cache`` and returns.
    """
    x, w, b = np.asarray(x), np.asarray(w), np.asarray(b)
    if x.ndim < 2:
        raise ValueError("affine_forward: x must have shape (N, d1, ..., dk) with at least "
                         f"one non-batch dim; got x.shape = {x.shape}")
    N = x.shape[0]
    D = int(np.prod(x.shape[1:]))
    if w.ndim != 2 or w.shape[0] != D:
        raise ValueError(f"affine_forward: w must have shape (D, M) with D = {D} (the product "
                         f"of x's non-batch dims); got w.shape = {w.shape}")
    M = w.shape[1]
    _expect_shape("affine_forward", "b", b, (M,), f"(M,) with M = {M} (the columns of w)")

    # BEGIN SOLUTION 1.1
    x_flat = x.reshape(N, D)  # (N, d1, ..., dk) -> (N, D)
    out = x_flat @ w + b  # (N, D) @ (D, M) + (M,) -> (N, M)
    # END SOLUTION
    cache = (x, w, b)
    return out, cache


def affine_backward(
    dout: np.ndarray, cache: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Affine layer, backward pass.

    Inputs:
    - dout: upstream gradient, shape (N, M).
    - cache: ``(x, w, b)`` from ``affine_forward``; x has shape (N, d1, ..., dk),
      w shape (D, M), b shape (M,).

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, d1, ..., dk) (x's own shape, not (N, D)).
    - dw: gradient with respect to w, shape (D, M).
    - db: gradient with respect to b, shape (M,).

    What to write [task 1.2]: compute the three gradients and store them in ``dx``, ``dw``
    and ``db``. ``x``, ``w``, ``N`` and ``D`` are already defined for you. Remember that
    ``b`` was added to every row of the output.
    """
    x, w, _ = cache  # b is not needed: db depends on dout alone
    dout = np.asarray(dout)
    N = x.shape[0]
    D, M = w.shape
    _expect_shape("affine_backward", "dout", dout, (N, M), "(N, M), the shape of out")

    # BEGIN SOLUTION 1.2
    x_flat = x.reshape(N, D)  # (N, d1, ..., dk) -> (N, D)
    dx = (dout @ w.T).reshape(x.shape)  # (N, M) @ (M, D) -> (N, D) -> x's shape
    dw = x_flat.T @ dout  # (D, N) @ (N, M) -> (D, M)
    db = dout.sum(axis=0)  # (N, M) -> (M,)
    # END SOLUTION
    return dx, dw, db


# ---------------------------------------------------------------------------------------
# ReLU
# ---------------------------------------------------------------------------------------


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rectified linear unit, forward pass: ``out = max(x, 0)`` elementwise.

    Inputs:
    - x: array of any shape.

    Returns a tuple of:
    - out: output, shape of x.
    - cache: x itself, for the backward pass.

    What to write [task 1.3]: compute the output and store it in ``out``; keep x's dtype.
    """
    x = np.asarray(x)

    # BEGIN SOLUTION 1.3
    out = np.maximum(x, 0)
    # END SOLUTION
    cache = x
    return out, cache


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Rectified linear unit, backward pass.

    The slope of ``max(x, 0)`` is 1 where ``x > 0`` and 0 where ``x < 0``. At ``x == 0``
    it is undefined; use 0 there (numeric gradients are never taken exactly at the kink).

    Inputs:
    - dout: upstream gradient, any shape.
    - cache: x from ``relu_forward``, the same shape as dout.

    Returns:
    - dx: gradient with respect to x, shape of x.

    What to write [task 1.4]: compute the gradient and store it in ``dx``; ``x`` is
    already defined for you.
    """
    x = cache
    dout = np.asarray(dout)
    _expect_shape("relu_backward", "dout", dout, x.shape, "(the shape of x)")

    # BEGIN SOLUTION 1.4
    dx = dout * (x > 0)
    # END SOLUTION
    return dx


# ---------------------------------------------------------------------------------------
# Losses: they take class scores and labels and return (loss, dx) at once.
# ---------------------------------------------------------------------------------------


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax (cross-entropy) loss and its gradient, averaged over the minibatch.

    Row ``i`` of ``x`` holds unnormalised log-probabilities (scores) of the C classes for
    example ``i``. The softmax turns them into probabilities
    ``p[i, j] = exp(x[i, j]) / sum_k exp(x[i, k])`` and the loss is
    ``loss = -(1/N) sum_i log p[i, y[i]]``.

    Scores may be large (1e4 and more): ``exp`` of them overflows. Subtract each row's
    maximum from the row first; the probabilities do not change and the largest exponent
    becomes ``exp(0) = 1``.

    Inputs:
    - x: scores, shape (N, C).
    - y: integer labels, shape (N,), each in [0, C).

    Returns a tuple of:
    - loss: the mean loss, a float.
    - dx: gradient of the loss with respect to x, shape (N, C).

    What to write [task 1.5]: compute the loss and its gradient and store them in
    ``loss`` and ``dx``; ``N`` is already defined for you.
    """
    x, y = _validate_scores_and_labels("softmax_loss", x, y)
    N = x.shape[0]

    # BEGIN SOLUTION 1.5
    shifted = x - x.max(axis=1, keepdims=True)  # (N, C), each row's largest entry is 0
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, 1)
    log_probs = shifted - log_norm  # (N, C)
    rows = np.arange(N)
    loss = -log_probs[rows, y].mean()
    # d loss_i / d x_ij = p_ij - [j == y_i], and the mean divides by N.
    dx = np.exp(log_probs)
    dx[rows, y] -= 1
    dx /= N
    # END SOLUTION
    return float(loss), dx


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Multiclass SVM (hinge) loss with margin 1 and its gradient, averaged over the minibatch.

    Example ``i`` is penalised for every wrong class ``j != y[i]`` whose score comes within
    1 of the correct class's score:
    ``loss = (1/N) sum_i sum_{j != y[i]} max(0, x[i, j] - x[i, y[i]] + 1)``.

    Inputs:
    - x: scores, shape (N, C).
    - y: integer labels, shape (N,), each in [0, C).

    Returns a tuple of:
    - loss: the mean loss, a float.
    - dx: gradient of the loss with respect to x, shape (N, C). Where a margin is exactly
      0 (the hinge's kink) use slope 0.

    What to write [task 1.6]: compute the loss and its gradient and store them in
    ``loss`` and ``dx``; ``N`` is already defined for you.
    """
    x, y = _validate_scores_and_labels("svm_loss", x, y)
    N = x.shape[0]

    # BEGIN SOLUTION 1.6
    rows = np.arange(N)
    correct = x[rows, y][:, np.newaxis]  # (N,) -> (N, 1), to broadcast along each row
    margins = np.maximum(0, x - correct + 1)  # (N, C)
    margins[rows, y] = 0  # the correct class is not compared with itself
    loss = margins.sum() / N
    # Each positive margin pushes its wrong class up by 1 and the correct class down by 1.
    dx = (margins > 0).astype(np.result_type(x.dtype, np.float32))  # (N, C)
    dx[rows, y] = -dx.sum(axis=1)
    dx /= N
    # END SOLUTION
    return float(loss), dx
