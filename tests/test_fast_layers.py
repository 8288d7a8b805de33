"""course.fast_layers reproduces the naive layers: forward and backward to 1e-10 in float64
over hypothesis-drawn geometries (from tests/layer_registry.py), ties included, and keeps
float32 as float32."""

from __future__ import annotations

import copy
import itertools
import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from layer_registry import (
    FAST_TWINS,
    _seeds,
    case_named,
    conv_inputs,
    pool_geometries,
    task_marks,
)

import course.fast_layers as fast
from course.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from course.layers import (
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
)

# Each test is marked with the one naive task it judges: the forward comparison with the
# naive forward pass's task, the backward comparison with the backward pass's (which also
# runs the naive forward, to get its cache; ``requires`` says so). Until those are written
# the tests stop at their stubs (the fast layers are given code).
FORWARD_TWINS = [pytest.param(fast_name, naive_name, id=fast_name,
                              marks=task_marks(case_named(naive_name).forward_task))
                 for fast_name, naive_name in FAST_TWINS.items()]
BACKWARD_TWINS = [pytest.param(fast_name, naive_name, id=fast_name,
                               marks=task_marks(case_named(naive_name).backward_task))
                  for fast_name, naive_name in FAST_TWINS.items()]


def _assert_same(result, naive_result, what: str,
                 actual: str = "the fast layer's (given code)") -> None:
    """A result (the fast layer's, unless ``actual`` says otherwise) against the naive
    layer's on the naive cache: the message says which is which (in the student release
    the naive layer is the task, the fast one given code)."""
    a, b = np.asarray(result), np.asarray(naive_result)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape} (naive)"
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=(
        f"{what}: ACTUAL is {actual}, DESIRED the naive layer's"))


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def _assert_grads_same(grads, naive_grads, what: str,
                       actual: str = "the fast layer's (given code)") -> None:
    """A conv backward's (dx, dw, db) against the naive backward's, each by ``_assert_same``."""
    for name, g, r in zip(("dx", "dw", "db"), grads, naive_grads, strict=True):
        _assert_same(g, r, f"{what}: {name}", actual)


def _strided_layer(seed: int, x_shape: tuple[int, ...], w_shape: tuple[int, ...]
                   ) -> tuple[dict, tuple, np.ndarray, tuple]:
    """A stride-2, pad-1 layer's inputs, its fast forward's cache, a dout, and the naive
    backward's gradients on the naive cache."""
    rng = np.random.default_rng(seed)
    inputs = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal(w_shape),
              "b": rng.random(w_shape[0]), "conv_param": {"stride": 2, "pad": 1}}
    out, cache = conv_forward_fast(**inputs)
    dout = rng.standard_normal(out.shape)
    return inputs, cache, dout, conv_backward_naive(dout, conv_forward_naive(**inputs)[1])


def _assert_pool_matches_naive(x: np.ndarray, param: dict, rng: np.random.Generator,
                               what: str) -> None:
    """max_pool_forward_fast/backward_fast against the naive layers on x, with a dout
    drawn from rng: the output, then dx."""
    out, cache = max_pool_forward_fast(x, param)
    naive_out, naive_cache = max_pool_forward_naive(x, param)
    _assert_same(out, naive_out, f"pool out {what}")
    dout = rng.standard_normal(out.shape)
    _assert_same(max_pool_backward_fast(dout, cache),
                 max_pool_backward_naive(dout, naive_cache), f"pool dx {what}")


@pytest.mark.parametrize(("fast_name", "naive_name"), FORWARD_TWINS)
@given(data=st.data())
def test_fast_forward_matches_naive(fast_name: str, naive_name: str,
                                    data: st.DataObject) -> None:
    fast_case, naive_case = case_named(fast_name), case_named(naive_name)
    inputs = data.draw(naive_case.inputs, label="inputs")
    out_naive, _ = naive_case.forward(**inputs)
    out_fast, _ = fast_case.forward(**inputs)
    _assert_same(out_fast, out_naive, f"{fast_name}: out")


