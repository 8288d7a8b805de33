"""ThreeLayerConvNet (tasks 4.5, 4.6): shapes, initial loss, gradients, errors, star import."""

from __future__ import annotations

import numpy as np
import pytest
from layer_registry import assert_gradient_close

from course.classifiers.cnn import ThreeLayerConvNet
from course.gradient_check import eval_numerical_gradient


@pytest.mark.task("4.5")
@pytest.mark.parametrize("input_dim", [(3, 32, 32), (1, 8, 8), (2, 6, 4)])
def test_parameter_shapes_dtype_and_scale(input_dim) -> None:
    C, H, W = input_dim
    model = ThreeLayerConvNet(input_dim=input_dim, num_filters=6, filter_size=5, hidden_dim=7,
                              num_classes=3, weight_scale=0.5, seed=0)
    expected = {"W1": (6, C, 5, 5), "b1": (6,), "W2": (6 * (H // 2) * (W // 2), 7),
                "b2": (7,), "W3": (7, 3), "b3": (3,)}
    assert {k: v.shape for k, v in model.params.items()} == expected
    assert all(v.dtype == np.float32 for v in model.params.values())
    for name in ("b1", "b2", "b3"):
        np.testing.assert_array_equal(model.params[name], 0.0)
    # W2 has hundreds of entries: its standard deviation is close to weight_scale.
    assert abs(float(model.params["W2"].std()) - 0.5) < 0.1
    # Every weight is drawn around 0: the mean of n draws of N(0, 0.5^2) lies within
    # 4 standard errors (0.5 / sqrt(n)) of 0 but for a 1-in-15,000 chance.
    for name in ("W1", "W2", "W3"):
        weights = model.params[name]
        assert abs(float(weights.mean())) < 4 * 0.5 / np.sqrt(weights.size), name


@pytest.mark.task("4.5")
def test_seed_none_uses_the_global_random_state() -> None:
    np.random.seed(231)
    first = ThreeLayerConvNet(input_dim=(1, 8, 8), seed=None).params["W1"]
    np.random.seed(231)
    again = ThreeLayerConvNet(input_dim=(1, 8, 8), seed=None).params["W1"]
    np.testing.assert_array_equal(first, again)


@pytest.mark.task("4.5")
def test_the_seed_alone_decides_the_weights() -> None:
    # Whatever numpy's global random state, one seed gives the same weights and another
    # seed other ones: the weights come from a generator seeded with it.
    np.random.seed(1)
    first = ThreeLayerConvNet(input_dim=(1, 8, 8), seed=5).params
    np.random.seed(2)
    again = ThreeLayerConvNet(input_dim=(1, 8, 8), seed=5).params
    other = ThreeLayerConvNet(input_dim=(1, 8, 8), seed=6).params
    for name in ("W1", "W2", "W3"):
        np.testing.assert_array_equal(first[name], again[name], err_msg=name)
        assert not np.array_equal(first[name], other[name]), name


@pytest.mark.task("4.6")
def test_scores_known_answer_flatten_in_channel_row_column_order() -> None:
    # Built without __init__ (task 4.5). Each 3x3 filter has only its centre tap, f + 1,
    # so with padding 1 the conv output of filter f is (f + 1) * x. x = 1..16 row by row
    # is positive (ReLU keeps it), and its 2x2 blocks' maxima are [[6, 8], [14, 16]]: the
    # pooled features are (f + 1) * [[6, 8], [14, 16]]. Flattened per example in
    # (channel, row, column) order, as the affine layer reads (N, F, H, W) arrays, entry
    # 5 is (f 1, row 0, col 1) = 2 * 8 = 16 and entry 2 is (f 0, row 1, col 0) = 14. W2
    # picks those two entries and W3 passes them on: the scores are [16, 14]. (A flatten
    # in row, column, channel order would pick 28 and 8.)
    model = object.__new__(ThreeLayerConvNet)
    model.input_dim, model.reg, model.dtype = (1, 4, 4), 0.0, np.float64
    W1 = np.zeros((2, 1, 3, 3))
    W1[0, 0, 1, 1], W1[1, 0, 1, 1] = 1.0, 2.0
    W2 = np.zeros((8, 2))
    W2[5, 0], W2[2, 1] = 1.0, 1.0
    model.params = {"W1": W1, "b1": np.zeros(2), "W2": W2, "b2": np.zeros(2),
                    "W3": np.eye(2), "b3": np.zeros(2)}
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(model.loss(x), [[16.0, 14.0]], rtol=1e-12)


@pytest.mark.task("4.6")
def test_initial_loss_is_log_of_the_class_count() -> None:
    # Tiny weights give near-equal scores: softmax loss log(10), plus tiny regularisation.
    rng = np.random.default_rng(0)
    model = ThreeLayerConvNet(seed=0)
    X = rng.standard_normal((8, 3, 32, 32))
    y = rng.integers(0, 10, 8)
    loss, grads = model.loss(X, y)
    assert abs(loss - np.log(10)) < 1e-3
    assert set(grads) == set(model.params)
    scores = model.loss(X)
    assert scores.shape == (8, 10)


@pytest.mark.task("4.6")
@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_gradients_match_numeric_gradients(reg: float) -> None:
    rng = np.random.default_rng(1)
    model = ThreeLayerConvNet(input_dim=(2, 6, 6), num_filters=3, filter_size=3, hidden_dim=5,
                              num_classes=4, weight_scale=0.3, reg=reg, dtype=np.float64, seed=1)
    for name in ("b1", "b2", "b3"):  # nonzero biases, so their gradients are exercised
        model.params[name][:] = rng.standard_normal(model.params[name].shape) * 0.1
    X = rng.standard_normal((3, 2, 6, 6))
    y = np.array([0, 3, 1])
    _, grads = model.loss(X, y)
    for name in sorted(model.params):
        numeric = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name],
                                          verbose=False)
        assert_gradient_close(grads[name], numeric, f"reg={reg}: d{name}")


