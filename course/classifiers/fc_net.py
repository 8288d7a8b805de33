"""Fully connected networks: ``FullyConnectedNet`` of any depth, with optional
normalisation and dropout, and CS231n's ``TwoLayerNet``, the one-hidden-layer case.

Architecture, for ``L`` layers (``L - 1`` hidden ones)::

    {affine - [normalisation] - relu - [dropout]} x (L - 1) - affine - softmax

The hidden blocks are ``course.layer_utils.hidden_block_forward``; the normalisation and
dropout layers slot into them by name once they are registered there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from course import layer_utils
from course._checks import (
    expect_choice,
    expect_float_dtype,
    expect_int,
    expect_number,
    expect_seed,
    expect_shape,
    invalid,
)
from course.layer_utils import *  # noqa: F403  (CS231n's fc_net re-exports every layer)
from course.layer_utils import hidden_block_backward, hidden_block_forward
from course.layers import affine_backward, affine_forward, softmax_loss

# ``from course.classifiers.fc_net import *`` gives the networks and, as CS231n's does,
# every layer and sandwich layer (layer_utils re-exports course.layers), so notebooks that
# call affine_forward or svm_loss after only this import keep working.
__all__ = ["FullyConnectedNet", "TwoLayerNet", *layer_utils.__all__]

NORMALIZATIONS = (None, "batchnorm", "layernorm")
WEIGHT_SCALE_NAMES = ("he", "xavier")


class FullyConnectedNet:
    """A fully connected network with a softmax loss.

    Learnable parameters live in ``self.params`` (a dict of arrays): ``W1..WL`` and
    ``b1..bL`` for the L affine layers and, with normalisation, ``gamma1..gamma{L-1}`` and
    ``beta1..beta{L-1}`` for the hidden layers. ``loss`` reads them from the dict on every
    call, so changing an array in place (as a numeric gradient check does) changes the
    loss.

    Attributes:
    - params: dict of parameter arrays, all of dtype ``self.dtype``.
    - reg: L2 regularisation strength.
    - num_layers: L, the number of affine layers (hidden layers + 1).
    - dtype: the floating-point dtype of parameters and computations.
    - normalization: None, "batchnorm" or "layernorm".
    - use_dropout: whether the hidden blocks end in dropout.
    - dropout_param: dict passed to every dropout layer (``{}`` without dropout, else
      ``{"mode": ..., "p": keep_ratio}`` plus ``"seed"`` when a seed was given).
    - bn_params: one dict per hidden layer passed to its normalisation layer (``[]``
      without normalisation); ``loss`` sets their ``"mode"``.
    """

    def __init__(
        self,
        hidden_dims: Sequence[int],
        input_dim: int = 3 * 32 * 32,
        num_classes: int = 10,
        dropout_keep_ratio: float = 1,
        normalization: str | None = None,
        reg: float = 0.0,
        weight_scale: float | str = 1e-2,
        dtype: type | np.dtype = np.float32,
        seed: int | None = None,
    ) -> None:
        """Build the network and initialise its parameters.

        Inputs:
        - hidden_dims: sizes of the hidden layers, a non-empty sequence of positive ints.
        - input_dim: D, the size of one flattened input example.
        - num_classes: C, the number of classes.
        - dropout_keep_ratio: probability of keeping a hidden unit in dropout, in (0, 1];
          1 means no dropout.
        - normalization: None, "batchnorm" or "layernorm".
        - reg: L2 regularisation strength, >= 0.
        - weight_scale: standard deviation of the initial weights, either a positive
          number (the same for every layer) or a scheme computed per layer from its
          fan-in (the number of inputs of the layer, the first dimension of its W):
            * "he": std = sqrt(2 / fan_in) (He et al. 2015). ReLU zeroes about half of
              its inputs, halving their second moment; the factor 2 restores it, so
              activations keep their scale through a deep ReLU network.
            * "xavier": std = sqrt(1 / fan_in), the fan-in form of Glorot & Bengio's
              rule (the one Caffe's "xavier" filler uses by default). It keeps the
              variance of a linear layer's output equal to its input's; we use fan-in
              alone rather than the (fan_in + fan_out) / 2 average so that "he" and
              "xavier" differ by exactly the ReLU factor 2.
        - dtype: floating-point dtype of the parameters (float32 to train, float64 for
          numeric gradient checks).
        - seed: seeds the generator that draws the initial weights, and is passed to the
          dropout layers (``dropout_param["seed"]``) so that their masks repeat too.
          None draws the weights from numpy's global random state (``np.random.seed``
          repeats them) and leaves dropout unseeded.

        What to write [task 1.7]: fill ``self.params``. For each layer ``i = 1..L``, in
        order, draw ``W{i}`` of shape (fan_in, fan_out) with one ``rng.normal`` call (mean
        0, standard deviation ``self._weight_std(fan_in)``) and set ``b{i}`` to zeros of
        shape (fan_out,). With normalisation, every hidden layer ``i = 1..L-1`` also gets
        ``gamma{i}`` (ones) and ``beta{i}`` (zeros) of shape (fan_out,). ``layer_dims``
        (all layer sizes, input first and classes last) and ``rng`` are defined for you;
        the code after your part casts every parameter to ``dtype``.
        """
        hidden_dims = self._validate_hidden_dims(hidden_dims)
        expect_int("FullyConnectedNet", "input_dim", input_dim)
        expect_int("FullyConnectedNet", "num_classes", num_classes)
        expect_choice("FullyConnectedNet", "normalization", normalization, NORMALIZATIONS)
        expect_number("FullyConnectedNet", "dropout_keep_ratio", dropout_keep_ratio, "(0, 1]")
        expect_number("FullyConnectedNet", "reg", reg, "[0, inf)")
        if not (isinstance(weight_scale, str) and weight_scale in WEIGHT_SCALE_NAMES):
            expect_number("FullyConnectedNet", "weight_scale", weight_scale,
                          alternative=f"one of {WEIGHT_SCALE_NAMES}")
        expect_float_dtype("FullyConnectedNet", dtype)
        expect_seed("FullyConnectedNet", seed)

        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = len(hidden_dims) + 1
        self.dtype = dtype
        self.weight_scale = weight_scale
        self.params: dict[str, np.ndarray] = {}

        layer_dims = [input_dim, *hidden_dims, num_classes]  # layer i maps dims i-1 -> i
        # seed=None draws from numpy's global random state (np.random has a normal()
        # too), so CS231n's np.random.seed(231) at the top of a cell repeats the weights.
        rng: Any = np.random if seed is None else np.random.default_rng(seed)
        # BEGIN SOLUTION 1.7
        for i in range(1, self.num_layers + 1):
            fan_in, fan_out = layer_dims[i - 1], layer_dims[i]
            std = self._weight_std(fan_in)
            self.params[f"W{i}"] = rng.normal(0.0, std, size=(fan_in, fan_out))
            self.params[f"b{i}"] = np.zeros(fan_out)
            if self.normalization is not None and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(fan_out)
                self.params[f"beta{i}"] = np.zeros(fan_out)
        # END SOLUTION

        # Dropout and normalisation layers keep their mode (and running statistics) in
        # these dicts, which loss() passes to them; CS231n's layout.
        self.dropout_param: dict[str, Any] = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params: list[dict[str, Any]] = []
        if self.normalization is not None:
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]

        for name, value in self.params.items():
            self.params[name] = value.astype(dtype)

    @staticmethod
    def _validate_hidden_dims(hidden_dims: object) -> list[int]:
        """Return hidden_dims as a list, or raise ValueError unless it is a non-empty
        sequence of positive ints."""
        error = invalid("FullyConnectedNet", "hidden_dims must be a non-empty sequence of "
                                             f"positive ints, e.g. [100, 50]; got {hidden_dims!r}")
        if isinstance(hidden_dims, (str, bytes)) or not isinstance(hidden_dims, Sequence):
            raise error
        try:
            dims = [expect_int("FullyConnectedNet", "a hidden dim", d) for d in hidden_dims]
        except ValueError:
            raise error from None
        if not dims:
            raise error
        return dims

    def _weight_std(self, fan_in: int) -> float:
        """Standard deviation of the initial weights of a layer with ``fan_in`` inputs
        (see ``weight_scale`` in ``__init__``)."""
        if self.weight_scale == "he":
            return float(np.sqrt(2.0 / fan_in))
        if self.weight_scale == "xavier":
            return float(np.sqrt(1.0 / fan_in))
        return float(self.weight_scale)

    def _hidden_block_args(self, i: int) -> dict[str, Any]:
        """Keyword arguments of ``hidden_block_forward`` for hidden layer ``i`` (1-based),
        apart from x, w and b: its normalisation (name, gamma, beta, bn_param) and dropout."""
        args: dict[str, Any] = {}
        if self.normalization is not None:
            args.update(
                normalization=self.normalization,
                gamma=self.params[f"gamma{i}"],
                beta=self.params[f"beta{i}"],
                norm_param=self.bn_params[i - 1],
            )
        if self.use_dropout:
            args["dropout_param"] = self.dropout_param
        return args

    def loss(
        self, X: np.ndarray, y: np.ndarray | None = None
    ) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Class scores (test mode) or the loss and its gradients (training mode).

        Inputs:
        - X: input data, shape (N, d1, ..., dk) with d1 * ... * dk = input_dim; cast to
          ``self.dtype``.
        - y: integer labels, shape (N,), in [0, C); None for test mode.

        Returns:
        - if y is None: scores, shape (N, C), the output of the last affine layer.
        - else a tuple of:
          - loss: softmax loss of the scores plus ``0.5 * reg * sum(W**2)`` summed over
            every weight matrix W1..WL (not biases, gammas or betas).
          - grads: dict with the same keys as ``self.params``; ``grads[k]`` is the gradient
            of the loss with respect to ``self.params[k]``, of the same shape.

        What to write [task 1.8]: the forward pass, storing the class scores in
        ``scores``; then, only if ``y`` is not None, the loss in ``loss`` and the
        gradients in ``grads``. Use ``hidden_block_forward(h, W, b, **args)`` with
        ``args = self._hidden_block_args(i)`` for hidden layer ``i`` (so normalisation and
        dropout work without more code) and ``hidden_block_backward`` for its gradients;
        the last layer is a plain ``affine_forward``, followed by ``softmax_loss``.
        ``X`` (already cast), ``L`` and ``mode`` are defined for you.
        """
        X = np.asarray(X).astype(self.dtype, copy=False)
        input_dim = self.params["W1"].shape[0]
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != input_dim:
            raise invalid("FullyConnectedNet.loss", (
                f"X must have shape (N, d1, ..., dk) with d1 * ... * dk = input_dim = "
                f"{input_dim}; got X.shape = {X.shape}"))
        if y is not None:
            expect_shape("FullyConnectedNet.loss", "y", y, ("N",), "(one label per row of X)",
                         N=X.shape[0])
        L = self.num_layers
        mode = "test" if y is None else "train"
        # Dropout and batchnorm behave differently in training and at test time.
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode

        # BEGIN SOLUTION 1.8
        caches = {}
        h = X
        for i in range(1, L):
            h, caches[i] = hidden_block_forward(
                h, self.params[f"W{i}"], self.params[f"b{i}"], **self._hidden_block_args(i)
            )
        scores, caches[L] = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])

        if y is not None:
            loss, dscores = softmax_loss(scores, y)
            grads = {}
            dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, caches[L])
            for i in range(L - 1, 0, -1):
                dh, dw, db, dgamma, dbeta = hidden_block_backward(dh, caches[i])
                grads[f"W{i}"], grads[f"b{i}"] = dw, db
                if self.normalization is not None:
                    grads[f"gamma{i}"], grads[f"beta{i}"] = dgamma, dbeta
            # L2 regularisation of the weights: loss 0.5 * reg * ||W||^2, gradient reg * W
            # (nothing to add at reg 0).
            if self.reg:
                for i in range(1, L + 1):
                    W = self.params[f"W{i}"]
                    loss += 0.5 * self.reg * float(np.sum(W * W))
                    grads[f"W{i}"] = grads[f"W{i}"] + self.reg * W
        # END SOLUTION
        if y is None:
            return scores
        return loss, grads


