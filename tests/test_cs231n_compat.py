"""Material written against CS231n's assignment-2 package runs on ``course`` unchanged.

Three promises, each checked from one table:

* star imports bring in what CS231n's do (``from course.classifiers.fc_net import *`` gives
  every layer and sandwich layer, as CS231n's notebooks assume);
* every public function or class that exists in both packages has CS231n's parameter
  names, in CS231n's order (ours may add optional parameters after them);
* ``seed=None`` draws from numpy's global random state, so ``np.random.seed(231)`` at the
  top of a cell makes initial weights and minibatches repeat, as it does in CS231n.

The CS231n names are written from its public API (the names its notebooks call), one row
per function.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np
import pytest

# (module, name, CS231n's parameters in order)
SIGNATURES: list[tuple[str, str, tuple[str, ...]]] = [
    ("course.layers", "affine_forward", ("x", "w", "b")),
    ("course.layers", "affine_backward", ("dout", "cache")),
    ("course.layers", "relu_forward", ("x",)),
    ("course.layers", "relu_backward", ("dout", "cache")),
    ("course.layers", "svm_loss", ("x", "y")),
    ("course.layers", "softmax_loss", ("x", "y")),
    ("course.layers", "batchnorm_forward", ("x", "gamma", "beta", "bn_param")),
    ("course.layers", "batchnorm_backward", ("dout", "cache")),
    ("course.layers", "batchnorm_backward_alt", ("dout", "cache")),
    ("course.layers", "layernorm_forward", ("x", "gamma", "beta", "ln_param")),
    ("course.layers", "layernorm_backward", ("dout", "cache")),
    ("course.layers", "dropout_forward", ("x", "dropout_param")),
    ("course.layers", "dropout_backward", ("dout", "cache")),
    ("course.layers", "conv_forward_naive", ("x", "w", "b", "conv_param")),
    ("course.layers", "conv_backward_naive", ("dout", "cache")),
    ("course.layers", "max_pool_forward_naive", ("x", "pool_param")),
    ("course.layers", "max_pool_backward_naive", ("dout", "cache")),
    ("course.layers", "spatial_batchnorm_forward", ("x", "gamma", "beta", "bn_param")),
    ("course.layers", "spatial_batchnorm_backward", ("dout", "cache")),
    ("course.layers", "spatial_groupnorm_forward", ("x", "gamma", "beta", "G", "gn_param")),
    ("course.layers", "spatial_groupnorm_backward", ("dout", "cache")),
    ("course.layer_utils", "affine_relu_forward", ("x", "w", "b")),
    ("course.layer_utils", "affine_relu_backward", ("dout", "cache")),
    ("course.layer_utils", "conv_relu_forward", ("x", "w", "b", "conv_param")),
    ("course.layer_utils", "conv_relu_backward", ("dout", "cache")),
    ("course.layer_utils", "conv_bn_relu_forward",
     ("x", "w", "b", "gamma", "beta", "conv_param", "bn_param")),
    ("course.layer_utils", "conv_bn_relu_backward", ("dout", "cache")),
    ("course.layer_utils", "conv_relu_pool_forward",
     ("x", "w", "b", "conv_param", "pool_param")),
    ("course.layer_utils", "conv_relu_pool_backward", ("dout", "cache")),
    ("course.fast_layers", "conv_forward_fast", ("x", "w", "b", "conv_param")),
    ("course.fast_layers", "conv_backward_fast", ("dout", "cache")),
    ("course.fast_layers", "max_pool_forward_fast", ("x", "pool_param")),
    ("course.fast_layers", "max_pool_backward_fast", ("dout", "cache")),
    ("course.optim", "sgd", ("w", "dw", "config")),
    ("course.optim", "sgd_momentum", ("w", "dw", "config")),
    ("course.optim", "rmsprop", ("w", "dw", "config")),
    ("course.optim", "adam", ("w", "dw", "config")),
    ("course.solver", "Solver", ("model", "data")),
    ("course.solver", "Solver.train", ("self",)),
    ("course.solver", "Solver.check_accuracy", ("self", "X", "y", "num_samples", "batch_size")),
    ("course.gradient_check", "eval_numerical_gradient", ("f", "x", "verbose", "h")),
    ("course.gradient_check", "eval_numerical_gradient_array", ("f", "x", "df", "h")),
    ("course.gradient_check", "grad_check_sparse",
     ("f", "x", "analytic_grad", "num_checks", "h")),
    ("course.data_utils", "load_CIFAR_batch", ("filename",)),
    ("course.data_utils", "load_CIFAR10", ("ROOT",)),
    ("course.data_utils", "get_CIFAR10_data",
     ("num_training", "num_validation", "num_test", "subtract_mean")),
    ("course.vis_utils", "visualize_grid", ("Xs", "ubound", "padding")),
    ("course.classifiers.fc_net", "TwoLayerNet",
     ("input_dim", "hidden_dim", "num_classes", "weight_scale", "reg")),
    ("course.classifiers.fc_net", "TwoLayerNet.loss", ("self", "X", "y")),
    ("course.classifiers.fc_net", "FullyConnectedNet",
     ("hidden_dims", "input_dim", "num_classes", "dropout_keep_ratio", "normalization", "reg",
      "weight_scale", "dtype", "seed")),
    ("course.classifiers.fc_net", "FullyConnectedNet.loss", ("self", "X", "y")),
    ("course.classifiers.cnn", "ThreeLayerConvNet",
     ("input_dim", "num_filters", "filter_size", "hidden_dim", "num_classes", "weight_scale",
      "reg", "dtype")),
    ("course.classifiers.cnn", "ThreeLayerConvNet.loss", ("self", "X", "y")),
]

# CS231n's star imports: what ``from <module> import *`` must bring in. CS231n's
# layer_utils imports every layer, and its classifiers import layers and layer_utils.
LAYER_NAMES = [name for module, name, _ in SIGNATURES if module == "course.layers"]
SANDWICH_NAMES = [name for module, name, _ in SIGNATURES if module == "course.layer_utils"]
FAST_NAMES = [name for module, name, _ in SIGNATURES if module == "course.fast_layers"]
STAR_IMPORTS: dict[str, list[str]] = {
    "course.layers": LAYER_NAMES,
    "course.fast_layers": FAST_NAMES,
    "course.layer_utils": LAYER_NAMES + SANDWICH_NAMES + FAST_NAMES,
    "course.classifiers.fc_net": ["FullyConnectedNet", "TwoLayerNet", *LAYER_NAMES,
                                  *SANDWICH_NAMES],
    "course.classifiers.cnn": ["ThreeLayerConvNet", *LAYER_NAMES, *SANDWICH_NAMES,
                               *FAST_NAMES],
}
def _lookup(module_name: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _star_import(module_name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(f"from {module_name} import *", namespace)
    return namespace


@pytest.mark.parametrize(("module_name", "qualname", "params"), SIGNATURES,
                         ids=[f"{m.removeprefix('course.')}.{n}" for m, n, _ in SIGNATURES])
def test_signature_matches_cs231n(module_name, qualname, params):
    obj = _lookup(module_name, qualname)
    target = obj.__init__ if inspect.isclass(obj) else obj
    ours = list(inspect.signature(target).parameters.values())
    if inspect.isclass(obj):
        ours = ours[1:]  # self
    names = [p.name for p in ours if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert names[: len(params)] == list(params), "CS231n's names, in CS231n's order"
    extra = [p for p in ours[len(params):] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [p.name for p in extra if p.default is p.empty]
    assert required == [], "parameters CS231n lacks must be optional"


def test_solver_accepts_cs231n_keyword_arguments():
    from course.solver import DEFAULTS

    cs231n = {"update_rule", "optim_config", "lr_decay", "batch_size", "num_epochs",
              "num_train_samples", "num_val_samples", "checkpoint_name", "print_every",
              "verbose"}
    assert cs231n <= set(DEFAULTS)


def test_load_cifar10_accepts_the_old_keyword(tmp_path):
    from course.data_utils import DatasetError, load_CIFAR10

    # An empty folder is refused by the folder check, so reaching it proves the name works.
    with pytest.raises(DatasetError):
        load_CIFAR10(ROOT=tmp_path)
    with pytest.raises(DatasetError):
        load_CIFAR10(root=tmp_path)
    with pytest.raises(ValueError, match="load_CIFAR10: give the cifar-10-batches-py folder "
                                         "once, as ROOT"):
        load_CIFAR10(tmp_path, root=tmp_path)


@pytest.mark.parametrize("module_name", list(STAR_IMPORTS))
def test_star_import_brings_what_cs231n_does(module_name):
    namespace = _star_import(module_name)
    missing = [name for name in STAR_IMPORTS[module_name] if name not in namespace]
    assert missing == []


@pytest.mark.parametrize("module_name", ["course.classifiers.fc_net", "course.layer_utils"])
def test_star_import_includes_every_layer_we_export(module_name):
    """Built from the layer modules' own ``__all__``, so a new layer is re-exported too."""
    from course import layer_utils, layers

    namespace = _star_import(module_name)
    expected = set(layers.__all__) | (
        set(layer_utils.__all__) if module_name.endswith("fc_net") else set())
    assert expected - set(namespace) == set()


