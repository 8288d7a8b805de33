"""Layers composed from ``course.layers``: common sequences given as one forward/backward pair.

* ``affine_relu_forward`` / ``affine_relu_backward``: affine then ReLU.
* ``hidden_block_forward`` / ``hidden_block_backward``: the hidden block of
  ``FullyConnectedNet``, affine - [normalisation] - ReLU - [dropout], where the bracketed
  layers are optional.
* ``conv_relu_*``, ``conv_relu_pool_*``, ``conv_bn_relu_*`` (notebook 4), on the fast
  layers. ``conv_relu_pool`` with a tiling pool (stride = pool size) runs the convolution
  and the pool as one fused pass of ``course.fast_layers`` that never stores the whole
  convolution output; its cache is that module's, not the naive layers'.

Extension point: normalisation and dropout layers are looked up by name in two registries,
so that adding a layer means registering it, not editing the block:

* ``NORM_LAYERS["batchnorm"] = (batchnorm_forward, batchnorm_backward)``, with
  ``forward(x, gamma, beta, norm_param) -> (out, cache)`` and
  ``backward(dout, cache) -> (dx, dgamma, dbeta)`` (the CS231n signatures of batchnorm and
  layernorm; ``norm_param`` is the layer's ``bn_param``/``ln_param`` dict).
* ``DROPOUT_LAYERS["dropout"] = (dropout_forward, dropout_backward)``, with
  ``forward(x, dropout_param) -> (out, cache)`` and ``backward(dout, cache) -> dx``.

``register_norm_layer`` and ``register_dropout_layer`` do the same with a check of the name.
Batchnorm, layernorm and dropout are registered at the end of this module, so importing
``course.layer_utils`` is enough to make them available. Asking for a name that is not
registered raises ValueError listing the registered ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from course import layers
from course.layers import *  # noqa: F403  (CS231n's layer_utils re-exports every layer)
from course.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
)

# Our sandwich layers and registries, then every name of course.layers: CS231n's
# ``from cs231n.layer_utils import *`` brings in the plain layers too.
__all__ = [
    "DROPOUT_LAYERS",
    "NORM_LAYERS",
    "HiddenBlockCache",
    "affine_relu_backward",
    "affine_relu_forward",
    "hidden_block_backward",
    "hidden_block_forward",
    "register_dropout_layer",
    "register_norm_layer",
]
__all__ += [name for name in layers.__all__ if name not in __all__]

NormForward = Callable[[np.ndarray, np.ndarray, np.ndarray, dict], tuple[np.ndarray, Any]]
NormBackward = Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray, np.ndarray]]
DropoutForward = Callable[[np.ndarray, dict], tuple[np.ndarray, Any]]
DropoutBackward = Callable[[np.ndarray, Any], np.ndarray]

# Normalisation layers by name: name -> (forward, backward). "batchnorm" and "layernorm"
# are registered at the end of this module.
NORM_LAYERS: dict[str, tuple[NormForward, NormBackward]] = {}

# Dropout layers by name: name -> (forward, backward). "dropout" (the one
# FullyConnectedNet uses) is registered at the end of this module.
DROPOUT_LAYERS: dict[str, tuple[DropoutForward, DropoutBackward]] = {}


def register_norm_layer(name: str, forward: NormForward, backward: NormBackward) -> None:
    """Make a normalisation layer available to ``hidden_block_forward`` under ``name``.

    ``forward(x, gamma, beta, norm_param) -> (out, cache)`` with x, out of shape (N, M) and
    gamma, beta of shape (M,); ``backward(dout, cache) -> (dx, dgamma, dbeta)``.
    Registering a name again replaces its entry.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_norm_layer: name must be a non-empty string; got {name!r}")
    NORM_LAYERS[name] = (forward, backward)


def register_dropout_layer(name: str, forward: DropoutForward, backward: DropoutBackward) -> None:
    """Make a dropout layer available to ``hidden_block_forward`` under ``name``.

    ``forward(x, dropout_param) -> (out, cache)`` with out shaped like x;
    ``backward(dout, cache) -> dx``. Registering a name again replaces its entry.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"register_dropout_layer: name must be a non-empty string; got {name!r}"
        )
    DROPOUT_LAYERS[name] = (forward, backward)


def _lookup(registry: dict[str, tuple[Any, Any]], kind: str, name: str) -> tuple[Any, Any]:
    """Return ``registry[name]`` or raise ValueError naming the registered layers."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        available = ", ".join(repr(k) for k in sorted(registry)) or "none yet"
        raise ValueError(
            f"hidden_block_forward: {kind} {name!r} is not registered; available: {available}"
        ) from None