@pytest.mark.parametrize(("fast_name", "naive_name"), BACKWARD_TWINS)
@given(data=st.data())
def test_fast_backward_matches_naive(fast_name: str, naive_name: str,
                                     data: st.DataObject) -> None:
    fast_case, naive_case = case_named(fast_name), case_named(naive_name)
    inputs = data.draw(naive_case.inputs, label="inputs")
    out_fast, cache_fast = fast_case.forward(**inputs)
    _, cache_naive = naive_case.forward(**inputs)
    dout = np.random.default_rng(1).standard_normal(out_fast.shape)
    grads_naive = _as_tuple(naive_case.backward(dout, cache_naive))
    grads_fast = _as_tuple(fast_case.backward(dout, cache_fast))
    for name, g_fast, g_naive in zip(fast_case.differentiable, grads_fast, grads_naive,
                                     strict=True):
        _assert_same(g_fast, g_naive, f"{fast_name}: d{name}")


def _tied_input(geometry, seed: int, levels: int) -> np.ndarray:
    """Few distinct values: most windows hold their maximum more than once."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, levels, size=geometry["shape"]).astype(np.float64)


@pytest.mark.task("4.3")
@given(geometry=pool_geometries(), seed=_seeds, levels=st.integers(1, 3))
def test_fast_pool_forward_with_ties_matches_naive(geometry, seed: int, levels: int) -> None:
    x = _tied_input(geometry, seed, levels)
    out, _ = max_pool_forward_naive(x, geometry["pool_param"])
    out_fast, _ = max_pool_forward_fast(x, geometry["pool_param"])
    _assert_same(out_fast, out, "max pool out (ties)")


@pytest.mark.task("4.4")
@given(geometry=pool_geometries(), seed=_seeds, levels=st.integers(1, 3))
def test_fast_pool_breaks_ties_like_naive(geometry, seed: int, levels: int) -> None:
    x = _tied_input(geometry, seed, levels)
    out_fast, cache_fast = max_pool_forward_fast(x, geometry["pool_param"])
    _, cache = max_pool_forward_naive(x, geometry["pool_param"])
    dout = np.random.default_rng(seed).standard_normal(out_fast.shape)
    _assert_same(max_pool_backward_fast(dout, cache_fast), max_pool_backward_naive(dout, cache),
                 "max pool dx (ties)")


@pytest.mark.task("4.2")  # judges the backward pass (it runs 4.1 first)
@pytest.mark.parametrize("method", ["correlate", "flat fold", "phases", "slabs"])
@given(inputs=conv_inputs())
def test_every_conv_dx_method_matches_naive(method: str, inputs: dict) -> None:
    # conv_backward_fast picks how it computes dx from the geometry; force each way on
    # every drawn geometry it supports: the first two need stride 1; strided layers sum
    # by phases where _phase_origin finds a layout, else slab by slab ("slabs" takes
    # the layout away).
    chosen = fast._input_gradient_method

    def forced(stride: int, C: int, F: int) -> str:
        return method if stride == 1 and method in ("correlate", "flat fold") else (
            chosen(stride, C, F))

    out, cache = conv_forward_naive(**inputs)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    want = conv_backward_naive(dout, cache)
    no_layout = patch.object(fast, "_phase_origin", lambda *geometry: None)
    with patch.object(fast, "_input_gradient_method", forced), (
            no_layout if method == "slabs" else nullcontext()):
        got = conv_backward_fast(dout, cache)
    _assert_grads_same(got, want, method)


@pytest.mark.task("4.2")  # judges the backward pass (it runs 4.1 first)
def test_strided_dx_by_phases_matches_naive_wherever_it_lays_out() -> None:
    # Every strided geometry of this grid that _phase_origin gives a layout (rows of the
    # output's width, columns that wrap only onto padding) through the phases; the
    # others must be the ones it refuses, and the benchmark's (a) must not be one.
    assert fast._phase_origin(2, 3, 1, 31, 16) is not None
    rng = np.random.default_rng(11)
    laid_out = 0
    for stride, HH, WW, pad, H, W in itertools.product((2, 3), (1, 2, 3, 5), (1, 2, 3, 4, 5),
                                                        (0, 1, 2), (5, 8), (6, 7, 11)):
        if (H + 2 * pad - HH) % stride or (W + 2 * pad - WW) % stride or min(
                H + 2 * pad - HH, W + 2 * pad - WW) < 0:
            continue
        x, w = rng.standard_normal((2, 2, H, W)), rng.standard_normal((3, 2, HH, WW))
        param = {"stride": stride, "pad": pad}
        out, cache = conv_forward_naive(x, w, np.zeros(3), param)
        origin = fast._phase_origin(stride, WW, pad, W, out.shape[3])
        if origin is None:
            continue
        laid_out += 1
        dout = rng.standard_normal(out.shape)
        _assert_same(fast._input_gradient_by_phases(dout, w, x.shape, stride, pad, origin),
                     conv_backward_naive(dout, cache)[0], f"dx by phases, {param}, "
                     f"filter {HH}x{WW}, input {H}x{W}, origin {origin}")
    assert laid_out >= 80  # of 135 geometries


@pytest.mark.task("4.2")  # judges the backward pass (it runs 4.1 first)
def test_strided_conv_backward_reuses_the_forward_im2col(monkeypatch) -> None:
    # A strided layer's cache carries its im2col matrices (it still unpacks as the naive
    # one's); the fast backward then makes no windows of x, and either backward accepts
    # either cache. A dout of another dtype than the forward's makes them again.
    inputs, cache, dout, want = _strided_layer(12, (3, 2, 9, 9), (4, 2, 3, 3))
    assert cache.im2col is not None and len(cache) == 4
    _assert_grads_same(conv_backward_naive(dout, cache), want, "either cache",
                       "the naive backward's on the fast cache")
    _assert_grads_same(conv_backward_fast(dout, conv_forward_naive(**inputs)[1]), want,
                       "either cache", "the fast backward's on the naive cache")

    def no_windows(*args):
        raise AssertionError("the backward made x's windows again")

    with monkeypatch.context() as m:
        m.setattr(fast, "_windows", no_windows)
        _assert_grads_same(conv_backward_fast(dout, cache), want, "kept im2col")
    x32, w32, b32 = (inputs[k].astype(np.float32) for k in "xwb")
    _, cache32 = conv_forward_fast(x32, w32, b32, inputs["conv_param"])
    for name, g, r in zip(("dx", "dw", "db"), conv_backward_fast(dout, cache32), want,
                          strict=True):  # a float64 dout: float64 gradients
        assert g.dtype == np.float64, name
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.task("4.2")  # judges the backward pass (it runs 4.1 first)
@pytest.mark.parametrize("products", ["row shifts, filters first", "row shifts, S first",
                                      "im2col of the row shifts"])
def test_stride_1_dw_by_every_product_equals_the_naive_layer(monkeypatch, products: str
                                                              ) -> None:
    # dw of a stride-1 layer takes one of three products by dtype and size
    # (fast._filters_first, fast.IM2COL_DW_FROM_FILTERS); force each in turn.
    monkeypatch.setattr(fast, "_filters_first", lambda *_: products.endswith("filters first"))
    monkeypatch.setattr(fast, "IM2COL_DW_FROM_FILTERS", 0 if "im2col" in products else 10**9)
    monkeypatch.setattr(fast, "INLINE_BYTES", 0)  # several blocks, on the threads
    monkeypatch.setattr(fast, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(fast, "FEW_CHANNELS_BLOCK_BYTES", 4096)
    rng = np.random.default_rng(11)
    for x_shape, w_shape in (((5, 1, 9, 8), (8, 1, 5, 5)), ((4, 3, 7, 7), (12, 3, 3, 3))):
        x, w, b = (rng.standard_normal(x_shape), rng.standard_normal(w_shape),
                   rng.standard_normal(w_shape[0]))
        param = {"stride": 1, "pad": w_shape[2] // 2}
        out, cache = conv_forward_fast(x, w, b, param)
        dout = rng.standard_normal(out.shape)
        want = conv_backward_naive(dout, conv_forward_naive(x, w, b, param)[1])
        _, dw, db = conv_backward_fast(dout, cache, input_grad=False)
        _assert_grads_same((want[0], dw, db), want, products, f"x {x_shape}, w {w_shape}")


@pytest.mark.task("4.2")  # judges the backward pass (it runs 4.1 first)
@pytest.mark.parametrize("block_bytes", [1, 10**9])
def test_fast_conv_same_result_whatever_the_blocking(monkeypatch, block_bytes: int) -> None:
    # One example per block (many threads' worth) and one block for the whole batch; the
    # paths of few input channels (this layer's, C = 3) have block sizes of their own.
    monkeypatch.setattr(fast, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(fast, "FEW_CHANNELS_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(fast, "INLINE_BYTES", 0)  # this batch is small: split it anyway
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((7, 3, 9, 9)), rng.standard_normal((5, 3, 3, 3)), rng.random(5)
    for param in ({"stride": 1, "pad": 1}, {"stride": 2, "pad": 0}):
        out, cache = conv_forward_fast(x, w, b, param)
        naive_out, naive_cache = conv_forward_naive(x, w, b, param)
        _assert_same(out, naive_out, "out")
        dout = rng.standard_normal(out.shape)
        for got, want in zip(conv_backward_fast(dout, cache),
                             conv_backward_naive(dout, naive_cache), strict=True):
            _assert_same(got, want, "grads")


@pytest.mark.task("4.2")  # judges the backward pass (it runs 4.1 first)
@given(inputs=conv_inputs())
def test_strided_backward_side_by_side_matches_naive(inputs: dict) -> None:
    # dw on a helper thread while this one computes dx: the drawn layers are far below
    # OVERLAP_BYTES, so the window is opened to every size; a spy checks that the strided
    # ones did take that path (and only they).
    out, cache = conv_forward_fast(**inputs)
    dout = np.random.default_rng(4).standard_normal(out.shape)
    want = conv_backward_naive(dout, conv_forward_naive(**inputs)[1])
    calls = []

    def spy(helper_job, own_job):
        calls.append(1)
        return side_by_side(helper_job, own_job)

    side_by_side = fast._side_by_side
    with patch.object(fast, "OVERLAP_BYTES", 0), patch.object(fast, "WORKERS", 2), \
            patch.object(fast, "_side_by_side", spy):
        got = conv_backward_fast(dout, cache)
    assert len(calls) == (inputs["conv_param"]["stride"] > 1)
    _assert_grads_same(got, want, "dw beside dx")


def test_side_by_side_runs_the_first_job_on_another_thread() -> None:
    # The own job outlasts the helper's start (as dx does dw's), so the helper is not
    # taken back.
    threads, started = {}, threading.Event()

    def helper_job():
        threads["helper"] = threading.get_ident()
        started.set()
        return "helper"

    def own_job():
        threads["own"] = threading.get_ident()
        assert started.wait(5)
        return "own"

    assert fast._side_by_side(helper_job, own_job) == ("helper", "own")
    assert threads["own"] == threading.get_ident() != threads["helper"]


def test_side_by_side_runs_a_helper_that_never_started_itself(monkeypatch) -> None:
    # The only worker is busy (another process holds the cores, say): the helper's job is
    # taken back and run on the calling thread, not waited for.
    release = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1)
    pool.submit(release.wait)
    monkeypatch.setattr(fast, "_executor", lambda: pool)
    ran_on = []
    try:
        got = fast._side_by_side(lambda: ran_on.append(threading.get_ident()) or "helper",
                                 lambda: "own")
    finally:
        release.set()
        pool.shutdown()
    assert got == ("helper", "own")
    assert ran_on == [threading.get_ident()]


def test_side_by_side_waits_for_its_helper_when_its_own_job_fails() -> None:
    # The helper must not run on outside the BLAS limit, nor be left behind: the error
    # comes out only once the helper has finished.
    started, finished = threading.Event(), threading.Event()

    def helper_job():
        started.set()
        time.sleep(0.05)
        finished.set()

    def own_job():
        assert started.wait(5)
        raise RuntimeError("own job failed")

    with pytest.raises(RuntimeError, match="own job failed"):
        fast._side_by_side(helper_job, own_job)
    assert finished.is_set()
    with pytest.raises(ValueError, match="helper failed"):
        fast._side_by_side(lambda: (_ for _ in ()).throw(ValueError("helper failed")),
                           lambda: None)


@pytest.mark.parametrize(("stride", "work", "workers", "expected"), [
    (2, 100 * 27 * 256 * 4, 2, True),  # the benchmark's (a), float32: 2.6 MiB
    (2, 100 * 27 * 256 * 8, 2, False),  # (a) in float64: its blocks already use threads
    (2, 20 * 27 * 256 * 4, 2, False),  # too small: waking the helper costs more
    (1, 100 * 27 * 256 * 4, 2, False),  # stride 1: dx is GEMM-bound too
    (2, 100 * 27 * 256 * 4, 1, False),  # one core
])
def test_which_backward_passes_compute_dw_beside_dx(monkeypatch, stride: int, work: int,
                                                    workers: int, expected: bool) -> None:
    monkeypatch.setattr(fast, "WORKERS", workers)
    assert fast._overlaps_gradients(stride, work) is expected


@pytest.mark.task("4.2")  # judges the backward pass (it runs 4.1 first)
@pytest.mark.parametrize("shifts", ["products by filter row", "copied to im2col"])
@pytest.mark.parametrize("method", ["correlate", "flat fold"])
@pytest.mark.parametrize(("HH", "WW", "pad"),
                         [(1, 1, 2), (2, 2, 2), (3, 3, 0), (3, 3, 1), (4, 4, 1), (2, 3, 1),
                          (3, 1, 1), (1, 3, 0), (4, 4, 0), (2, 5, 4), (5, 4, 2)])
def test_conv_pads_block_by_block_like_naive(monkeypatch, shifts: str, method: str, HH: int,
                                             WW: int, pad: int) -> None:
    # Each thread pads its blocks into one buffer whose margins must stay zero from block
    # to block: blocks of 2 of 5 examples (the last one short) on two threads. Padding
    # wider than the filter less one makes "correlate" crop dout instead of padding it;
    # pad 0 reads x itself. Filters of more than one row take the row-shift products
    # (stride 1), by filter row or copied into im2col matrices (``shifts``), one row
    # im2col; filters of more than 3 columns fill the row shifts from x's rows widened by
    # the column padding, or from x itself when there is none ((4, 4, 0); "correlate" at
    # (2, 5, 4) crops dout to no column padding).
    monkeypatch.setattr(fast, "_block_size", lambda n, *sizes, **block_bytes: (2, 2))
    monkeypatch.setattr(fast, "_input_gradient_method", lambda stride, C, F: method)
    monkeypatch.setattr(fast, "SHIFTS_TO_IM2COL_BELOW",
                        10**9 if shifts == "copied to im2col" else 0)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 4, 6, 7))
    w, b = rng.standard_normal((3, 4, HH, WW)), rng.random(3)
    param = {"stride": 1, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, param)
    naive_out, naive_cache = conv_forward_naive(x, w, b, param)
    _assert_same(out, naive_out, "out")
    dout = rng.standard_normal(out.shape)
    for name, got, want in zip(("dx", "dw", "db"), conv_backward_fast(dout, cache),
                               conv_backward_naive(dout, naive_cache), strict=True):
        _assert_same(got, want, f"{method}, filter {HH}x{WW}, pad {pad}: {name}")


@pytest.mark.task("4.2")  # judges the backward pass (it runs 4.1 first)
@pytest.mark.parametrize(("C", "WW", "im2col"), [(3, 7, True), (1, 5, True), (15, 2, True),
                                                 (16, 2, False), (64, 3, False)])
def test_stride_1_forward_copies_few_row_shift_rows_into_im2col(C: int, WW: int,
                                                                im2col: bool) -> None:
    """Fewer than SHIFTS_TO_IM2COL_BELOW rows of row shifts (C*WW: 21 at (b), 192 at
    (c)) take the im2col copy in the forward pass; the output and the gradients match
    the naive layer's either way."""
    rng = np.random.default_rng(C * WW)
    x, w, b = (rng.standard_normal((2, C, 5, 6)), rng.standard_normal((3, C, 2, WW)),
               rng.random(3))
    param = {"stride": 1, "pad": 1}
    calls = []
    real = fast._shifts_im2col_work
    with patch.object(fast, "_shifts_im2col_work",
                      lambda *args: calls.append(args[2].shape) or real(*args)):
        out, cache = conv_forward_fast(x, w, b, param)
    assert calls == ([w.shape] if im2col else [])
    naive_out, naive_cache = conv_forward_naive(x, w, b, param)
    _assert_same(out, naive_out, "out")
    dout = rng.standard_normal(out.shape)
    _assert_grads_same(conv_backward_fast(dout, cache), conv_backward_naive(dout, naive_cache),
                       f"C={C}, WW={WW}")