# -- seed=None: numpy's global random state ----------------------------------------------


@pytest.mark.task("1.7")
def test_two_layer_net_draws_cs231n_weights_from_the_global_state():
    from course.classifiers.fc_net import TwoLayerNet

    np.random.seed(231)
    net = TwoLayerNet(input_dim=6, hidden_dim=5, num_classes=3, weight_scale=1e-2)
    np.random.seed(231)  # CS231n's initialisation: weight_scale * randn, in this order
    W1, W2 = 1e-2 * np.random.randn(6, 5), 1e-2 * np.random.randn(5, 3)
    assert sorted(net.params) == ["W1", "W2", "b1", "b2"]
    np.testing.assert_array_equal(net.params["W1"], W1)
    np.testing.assert_array_equal(net.params["W2"], W2)
    np.testing.assert_array_equal(net.params["b1"], np.zeros(5))
    np.testing.assert_array_equal(net.params["b2"], np.zeros(3))
    assert net.params["W1"].dtype == np.float64


@pytest.mark.task("1.7")
def test_fully_connected_net_repeats_after_np_random_seed():
    from course.classifiers.fc_net import FullyConnectedNet

    nets = []
    for _ in range(2):
        np.random.seed(231)
        nets.append(FullyConnectedNet([4, 3], input_dim=5, num_classes=2))
    for name in nets[0].params:
        np.testing.assert_array_equal(nets[0].params[name], nets[1].params[name])
    np.random.seed(0)  # another global seed gives other weights
    other = FullyConnectedNet([4, 3], input_dim=5, num_classes=2)
    assert not np.array_equal(other.params["W1"], nets[0].params["W1"])


