"""Layers as forward/backward pairs, written naively for clarity.

Every ``<layer>_forward(...)`` returns ``(out, cache)``: the layer's output and whatever its
backward pass needs. Every ``<layer>_backward(dout, cache)`` takes ``dout``, the gradient of
the loss with respect to ``out`` (same shape as ``out``), and returns the gradients with
respect to the forward pass's inputs, each shaped like its input. The losses at the end
return ``(loss, dx)`` directly, because nothing comes after them.

Sections follow the notebooks: affine and ReLU, then the losses (notebook 1). Batch and
layer normalisation (notebook 2), dropout (notebook 3) and the convolutional layers
(notebook 4) follow them, in that order.

Names of sizes, the same in every docstring and error message: ``N`` rows in a minibatch;
``D`` inputs (the product of x's non-batch dimensions) and ``M`` outputs of an affine
layer; ``C`` classes of a loss's scores ``(N, C)``, but in the image layers the input
channels; ``H``, ``W`` an image's height and width (``x`` is ``(N, C, H, W)``); ``F``
filters of ``HH`` x ``WW``; ``H_out``, ``W_out`` the height and width of a convolution's or
a pool's output; ``G`` the groups of group normalisation.

Each function first checks its inputs with the validators of ``course._checks``. Those
lines sit outside the solution regions, so they stay in the student release: a shape
mistake fails loudly at the layer that received the bad array, not three layers on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course._checks import (
    conv_geometry,
    expect_choice,
    expect_dict,
    expect_ndim,
    expect_number,
    expect_real_arrays,
    expect_seed,
    expect_shape,
    group_norm_inputs,
    norm_eps,
    norm_inputs,
    pool_geometry,
    scores_and_labels,
    spatial_norm_inputs,
)

__all__ = [
    "affine_backward",
    "affine_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "conv_backward_naive",
    "conv_forward_naive",
    "dropout_backward",
    "dropout_forward",
    "layernorm_backward",
    "layernorm_forward",
    "max_pool_backward_naive",
    "max_pool_forward_naive",
    "relu_backward",
    "relu_forward",
    "softmax_loss",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
    "svm_loss",
]


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
    x, w, b = expect_real_arrays("affine_forward", x=x, w=w, b=b)
    expect_ndim("affine_forward", "x", x, "(N, d1, ..., dk)", "with at least one non-batch dim",
                min_ndim=2)
    N = x.shape[0]
    D = int(np.prod(x.shape[1:]))
    expect_shape("affine_forward", "w", w, ("D", "M"), "(the product of x's non-batch dims)",
                 D=D)
    M = w.shape[1]
    expect_shape("affine_forward", "b", b, ("M",), "(the columns of w)", M=M)

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
    (dout,) = expect_real_arrays("affine_backward", dout=dout)
    N = x.shape[0]
    D, M = w.shape
    expect_shape("affine_backward", "dout", dout, ("N", "M"), "(the shape of out)", N=N, M=M)

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

    What to write [task 1.3]: compute the output and store it in ``out``; keep x's dtype,
    and leave x as it is (``out`` is a new array: the cache holds x for the backward pass,
    and the caller may still need it).
    """
    (x,) = expect_real_arrays("relu_forward", x=x)

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
    (dout,) = expect_real_arrays("relu_backward", dout=dout)
    expect_shape("relu_backward", "dout", dout, x.shape, "(the shape of x)")

    # BEGIN SOLUTION 1.4
    dx = dout * (x > 0)  # x's shape: the slope is 1 where x > 0, else 0
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

    Scores may be huge (1e4 and more), and the loss must stay finite. Two steps do it:

    1. Subtract each row's maximum from the row, ``s[i, j] = x[i, j] - max_k x[i, k]``: the
       probabilities do not change, and ``exp`` can no longer overflow (the largest
       exponent is ``exp(0) = 1``).
    2. Never take ``log`` of a probability: with scores that far apart, ``exp`` of the
       other entries underflows to 0, and ``log(0)`` is ``-inf``. Compute the
       log-probabilities directly, in log-sum-exp form,
       ``log p[i, j] = s[i, j] - log(sum_k exp(s[i, k]))``: each sum is at least 1 (its
       largest term is ``exp(0)``), so its ``log`` is finite. The gradient needs ``p``
       itself, which is ``exp(log p)`` (an entry that underflows to 0 is harmless there).

    Inputs:
    - x: scores, shape (N, C).
    - y: integer labels, shape (N,), each in [0, C).

    Returns a tuple of:
    - loss: the mean loss, a float.
    - dx: gradient of the loss with respect to x, shape (N, C).

    What to write [task 1.5]: compute the loss and its gradient and store them in
    ``loss`` and ``dx``; ``N`` is already defined for you.
    """
    x, y = scores_and_labels("softmax_loss", x, y)
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

    Huge scores (1e4 and more) need no special care here, unlike in ``softmax_loss``:
    only differences of scores enter, and there is no ``exp`` or ``log``. Compute the
    margins ``x[i, j] - x[i, y[i]] + 1`` directly and the loss stays finite.

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
    x, y = scores_and_labels("svm_loss", x, y)
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


# ---------------------------------------------------------------------------------------
# Batch normalisation (notebook 2; Ioffe & Szegedy 2015)
# ---------------------------------------------------------------------------------------

BN_MODES = ("train", "test")


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """Batch normalisation, forward pass.

    Each column (feature) ``j`` of ``x`` is normalised and then scaled and shifted:
    ``out[:, j] = gamma[j] * (x[:, j] - mu[j]) / sqrt(var[j] + eps) + beta[j]``.

    * In ``'train'`` mode, ``mu`` and ``var`` are the mean and the *biased* variance
      (dividing by N) of the minibatch's columns, and the running averages are updated:
      ``running_mean = momentum * running_mean + (1 - momentum) * mu`` (the same for
      ``running_var`` with ``var``).
    * In ``'test'`` mode, ``mu`` and ``var`` are ``running_mean`` and ``running_var``;
      nothing is updated.

    Inputs:
    - x: data, shape (N, D).
    - gamma: scale, shape (D,).
    - beta: shift, shape (D,).
    - bn_param: dict, mutated in place and kept by the caller between calls:
      - mode: 'train' or 'test' (required).
      - eps: added to the variance before the square root (default 1e-5).
      - momentum: weight of the old running average (default 0.9).
      - running_mean, running_var: arrays of shape (D,); created as zeros of x's dtype
        on the first call and written back after every call.

    Returns a tuple of:
    - out: shape (N, D).
    - cache: whatever your backward passes need (both ``batchnorm_backward`` and
      ``batchnorm_backward_alt`` receive it). Backward passes are only taken in train mode.

    What to write [task 2.1]: for both modes compute ``out`` and ``cache``; in train mode
    also the new ``running_mean`` and ``running_var``. ``mode``, ``eps``, ``momentum``,
    ``running_mean`` and ``running_var`` are already defined for you; the code after your
    part stores the running averages back into ``bn_param``.
    """
    x, gamma, beta = norm_inputs("batchnorm_forward", x, gamma, beta, bn_param, "bn_param")
    mode = bn_param.get("mode")
    expect_choice("batchnorm_forward", "bn_param['mode']", mode, BN_MODES)
    eps = norm_eps("batchnorm_forward", bn_param, "bn_param")
    momentum = expect_number("batchnorm_forward", "bn_param['momentum']",
                             bn_param.get("momentum", 0.9), "[0, 1]")
    D = x.shape[1]
    running_mean = np.asarray(bn_param.get("running_mean", np.zeros(D, dtype=x.dtype)))
    running_var = np.asarray(bn_param.get("running_var", np.zeros(D, dtype=x.dtype)))
    for name, running in (("running_mean", running_mean), ("running_var", running_var)):
        expect_shape("batchnorm_forward", f"bn_param[{name!r}]", running, ("D",),
                     "(the columns of x)", D=D)

    # BEGIN SOLUTION 2.1
    if mode == "train":
        mu = x.mean(axis=0)  # (N, D) -> (D,)
        centred = x - mu  # (N, D)
        var = np.mean(centred**2, axis=0)  # (D,), biased: divides by N
        std = np.sqrt(var + eps)  # (D,)
        x_hat = centred / std  # (N, D)
        out = gamma * x_hat + beta
        cache = (x_hat, centred, std, gamma)
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        x_hat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * x_hat + beta
        cache = None  # no backward pass in test mode
    # END SOLUTION
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(
    dout: np.ndarray, cache: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch normalisation, backward pass, step by step through the computation graph.

    Break the train-mode forward pass into elementary steps (mean, centring, square,
    variance, square root, division, scale, shift) and propagate ``dout`` back through
    them one at a time, in reverse order. Remember that ``mu`` and ``var`` depend on every
    row of x, so their gradients sum over the batch.

    Inputs:
    - dout: upstream gradient, shape (N, D).
    - cache: from ``batchnorm_forward`` in train mode.

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, D).
    - dgamma: gradient with respect to gamma, shape (D,).
    - dbeta: gradient with respect to beta, shape (D,).

    What to write [task 2.2]: unpack ``cache`` and compute ``dx``, ``dgamma``, ``dbeta``.
    Not by calling ``batchnorm_backward_alt`` (task 2.3): a task that calls the other
    gets no points (``course/own_work.py``).
    """
    dout = np.asarray(dout)
    expect_ndim("batchnorm_backward", "dout", dout, "(N, D)", "(the shape of out)")

    # BEGIN SOLUTION 2.2
    x_hat, centred, std, gamma = cache  # (N, D), (N, D), (D,), (D,)
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)  # (N, D) -> (D,); out = scaled + beta
    dgamma = np.sum(dout * x_hat, axis=0)  # (N, D) -> (D,); scaled = gamma * x_hat
    dx_hat = dout * gamma  # (N, D) * (D,) -> (N, D)
    # x_hat = centred * inv_std with inv_std = 1 / std
    inv_std = 1.0 / std  # (D,)
    dinv_std = np.sum(dx_hat * centred, axis=0)  # (N, D) -> (D,): shared by all rows
    dcentred = dx_hat * inv_std  # (N, D), the first path into centred
    dstd = -dinv_std / std**2  # (D,); d(1/s)/ds = -1/s^2
    dvar = dstd * 0.5 / std  # (D,); std = sqrt(var + eps)
    # var = mean(centred^2): each row of centred gets 2 * centred / N of dvar
    dcentred += 2.0 * centred * dvar / N  # (N, D) * (D,) -> (N, D)
    # centred = x - mu, mu = mean(x): x gets dcentred directly and -mean(dcentred) via mu
    dmu = -dcentred.sum(axis=0)  # (N, D) -> (D,)
    dx = dcentred + dmu / N  # (N, D) + (D,) -> (N, D)
    # END SOLUTION
    return dx, dgamma, dbeta


