"""Tests of the naive convolutional layers of course.layers (tasks 4.1-4.4, 4.9-4.10).

The generic property tests (backward against numeric gradients) run over these layers
through tests/layer_registry.py; here are hand-derived answers, properties and errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from course.layers import (
    conv_backward_naive,
    conv_forward_naive,
    layernorm_forward,
    max_pool_backward_naive,
    max_pool_forward_naive,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

# ---------------------------------------------------------------------------------------
# Convolution: answers worked out by hand
# ---------------------------------------------------------------------------------------


@pytest.mark.task("4.1")
def test_conv_forward_known_answer_no_padding() -> None:
    # One 3x3 image 1..9, one 2x2 filter [[1, 0], [0, -1]]: each output is top-left minus
    # bottom-right of its window, 1 - 5 = -4 everywhere, plus the bias 0.5.
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    out, _ = conv_forward_naive(x, w, np.array([0.5]), {"stride": 1, "pad": 0})
    np.testing.assert_allclose(out, np.full((1, 1, 2, 2), -3.5))


@pytest.mark.task("4.1")
def test_conv_forward_known_answer_padding_stride_channels() -> None:
    # Two channels, a 3x3 all-ones filter per channel, pad 1, stride 2 on a 3x3 image:
    # outputs at the corners (0, 0), (0, 2), (2, 0), (2, 2) of the padded-by-1 image, each
    # the sum of a 2x2 corner block of both channels. Channel 0 is 1..9, channel 1 all 10.
    x = np.stack([np.arange(1.0, 10.0).reshape(3, 3), np.full((3, 3), 10.0)])[None]
    w = np.ones((1, 2, 3, 3))
    out, _ = conv_forward_naive(x, w, np.zeros(1), {"stride": 2, "pad": 1})
    corners = np.array([[1 + 2 + 4 + 5, 2 + 3 + 5 + 6], [4 + 5 + 7 + 8, 5 + 6 + 8 + 9]])
    np.testing.assert_allclose(out[0, 0], corners + 40.0)


@pytest.mark.task("4.1")
def test_conv_forward_known_answer_several_examples_channels_and_filters() -> None:
    # 1x1 filters, so out[n, f] = w[f, 0] * x[n, 0] + w[f, 1] * x[n, 1] + b[f], pixel by
    # pixel. Filter 0 adds the two channels; filter 1 is 2 * channel 0 - 0.1 * channel 1,
    # plus 1. Channel 1 is ten (example 0) or a hundred (example 1) times the size of
    # channel 0, so mixing up examples, channels or filters changes every answer:
    #   out[0, 0] = [[1+10, 2+20], [3+30, 4+40]]        = [[11, 22], [33, 44]]
    #   out[0, 1] = [[2-1+1, 4-2+1], [6-3+1, 8-4+1]]     = [[2, 3], [4, 5]]
    #   out[1, 0] = [[-1+100, 0+0], [0+0, 1+0]]          = [[99, 0], [0, 1]]
    #   out[1, 1] = [[-2-10+1, 0+1], [0+1, 2+1]]         = [[-11, 1], [1, 3]]
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]],
                  [[[-1.0, 0.0], [0.0, 1.0]], [[100.0, 0.0], [0.0, 0.0]]]])
    w = np.array([[1.0, 1.0], [2.0, -0.1]]).reshape(2, 2, 1, 1)
    out, _ = conv_forward_naive(x, w, np.array([0.0, 1.0]), {"stride": 1, "pad": 0})
    np.testing.assert_allclose(out, [[[[11, 22], [33, 44]], [[2, 3], [4, 5]]],
                                     [[[99, 0], [0, 1]], [[-11, 1], [1, 3]]]])


@pytest.mark.task("4.1")
def test_conv_forward_is_a_cross_correlation_not_a_flipped_convolution() -> None:
    # A filter with a single 1 at (0, 1) copies the pixel right of each window's corner.
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 0, 1] = 1.0
    out, _ = conv_forward_naive(x, w, np.zeros(1), {"stride": 1, "pad": 0})
    np.testing.assert_allclose(out[0, 0], x[0, 0, :3, 1:])


@pytest.mark.task("4.1")
def test_conv_forward_output_shape_and_inputs_untouched() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 7))
    w = rng.standard_normal((4, 3, 3, 5))
    b = rng.standard_normal(4)
    copies = [a.copy() for a in (x, w, b)]
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    assert out.shape == (2, 4, 1 + (9 + 2 - 3) // 2, 1 + (7 + 2 - 5) // 2)
    for a, before in zip((x, w, b), copies, strict=True):
        np.testing.assert_array_equal(a, before)


@pytest.mark.task("4.2")
def test_conv_backward_known_answer() -> None:
    # For out = sum of a 2x2 window (filter all ones) of a 3x3 image with dout = 1
    # everywhere, dx counts the windows covering each pixel: [[1,2,1],[2,4,2],[1,2,1]];
    # dw[p, q] sums the pixels that offset (p, q) saw; db counts the outputs.
    # The cache is built by hand (its layout is fixed code in conv_forward_naive), so this
    # test needs no forward pass.
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    cache = (x, w, np.zeros(1), {"stride": 1, "pad": 0})
    dx, dw, db = conv_backward_naive(np.ones((1, 1, 2, 2)), cache)
    np.testing.assert_allclose(dx[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    np.testing.assert_allclose(dw[0, 0], [[1 + 2 + 4 + 5, 2 + 3 + 5 + 6],
                                          [4 + 5 + 7 + 8, 5 + 6 + 8 + 9]])
    np.testing.assert_allclose(db, [4.0])


@pytest.mark.task("4.2")
def test_conv_backward_known_answer_several_examples_channels_and_filters() -> None:
    # 1x1 filters on 1x2 images, N = C = F = 2, w[f, c] = [[1, 2], [3, 4]]. Then
    #   dx[n, c] = w[0, c] * dout[n, 0] + w[1, c] * dout[n, 1]  (a sum over the filters):
    #     dx[0, 0] = 1*[1, 0] + 3*[0, 1] = [1, 3]    dx[0, 1] = 2*[1, 0] + 4*[0, 1] = [2, 4]
    #     dx[1, 0] = 1*[1, 1] + 3*[3, 0] = [10, 1]   dx[1, 1] = 2*[1, 1] + 4*[3, 0] = [14, 2]
    #   dw[f, c] = sum over n of dout[n, f] . x[n, c]  (a sum over the examples):
    #     dw[0, 0] = [1, 0].[1, 2] + [1, 1].[3, 4] = 8      dw[0, 1] = 10 + 70 = 80
    #     dw[1, 0] = [0, 1].[1, 2] + [3, 0].[3, 4] = 11     dw[1, 1] = 20 + 90 = 110
    #   db[f] = the sum of dout[:, f]: db = [1 + 0 + 1 + 1, 0 + 1 + 3 + 0] = [3, 4].
    # The cache is built by hand (fixed code of conv_forward_naive): no forward pass.
    x = np.array([[[[1.0, 2.0]], [[10.0, 20.0]]], [[[3.0, 4.0]], [[30.0, 40.0]]]])
    w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    dout = np.array([[[[1.0, 0.0]], [[0.0, 1.0]]], [[[1.0, 1.0]], [[3.0, 0.0]]]])
    cache = (x, w, np.zeros(2), {"stride": 1, "pad": 0})
    dx, dw, db = conv_backward_naive(dout, cache)
    np.testing.assert_allclose(dx, [[[[1, 3]], [[2, 4]]], [[[10, 1]], [[14, 2]]]])
    np.testing.assert_allclose(dw.reshape(2, 2), [[8, 80], [11, 110]])
    np.testing.assert_allclose(db, [3, 4])


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "b_shape", "conv_param", "message"),
    [
        ((1, 1, 5, 5), (1, 1, 2, 2), (1,), {"stride": 2, "pad": 0}, r"not an integer"),
        ((1, 2, 5, 5), (1, 3, 3, 3), (1,), {"stride": 1, "pad": 1}, r"with C = 2"),
        ((1, 1, 3, 3), (1, 1, 7, 7), (1,), {"stride": 1, "pad": 1},
         r"filter height 7 is larger than the padded input height 3 \+ 2\*1 = 5"),
        ((1, 1, 5, 5), (2, 1, 3, 3), (3,), {"stride": 1, "pad": 1}, r"b must have shape"),
        ((1, 1, 5, 5), (1, 1, 3, 3), (1,), {"stride": 0, "pad": 1},
         r"conv_param\['stride'\] must be a positive int; got 0"),
        ((1, 1, 5, 5), (1, 1, 3, 3), (1,), {"stride": 1}, r"key 'pad'"),
        ((5, 5), (1, 1, 3, 3), (1,), {"stride": 1, "pad": 1}, r"x must have shape"),
    ],
)
def test_conv_forward_rejects_bad_geometry(x_shape, w_shape, b_shape, conv_param,
                                           message) -> None:
    with pytest.raises(ValueError, match=message):
        conv_forward_naive(np.zeros(x_shape), np.zeros(w_shape), np.zeros(b_shape),
                           conv_param)


def test_conv_geometry_error_shows_the_numbers() -> None:
    with pytest.raises(ValueError, match=r"1 \+ \(5 \+ 2\*1 - 2\) / 2"):
        conv_forward_naive(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 2, 2)), np.zeros(1),
                           {"stride": 2, "pad": 1})


# ---------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------


@pytest.mark.task("4.3")
def test_max_pool_forward_known_answer() -> None:
    x = np.array([[1.0, 5.0, 2.0, 0.0],
                  [3.0, 4.0, 8.0, 1.0],
                  [0.0, 0.0, -1.0, -2.0],
                  [9.0, 0.0, -3.0, -4.0]]).reshape(1, 1, 4, 4)
    out, _ = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    np.testing.assert_allclose(out[0, 0], [[5.0, 8.0], [9.0, -1.0]])
    # Overlapping 3x3 windows with stride 1: maxima of the four 3x3 blocks.
    out, _ = max_pool_forward_naive(x, {"pool_height": 3, "pool_width": 3, "stride": 1})
    np.testing.assert_allclose(out[0, 0], [[8.0, 8.0], [9.0, 8.0]])


# Two examples of two channels, 2x4 each, whose channels differ in scale (channel 1 of
# example 0 is in the hundreds): pooled 2x2 with stride 2, each channel of each example
# has its own two windows, left and right. Each window's maximum and where it sits, read
# off by hand:
#   x[0, 0] = [[1, 2, 3, 4], [5, 6, 7, 8]]:             6 at (1, 1), 8 at (1, 3)
#   x[0, 1] = [[400, 300, 200, 100], [-100, ..., -400]]: 400 at (0, 0), 200 at (0, 2)
#   x[1, 0] = [[-1, -2, -3, -4], [-5, -6, -7, -8]]:     -1 at (0, 0), -3 at (0, 2)
#   x[1, 1] = [[0, 90, 0, 0], [0, 0, 0, 70]]:           90 at (0, 1), 70 at (1, 3)
# A maximum taken over all channels at once, or over all examples, gives another answer.
POOL_X = np.array([[[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]],
                    [[400.0, 300.0, 200.0, 100.0], [-100.0, -200.0, -300.0, -400.0]]],
                   [[[-1.0, -2.0, -3.0, -4.0], [-5.0, -6.0, -7.0, -8.0]],
                    [[0.0, 90.0, 0.0, 0.0], [0.0, 0.0, 0.0, 70.0]]]])
POOL_2X2 = {"pool_height": 2, "pool_width": 2, "stride": 2}


@pytest.mark.task("4.3")
def test_max_pool_forward_known_answer_several_examples_and_channels() -> None:
    # Each channel of each example pooled on its own, 2x2 windows with stride 2 (left,
    # right); channel 1 of example 0 is in the hundreds. Maxima, read off POOL_X:
    #   x[0, 0] -> [6, 8]     x[0, 1] -> [400, 200]
    #   x[1, 0] -> [-1, -3]   x[1, 1] -> [90, 70]
    # A maximum over all channels at once would give [400, 200] for x[0, 0] too.
    out, _ = max_pool_forward_naive(POOL_X, POOL_2X2)
    np.testing.assert_allclose(out, [[[[6, 8]], [[400, 200]]], [[[-1, -3]], [[90, 70]]]])


@pytest.mark.task("4.4")
def test_max_pool_backward_known_answer_several_examples_and_channels() -> None:
    # Each window's upstream gradient goes to its maximum (the places listed above
    # POOL_X), in its own channel: dout numbers the windows 1..8, so each lands somewhere
    # of its own, e.g. x[0, 0]'s left window (6 at (1, 1)) puts 1 at dx[0, 0, 1, 1]. The
    # cache (x, pool_param) is fixed code of the forward pass, so it is built by hand.
    dout = np.arange(1.0, 9.0).reshape(2, 2, 1, 2)
    dx = max_pool_backward_naive(dout, (POOL_X, POOL_2X2))
    np.testing.assert_allclose(dx, [[[[0, 0, 0, 0], [0, 1, 0, 2]], [[3, 0, 4, 0], [0, 0, 0, 0]]],
                                    [[[5, 0, 6, 0], [0, 0, 0, 0]], [[0, 7, 0, 0], [0, 0, 0, 8]]]])


@pytest.mark.task("4.4")
def test_max_pool_backward_sends_gradient_to_the_first_maximum() -> None:
    # A window of equal values: the first one in row-major order gets the gradient. The
    # cache (x, pool_param) is fixed code of the forward pass, so it is built by hand here.
    x = np.zeros((1, 1, 2, 2))
    cache = (x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dx = max_pool_backward_naive(np.full((1, 1, 1, 1), 3.0), cache)
    np.testing.assert_allclose(dx[0, 0], [[3.0, 0.0], [0.0, 0.0]])
    # Tie at (0, 1) and (1, 0): row-major order picks (0, 1).
    x = np.array([[0.0, 2.0], [2.0, 1.0]]).reshape(1, 1, 2, 2)
    out, cache = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dx = max_pool_backward_naive(np.ones_like(out), cache)
    np.testing.assert_allclose(dx[0, 0], [[0.0, 1.0], [0.0, 0.0]])


@pytest.mark.task("4.4")
def test_max_pool_backward_adds_up_over_overlapping_windows() -> None:
    # The centre 9 is the maximum of all four 2x2 windows (stride 1): it gets 1+2+3+4.
    x = np.array([[0.0, 1.0, 0.0], [2.0, 9.0, 3.0], [0.0, 4.0, 0.0]]).reshape(1, 1, 3, 3)
    _out, cache = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 1})
    dx = max_pool_backward_naive(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expected = np.zeros((3, 3))
    expected[1, 1] = 10.0
    np.testing.assert_allclose(dx[0, 0], expected)


@pytest.mark.parametrize(
    ("shape", "pool_param", "message"),
    [
        ((1, 1, 5, 5), {"pool_height": 2, "pool_width": 2, "stride": 2}, r"not an integer"),
        ((1, 1, 2, 2), {"pool_height": 3, "pool_width": 2, "stride": 1},
         r"pool height 3 is larger than the input height 2"),
        ((1, 1, 4, 4), {"pool_height": 2, "stride": 2}, r"key 'pool_width'"),
        ((4, 4), {"pool_height": 2, "pool_width": 2, "stride": 2}, r"x must have shape"),
    ],
)
def test_max_pool_rejects_bad_geometry(shape, pool_param, message) -> None:
    with pytest.raises(ValueError, match=message):
        max_pool_forward_naive(np.zeros(shape), pool_param)


# ---------------------------------------------------------------------------------------
# Spatial group normalisation: properties and the two extremes of G
# ---------------------------------------------------------------------------------------


@pytest.mark.task("4.9")
def test_groupnorm_G1_is_layer_norm_and_GC_is_instance_norm() -> None:
    # G = 1 normalises each example over all C*H*W values: layer norm of the flattened
    # example. G = C normalises each channel of each example over its H*W pixels: layer
    # norm of the (N*C, H*W) matrix. Both compared with your layernorm_forward (task 2.4,
    # so 4.9 requires it).
    rng = np.random.default_rng(1)
    N, C, H, W = 2, 4, 3, 3
    x = rng.standard_normal((N, C, H, W))
    gamma = rng.standard_normal((1, C, 1, 1))
    beta = rng.standard_normal((1, C, 1, 1))
    param = {"eps": 1e-5}
    layer, _ = spatial_groupnorm_forward(x, gamma, beta, 1, param)
    flat, _ = layernorm_forward(x.reshape(N, -1), np.ones(C * H * W), np.zeros(C * H * W),
                                {"eps": 1e-5})
    np.testing.assert_allclose(layer, gamma * flat.reshape(x.shape) + beta,
                               rtol=1e-10, atol=1e-12)
    instance, _ = spatial_groupnorm_forward(x, gamma, beta, C, param)
    per_channel, _ = layernorm_forward(x.reshape(N * C, -1), np.ones(H * W), np.zeros(H * W),
                                       {"eps": 1e-5})
    np.testing.assert_allclose(instance, gamma * per_channel.reshape(x.shape) + beta,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.task("4.10")
def test_groupnorm_backward_gamma_beta_shapes_and_known_dbeta() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 3, 3))
    gamma, beta = np.ones((1, 4, 1, 1)), np.zeros((1, 4, 1, 1))
    out, cache = spatial_groupnorm_forward(x, gamma, beta, 2, {})
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    assert dx.shape == x.shape and dgamma.shape == dbeta.shape == (1, 4, 1, 1)
    np.testing.assert_allclose(dbeta.ravel(), dout.sum(axis=(0, 2, 3)))
    # A constant upstream gradient cannot change a normalised output: dx = 0.
    dx_const, _, _ = spatial_groupnorm_backward(np.ones_like(out), cache)
    np.testing.assert_allclose(dx_const, 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("C", "gamma_shape", "G", "message"),
    [(6, (1, 6, 1, 1), 4, r"G must be a positive int that divides C = 6"),
     (6, (6,), 2, r"gamma must have shape \(1, C, 1, 1\) with C = 6"),
     (6, (1, 6, 1, 1), 0, r"got G = 0")],
)
def test_groupnorm_rejects_bad_groups_and_shapes(C, gamma_shape, G, message) -> None:
    with pytest.raises(ValueError, match=message):
        spatial_groupnorm_forward(np.zeros((1, C, 2, 2)), np.ones(gamma_shape),
                                  np.zeros((1, C, 1, 1)), G, {})


# ---------------------------------------------------------------------------------------
# Spatial batch normalisation: properties (statistics per channel over N, H and W)
# ---------------------------------------------------------------------------------------


@pytest.mark.task("4.7")
def test_spatial_batchnorm_train_standardises_each_channel() -> None:
    rng = np.random.default_rng(5)
    N, C, H, W = 4, 3, 5, 6
    x = rng.standard_normal((N, C, H, W)) * np.array([1.0, 5.0, 0.2])[None, :, None, None]
    x += np.array([3.0, -2.0, 10.0])[None, :, None, None]
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, 1.0, -1.0])
    bn_param = {"mode": "train", "momentum": 0.9, "eps": 1e-12}
    out, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    assert out.shape == x.shape
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), np.abs(gamma), rtol=1e-4)
    # Running averages start at 0 and move 10% of the way to the channel statistics.
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * x.var(axis=(0, 2, 3)))


@pytest.mark.task("4.7")
def test_spatial_batchnorm_test_mode_uses_running_statistics() -> None:
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    bn_param = {"mode": "test", "running_mean": np.array([1.0, 2.0, 3.0]),
                "running_var": np.array([4.0, 1.0, 0.25]), "eps": 1e-14}
    out, _ = spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    expected = (x - np.array([1.0, 2.0, 3.0])[None, :, None, None]) / np.array(
        [2.0, 1.0, 0.5])[None, :, None, None]
    np.testing.assert_allclose(out, expected)


@pytest.mark.task("4.8")
def test_spatial_batchnorm_backward_shapes_and_known_dbeta() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4, 4))
    out, cache = spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    assert dx.shape == x.shape and dgamma.shape == dbeta.shape == (3,)
    np.testing.assert_allclose(dbeta, dout.sum(axis=(0, 2, 3)))
    dx_const, _, _ = spatial_batchnorm_backward(np.ones_like(out), cache)
    np.testing.assert_allclose(dx_const, 0.0, atol=1e-12)


def test_spatial_batchnorm_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"gamma must have shape \(C,\) with C = 3"):
        spatial_batchnorm_forward(np.zeros((2, 3, 2, 2)), np.ones((1, 3, 1, 1)), np.zeros(3),
                                  {"mode": "train"})
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, H, W\)"):
        spatial_batchnorm_forward(np.zeros((2, 3)), np.ones(3), np.zeros(3), {"mode": "train"})
