"""Hidden-check cases of notebook 4: convolution, max pooling, the conv net, spatial
batch and group normalisation (see ``kit.hidden.cases``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kit.hidden.case import (
    CNN,
    Case,
    labels,
    layer,
    normal,
    random_params,
    running_average_case,
)


def conv_geometry(rng: np.random.Generator, stride: int, pad: int, kernel: tuple[int, int],
                  n: int) -> tuple[tuple[int, ...], tuple[int, ...], dict[str, int]]:
    """x and w shapes for which the output size is whole: H + 2 pad - HH divisible by the
    stride (H and W drawn separately, so they differ and are often odd)."""
    hh, ww = kernel
    sizes = []
    for k in (hh, ww):
        size = k - 2 * pad + stride * int(rng.integers(1, 4))
        while size < 1:  # a big pad: step up to the first size that is an input
            size += stride
        sizes.append(size)
    c, f = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    return (n, c, *sizes), (f, c, hh, ww), {"stride": stride, "pad": pad}


def conv_plans(rng: np.random.Generator) -> list[tuple[str, int, int, tuple[int, int], int]]:
    return [
        ("random geometry", int(rng.integers(1, 3)), int(rng.integers(1, 3)),
         (int(rng.integers(2, 4)), int(rng.integers(2, 4))), 2),
        ("pad = 0 and stride 2", 2, 0, (3, 2), 2),
        ("pad = 2, stride 3", 3, 2, (3, 3), 1),
        ("1x1 filters, pad = 0, N = 1", 1, 0, (1, 1), 1),
        ("filter as large as the padded input", 1, 1, (4, 5), 2),
    ]


def _conv_inputs(rng: np.random.Generator, plan: tuple) -> list[Any]:
    _, stride, pad, kernel, n = plan
    x_shape, w_shape, conv_param = conv_geometry(rng, stride, pad, kernel, n)
    if plan[0].startswith("filter as large"):
        x_shape = (n, w_shape[1], kernel[0] - 2 * pad, kernel[1] - 2 * pad)
    return [normal(rng, *x_shape), normal(rng, *w_shape), normal(rng, w_shape[0]), conv_param]


def conv_out_shape(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                   conv_param: dict[str, int]) -> tuple[int, int, int, int]:
    s, p = conv_param["stride"], conv_param["pad"]
    return (x_shape[0], w_shape[0], 1 + (x_shape[2] + 2 * p - w_shape[2]) // s,
            1 + (x_shape[3] + 2 * p - w_shape[3]) // s)


def conv_forward_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("4.1", plan[0], "forward_steps",
                 {"forward": layer("conv_forward_naive"),
                  "steps": [{"args": _conv_inputs(rng, plan)}]})
            for plan in conv_plans(rng)]


def conv_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for plan in conv_plans(rng):
        x, w, b, conv_param = _conv_inputs(rng, plan)
        dout = normal(rng, *conv_out_shape(x.shape, w.shape, conv_param))
        cases.append(Case("4.2", plan[0], "backward",
                          {"backward": layer("conv_backward_naive"),
                           "cache": (x, w, b, conv_param), "dout": dout},
                          options={"names": {"grads": ["dx", "dw", "db"]}}))
    return cases


def pool_plans(rng: np.random.Generator) -> list[tuple[str, int, int, int, bool]]:
    """(label, pool height, pool width, stride, ties)."""
    return [
        ("random geometry", int(rng.integers(2, 4)), int(rng.integers(2, 4)),
         int(rng.integers(1, 3)), False),
        ("ties in the windows", 2, 2, 2, True),
        ("overlapping windows (stride < pool size), ties", 3, 2, 1, True),
        ("stride larger than the pool, N = 1", 2, 1, 3, False),
        ("1x1 pool", 1, 1, 1, False),
    ]


def _pool_inputs(rng: np.random.Generator, plan: tuple) -> tuple[np.ndarray, dict[str, int]]:
    label, ph, pw, stride, ties = plan
    n = 1 if "N = 1" in label else 2
    h = ph + stride * int(rng.integers(1, 4))
    w = pw + stride * int(rng.integers(1, 4))
    shape = (n, int(rng.integers(2, 4)), h, w)
    x = rng.integers(-2, 3, size=shape).astype(np.float64) if ties else normal(rng, *shape)
    return x, {"pool_height": ph, "pool_width": pw, "stride": stride}


def pool_forward_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("4.3", plan[0], "forward_steps",
                 {"forward": layer("max_pool_forward_naive"),
                  "steps": [{"args": list(_pool_inputs(rng, plan))}]})
            for plan in pool_plans(rng)]


def pool_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for plan in pool_plans(rng):
        x, pool_param = _pool_inputs(rng, plan)
        n, c, h, w = x.shape
        stride = pool_param["stride"]
        out = (n, c, 1 + (h - pool_param["pool_height"]) // stride,
               1 + (w - pool_param["pool_width"]) // stride)
        cases.append(Case("4.4", plan[0], "backward",
                          {"backward": layer("max_pool_backward_naive"),
                           "cache": (x, pool_param), "dout": normal(rng, *out)},
                          options={"names": {"grads": ["dx"]}}))
    return cases


def _cnn_kwargs(rng: np.random.Generator, filter_size: int, reg: float,
                dtype: str = "float64") -> dict[str, Any]:
    return {"input_dim": [int(rng.integers(2, 4)), 2 * int(rng.integers(2, 4)),
                          2 * int(rng.integers(2, 4))],
            "num_filters": int(rng.integers(2, 5)), "filter_size": filter_size,
            "hidden_dim": int(rng.integers(3, 9)), "num_classes": int(rng.integers(2, 7)),
            "weight_scale": float(rng.uniform(0.05, 0.5)), "reg": reg, "dtype": dtype,
            "seed": 0}


def cnn_param_shapes(kwargs: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    c, h, w = kwargs["input_dim"]
    f, k, hidden = kwargs["num_filters"], kwargs["filter_size"], kwargs["hidden_dim"]
    return {"W1": (f, c, k, k), "b1": (f,), "W2": (f * (h // 2) * (w // 2), hidden),
            "b2": (hidden,), "W3": (hidden, kwargs["num_classes"]),
            "b3": (kwargs["num_classes"],)}


def cnn_init_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, size, seed in (("seeded", int(rng.choice([3, 5])), 0),
                              ("seed None (numpy's global state), 1x1 filters", 1, None)):
        kwargs = {"input_dim": [int(rng.integers(2, 4)), 2 * int(rng.integers(3, 6)),
                                2 * int(rng.integers(3, 6))],
                  "num_filters": int(rng.integers(6, 12)), "filter_size": size,
                  "hidden_dim": int(rng.integers(40, 80)), "num_classes": int(rng.integers(20, 40)),
                  "weight_scale": float(rng.uniform(1e-3, 0.2)),
                  "dtype": str(rng.choice(["float32", "float64"])),
                  "seed": seed if seed is None else int(rng.integers(2**31))}
        stds = {name: kwargs["weight_scale"] for name in ("W1", "W2", "W3")}
        cases.append(Case("4.5", label, "model_init",
                          {"model": CNN, "kwargs": kwargs,
                           "global_seed": int(rng.integers(2**31))},
                          judge="init", options={"stds": stds, "dtype": kwargs["dtype"]}))
    return cases


def cnn_loss_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, size, reg, n, with_labels in (
        ("reg = 0", 3, 0.0, 3, True),
        ("reg > 0, 5x5 filters", 5, float(rng.uniform(0.1, 2.0)), 2, True),
        ("N = 1, 1x1 filters, reg > 0", 1, float(rng.uniform(0.1, 2.0)), 1, True),
        ("class scores (y = None)", 3, 0.5, 2, False),
    ):
        kwargs = _cnn_kwargs(rng, size, reg)
        spec = {"model": CNN, "kwargs": kwargs,
                "params": random_params(rng, cnn_param_shapes(kwargs), 0.5),
                "X": normal(rng, n, *kwargs["input_dim"]),
                "y": labels(rng, n, kwargs["num_classes"]) if with_labels else None}
        cases.append(Case("4.6", label, "model_loss", spec))
    return cases


def spatial_data(rng: np.random.Generator, n: int, c: int, h: int, w: int) -> np.ndarray:
    """Channels with their own means and spreads, one of them tiny (so eps matters)."""
    spread = rng.uniform(0.5, 3.0, size=c)
    spread[0] = 1e-3
    centre = rng.uniform(-2, 2, size=c)
    return centre[None, :, None, None] + spread[None, :, None, None] * \
        rng.standard_normal((n, c, h, w))


def spatial_batchnorm_forward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, n, param in (
        ("3 train steps then 2 test steps, running averages", 2,
         {"momentum": float(rng.uniform(0.5, 0.95)), "eps": float(rng.uniform(1e-4, 1e-2))}),
        ("N = 1, default eps and momentum", 1, {}),
    ):
        c, h, w = (int(v) for v in rng.integers(2, 5, size=3))
        cases.append(running_average_case(
            "4.7", "spatial_batchnorm_forward", label, param,
            lambda n=n, c=c, h=h, w=w: spatial_data(rng, n, c, h, w), c, rng))
    return cases


def spatial_batchnorm_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label in ("random values", "one pixel per image (H = W = 1)"):
        n, c = int(rng.integers(2, 4)), int(rng.integers(2, 5))
        h, w = (1, 1) if label.startswith("one pixel") else \
            (int(rng.integers(2, 5)), int(rng.integers(2, 5)))
        args = [spatial_data(rng, n, c, h, w), 1.0 + normal(rng, c, scale=0.3),
                normal(rng, c, scale=0.3), None]
        cases.append(Case("4.8", label, "forward_backward",
                          {"forward": layer("spatial_batchnorm_forward"),
                           "backward": layer("spatial_batchnorm_backward"), "args": args,
                           "param_index": 3,
                           "param": {"mode": "train", "eps": float(rng.uniform(1e-5, 1e-2))},
                           "dout": normal(rng, n, c, h, w)},
                          options={"names": {"grads": ["dx", "dgamma", "dbeta"]}}))
    return cases


def _groupnorm_args(rng: np.random.Generator, groups: str) -> list[Any]:
    g = int(rng.integers(2, 4))
    per_group = int(rng.integers(2, 4))
    if groups == "G = 1":
        g = 1
    elif groups == "G = C":
        per_group = 1
    c = g * per_group
    n, h, w = int(rng.integers(2, 4)), int(rng.integers(2, 4)), int(rng.integers(2, 5))
    return [spatial_data(rng, n, c, h, w), 1.0 + normal(rng, 1, c, 1, 1, scale=0.3),
            normal(rng, 1, c, 1, 1, scale=0.3), g,
            {"eps": float(rng.uniform(1e-5, 1e-2))}]


GROUP_PLANS = ("random groups", "G = 1 (layer normalisation)", "G = C (instance normalisation)")


def groupnorm_forward_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("4.9", label, "forward_steps",
                 {"forward": layer("spatial_groupnorm_forward"),
                  "steps": [{"args": _groupnorm_args(rng, label.split(" (")[0])}]})
            for label in GROUP_PLANS]


def groupnorm_backward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label in GROUP_PLANS:
        args = _groupnorm_args(rng, label.split(" (")[0])
        cases.append(Case("4.10", label, "forward_backward",
                          {"forward": layer("spatial_groupnorm_forward"),
                           "backward": layer("spatial_groupnorm_backward"), "args": args,
                           "dout": normal(rng, *args[0].shape)},
                          options={"names": {"grads": ["dx", "dgamma", "dbeta"]}}))
    return cases


