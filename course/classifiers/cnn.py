"""A three-layer convolutional network.

Architecture::

    conv - relu - 2x2 max pool - affine - relu - affine - softmax

The convolution keeps the spatial size (stride 1, padding ``(filter_size - 1) // 2``, so
the filter size must be odd) and the pool halves it. The layers come from
``course.layer_utils`` (conv - relu - pool and affine - relu sandwiches, built on the fast
layers) and ``course.layers``.

Like CS231n's module, ``from course.classifiers.cnn import *`` also brings every layer,
fast layer and sandwich layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import course.fast_layers as _fast_layers
import course.layer_utils as _layer_utils
import course.layers as _layers
from course._checks import (
    expect_float_dtype,
    expect_int,
    expect_number,
    expect_seed,
    expect_shape,
    invalid,
)
from course.fast_layers import *  # noqa: F403
from course.layer_utils import *  # noqa: F403
from course.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from course.layers import *  # noqa: F403
from course.layers import affine_backward, affine_forward, softmax_loss

__all__ = ["ThreeLayerConvNet"]
for _module in (_layers, _fast_layers, _layer_utils):
    __all__ += [name for name in _module.__all__ if name not in __all__]


class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax, on NCHW images.

    Attributes:
    - params: dict of parameter arrays, all of dtype ``self.dtype``: ``W1`` (F, C, k, k)
      and ``b1`` (F,) of the convolution, ``W2`` (F * H/2 * W/2, hidden_dim) and ``b2``
      (hidden_dim,) of the hidden affine layer, ``W3`` (hidden_dim, num_classes) and ``b3``
      (num_classes,) of the output layer. ``loss`` reads them at call time.
    - reg: L2 regularisation strength.
    - dtype: the floating-point dtype of parameters and computations.
    - input_dim: (C, H, W) of the images ``loss`` accepts.
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (3, 32, 32),
        num_filters: int = 32,
        filter_size: int = 7,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype: type | np.dtype = np.float32,
        seed: int | None = None,
    ) -> None:
        """Build the network and initialise its parameters.

        Inputs:
        - input_dim: (C, H, W) of one image; H and W must be even (the 2x2 pool halves
          them), e.g. (3, 32, 32) for CIFAR-10 or (1, 8, 8) for the embedded digits.
        - num_filters: F, the filters of the convolution.
        - filter_size: k, their height and width; odd, so that padding (k - 1) // 2 keeps
          the spatial size.
        - hidden_dim: units of the hidden affine layer.
        - num_classes: scores produced by the last affine layer.
        - weight_scale: standard deviation of the initial weights (biases start at 0).
        - reg: L2 regularisation strength, >= 0.
        - dtype: floating-point dtype (float32 to train, float64 for gradient checks).
        - seed: seeds the generator of the initial weights; None draws from numpy's global
          random state (so ``np.random.seed`` makes it repeatable).

        What to write [task 4.5]: fill ``self.params`` with ``W1, b1, W2, b2, W3, b3`` (the
        shapes in the class docstring): weights from ``rng.normal(0.0, weight_scale,
        size=...)``, drawn in that order, biases zeros. ``C, H, W`` are defined for you; the
        code after your part casts every parameter to ``dtype``.
        """
        if not isinstance(input_dim, (tuple, list)) or len(input_dim) != 3:
            raise invalid("ThreeLayerConvNet", f"input_dim must be (C, H, W), three positive "
                                               f"ints; got {input_dim!r}")
        C, H, W = (expect_int("ThreeLayerConvNet", f"input_dim's {name}", d)
                   for name, d in zip("CHW", input_dim, strict=True))
        if H % 2 or W % 2:
            raise invalid("ThreeLayerConvNet", f"input_dim's H and W must be even (the 2x2 max "
                                               f"pool with stride 2 halves them); got H = {H}, "
                                               f"W = {W}")
        for name, value in (("num_filters", num_filters), ("hidden_dim", hidden_dim),
                            ("num_classes", num_classes), ("filter_size", filter_size)):
            expect_int("ThreeLayerConvNet", name, value)
        if filter_size % 2 == 0:
            raise invalid("ThreeLayerConvNet", f"filter_size must be odd, so that padding "
                                               f"(filter_size - 1) // 2 keeps the image size; "
                                               f"got {filter_size}")
        expect_number("ThreeLayerConvNet", "weight_scale", weight_scale)
        expect_number("ThreeLayerConvNet", "reg", reg, "[0, inf)")
        expect_float_dtype("ThreeLayerConvNet", dtype)
        expect_seed("ThreeLayerConvNet", seed)

        self.input_dim = (C, H, W)
        self.reg = reg
        self.dtype = dtype
        self.params: dict[str, np.ndarray] = {}
        # seed=None: numpy's global state, as CS231n's code (np.random.seed makes it repeat).
        rng: Any = np.random if seed is None else np.random.default_rng(seed)
        F, k = num_filters, filter_size

        # BEGIN SOLUTION 4.5
        self.params["W1"] = rng.normal(0.0, weight_scale, size=(F, C, k, k))
        self.params["b1"] = np.zeros(F)
        pooled = F * (H // 2) * (W // 2)  # the conv keeps H x W, the pool halves it
        self.params["W2"] = rng.normal(0.0, weight_scale, size=(pooled, hidden_dim))
        self.params["b2"] = np.zeros(hidden_dim)
        self.params["W3"] = rng.normal(0.0, weight_scale, size=(hidden_dim, num_classes))
        self.params["b3"] = np.zeros(num_classes)
        # END SOLUTION

        for name, value in self.params.items():
            self.params[name] = value.astype(dtype)

    def loss(
        self, X: np.ndarray, y: np.ndarray | None = None
    ) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Class scores (y is None) or the loss and its gradients.

        Inputs:
        - X: images, shape (N, C, H, W) as given by ``input_dim``; cast to ``self.dtype``.
        - y: integer labels, shape (N,), or None.

        Returns:
        - if y is None: scores, shape (N, num_classes).
        - else ``(loss, grads)``: the softmax loss plus ``0.5 * reg * sum(W**2)`` over W1,
          W2 and W3; ``grads`` has the keys of ``self.params``, each gradient shaped like
          its parameter.

        What to write [task 4.6]: the forward pass into ``scores`` with
        ``conv_relu_pool_forward``, ``affine_relu_forward`` and ``affine_forward``; then,
        only if ``y`` is not None, ``loss`` and ``grads`` (``softmax_loss`` and the three
        backward passes, plus regularisation). ``conv_param`` and ``pool_param`` are
        defined for you. The images need no gradient: ``conv_relu_pool_backward(dout,
        cache, input_grad=False)`` skips it (about a third of the step's time).
        """
        X = np.asarray(X).astype(self.dtype, copy=False)
        C, H, W = self.input_dim
        expect_shape("ThreeLayerConvNet.loss", "X", X, ("N", "C", "H", "W"), "(input_dim)",
                     C=C, H=H, W=W)
        if y is not None:
            expect_shape("ThreeLayerConvNet.loss", "y", y, ("N",), "(one label per row of X)",
                         N=X.shape[0])
        filter_size = self.params["W1"].shape[2]
        conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

        # BEGIN SOLUTION 4.6
        p = self.params
        h1, cache1 = conv_relu_pool_forward(X, p["W1"], p["b1"], conv_param, pool_param)
        h2, cache2 = affine_relu_forward(h1, p["W2"], p["b2"])  # flattens (N, F, H/2, W/2)
        scores, cache3 = affine_forward(h2, p["W3"], p["b3"])
        if y is not None:
            loss, dscores = softmax_loss(scores, y)
            grads = {}
            dh2, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
            dh1, grads["W2"], grads["b2"] = affine_relu_backward(dh2, cache2)
            _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, cache1, input_grad=False)
            # At reg 0 the penalty and its gradient are zero: skipping them saves three
            # passes over W2 (3 MB at 32x32 images), a tenth of a batch-50 step.
            if self.reg:
                for name in ("W1", "W2", "W3"):
                    loss += 0.5 * self.reg * float(np.sum(p[name] * p[name]))
                    grads[name] = grads[name] + self.reg * p[name]
        # END SOLUTION
        if y is None:
            return scores
        return loss, grads