# ---------------------------------------------------------------------------------------
# affine - relu
# ---------------------------------------------------------------------------------------


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Affine layer followed by a ReLU.

    Inputs:
    - x: input, shape (N, d1, ..., dk).
    - w: weights, shape (D, M) with D = d1 * ... * dk.
    - b: biases, shape (M,).

    Returns a tuple of:
    - out: ``max(x_flat @ w + b, 0)``, shape (N, M).
    - cache: ``(affine_cache, relu_cache)`` for ``affine_relu_backward``.
    """
    a, affine_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (affine_cache, relu_cache)


def affine_relu_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of ``affine_relu_forward``.

    Inputs:
    - dout: upstream gradient, shape (N, M).
    - cache: from ``affine_relu_forward``.

    Returns a tuple of:
    - dx: shape (N, d1, ..., dk); dw: shape (D, M); db: shape (M,).
    """
    affine_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, affine_cache)


# ---------------------------------------------------------------------------------------
# The hidden block of FullyConnectedNet: affine - [norm] - relu - [dropout]
# ---------------------------------------------------------------------------------------


class HiddenBlockCache(NamedTuple):
    """What ``hidden_block_backward`` needs. A backward function of None means the layer
    was skipped in the forward pass."""

    affine: Any
    norm_backward: NormBackward | None
    norm: Any
    relu: Any
    dropout_backward: DropoutBackward | None
    dropout: Any


def hidden_block_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    normalization: str | None = None,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    norm_param: dict | None = None,
    dropout_param: dict | None = None,
    dropout: str = "dropout",
) -> tuple[np.ndarray, HiddenBlockCache]:
    """One hidden block: affine - [normalisation] - ReLU - [dropout].

    Inputs:
    - x: input, shape (N, d1, ..., dk).
    - w: weights, shape (D, M) with D = d1 * ... * dk; b: biases, shape (M,).
    - normalization: None (no normalisation) or the name of a layer in ``NORM_LAYERS``
      (e.g. "batchnorm", "layernorm").
    - gamma, beta: scale and shift of the normalisation, shape (M,); needed only with
      ``normalization``.
    - norm_param: the normalisation layer's parameter dict (mode, running statistics; it
      is mutated in place); needed only with ``normalization``.
    - dropout_param: None (no dropout) or the dropout layer's parameter dict
      (``{"mode": "train" | "test", "p": keep_probability, "seed": ...}``).
    - dropout: the name in ``DROPOUT_LAYERS`` of the dropout layer to use.

    Returns a tuple of:
    - out: output, shape (N, M).
    - cache: a ``HiddenBlockCache`` for ``hidden_block_backward``.

    Raises ValueError when ``normalization`` or (with a ``dropout_param``) ``dropout``
    names a layer that is not registered, or when ``normalization`` is set without
    gamma, beta and norm_param.
    """
    # Look both layers up first, so a bad name fails before any work is done.
    norm_forward = norm_backward = None
    if normalization is not None:
        norm_forward, norm_backward = _lookup(NORM_LAYERS, "normalization", normalization)
        missing = [name for name, value in
                   (("gamma", gamma), ("beta", beta), ("norm_param", norm_param))
                   if value is None]
        if missing:
            raise ValueError(f"hidden_block_forward: normalization {normalization!r} needs "
                             f"{', '.join(missing)}; got None")
    drop_forward = drop_backward = None
    if dropout_param is not None:
        drop_forward, drop_backward = _lookup(DROPOUT_LAYERS, "dropout", dropout)

    out, affine_cache = affine_forward(x, w, b)
    norm_cache = None
    if norm_forward is not None:
        out, norm_cache = norm_forward(out, gamma, beta, norm_param)
    out, relu_cache = relu_forward(out)
    dropout_cache = None
    if drop_forward is not None:
        out, dropout_cache = drop_forward(out, dropout_param)
    cache = HiddenBlockCache(affine_cache, norm_backward, norm_cache,
                             relu_cache, drop_backward, dropout_cache)
    return out, cache