@pytest.mark.task("4.5")
def test_three_layer_conv_net_repeats_after_np_random_seed():
    cnn = _lookup("course.classifiers.cnn", "ThreeLayerConvNet")
    nets = []
    for _ in range(2):
        np.random.seed(231)
        nets.append(cnn(input_dim=(1, 6, 6), num_filters=2, filter_size=3, hidden_dim=4))
    for name in nets[0].params:
        np.testing.assert_array_equal(nets[0].params[name], nets[1].params[name])


@pytest.mark.task("1.7")
def test_an_explicit_seed_ignores_the_global_state():
    from course.classifiers.fc_net import FullyConnectedNet

    np.random.seed(1)
    a = FullyConnectedNet([4], input_dim=5, num_classes=2, seed=7)
    np.random.seed(2)
    b = FullyConnectedNet([4], input_dim=5, num_classes=2, seed=7)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])


class _Linear:
    """A linear model that records which training rows each minibatch holds."""

    def __init__(self) -> None:
        self.params = {"W": np.zeros((3, 2))}
        self.seen: list[np.ndarray] = []

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        scores = X @ self.params["W"]
        if y is None:
            return scores
        self.seen.append(X[:, 0].copy())  # column 0 holds each row's index
        return float(scores.mean()), {"W": np.ones((3, 2)) / X.shape[0]}