@pytest.mark.task("4.4")  # judges the backward pass (it runs 4.3 first)
@pytest.mark.parametrize("block_bytes", [1, 10**9])
def test_fast_pool_same_result_whatever_the_blocking(monkeypatch, block_bytes: int) -> None:
    # One example per block (the threads' path) and as few blocks as the threads allow,
    # tiling and overlapping windows.
    monkeypatch.setattr(fast, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(fast, "INLINE_BYTES", 0)  # this batch is small: split it anyway
    rng = np.random.default_rng(8)
    x = rng.integers(0, 3, size=(7, 2, 6, 6)).astype(np.float64)  # many tied maxima
    for param in ({"pool_height": 2, "pool_width": 2, "stride": 2},
                  {"pool_height": 3, "pool_width": 3, "stride": 1}):
        _assert_pool_matches_naive(x, param, rng, str(param))


def test_input_grad_false_skips_dx_only() -> None:
    # Given code only (no naive layer): unmarked, it passes on the student stubs too.
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((3, 2, 7, 7)), rng.standard_normal((4, 2, 3, 3)), np.ones(4)
    out, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward_fast(dout, cache, input_grad=False)
    _, dw_all, db_all = conv_backward_fast(dout, cache)
    assert dx is None
    np.testing.assert_array_equal(dw, dw_all)
    np.testing.assert_array_equal(db, db_all)


@pytest.mark.task("4.4")  # judges the backward pass (it runs 4.3 first)
def test_pool_caches_serve_either_backward() -> None:
    # The fast forward's cache also carries where the first maxima lie; it still unpacks
    # as the naive layer's (x, pool_param), and the fast backward takes the naive cache
    # too (ties), on each of its three paths (tiling, stride 1, other strides).
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2, size=(2, 3, 6, 6)).astype(np.float64)
    for param in ({"pool_height": 2, "pool_width": 2, "stride": 2},
                  {"pool_height": 3, "pool_width": 3, "stride": 1},
                  {"pool_height": 4, "pool_width": 4, "stride": 2}):
        out, cache_fast = max_pool_forward_fast(x, param)
        _, cache_naive = max_pool_forward_naive(x, param)
        dout = rng.standard_normal(out.shape)
        want = max_pool_backward_naive(dout, cache_naive)
        for got, actual in ((max_pool_backward_fast(dout, cache_fast), "the fast backward's"),
                            (max_pool_backward_fast(dout, cache_naive),
                             "the fast backward's on the naive cache"),
                            (max_pool_backward_naive(dout, cache_fast),
                             "the naive backward's on the fast cache")):
            _assert_same(got, want, f"pool dx {param}", actual)