def hidden_block_backward(
    dout: np.ndarray, cache: HiddenBlockCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Backward pass of ``hidden_block_forward``.

    Inputs:
    - dout: upstream gradient, shape (N, M).
    - cache: from ``hidden_block_forward``.

    Returns a tuple of:
    - dx: shape (N, d1, ..., dk); dw: shape (D, M); db: shape (M,).
    - dgamma, dbeta: shape (M,), or None when the block had no normalisation.
    """
    dgamma = dbeta = None
    if cache.dropout_backward is not None:
        dout = cache.dropout_backward(dout, cache.dropout)
    dout = relu_backward(dout, cache.relu)
    if cache.norm_backward is not None:
        dout, dgamma, dbeta = cache.norm_backward(dout, cache.norm)
    dx, dw, db = affine_backward(dout, cache.affine)
    return dx, dw, db, dgamma, dbeta


# ---------------------------------------------------------------------------------------
# Registered layers (notebooks 2 and 3): FullyConnectedNet(normalization="batchnorm" |
# "layernorm", dropout_keep_ratio=...) finds them here by name.
# ---------------------------------------------------------------------------------------

register_norm_layer("batchnorm", batchnorm_forward, batchnorm_backward)
register_norm_layer("layernorm", layernorm_forward, layernorm_backward)
register_dropout_layer("dropout", dropout_forward, dropout_backward)


# ---------------------------------------------------------------------------------------
# Convolutional sandwiches (notebook 4), built on the fast layers. Like CS231n's module,
# ``from course.layer_utils import *`` also brings every layer and fast layer.
# ---------------------------------------------------------------------------------------

import course.fast_layers as _fast_layers  # noqa: E402 - kept with the section that uses it
from course.fast_layers import (  # noqa: E402
    conv_backward_fast,
    conv_forward_fast,
)
from course.layers import spatial_batchnorm_backward, spatial_batchnorm_forward  # noqa: E402

__all__ += [
    "conv_bn_relu_backward",
    "conv_bn_relu_forward",
    "conv_relu_backward",
    "conv_relu_forward",
    "conv_relu_pool_backward",
    "conv_relu_pool_forward",
]


def conv_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Convolution followed by a ReLU.

    Inputs:
    - x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); conv_param: {"stride", "pad"}.

    Returns a tuple of:
    - out: (N, F, H_out, W_out); cache: ``(conv_cache, relu_cache)``.
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of ``conv_relu_forward``: returns ``dx, dw, db``."""
    conv_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return conv_backward_fast(da, conv_cache)


def conv_relu_pool_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict, pool_param: dict
) -> tuple[np.ndarray, tuple]:
    """Convolution, ReLU, then max pooling.

    Computed as convolution, max pooling, then ReLU, which gives the same output: the
    ReLU never changes which value of a window is largest (the maximum of ``max(v, 0)``
    over a window is ``max(maximum, 0)``), and applied after the pool it touches a
    quarter of the values (2x2 pools). Its backward pass gives the same gradients too.
    For tiling pools (stride = pool size, as in ThreeLayerConvNet) the convolution and
    the pool are one fused pass of ``course.fast_layers``: the convolution's whole output
    is never stored (see that module's docstring).

    Inputs:
    - x, w, b, conv_param: as for ``conv_relu_forward``.
    - pool_param: {"pool_height", "pool_width", "stride"}.

    Returns a tuple of:
    - out: the pooled output; cache: ``(conv_pool_cache, relu_cache)``.
    """
    pooled, conv_pool_cache = _fast_layers._conv_pool_forward(x, w, b, conv_param, pool_param)
    out, relu_cache = relu_forward(pooled)
    return out, (conv_pool_cache, relu_cache)


def conv_relu_pool_backward(
    dout: np.ndarray, cache: tuple, *, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Backward pass of ``conv_relu_pool_forward``: returns ``dx, dw, db``.

    The ReLU's gradient is taken at the pooled values, then the pool hands it to the
    first maximum of each window: the same gradients as ReLU before the pool, where a
    window whose maximum is not positive passes nothing back either way.

    ``input_grad=False`` skips dx (None in its place), for a first layer whose input is
    the data: see ``conv_backward_fast``.
    """
    conv_pool_cache, relu_cache = cache
    dpooled = relu_backward(dout, relu_cache)
    return _fast_layers._conv_pool_backward(dpooled, conv_pool_cache, input_grad)


def conv_bn_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
    conv_param: dict, bn_param: dict
) -> tuple[np.ndarray, tuple]:
    """Convolution, spatial batch normalisation, then ReLU.

    Inputs:
    - x, w, b, conv_param: as for ``conv_relu_forward``.
    - gamma, beta: (F,), the batchnorm's scale and shift of each conv output channel.
    - bn_param: the batchnorm's dict (mode, running statistics), mutated in place.

    Returns a tuple of:
    - out: (N, F, H_out, W_out); cache: ``(conv_cache, bn_cache, relu_cache)``.
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of ``conv_bn_relu_forward``: returns ``dx, dw, db, dgamma, dbeta``."""
    conv_cache, bn_cache, relu_cache = cache
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward_fast(da, conv_cache)
    return dx, dw, db, dgamma, dbeta


# CS231n's layer_utils star-imports fast_layers too (the layers are re-exported above).
from course.fast_layers import *  # noqa: E402, F403

__all__ += [name for name in _fast_layers.__all__ if name not in __all__]