@pytest.mark.task("4.6")
def test_regularisation_adds_half_reg_times_squared_weights() -> None:
    rng = np.random.default_rng(2)
    X = rng.standard_normal((2, 1, 8, 8))
    y = np.array([1, 2])
    plain = ThreeLayerConvNet(input_dim=(1, 8, 8), dtype=np.float64, seed=3)
    regd = ThreeLayerConvNet(input_dim=(1, 8, 8), dtype=np.float64, seed=3, reg=2.0)
    penalty = sum(float(np.sum(plain.params[w] ** 2)) for w in ("W1", "W2", "W3"))
    assert regd.loss(X, y)[0] == pytest.approx(plain.loss(X, y)[0] + penalty, rel=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"filter_size": 4}, r"filter_size must be odd.*got 4"),
     ({"input_dim": (3, 31, 32)}, r"H and W must be even.*H = 31"),
     ({"input_dim": (3, 32)}, r"input_dim must be \(C, H, W\)"),
     ({"num_filters": 0}, r"num_filters must be a positive int"),
     ({"reg": -1.0}, r"reg must be a finite number >= 0"),
     ({"dtype": np.int32}, r"dtype must be a floating-point dtype")],
)
def test_bad_arguments_are_rejected(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ThreeLayerConvNet(**kwargs)


@pytest.mark.task("4.6")
def test_loss_rejects_images_of_the_wrong_shape() -> None:
    model = ThreeLayerConvNet(input_dim=(1, 8, 8), seed=0)
    with pytest.raises(ValueError, match=r"X must have shape \(N, C, H, W\) with C = 1, H = 8, "
                                         r"W = 8 .*got X\.shape = \(2, 3, 8, 8\)"):
        model.loss(np.zeros((2, 3, 8, 8)))


def test_star_imports_bring_layers_fast_layers_and_sandwiches() -> None:
    namespace: dict = {}
    exec("from course.classifiers.cnn import *", namespace)
    for name in ("ThreeLayerConvNet", "conv_forward_naive", "affine_forward", "softmax_loss",
                 "conv_forward_fast", "max_pool_backward_fast", "conv_relu_pool_forward",
                 "affine_relu_forward"):
        assert name in namespace, name
    namespace = {}
    exec("from course.layer_utils import *", namespace)
    assert "conv_forward_fast" in namespace and "conv_forward_naive" in namespace
    namespace = {}
    exec("from course.fast_layers import *", namespace)
    assert {"conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast",
            "max_pool_backward_fast", "conv_forward_strides", "conv_backward_strides",
            "conv_forward_im2col", "conv_backward_im2col", "max_pool_forward_reshape",
            "max_pool_backward_reshape", "max_pool_forward_im2col",
            "max_pool_backward_im2col"} <= set(namespace)


@pytest.mark.task("4.6")
def test_loss_known_answer_with_zero_weights() -> None:
    # Built without __init__ (task 4.5), from the attributes loss() reads. With all weights
    # zero the hidden layers output 0, so the scores are b3 for every example; the loss is
    # the softmax loss of b3 and only b3 gets a gradient: mean(softmax(b3) - onehot(y)).
    model = object.__new__(ThreeLayerConvNet)
    model.input_dim, model.reg, model.dtype = (1, 4, 4), 0.3, np.float64
    F, hidden, classes = 2, 3, 4
    b3 = np.array([0.5, -1.0, 2.0, 0.0])
    model.params = {"W1": np.zeros((F, 1, 3, 3)), "b1": np.zeros(F),
                    "W2": np.zeros((F * 2 * 2, hidden)), "b2": np.zeros(hidden),
                    "W3": np.zeros((hidden, classes)), "b3": b3.copy()}
    y = np.array([2, 0, 2])
    probs = np.exp(b3) / np.exp(b3).sum()
    loss, grads = model.loss(np.ones((3, 1, 4, 4)), y)
    assert loss == pytest.approx(float(np.mean(-np.log(probs[y]))), rel=1e-12)
    onehot_mean = np.eye(classes)[y].mean(axis=0)
    np.testing.assert_allclose(grads["b3"], probs - onehot_mean, rtol=1e-12, atol=1e-15)
    for name in ("W1", "b1", "W2", "b2", "W3"):
        np.testing.assert_allclose(grads[name], 0.0, atol=1e-15, err_msg=name)