def batchnorm_backward_alt(
    dout: np.ndarray, cache: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch normalisation, backward pass in closed form.

    Work the derivative of the train-mode forward pass out on paper first. Writing
    ``x_hat`` for the normalised input and ``g = dout * gamma``, it simplifies to one
    line per column:
    ``dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)``, the means taken
    over the batch (axis 0). Implement that; it gives the same result as
    ``batchnorm_backward`` (to rounding) with fewer passes over the data. (Notice that
    ``mean(g)`` and ``mean(g * x_hat)`` are ``gamma`` times ``dbeta / N`` and
    ``dgamma / N``: reusing those sums saves two more passes.)

    Inputs and returns: as ``batchnorm_backward``, from the same cache.

    What to write [task 2.3]: unpack ``cache`` and compute ``dx``, ``dgamma``, ``dbeta``.
    Not by calling ``batchnorm_backward`` (task 2.2): a task that calls the other gets no
    points (``course/own_work.py``).
    """
    dout = np.asarray(dout)
    expect_ndim("batchnorm_backward_alt", "dout", dout, "(N, D)", "(the shape of out)")

    # BEGIN SOLUTION 2.3
    x_hat, _, std, gamma = cache  # (N, D), -, (D,), (D,)
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)  # (D,)
    dgamma = np.sum(dout * x_hat, axis=0)  # (D,)
    # mean(g) = gamma * dbeta / N and mean(g * x_hat) = gamma * dgamma / N: reuse the sums.
    dx = (gamma / (N * std)) * (N * dout - dbeta - x_hat * dgamma)  # (N, D)
    # END SOLUTION
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------------------
# Layer normalisation (notebook 2; Ba, Kiros & Hinton 2016)
# ---------------------------------------------------------------------------------------


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """Layer normalisation, forward pass.

    Each *row* (example) ``i`` of ``x`` is normalised by its own mean and biased
    variance over its D features, then every column is scaled and shifted as in batch
    normalisation:
    ``out[i, :] = gamma * (x[i, :] - mu[i]) / sqrt(var[i] + eps) + beta``.
    The statistics never involve other examples, so training and test time compute the
    same thing and there are no running averages (a ``mode`` in ``ln_param`` is ignored).

    Inputs:
    - x: data, shape (N, D).
    - gamma: scale, shape (D,).
    - beta: shift, shape (D,).
    - ln_param: dict; ``eps`` is added to the variance before the square root
      (default 1e-5).

    Returns a tuple of:
    - out: shape (N, D).
    - cache: whatever ``layernorm_backward`` needs.

    What to write [task 2.4]: compute ``out`` and ``cache``; ``eps`` is defined for you.
    """
    x, gamma, beta = norm_inputs("layernorm_forward", x, gamma, beta, ln_param, "ln_param")
    eps = norm_eps("layernorm_forward", ln_param, "ln_param")

    # BEGIN SOLUTION 2.4
    mu = x.mean(axis=1, keepdims=True)  # (N, 1)
    centred = x - mu  # (N, D)
    std = np.sqrt(np.mean(centred**2, axis=1, keepdims=True) + eps)  # (N, 1)
    x_hat = centred / std  # (N, D)
    out = gamma * x_hat + beta
    cache = (x_hat, std, gamma)
    # END SOLUTION
    return out, cache


def layernorm_backward(
    dout: np.ndarray, cache: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer normalisation, backward pass.

    The normalisation runs along rows instead of columns, so the derivation of the
    batch normalisation backward pass carries over with the roles of the axes swapped
    for ``dx``; ``gamma`` and ``beta`` are still per column, so their gradients still sum
    over the rows.

    Inputs:
    - dout: upstream gradient, shape (N, D).
    - cache: from ``layernorm_forward``.

    Returns a tuple of:
    - dx: shape (N, D); dgamma: shape (D,); dbeta: shape (D,).

    What to write [task 2.5]: unpack ``cache`` and compute ``dx``, ``dgamma``, ``dbeta``.
    """
    dout = np.asarray(dout)
    expect_ndim("layernorm_backward", "dout", dout, "(N, D)", "(the shape of out)")

    # BEGIN SOLUTION 2.5
    x_hat, std, gamma = cache  # (N, D), (N, 1), (D,)
    dbeta = dout.sum(axis=0)  # (N, D) -> (D,)
    dgamma = np.sum(dout * x_hat, axis=0)  # (N, D) -> (D,)
    g = dout * gamma  # (N, D) * (D,) -> (N, D)
    # The means run along each row (axis 1), as the statistics did: (N, D) -> (N, 1).
    dx = (g - g.mean(axis=1, keepdims=True)
          - x_hat * np.mean(g * x_hat, axis=1, keepdims=True)) / std  # (N, D)
    # END SOLUTION
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------------------
# Dropout (notebook 3; Srivastava et al. 2014), inverted: scaled at training time
# ---------------------------------------------------------------------------------------