def _minibatches_after_global_seed(seed: int) -> list[np.ndarray]:
    from course.solver import Solver

    X = np.column_stack([np.arange(20.0), np.ones(20), np.ones(20)])
    y = np.zeros(20, dtype=np.int64)
    data = {"X_train": X, "y_train": y, "X_val": X[:4], "y_val": y[:4]}
    model = _Linear()
    np.random.seed(seed)
    Solver(model, data, batch_size=5, num_epochs=1, verbose=False).train()
    return model.seen


def test_solver_minibatches_repeat_after_np_random_seed():
    first, again = _minibatches_after_global_seed(231), _minibatches_after_global_seed(231)
    assert len(first) == 4
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = _minibatches_after_global_seed(0)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_grad_check_sparse_picks_repeat_after_np_random_seed(capsys):
    from course.gradient_check import grad_check_sparse

    x = np.arange(50.0)
    runs = []
    for _ in range(2):
        np.random.seed(231)
        grad_check_sparse(lambda v: float(np.sum(v**2)), x, 2 * x, num_checks=5)
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1]
    assert runs[0].count("index") == 5


# -- TwoLayerNet: CS231n's network, checked through properties ---------------------------


def _small_two_layer_net(reg: float = 0.0) -> Any:
    from course.classifiers.fc_net import TwoLayerNet

    return TwoLayerNet(input_dim=4, hidden_dim=6, num_classes=3, weight_scale=0.5, reg=reg,
                       seed=0)


@pytest.mark.task("1.8")
def test_two_layer_net_with_zero_weights_has_loss_log_c():
    net = _small_two_layer_net(reg=3.0)
    for name in net.params:
        net.params[name][...] = 0.0
    X, y = np.ones((2, 4)), np.array([0, 2])
    scores = net.loss(X)
    np.testing.assert_array_equal(scores, np.zeros((2, 3)))
    loss, _ = net.loss(X, y)
    assert loss == pytest.approx(np.log(3.0))  # uniform scores, no weights to penalise


@pytest.mark.task("1.8")
def test_two_layer_net_regularisation_is_half_reg_times_sum_of_squares():
    X = np.random.default_rng(1).normal(size=(5, 4))
    y = np.array([0, 1, 2, 1, 0])
    plain, regularised = _small_two_layer_net(0.0), _small_two_layer_net(0.7)
    (loss0, _), (loss1, _) = plain.loss(X, y), regularised.loss(X, y)
    squares = sum(float(np.sum(plain.params[w] ** 2)) for w in ("W1", "W2"))
    assert loss1 - loss0 == pytest.approx(0.5 * 0.7 * squares)


@pytest.mark.task("1.8")
def test_two_layer_net_gradients_match_numeric_ones():
    from course.gradient_check import eval_numerical_gradient, rel_error

    net = _small_two_layer_net(reg=0.1)
    X = np.random.default_rng(2).normal(size=(3, 4))
    y = np.array([2, 0, 1])
    _, grads = net.loss(X, y)
    for name in ("W1", "b1", "W2", "b2"):
        numeric = eval_numerical_gradient(lambda _: net.loss(X, y)[0], net.params[name],
                                          verbose=False)
        assert rel_error(numeric, grads[name]) < 1e-6, name


def test_two_layer_net_rejects_a_bad_hidden_dim():
    from course.classifiers.fc_net import TwoLayerNet

    with pytest.raises(ValueError, match="hidden_dim must be a positive int; got 0"):
        TwoLayerNet(hidden_dim=0)
