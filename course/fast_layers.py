"""Fast convolution and max pooling in pure numpy (given code, not a task).

Same signatures, results and caches' meaning as the naive layers of ``course.layers``
(to 1e-10 in float64, with the same tie rule in pooling), for every stride, padding and
pool geometry, overlapping pools included. float32 inputs give float32 results. There is
no compiled extension: the speed comes from stride tricks, reshapes and BLAS.

How they work, and why. The choices follow what measured fastest in pure-numpy prototypes
on a 2-core VM; ``make bench`` prints the numbers for this code. One alternative
was measured here and dropped: an im2col matrix laid out (C*HH*WW, n*H_out*W_out), so that
forward, dw and dx are one large GEMM per chunk instead of n per-example ones, was no
faster at sizes (a)-(c) of the benchmark (within noise; slower at (b)).

* **Convolution forward** is a batched matrix product. ``as_strided`` gives a view of the
  padded input shaped ``(n, C, HH, WW, H_out, W_out)`` without copying; reshaping it to
  ``(n, C*HH*WW, H_out*W_out)`` copies the windows once (the "im2col" matrix of a chunk),
  and ``w_flat @ cols`` then writes ``(n, F, H_out*W_out)``, already in NCHW order, so no
  transpose of the output is needed.
* **dw** is one GEMM per chunk on the same im2col matrix, recomputed in the backward pass
  instead of cached: caching the whole batch's matrix would cost C*HH*WW times the input's
  memory (60 MB at 100x3x32x32 with 7x7 filters), more than the rest of the layer.
* **dx** is ``w_flat.T @ dout`` (the gradient of each im2col column) folded back by one
  strided add per filter offset (HH*WW adds of whole slabs), which is much faster than
  ``np.add.at`` or a Python loop over output pixels.
* **Chunks and threads.** The batch is split into chunks that run on a small pool of
  Python threads (numpy releases the GIL in copies and BLAS calls), with BLAS limited to
  one thread meanwhile: many small multi-threaded BLAS calls were erratic, and large
  per-call temporaries are costly (page faults), so small chunks that stay in cache win.
  No buffer is larger than one chunk's im2col matrix, apart from the output, the padded
  input and the gradients themselves.
* **Max pooling** takes the maximum over the pool's offsets: one ``np.maximum`` of two
  strided views per offset, which handles tiling, gapped and overlapping windows alike.
  The backward pass walks the offsets in row-major order and gives each output's gradient
  to the first offset that holds the maximum (the naive layer's tie rule), with a mask of
  the outputs already served; for overlapping windows the gradients add up.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from course.layers import _check_4d, _expect_shape, conv_geometry, pool_geometry

__all__ = [
    "conv_backward_fast",
    "conv_backward_im2col",
    "conv_backward_strides",
    "conv_forward_fast",
    "conv_forward_im2col",
    "conv_forward_strides",
    "max_pool_backward_fast",
    "max_pool_backward_im2col",
    "max_pool_backward_reshape",
    "max_pool_forward_fast",
    "max_pool_forward_im2col",
    "max_pool_forward_reshape",
]

# Bytes of one chunk's im2col matrix. Small enough to stay in the L2/L3 caches of a small
# VM and to keep page faults of fresh temporaries low (large per-call temporaries were
# costly in the prototypes); large enough that a GEMM per chunk amortises the Python
# overhead. Not tuned further here: timings on the shared development VM were too noisy.
CHUNK_BYTES = 2 * 2**20

# Threads that run chunks at once: the cores this process may use (at most 4; beyond that
# the memory bandwidth, not the cores, bounds these layers).
WORKERS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else (os.cpu_count() or 1)))

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_blas: Any = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="fast_layers")
        return _pool


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread while our own threads run chunks (one BLAS thread per
    chunk thread), then restore what the user had. Without threadpoolctl: no limit."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController()
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            _blas = False
    if _blas is False:
        yield
        return
    with _blas.limit(limits=1, user_api="blas"):
        yield


# Below this many bytes of work in a whole call, one chunk on the calling thread: handing
# work to the pool costs tens of microseconds, more than tiny layers (gradient checks,
# 8x8 digits) take to compute.
INLINE_BYTES = 256 * 2**10


def _chunks(n: int, bytes_per_example: int) -> list[tuple[int, int]]:
    """Split range(n) into chunks of about CHUNK_BYTES of im2col each, at least WORKERS
    chunks when there are that many examples (one chunk for less than INLINE_BYTES)."""
    if n * bytes_per_example <= INLINE_BYTES:
        return [(0, n)]
    size = max(1, CHUNK_BYTES // max(1, bytes_per_example))
    size = min(size, max(1, -(-n // WORKERS)))
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def _run_chunks(work: Callable[[int, int], Any], chunks: list[tuple[int, int]]) -> list[Any]:
    """Run ``work(start, stop)`` for every chunk, on the thread pool when it pays."""
    if WORKERS == 1 or len(chunks) == 1:
        return [work(a, b) for a, b in chunks]
    with _single_threaded_blas():
        return list(_executor().map(lambda c: work(*c), chunks))


# ---------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------


def _windows(x_pad: np.ndarray, HH: int, WW: int, stride: int, H_out: int,
             W_out: int) -> np.ndarray:
    """View of x_pad shaped (N, C, HH, WW, H_out, W_out): entry [n, c, p, q, i, j] is
    x_pad[n, c, i*stride + p, j*stride + q]. No copy; read only."""
    sN, sC, sH, sW = x_pad.strides
    N, C = x_pad.shape[:2]
    return as_strided(x_pad, (N, C, HH, WW, H_out, W_out),
                      (sN, sC, sH, sW, sH * stride, sW * stride), writeable=False)


def _pad(x: np.ndarray, pad: int) -> np.ndarray:
    if pad == 0:
        return x
    N, C, H, W = x.shape
    # np.zeros + slice assignment is faster than np.pad (no generic edge handling).
    x_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=x.dtype)
    x_pad[:, :, pad:pad + H, pad:pad + W] = x
    return x_pad


def conv_forward_fast(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Convolution, forward pass; same inputs, output and errors as ``conv_forward_naive``.

    Inputs:
    - x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); conv_param: {"stride", "pad"}.

    Returns a tuple of:
    - out: (N, F, H_out, W_out), dtype ``np.result_type(x, w, b)``.
    - cache: ``(x, w, b, conv_param)`` (the same as the naive layer's, so either backward
      pass accepts it).
    """
    x, w, b = np.asarray(x), np.asarray(w), np.asarray(b)
    _check_4d("conv_forward_fast", "x", x, "(N, C, H, W)")
    _check_4d("conv_forward_fast", "w", w, "(F, C, HH, WW)")
    stride, pad, H_out, W_out = conv_geometry("conv_forward_fast", x.shape, w.shape, b.shape,
                                              conv_param)
    N, C = x.shape[:2]
    F, _, HH, WW = w.shape
    dtype = np.result_type(x, w, b)
    x_pad = _pad(x.astype(dtype, copy=False), pad)
    views = _windows(x_pad, HH, WW, stride, H_out, W_out)
    w_flat = w.reshape(F, C * HH * WW).astype(dtype, copy=False)  # (F, K), K = C*HH*WW
    bias = b.astype(dtype, copy=False).reshape(1, F, 1)
    P = H_out * W_out
    out = np.empty((N, F, P), dtype=dtype)

    def work(start: int, stop: int) -> None:
        cols = views[start:stop].reshape(stop - start, C * HH * WW, P)  # copy: (n, K, P)
        np.matmul(w_flat, cols, out=out[start:stop])  # (F, K) @ (n, K, P) -> (n, F, P)
        out[start:stop] += bias

    _run_chunks(work, _chunks(N, C * HH * WW * P * dtype.itemsize))
    return out.reshape(N, F, H_out, W_out), (x, w, b, conv_param)