DROPOUT_MODES = ("train", "test")


def dropout_forward(x: np.ndarray, dropout_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """Inverted dropout, forward pass.

    In ``'train'`` mode each entry of x is kept with probability ``p`` and zeroed
    otherwise, and the kept entries are divided by ``p``, so that the expected output
    equals x. In ``'test'`` mode the layer is the identity.

    Inputs:
    - x: input, any shape.
    - dropout_param: dict with
      - p: the probability of KEEPING an entry, 0 < p <= 1 (required).
      - mode: 'train' or 'test' (required).
      - seed: optional. With a seed, every call draws the same mask (from a fresh
        generator seeded with it; useful for gradient checks). Without one, the mask
        comes from numpy's global random state (``np.random.seed`` makes it repeat).

    Returns a tuple of:
    - out: shape and dtype of x.
    - cache: ``(dropout_param, mask)``; ``mask`` is the array x was multiplied by in
      train mode (0 or 1/p, x's dtype) and None in test mode.

    What to write [task 3.1]: compute ``out`` and ``mask`` for both modes. Draw the
    mask's random numbers with ``rng.random(x.shape)`` (uniform in [0, 1)); ``rng``,
    ``p`` and ``mode`` are defined for you, and the code after your part builds
    ``cache``.
    """
    x = np.asarray(x)
    expect_dict("dropout_forward", "dropout_param", dropout_param)
    p = expect_number("dropout_forward", "dropout_param['p'] (the keep probability)",
                      dropout_param.get("p"), "(0, 1]")
    mode = dropout_param.get("mode")
    expect_choice("dropout_forward", "dropout_param['mode']", mode, DROPOUT_MODES)
    seed = dropout_param.get("seed")
    expect_seed("dropout_forward", seed, "dropout_param['seed']")
    # A fresh generator per call makes a seeded mask repeat; without a seed, the legacy
    # global state (np.random.random) lets np.random.seed(...) make a notebook repeatable.
    rng: Any = np.random if seed is None else np.random.default_rng(seed)

    # BEGIN SOLUTION 3.1
    if mode == "train":
        mask = ((rng.random(x.shape) < p) / p).astype(x.dtype)
        out = x * mask
    else:
        mask = None
        out = x.copy()
    # END SOLUTION
    cache = (dropout_param, mask)
    return out, cache


def dropout_backward(dout: np.ndarray, cache: tuple[dict[str, Any], Any]) -> np.ndarray:
    """Inverted dropout, backward pass.

    Inputs:
    - dout: upstream gradient, shape of x.
    - cache: ``(dropout_param, mask)`` from ``dropout_forward``.

    Returns:
    - dx: gradient with respect to x, shape of x.

    What to write [task 3.2]: compute ``dx`` for both modes; ``mode`` and ``mask`` are
    defined for you.
    """
    dropout_param, mask = cache
    dout = np.asarray(dout)
    mode = dropout_param["mode"]
    if mask is not None:
        expect_shape("dropout_backward", "dout", dout, mask.shape, "(the shape of x)")

    # BEGIN SOLUTION 3.2
    dx = dout * mask if mode == "train" else dout  # x's shape, like mask and dout
    # END SOLUTION
    return dx


# ---------------------------------------------------------------------------------------
# Convolutional layers (notebook 4): convolution, max pooling, spatial normalisation.
# Images are NCHW: N examples, C channels, H rows, W columns. The geometry checks
# (course._checks.conv_geometry, pool_geometry) are shared with course.fast_layers.
# ---------------------------------------------------------------------------------------

def conv_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Convolutional layer, forward pass, written with loops.

    Each of the F filters is slid over the zero-padded input; at every position the
    output is the sum of the elementwise product of the filter and the window of the input
    under it (over all C channels), plus the filter's bias::

        out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q]
                                 * x_pad[n, c, i * stride + p, j * stride + q]

    (a cross-correlation, as in every deep-learning library). ``x`` is not modified.

    Inputs:
    - x: input, shape (N, C, H, W).
    - w: filters, shape (F, C, HH, WW).
    - b: biases, shape (F,).
    - conv_param: dict with
      - "stride": pixels between neighbouring windows, in both directions;
      - "pad": zeros added on every side of the input (symmetric).

    Returns a tuple of:
    - out: output, shape (N, F, H_out, W_out) with
      ``H_out = 1 + (H + 2 * pad - HH) // stride``, ``W_out = 1 + (W + 2 * pad - WW) // stride``.
    - cache: ``(x, w, b, conv_param)``.

    Raises ValueError when the geometry does not fit (see ``conv_geometry``).

    What to write [task 4.1]: compute ``out``. ``stride``, ``pad``, ``H_out`` and ``W_out``
    are defined for you (``np.pad`` pads; use loops, speed comes later). Not with
    ``course.fast_layers``: tasks 4.1 to 4.4 that call it fail (``course/own_work.py``).
    """
    x, w, b = np.asarray(x), np.asarray(w), np.asarray(b)
    expect_ndim("conv_forward_naive", "x", x, "(N, C, H, W)")
    expect_ndim("conv_forward_naive", "w", w, "(F, C, HH, WW)")
    stride, pad, H_out, W_out = conv_geometry("conv_forward_naive", x.shape, w.shape,
                                              b.shape, conv_param)
    N, F = x.shape[0], w.shape[0]
    HH, WW = w.shape[2:]

    # BEGIN SOLUTION 4.1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # a new array: x untouched
    out = np.zeros((N, F, H_out, W_out), dtype=np.result_type(x, w, b))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                top = i * stride
                for j in range(W_out):
                    left = j * stride
                    window = x_pad[n, :, top:top + HH, left:left + WW]  # (C, HH, WW)
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    # END SOLUTION
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convolutional layer, backward pass, written with loops.

    Inputs:
    - dout: upstream gradient, shape (N, F, H_out, W_out).
    - cache: ``(x, w, b, conv_param)`` from ``conv_forward_naive``.

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W) (the padding's share is dropped).
    - dw: gradient with respect to w, shape (F, C, HH, WW).
    - db: gradient with respect to b, shape (F,).

    What to write [task 4.2]: compute ``dx``, ``dw`` and ``db``; ``x``, ``w``, ``stride``,
    ``pad``, ``H_out`` and ``W_out`` are defined for you. Each output entry touched one
    window: send ``dout[n, f, i, j]`` back to that window's pixels and to w[f]. Not with
    ``course.fast_layers`` (see task 4.1).
    """
    x, w, b, conv_param = cache
    dout = np.asarray(dout)
    stride, pad, H_out, W_out = conv_geometry("conv_backward_naive", x.shape, w.shape,
                                              b.shape, conv_param)
    N, F = x.shape[0], w.shape[0]
    HH, WW = w.shape[2:]
    expect_shape("conv_backward_naive", "dout", dout, ("N", "F", "H_out", "W_out"),
                 "(the shape of out)", N=N, F=F, H_out=H_out, W_out=W_out)

    # BEGIN SOLUTION 4.2
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, H + 2p, W + 2p)
    dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(x, dout))  # (N, C, H + 2p, W + 2p)
    dw = np.zeros(w.shape, dtype=np.result_type(w, dout))  # (F, C, HH, WW)
    db = dout.sum(axis=(0, 2, 3))  # (N, F, H_out, W_out) -> (F,)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                top = i * stride
                for j in range(W_out):
                    left = j * stride
                    g = dout[n, f, i, j]  # a scalar
                    dw[f] += g * x_pad[n, :, top:top + HH, left:left + WW]  # (C, HH, WW)
                    dx_pad[n, :, top:top + HH, left:left + WW] += g * w[f]  # (C, HH, WW)
    # Drop the padding's share: (N, C, H + 2p, W + 2p) -> (N, C, H, W).
    dx = dx_pad[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    # END SOLUTION
    return dx, dw, db


def max_pool_forward_naive(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling, forward pass, written with loops.

    Every channel is pooled on its own: ``out[n, c, i, j]`` is the largest value of the
    ``pool_height x pool_width`` window whose top-left corner is at
    ``(i * stride, j * stride)``. No padding.

    Inputs:
    - x: input, shape (N, C, H, W).
    - pool_param: dict with "pool_height", "pool_width" and "stride".

    Returns a tuple of:
    - out: output, shape (N, C, H_out, W_out) with ``H_out = 1 + (H - pool_height) // stride``
      and ``W_out = 1 + (W - pool_width) // stride``.
    - cache: ``(x, pool_param)``.

    What to write [task 4.3]: compute ``out``; ``ph``, ``pw``, ``stride``, ``H_out`` and
    ``W_out`` are defined for you. Not with ``course.fast_layers`` (see task 4.1).
    """
    x = np.asarray(x)
    expect_ndim("max_pool_forward_naive", "x", x, "(N, C, H, W)")
    ph, pw, stride, H_out, W_out = pool_geometry("max_pool_forward_naive", x.shape, pool_param)
    N, C = x.shape[:2]

    # BEGIN SOLUTION 4.3
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        top = i * stride
        for j in range(W_out):
            left = j * stride
            window = x[:, :, top:top + ph, left:left + pw]  # (N, C, ph, pw)
            out[:, :, i, j] = window.max(axis=(2, 3))
    # END SOLUTION
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Max pooling, backward pass, written with loops.

    Each output entry came from one input pixel, the maximum of its window, and its
    gradient goes there. When a window holds its maximum more than once (ties), the
    gradient goes to the *first* one in row-major order (what ``np.argmax`` of the
    flattened window returns). Overlapping windows (stride < pool size) may send several
    gradients to the same pixel: they add up.

    Inputs:
    - dout: upstream gradient, shape (N, C, H_out, W_out).
    - cache: ``(x, pool_param)`` from ``max_pool_forward_naive``.

    Returns:
    - dx: gradient with respect to x, shape (N, C, H, W).

    What to write [task 4.4]: compute ``dx``; ``x``, ``ph``, ``pw``, ``stride``, ``H_out``
    and ``W_out`` are defined for you. Not with ``course.fast_layers`` (see task 4.1).
    """
    x, pool_param = cache
    dout = np.asarray(dout)
    ph, pw, stride, H_out, W_out = pool_geometry("max_pool_backward_naive", x.shape, pool_param)
    N, C = x.shape[:2]
    expect_shape("max_pool_backward_naive", "dout", dout, ("N", "C", "H_out", "W_out"),
                 "(the shape of out)", N=N, C=C, H_out=H_out, W_out=W_out)

    # BEGIN SOLUTION 4.4
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))  # (N, C, H, W)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                top = i * stride
                for j in range(W_out):
                    left = j * stride
                    window = x[n, c, top:top + ph, left:left + pw]  # (ph, pw)
                    # The first maximum in row-major order, as (row, column) in the window.
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, top + p, left + q] += dout[n, c, i, j]
    # END SOLUTION
    return dx


