"""Tests of course.classifiers.fc_net.FullyConnectedNet: parameters and their initialisation
(task 1.7), loss, gradients and modes (task 1.8), and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from layer_registry import assert_gradient_close

from course import layer_utils
from course.classifiers.fc_net import FullyConnectedNet
from course.gradient_check import eval_numerical_gradient

HIDDEN = {1: [7], 2: [6, 5], 3: [6, 5, 4], 4: [5, 6, 4, 5]}
D_IN, C = 6, 4


def small_net(depth: int, **kwargs) -> FullyConnectedNet:
    """A float64 network small enough for a full numeric gradient check."""
    kwargs = {"input_dim": D_IN, "num_classes": C, "dtype": np.float64, "seed": depth,
              "weight_scale": "he", **kwargs}
    return FullyConnectedNet(HIDDEN[depth], **kwargs)


def small_data(seed: int = 0, N: int = 5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D_IN)), rng.integers(0, C, size=N)


def randomise_biases(model: FullyConnectedNet, seed: int) -> None:
    """Give the biases (zero at initialisation) random values, in place.

    With zero biases, an example whose hidden units are all off sends exactly 0 into the
    next ReLU, right on its kink, where numeric and analytic gradients legitimately
    disagree; random biases move such values off the kink.
    """
    rng = np.random.default_rng(seed)
    for name, value in model.params.items():
        if name.startswith("b"):
            value[...] = rng.normal(0.0, 0.5, size=value.shape)


def hand_set_net() -> tuple[FullyConnectedNet, np.ndarray]:
    """A 2-2-2 network with weights chosen so its scores can be worked out by hand.

    For x = (1, 1): hidden pre-activations (1*1 + 1*2 + 0, 1*-1 + 1*0 - 1) = (3, -2),
    after ReLU (3, 0); scores (3*1 + 0*3 + 0.5, 3*2 + 0*4 + 0) = (3.5, 6). For x = (0, -1):
    (-2, -1) -> (0, 0) -> scores = b2 = (0.5, 0).
    (The cross-check against a plain-numpy forward pass of any depth is instructor-only:
    tests/kit/test_task_references.py.)
    """
    model = FullyConnectedNet([2], input_dim=2, num_classes=2, dtype=np.float64, seed=0)
    model.params.update(W1=np.array([[1.0, -1.0], [2.0, 0.0]]), b1=np.array([0.0, -1.0]),
                        W2=np.array([[1.0, 2.0], [3.0, 4.0]]), b2=np.array([0.5, 0.0]))
    return model, np.array([[1.0, 1.0], [0.0, -1.0]])


# ---------------------------------------------------------------------------------------
# Stand-in normalisation and dropout layers (the real ones come with later notebooks), so
# the network's gamma/beta and mode plumbing can be tested now.
# ---------------------------------------------------------------------------------------


def scale_shift_forward(x, gamma, beta, norm_param):
    norm_param.setdefault("modes", []).append(norm_param["mode"])
    return gamma * x + beta, (x, gamma)


def scale_shift_backward(dout, cache):
    x, gamma = cache
    return dout * gamma, np.sum(dout * x, axis=0), np.sum(dout, axis=0)


def halve_forward(x, dropout_param):
    dropout_param.setdefault("modes", []).append(dropout_param["mode"])
    return 0.5 * x, None


def halve_backward(dout, cache):
    return 0.5 * dout


@pytest.fixture
def stand_in_layers(monkeypatch):
    monkeypatch.setattr(layer_utils, "NORM_LAYERS", {})
    monkeypatch.setattr(layer_utils, "DROPOUT_LAYERS", {})
    layer_utils.register_norm_layer("batchnorm", scale_shift_forward, scale_shift_backward)
    layer_utils.register_dropout_layer("dropout", halve_forward, halve_backward)


# ---------------------------------------------------------------------------------------
# Task 1.7: parameters
# ---------------------------------------------------------------------------------------


@pytest.mark.task("1.7")
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_parameter_names_shapes_and_dtypes(depth: int, normalization) -> None:
    hidden = HIDDEN[depth]
    model = FullyConnectedNet(hidden, input_dim=D_IN, num_classes=C,
                              normalization=normalization, seed=0)
    dims = [D_IN, *hidden, C]
    expected = {}
    for i in range(1, depth + 2):
        expected[f"W{i}"] = (dims[i - 1], dims[i])
        expected[f"b{i}"] = (dims[i],)
        if normalization is not None and i <= depth:
            expected[f"gamma{i}"] = (dims[i],)
            expected[f"beta{i}"] = (dims[i],)
    assert {k: v.shape for k, v in model.params.items()} == expected
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert model.num_layers == depth + 1


@pytest.mark.task("1.7")
def test_biases_zero_gammas_one_betas_zero() -> None:
    model = FullyConnectedNet([5, 4], input_dim=D_IN, num_classes=C,
                              normalization="layernorm", seed=0)
    for name, value in model.params.items():
        if name[0] in "b":  # b1.. and beta1..
            np.testing.assert_array_equal(value, 0.0, err_msg=name)
        elif name.startswith("gamma"):
            np.testing.assert_array_equal(value, 1.0, err_msg=name)


@pytest.mark.task("1.7")
def test_dtype_float64_is_respected() -> None:
    model = FullyConnectedNet([5], input_dim=D_IN, num_classes=C, dtype=np.float64, seed=0)
    assert all(v.dtype == np.float64 for v in model.params.values())


@pytest.mark.task("1.7")
@pytest.mark.parametrize(
    ("weight_scale", "std_of_fan_in"),
    [("he", lambda n: np.sqrt(2.0 / n)), ("xavier", lambda n: np.sqrt(1.0 / n)),
     (0.05, lambda n: 0.05)],
    ids=["he", "xavier", "float"],
)
def test_initial_weight_std_matches_the_scheme(weight_scale, std_of_fan_in) -> None:
    # W1 has 120,000 entries, W2 3,000: one standard error of the sample std is ~0.2% and
    # ~1.3% of the target; the bounds allow 3% and 8% (over 6 standard errors). Wrong
    # schemes miss by more: he vs xavier by 41%, Glorot's 2 / (fan_in + fan_out) by 7%
    # on W1 and 39% on W2.
    model = FullyConnectedNet([300], input_dim=400, num_classes=10,
                              weight_scale=weight_scale, seed=123)
    for name, fan_in, tolerance in (("W1", 400, 0.03), ("W2", 300, 0.08)):
        W = model.params[name].astype(np.float64)
        target = std_of_fan_in(fan_in)
        assert abs(W.std() / target - 1) < tolerance, name
        assert abs(W.mean()) < 5 * target / np.sqrt(W.size), name


@pytest.mark.task("1.7")
def test_seed_makes_initialisation_repeatable() -> None:
    a = FullyConnectedNet([8, 7], input_dim=D_IN, num_classes=C, seed=5)
    b = FullyConnectedNet([8, 7], input_dim=D_IN, num_classes=C, seed=5)
    c = FullyConnectedNet([8, 7], input_dim=D_IN, num_classes=C, seed=6)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert not np.array_equal(a.params["W1"], c.params["W1"])


def test_dropout_and_bn_params_follow_cs231n_layout() -> None:
    plain = FullyConnectedNet([5, 4], input_dim=D_IN, num_classes=C, seed=1)
    assert (plain.use_dropout, plain.dropout_param, plain.bn_params) == (False, {}, [])
    assert plain.normalization is None and plain.reg == 0.0 and plain.dtype == np.float32
    model = FullyConnectedNet([5, 4], input_dim=D_IN, num_classes=C, seed=7,
                              dropout_keep_ratio=0.8, normalization="batchnorm", reg=0.3)
    assert model.use_dropout is True
    assert model.dropout_param == {"mode": "train", "p": 0.8, "seed": 7}
    assert model.bn_params == [{"mode": "train"}, {"mode": "train"}]
    assert model.bn_params[0] is not model.bn_params[1]
    unseeded = FullyConnectedNet([5], input_dim=D_IN, num_classes=C, dropout_keep_ratio=0.5)
    assert "seed" not in unseeded.dropout_param


# ---------------------------------------------------------------------------------------
# Task 1.8: loss and gradients
# ---------------------------------------------------------------------------------------


@pytest.mark.task("1.8")
def test_test_mode_returns_the_hand_computed_scores() -> None:
    model, X = hand_set_net()
    np.testing.assert_allclose(model.loss(X), [[3.5, 6.0], [0.5, 0.0]], rtol=1e-12)
    # any example shape with input_dim numbers per example is flattened the same way
    np.testing.assert_allclose(model.loss(X.reshape(2, 1, 2)), model.loss(X), rtol=0)


@pytest.mark.task("1.8")
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_test_mode_scores_have_shape_N_by_C(depth: int) -> None:
    model = small_net(depth)
    X = np.random.default_rng(1).standard_normal((3, 2, 3))  # any shape with 6 per example
    assert model.loss(X).shape == (3, C)


@pytest.mark.task("1.8")
def test_float32_model_computes_in_float32() -> None:
    model = FullyConnectedNet([5], input_dim=D_IN, num_classes=C, seed=0)
    X, y = small_data()
    assert model.loss(X).dtype == np.float32
    _, grads = model.loss(X, y)
    assert all(g.dtype == np.float32 for g in grads.values())


@pytest.mark.task("1.8")
def test_loss_is_softmax_of_the_hand_computed_scores() -> None:
    model, X = hand_set_net()
    loss, _ = model.loss(X, np.array([1, 0]))
    # scores (3.5, 6) with label 1: -log(e^6 / (e^3.5 + e^6)) = log(1 + e^-2.5);
    # scores (0.5, 0) with label 0: log(1 + e^-0.5)
    expected = (np.log1p(np.exp(-2.5)) + np.log1p(np.exp(-0.5))) / 2
    assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.task("1.8")
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_every_gradient_matches_numeric(depth: int, reg: float) -> None:
    model = small_net(depth, reg=reg)
    randomise_biases(model, 10 + depth)
    X, y = small_data(depth)
    _, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name, param in model.params.items():
        numeric = eval_numerical_gradient(lambda _: model.loss(X, y)[0], param, verbose=False)
        assert_gradient_close(grads[name], numeric, f"depth {depth}, reg {reg}: d{name}")


@pytest.mark.task("1.8")
def test_l2_term_is_half_reg_times_sum_of_squared_weights() -> None:
    model = small_net(3)
    randomise_biases(model, 3)
    X, y = small_data(2)
    reg = 0.37
    model.reg = 0.0
    loss0, grads0 = model.loss(X, y)
    model.reg = reg
    loss1, grads1 = model.loss(X, y)
    # Squared Frobenius norms of the weights only; biases do not count.
    weight_norms = sum(np.linalg.norm(model.params[f"W{i}"]) ** 2 for i in range(1, 5))
    assert loss1 - loss0 == pytest.approx(0.5 * reg * weight_norms, rel=1e-10)
    for name in model.params:
        difference = grads1[name] - grads0[name]
        expected = reg * model.params[name] if name.startswith("W") else 0.0
        np.testing.assert_allclose(difference, expected, atol=1e-12, err_msg=name)


@pytest.mark.task("1.8")
def test_loss_reads_params_at_call_time() -> None:
    model = small_net(2)
    X, y = small_data(4)
    before, _ = model.loss(X, y)
    W1 = model.params["W1"]
    W1 *= 3.0  # in place, as a numeric gradient check does
    changed, _ = model.loss(X, y)
    W1 /= 3.0
    restored, _ = model.loss(X, y)
    assert changed != pytest.approx(before)
    assert restored == pytest.approx(before, rel=1e-12)
    model.params["W1"] = np.zeros_like(W1)  # replacing the array counts too
    assert model.loss(X, y)[0] != pytest.approx(before)


@pytest.mark.task("1.8")
def test_normalization_gamma_beta_gradients_match_numeric(stand_in_layers) -> None:
    model = small_net(2, normalization="batchnorm", reg=0.2)
    randomise_biases(model, 6)
    rng = np.random.default_rng(8)
    for i in (1, 2):  # move gamma and beta off their initial 1 and 0
        model.params[f"gamma{i}"][...] = rng.uniform(0.5, 1.5, size=HIDDEN[2][i - 1])
        model.params[f"beta{i}"][...] = rng.normal(0, 0.5, size=HIDDEN[2][i - 1])
    X, y = small_data(5)
    _, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name, param in model.params.items():
        numeric = eval_numerical_gradient(lambda _: model.loss(X, y)[0], param, verbose=False)
        assert_gradient_close(grads[name], numeric, f"normalisation: d{name}")


@pytest.mark.task("1.8")
def test_modes_are_set_for_dropout_and_normalization(stand_in_layers) -> None:
    model = small_net(2, normalization="batchnorm", dropout_keep_ratio=0.5)
    X, y = small_data(6)
    model.loss(X, y)
    model.loss(X)
    assert model.dropout_param["modes"] == ["train", "train", "test", "test"]  # 2 blocks
    assert [p["modes"] for p in model.bn_params] == [["train", "test"], ["train", "test"]]
    # The stand-in dropout halves each block's output: the scores show it was applied.
    plain = small_net(2)
    assert not np.allclose(model.loss(X), plain.loss(X))


def test_unregistered_normalization_fails_in_loss(monkeypatch) -> None:
    monkeypatch.setattr(layer_utils, "NORM_LAYERS", {})
    model = small_net(1, normalization="layernorm")
    X, _ = small_data()
    with pytest.raises(ValueError, match="normalization 'layernorm' is not registered"):
        model.loss(X)


# ---------------------------------------------------------------------------------------
# Bad inputs (given validation code: no task marker)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_dims": []}, r"hidden_dims must be a non-empty sequence of positive ints"),
        ({"hidden_dims": [5, 0]}, r"hidden_dims must be .*got \[5, 0\]"),
        ({"hidden_dims": [5, 2.5]}, r"hidden_dims must be .*got \[5, 2\.5\]"),
        ({"hidden_dims": [True]}, r"hidden_dims must be .*got \[True\]"),
        ({"hidden_dims": 10}, r"hidden_dims must be .*got 10"),
        ({"hidden_dims": "10"}, r"hidden_dims must be .*got '10'"),
        ({"weight_scale": -1.0}, r"weight_scale must be a finite number > 0 or one of "
                                 r"\('he', 'xavier'\); got -1\.0"),
        ({"weight_scale": "kaiming"}, r"weight_scale must be .*\('he', 'xavier'\); got 'kaiming'"),
        ({"weight_scale": 0}, r"weight_scale must be .*got 0"),
        ({"weight_scale": np.array([0.1, 0.2])}, r"weight_scale must be .*got array"),
        ({"normalization": "groupnorm"}, r"normalization must be one of \(None, 'batchnorm', "
                                         r"'layernorm'\); got 'groupnorm'"),
        ({"dropout_keep_ratio": 0}, r"dropout_keep_ratio must be a finite number in \(0, 1\]"),
        ({"dropout_keep_ratio": 1.5}, r"dropout_keep_ratio must be .*got 1\.5"),
        ({"reg": -0.1}, r"reg must be a finite number >= 0; got -0\.1"),
        ({"input_dim": 0}, r"input_dim must be a positive int; got 0"),
        ({"num_classes": 2.0}, r"num_classes must be a positive int; got 2\.0"),
        ({"dtype": np.int32}, r"dtype must be a floating-point dtype .*got int32"),
    ],
    ids=lambda v: ",".join(f"{k}={getattr(a, '__name__', a)}" for k, a in v.items())
    if isinstance(v, dict) else "message",
)
def test_constructor_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    arguments = {"hidden_dims": [5], "input_dim": D_IN, "num_classes": C, **kwargs}
    with pytest.raises(ValueError, match=f"FullyConnectedNet: {message}"):
        FullyConnectedNet(**arguments)


def test_loss_rejects_X_of_the_wrong_size() -> None:
    model = small_net(1)
    with pytest.raises(ValueError, match=r"FullyConnectedNet\.loss: X must have shape "
                                         r"\(N, d1, \.\.\., dk\) with d1 \* \.\.\. \* dk = "
                                         r"input_dim = 6; got X\.shape = \(3, 5\)"):
        model.loss(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"got X\.shape = \(6,\)"):
        model.loss(np.zeros(6))


def test_loss_rejects_y_of_the_wrong_shape() -> None:
    model = small_net(1)
    with pytest.raises(ValueError, match=r"FullyConnectedNet\.loss: y must have shape \(N,\) "
                                         r"with N = 3 .*got y\.shape = \(2,\)"):
        model.loss(np.zeros((3, D_IN)), np.array([0, 1]))


# ---------------------------------------------------------------------------------------
# The real normalisation and dropout layers (notebooks 2 and 3) inside the network. These
# run tasks of two notebooks at once (1.7, 1.8 and the layers'), so they carry no task
# marker: a task marker would blame a missing notebook-1 task on a notebook-2 task, or
# the reverse, on the scoreboard. The layers' own task tests cover each task alone.
# ---------------------------------------------------------------------------------------


def randomise_norm_params(model: FullyConnectedNet, seed: int) -> None:
    """Move gamma and beta off their initial 1 and 0 (in place), so that their gradients
    are exercised and normalised pre-activations stay off the ReLU kink at 0."""
    rng = np.random.default_rng(seed)
    for name, value in model.params.items():
        if name.startswith("gamma"):
            value[...] = rng.uniform(0.5, 1.5, size=value.shape)
        elif name.startswith("beta"):
            value[...] = rng.normal(0.0, 0.5, size=value.shape)


def assert_model_gradients_match_numeric(model: FullyConnectedNet, X, y, what: str) -> None:
    _, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name, param in model.params.items():
        numeric = eval_numerical_gradient(lambda _: model.loss(X, y)[0], param, verbose=False)
        assert_gradient_close(grads[name], numeric, f"{what}: d{name}")


@pytest.mark.parametrize(
    ("kwargs", "depth"),
    [
        pytest.param({"normalization": "batchnorm"}, 2, id="batchnorm"),
        pytest.param({"normalization": "batchnorm", "reg": 0.3}, 3, id="batchnorm-reg"),
        pytest.param({"normalization": "layernorm"}, 2, id="layernorm"),
        pytest.param({"dropout_keep_ratio": 0.5}, 2, id="dropout-0.5"),
        pytest.param({"dropout_keep_ratio": 0.8, "reg": 0.1}, 3, id="dropout-0.8-reg"),
        pytest.param({"normalization": "batchnorm", "dropout_keep_ratio": 0.6}, 2,
                     id="batchnorm+dropout"),
        pytest.param({"normalization": "layernorm", "dropout_keep_ratio": 0.6}, 2,
                     id="layernorm+dropout"),
    ],
)
def test_gradients_with_real_normalization_and_dropout(kwargs: dict, depth: int) -> None:
    # The seed fixes the dropout masks, so every loss evaluation of the numeric gradient
    # sees the same network.
    model = small_net(depth, **kwargs)
    randomise_biases(model, 11)
    randomise_norm_params(model, 12)
    X, y = small_data(13, N=6)
    assert_model_gradients_match_numeric(model, X, y, ",".join(kwargs))


def test_batchnorm_net_keeps_running_stats_and_uses_them_in_test_mode() -> None:
    model = small_net(2, normalization="batchnorm")
    X, y = small_data(14, N=8)
    model.loss(X, y)
    for bn_param, width in zip(model.bn_params, HIDDEN[2], strict=True):
        assert bn_param["running_mean"].shape == (width,)
        assert np.any(bn_param["running_mean"] != 0)
    stats = [p["running_mean"].copy() for p in model.bn_params]
    # Test mode normalises each example with the running statistics alone: scoring one
    # row by itself gives the same scores as scoring it in a batch, and changes nothing.
    together = model.loss(X)
    alone = model.loss(X[2:3])
    np.testing.assert_allclose(alone, together[2:3], rtol=1e-10)
    for before, bn_param in zip(stats, model.bn_params, strict=True):
        np.testing.assert_array_equal(bn_param["running_mean"], before)


def test_dropout_net_is_deterministic_in_test_mode_and_seeded_in_train_mode() -> None:
    X, y = small_data(15, N=8)
    model = small_net(2, dropout_keep_ratio=0.5)
    np.testing.assert_array_equal(model.loss(X), model.loss(X))
    assert model.loss(X, y)[0] == model.loss(X, y)[0]  # the seed repeats the masks
    plain = small_net(2)  # same seed, same weights, no dropout
    np.testing.assert_allclose(model.loss(X), plain.loss(X), rtol=1e-12)
    assert model.loss(X, y)[0] != pytest.approx(plain.loss(X, y)[0])