@pytest.mark.task("4.4")  # judges the backward pass (it runs 4.3 first)
@pytest.mark.parametrize(("shape", "ph", "pw", "stride"), [
    ((2, 3, 4, 7), 2, 3, 2),  # windows that tile in height, overlap in width
    ((2, 2, 9, 6), 3, 3, 3),  # tiling, not square
    ((2, 3, 5, 7), 2, 3, 1),  # stride 1, a window wider than tall
    ((3, 2, 4, 6), 3, 1, 1),  # stride 1, one column per window
    ((1, 2, 34, 34), 17, 17, 17),  # tiling, 289 offsets: two bytes per first maximum
    ((2, 1, 2, 260), 1, 257, 1),  # stride 1, 257 columns: two bytes per first column
])
def test_fast_pool_edge_geometries_match_naive(shape, ph: int, pw: int, stride: int) -> None:
    # Geometries that pool_geometries() does not draw (larger, or mixed), each through
    # the fast path its geometry picks, with ties (0/1 values).
    rng = np.random.default_rng(9)
    x = rng.integers(0, 2, size=shape).astype(np.float64)
    param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    _assert_pool_matches_naive(x, param, rng, f"{shape} {param}")


@pytest.mark.task("4.4")  # judges the backward pass (it runs 4.3 first)
def test_fast_pool_takes_non_contiguous_input() -> None:
    # The stride-1 path works on the flattened input: a transposed view must give the
    # same result as its contiguous copy (and as the naive layer).
    rng = np.random.default_rng(10)
    x = rng.integers(0, 3, size=(2, 6, 8, 3)).astype(np.float64).transpose(0, 3, 1, 2)
    for param in ({"pool_height": 3, "pool_width": 2, "stride": 1},
                  {"pool_height": 2, "pool_width": 2, "stride": 2}):
        _assert_pool_matches_naive(x, param, rng, str(param))