def spatial_batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """Spatial batch normalisation, forward pass.

    Batch normalisation for images: each channel ``c`` is one feature, normalised with the
    mean and variance of all its ``N * H * W`` values (every pixel of every example), so
    that a channel is treated the same everywhere in the image. Modes and running averages
    work exactly as in ``batchnorm_forward``.

    Inputs:
    - x: input, shape (N, C, H, W).
    - gamma, beta: scale and shift, shape (C,).
    - bn_param: as for ``batchnorm_forward`` (mode, eps, momentum, running_mean and
      running_var of shape (C,)); mutated in place.

    Returns a tuple of:
    - out: output, shape (N, C, H, W).
    - cache: for ``spatial_batchnorm_backward``.

    What to write [task 4.7]: compute ``out`` and ``cache`` by calling
    ``batchnorm_forward`` once on a reshaped x (a few lines: think about which axis must
    come last before flattening).
    """
    x, gamma, beta = spatial_norm_inputs("spatial_batchnorm_forward", x, gamma, beta)

    # BEGIN SOLUTION 4.7
    N, C, H, W = x.shape
    flat = x.transpose(0, 2, 3, 1).reshape(N * H * W, C)  # channels last: one row per pixel
    out_flat, cache = batchnorm_forward(flat, gamma, beta, bn_param)
    out = out_flat.reshape(N, H, W, C).transpose(0, 3, 1, 2)  # back to (N, C, H, W)
    # END SOLUTION
    return out, cache