def conv_backward_fast(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convolution, backward pass; same results as ``conv_backward_naive``.

    Inputs:
    - dout: (N, F, H_out, W_out); cache: from ``conv_forward_fast`` (or the naive forward).

    Returns a tuple of:
    - dx: (N, C, H, W); dw: (F, C, HH, WW); db: (F,).
    """
    x, w, b, conv_param = cache
    dout = np.asarray(dout)
    stride, pad, H_out, W_out = conv_geometry("conv_backward_fast", x.shape, w.shape, b.shape,
                                              conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _expect_shape("conv_backward_fast", "dout", dout, (N, F, H_out, W_out),
                  "(N, F, H_out, W_out), the shape of out")
    dtype = np.result_type(x, w, dout)
    K, P = C * HH * WW, H_out * W_out
    x_pad = _pad(x.astype(dtype, copy=False), pad)
    views = _windows(x_pad, HH, WW, stride, H_out, W_out)
    w_flat = w.reshape(F, K).astype(dtype, copy=False)
    d = dout.astype(dtype, copy=False).reshape(N, F, P)
    dx_pad = np.zeros(x_pad.shape, dtype=dtype)
    rows, cols_ = stride * (H_out - 1) + 1, stride * (W_out - 1) + 1

    def work(start: int, stop: int) -> np.ndarray:
        n = stop - start
        cols = views[start:stop].reshape(n, K, P)  # copy: (n, K, P)
        d_chunk = d[start:stop]  # (n, F, P)
        # dw = sum_n d_n @ cols_n.T: one GEMM over the chunk, (F, n*P) @ (n*P, K).
        dw_part = np.matmul(d_chunk, cols.transpose(0, 2, 1)).sum(axis=0)
        # Gradient of each im2col entry, written into the buffer cols no longer needs
        # (unless the reshape needed no copy, e.g. 1x1 filters: then cols is x itself).
        buffer = cols if cols.flags.writeable else None
        dcols = np.matmul(w_flat.T, d_chunk, out=buffer)  # (K, F) @ (n, F, P) -> (n, K, P)
        dcols = dcols.reshape(n, C, HH, WW, H_out, W_out)
        target = dx_pad[start:stop]
        # The fold is memory-bound and the largest stage at benchmark size (b) (about
        # 12 ms of the backward's 34 ms of work, 7x7 filters); an offset-major dcols
        # layout (contiguous slabs per offset) and smaller chunks measured no faster.
        for p in range(HH):
            for q in range(WW):
                target[:, :, p:p + rows:stride, q:q + cols_:stride] += dcols[:, :, p, q]
        return dw_part

    parts = _run_chunks(work, _chunks(N, K * P * dtype.itemsize))
    dw = np.sum(parts, axis=0).reshape(w.shape)
    db = d.sum(axis=(0, 2))
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W] if pad else dx_pad
    return np.ascontiguousarray(dx), dw, db


# CS231n's names for its other fast conv implementations: here they are all the one above.
conv_forward_strides = conv_forward_im2col = conv_forward_fast
conv_backward_strides = conv_backward_im2col = conv_backward_fast


# ---------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------


def _offset_view(x: np.ndarray, p: int, q: int, stride: int, H_out: int,
                 W_out: int) -> np.ndarray:
    """x[:, :, i*stride + p, j*stride + q] for all output positions (i, j): a view."""
    return x[:, :, p:p + stride * (H_out - 1) + 1:stride, q:q + stride * (W_out - 1) + 1:stride]


def max_pool_forward_fast(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling, forward pass; same inputs, output and errors as ``max_pool_forward_naive``.

    Inputs:
    - x: (N, C, H, W); pool_param: {"pool_height", "pool_width", "stride"}.

    Returns a tuple of:
    - out: (N, C, H_out, W_out), x's dtype.
    - cache: ``(x, pool_param)``, the naive layer's cache (either backward accepts it).
    """
    x = np.asarray(x)
    _check_4d("max_pool_forward_fast", "x", x, "(N, C, H, W)")
    ph, pw, stride, H_out, W_out = pool_geometry("max_pool_forward_fast", x.shape, pool_param)
    N, C = x.shape[:2]
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)

    def work(start: int, stop: int) -> None:
        xs, o = x[start:stop], out[start:stop]
        o[...] = _offset_view(xs, 0, 0, stride, H_out, W_out)
        for p in range(ph):
            for q in range(pw):
                if p or q:
                    np.maximum(o, _offset_view(xs, p, q, stride, H_out, W_out), out=o)

    _run_chunks(work, _chunks(N, C * x.shape[2] * x.shape[3] * x.itemsize))
    return out, (x, pool_param)