@pytest.mark.task("4.2")  # judges the backward pass (it runs 4.1 first)
def test_conv_cache_survives_copy_and_pickle(monkeypatch) -> None:
    # What the fast cache carries (the kept im2col) comes through a deep copy and a
    # pickle, and the fast backward takes either; past KEEP_IM2COL_BYTES nothing is kept.
    inputs, cache, dout, want = _strided_layer(14, (2, 3, 7, 7), (2, 3, 3, 3))
    for copied in (copy.deepcopy(cache), pickle.loads(pickle.dumps(cache))):
        np.testing.assert_array_equal(copied.im2col, cache.im2col)
        _assert_grads_same(conv_backward_fast(dout, copied), want, "copied cache")
    monkeypatch.setattr(fast, "KEEP_IM2COL_BYTES", cache.im2col.nbytes - 1)
    assert conv_forward_fast(**inputs)[1].im2col is None


@pytest.mark.task("4.4")  # judges the backward pass (it runs 4.3 first)
def test_pool_cache_survives_copy_and_pickle() -> None:
    rng = np.random.default_rng(15)
    x = rng.integers(0, 2, size=(2, 2, 4, 4)).astype(np.float64)
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = max_pool_forward_fast(x, param)
    dout = rng.standard_normal(out.shape)
    want = max_pool_backward_naive(dout, max_pool_forward_naive(x, param)[1])
    for copied in (copy.deepcopy(cache), pickle.loads(pickle.dumps(cache))):
        np.testing.assert_array_equal(copied.firsts[0], cache.firsts[0])
        _assert_same(max_pool_backward_fast(dout, copied), want, "copied pool cache")