def spatial_batchnorm_backward(
    dout: np.ndarray, cache: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spatial batch normalisation, backward pass.

    Inputs:
    - dout: upstream gradient, shape (N, C, H, W).
    - cache: from ``spatial_batchnorm_forward``.

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W).
    - dgamma, dbeta: gradients with respect to gamma and beta, shape (C,).

    What to write [task 4.8]: undo the forward pass's reshaping around one call of
    ``batchnorm_backward``.
    """
    dout = np.asarray(dout)
    expect_ndim("spatial_batchnorm_backward", "dout", dout, "(N, C, H, W)")

    # BEGIN SOLUTION 4.8
    N, C, H, W = dout.shape
    flat = dout.transpose(0, 2, 3, 1).reshape(N * H * W, C)  # channels last: one row per pixel
    dx_flat, dgamma, dbeta = batchnorm_backward(flat, cache)  # (N * H * W, C), (C,), (C,)
    dx = dx_flat.reshape(N, H, W, C).transpose(0, 3, 1, 2)  # back to (N, C, H, W)
    # END SOLUTION
    return dx, dgamma, dbeta


def spatial_groupnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict
) -> tuple[np.ndarray, tuple]:
    """Spatial group normalisation, forward pass.

    The C channels of each example are split into G consecutive groups of C // G
    channels. Each group of each example is normalised with the mean and variance of its
    (C // G) * H * W values, then every channel is scaled by gamma and shifted by beta::

        out = gamma * (x - mean_group) / sqrt(var_group + eps) + beta

    G = 1 is layer normalisation of the whole example; G = C is instance normalisation.
    The statistics are per example, so training and test behave the same.

    Inputs:
    - x: input, shape (N, C, H, W).
    - gamma, beta: scale and shift, shape (1, C, 1, 1).
    - G: number of groups, a divisor of C.
    - gn_param: dict with optional "eps" (default 1e-5), added to the variance.

    Returns a tuple of:
    - out: output, shape (N, C, H, W).
    - cache: whatever ``spatial_groupnorm_backward`` needs (you choose).

    What to write [task 4.9]: compute ``out`` and ``cache``; ``N``, ``C``, ``H``, ``W`` and
    ``eps`` are defined for you. Reshape to (N, G, (C // G) * H * W) to get the statistics.
    """
    x, gamma, beta = group_norm_inputs("spatial_groupnorm_forward", x, gamma, beta, G)
    N, C, H, W = x.shape
    gn_param = {} if gn_param is None else expect_dict("spatial_groupnorm_forward", "gn_param",
                                                       gn_param)
    eps = norm_eps("spatial_groupnorm_forward", gn_param, "gn_param")

    # BEGIN SOLUTION 4.9
    groups = x.reshape(N, G, -1)  # (N, G, (C // G) * H * W)
    mean = groups.mean(axis=2, keepdims=True)  # (N, G, 1)
    inv_std = 1.0 / np.sqrt(groups.var(axis=2, keepdims=True) + eps)  # (N, G, 1)
    x_hat = ((groups - mean) * inv_std).reshape(N, C, H, W)
    out = gamma * x_hat + beta
    cache = (x_hat, inv_std, gamma, G)
    # END SOLUTION
    return out, cache


def spatial_groupnorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spatial group normalisation, backward pass.

    Inputs:
    - dout: upstream gradient, shape (N, C, H, W).
    - cache: from ``spatial_groupnorm_forward``.

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W).
    - dgamma, dbeta: gradients with respect to gamma and beta, shape (1, C, 1, 1).

    What to write [task 4.10]: compute the three gradients (the same algebra as layer
    normalisation, done per group).
    """
    dout = np.asarray(dout)
    expect_ndim("spatial_groupnorm_backward", "dout", dout, "(N, C, H, W)")

    # BEGIN SOLUTION 4.10
    x_hat, inv_std, gamma, G = cache  # (N, C, H, W), (N, G, 1), (1, C, 1, 1), int
    N, C, H, W = x_hat.shape
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)  # (N, C, H, W) -> (1, C, 1, 1)
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3), keepdims=True)  # -> (1, C, 1, 1)
    # With g = dL/dx_hat per group of M values: dx = inv_std * (g - mean(g)
    # - x_hat * mean(g * x_hat)), the usual normalisation backward.
    g = (dout * gamma).reshape(N, G, -1)  # (N, G, (C // G) * H * W)
    xh = x_hat.reshape(N, G, -1)  # (N, G, (C // G) * H * W)
    dx = inv_std * (g - g.mean(axis=2, keepdims=True)
                    - xh * (g * xh).mean(axis=2, keepdims=True))  # (N, G, (C // G) * H * W)
    dx = dx.reshape(N, C, H, W)
    # END SOLUTION
    return dx, dgamma, dbeta