def max_pool_backward_fast(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Max pooling, backward pass; same result as ``max_pool_backward_naive`` (ties: the
    first maximum of a window in row-major order gets the gradient).

    Inputs:
    - dout: (N, C, H_out, W_out); cache: from ``max_pool_forward_fast`` (or the naive one).

    Returns:
    - dx: (N, C, H, W).
    """
    x, pool_param = cache
    dout = np.asarray(dout)
    ph, pw, stride, H_out, W_out = pool_geometry("max_pool_backward_fast", x.shape, pool_param)
    N, C, H, W = x.shape
    _expect_shape("max_pool_backward_fast", "dout", dout, (N, C, H_out, W_out),
                  "(N, C, H_out, W_out), the shape of out")
    dtype = np.result_type(x, dout)
    # Windows that neither overlap nor leave gaps touch every pixel exactly once, so dx
    # can be written slab by slab without zeroing it first.
    tiling = stride == ph == pw
    dx = np.empty(x.shape, dtype=dtype) if tiling else np.zeros(x.shape, dtype=dtype)

    def work(start: int, stop: int) -> None:
        xs, ds, dxs = x[start:stop], dout[start:stop], dx[start:stop]
        # The maximum again (cheaper to recompute than to keep in the cache).
        m = _offset_view(xs, 0, 0, stride, H_out, W_out).copy()
        for p in range(ph):
            for q in range(pw):
                if p or q:
                    np.maximum(m, _offset_view(xs, p, q, stride, H_out, W_out), out=m)
        free = np.ones(m.shape, dtype=bool)  # outputs whose gradient is not yet placed
        hit = np.empty(m.shape, dtype=bool)
        for p in range(ph):
            for q in range(pw):
                np.equal(_offset_view(xs, p, q, stride, H_out, W_out), m, out=hit)
                hit &= free
                free &= ~hit
                target = _offset_view(dxs, p, q, stride, H_out, W_out)
                if tiling:
                    np.multiply(ds, hit, out=target)
                else:
                    target += ds * hit

    _run_chunks(work, _chunks(N, C * H * W * x.itemsize))
    return dx


# CS231n's names for its pooling variants (reshape for tiling windows, im2col otherwise):
# the layers above handle every geometry, so all names are the same pair.
max_pool_forward_reshape = max_pool_forward_im2col = max_pool_forward_fast
max_pool_backward_reshape = max_pool_backward_im2col = max_pool_backward_fast