def test_float32_stays_float32() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    b = np.zeros(2, dtype=np.float32)
    out, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in conv_backward_fast(np.ones_like(out), cache))
    pooled, pcache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert pooled.dtype == np.float32
    assert max_pool_backward_fast(np.ones_like(pooled), pcache).dtype == np.float32
    # And float32 results agree with float64 ones to float32 precision.
    out64, _ = conv_forward_fast(x.astype(np.float64), w.astype(np.float64),
                                 b.astype(np.float64), {"stride": 1, "pad": 1})
    np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-5)


def test_fast_layers_reject_bad_geometry_like_naive() -> None:
    with pytest.raises(ValueError, match="conv_forward_fast: output height"):
        conv_forward_fast(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 2, 2)), np.zeros(1),
                          {"stride": 2, "pad": 0})
    with pytest.raises(ValueError, match="max_pool_forward_fast: pool width 3 is larger"):
        max_pool_forward_fast(np.zeros((1, 1, 4, 2)),
                              {"pool_height": 2, "pool_width": 3, "stride": 1})


def test_fast_forward_does_not_modify_inputs() -> None:
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), np.ones(3)
    before = [a.copy() for a in (x, w, b)]
    out, cache = conv_forward_fast(x, w, b, {"stride": 2, "pad": 1})
    conv_backward_fast(np.ones_like(out), cache)
    for a, kept in zip((x, w, b), before, strict=True):
        np.testing.assert_array_equal(a, kept)