class TwoLayerNet(FullyConnectedNet):
    """CS231n's two-layer net: affine - relu - affine - softmax, with L2 regularisation.

    The same network as ``FullyConnectedNet([hidden_dim], ...)`` (so it works once tasks
    1.7 and 1.8 do), with CS231n's constructor: parameters ``W1`` (D, H), ``b1`` (H,),
    ``W2`` (H, C), ``b2`` (C,); weights drawn with standard deviation ``weight_scale``,
    biases zero; loss ``softmax + 0.5 * reg * (sum(W1**2) + sum(W2**2))``. Parameters are
    float64 by default, as in CS231n, so numeric gradient checks are accurate.
    """

    def __init__(
        self,
        input_dim: int = 3 * 32 * 32,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype: type | np.dtype = np.float64,
        seed: int | None = None,
    ) -> None:
        """Inputs:
        - input_dim: D, the size of one flattened input example.
        - hidden_dim: H, the size of the hidden layer.
        - num_classes: C, the number of classes.
        - weight_scale: standard deviation of the initial weights (a positive number).
        - reg: L2 regularisation strength, >= 0.
        - dtype: floating-point dtype of the parameters.
        - seed: seed of the initial weights; None draws them from numpy's global random
          state, so ``np.random.seed(0)`` then ``TwoLayerNet(...)`` repeats them.
        """
        expect_int("TwoLayerNet", "hidden_dim", hidden_dim)
        super().__init__([hidden_dim], input_dim=input_dim, num_classes=num_classes,
                         reg=reg, weight_scale=weight_scale, dtype=dtype, seed=seed)
