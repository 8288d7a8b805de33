"""Benchmark of the conv and pool layers and of the network students train: naive, fast
(pure numpy) and PyTorch's CPU ops.

``make bench`` (or ``python -m kit bench``) prints three tables:

1. Layers: for three conv sizes and three max-pool geometries (each pool on random normal
   input and on post-ReLU input, the one a network feeds it: many zeros, so many tied
   maxima), the forward, backward and forward+backward times of each implementation in
   float32 and float64, the GFLOP/s reached, the ratios fast/PyTorch and naive/fast, and
   the peak memory of one fast forward+backward.
2. Training step: ``ThreeLayerConvNet.loss`` with gradients (3x32x32 images, 32 filters of
   7x7, hidden 100, 10 classes, float32) at batch 50 and 100, against the same network in
   PyTorch. ``model.loss`` skips the images' gradient (``conv_relu_pool_backward(...,
   input_grad=False)``), as PyTorch does for inputs that need no gradient; a second pair
   of rows computes it in both (the kit's sandwich layer made to return dx). Both run at
   reg 0, PyTorch's model without weight decay; the solution's loss skips the L2 penalty
   at reg 0.
3. Targets: each ratio against its target, met or not (the ratio of the medians), and
   ``close`` when the ratios of single repetitions, each pair timed moments apart, fall
   on both sides of the target in the middle half of the repetitions: such a verdict can
   go either way from one run to the next. ``--smoke`` (tiny sizes, to check that the
   benchmark runs) judges none: its ratios time call overheads, not the layers.

``--runs N`` runs all of it N times, one after the other, then lists each target's figure
in every run and in how many runs it was met. The host's state moves the ratios between
runs more than within one: on the development VM (b) float32 read 0.99 in one run and
1.15, with its whole middle half above 1.0, in another the same morning.

How it measures, so that ratios mean something on a busy machine:

* Every implementation of a case runs in the same process, interleaved: one repetition is
  fwd, bwd and fwd+bwd of every implementation in turn, after a warm-up, and the table
  shows the median over the repetitions. Load from other processes then hits all of them
  alike, and the ratio of medians stays stable even when the absolute times do not.
* In each repetition an implementation's timed operations follow one untimed run of its
  own fwd+bwd. PyTorch's OpenMP threads keep spinning for a while after each call; timed
  right after PyTorch, the numpy layers (whose own threads then share the cores with the
  spinning ones) ran up to 4x slower. In a training loop each library follows only
  itself, and so it does here. The other way to stop the spinning,
  ``OMP_WAIT_POLICY=passive`` for the whole process, is not used: it makes PyTorch's
  threads sleep between calls and wake for each one, and measured interleaved (load 3 on
  2 cores) PyTorch's fwd+bwd then took 2.2x to 2.6x as long at conv (a), 1.8x at (c) and
  2.7x at the 3-channel pool, while the numpy layers gained only what the untimed run
  already gives them (a pool after PyTorch: 1.41 ms without it, 1.01 ms after it, 0.95 ms
  with no PyTorch call before). The environment lines show OMP_WAIT_POLICY.
* Both libraries run under the process settings of ``course/runtime.py`` (applied when
  ``course`` is imported; ``make`` also exports OPENBLAS_THREAD_TIMEOUT), which the
  environment lines show. Without them a training step of either library is slower:
  OpenBLAS's idle threads (woken by the kit's affine layers) spin for about 0.1 s after
  each product, into the next library's turn as well, and each step's fresh arrays cost
  page faults. Measured at batch 100 (load 0.5): the kit's step 53 ms and PyTorch's
  34 ms without them, 29 ms and 21 ms with them. Compare runs made under the same ones.
* The naive layers run once per operation, in float32 only, and are skipped when an
  estimate from a slice of the batch says that would take more than a minute.
* Peak memory is what ``tracemalloc`` sees (numpy reports its buffers to it) during one
  fast forward+backward, including the output and the gradients; inputs and ``dout``
  exist beforehand and are not counted.

When the load average is at least the number of cores, a caution follows the targets:
on a busy machine PyTorch's OpenMP threads slow down far more than the numpy layers (up
to 90x, against 1.5x, at load 3 to 5 on 2 cores), so the ratios flatter the kit; judge
the targets on a quiet machine, or compare per core with ``--threads 1``.

The environment lines say what else was running (load average before and after), how fast
the host ran (``host speed``: one fixed GEMM's GFLOP/s on one thread, before and after; a
virtual machine's host can slow it with nothing in the load average), the BLAS library and
kernel, and the OpenBLAS overrides (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE) in force: compare
runs made under the same ones.

PyTorch is never a dependency of the kit. To include it, install the CPU wheel into the
kit's venv: ``.venv/bin/pip install torch`` (e.g. ``torch==2.13.0``; the CPU wheel is
enough). Without it the PyTorch columns say ``-``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import course.classifiers.cnn as cnn
from course import fast_layers, runtime
from course.classifiers.cnn import ThreeLayerConvNet
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
from kit import cli

NAIVE_LIMIT_S = 60.0  # skip the naive layers when one fwd + bwd would take longer
# The estimate comes from a slice of the batch on a machine that may be busy; this margin
# keeps a naive run that was estimated just under the limit from taking minutes.
NAIVE_MARGIN = 1.5


@dataclass(frozen=True)
class ConvCase:
    name: str
    x: tuple[int, int, int, int]
    w: tuple[int, int, int, int]
    stride: int
    pad: int
    target: float | None  # fast/PyTorch, fwd+bwd, float32; None: not judged (smoke)


@dataclass(frozen=True)
class PoolCase:
    name: str
    x: tuple[int, int, int, int]
    size: int
    stride: int
    target: float | None
    relu: bool = False  # input max(z, 0) for z random normal: what conv_relu feeds a pool


CONV_CASES = (
    ConvCase("(a)", (100, 3, 31, 31), (25, 3, 3, 3), 2, 1, 1.0),
    ConvCase("(b)", (100, 3, 32, 32), (32, 3, 7, 7), 1, 3, 1.0),
    ConvCase("(c)", (50, 64, 16, 16), (64, 64, 3, 3), 1, 1, 1.8),
)
POOL_CASES = tuple(
    PoolCase(f"{name}{' relu' if relu else ''}", shape, size, stride, 1.0, relu)
    for name, shape, size, stride in (("pool 2x2/2 3ch", (100, 3, 32, 32), 2, 2),
                                      ("pool 2x2/2 32ch", (100, 32, 32, 32), 2, 2),
                                      ("pool 3x3/1 32ch", (100, 32, 32, 32), 3, 1))
    for relu in (False, True))
# The smoke run checks that the benchmark runs: its sizes are so small that the ratios
# measure call overheads, not the layers, so it judges no target (``SMOKE_NOT_JUDGED``).
SMOKE_CONV = (ConvCase("(smoke)", (4, 2, 9, 9), (3, 2, 3, 3), 2, 1, None),)
SMOKE_POOL = (PoolCase("pool smoke", (4, 2, 8, 8), 2, 2, None),
              PoolCase("pool smoke relu", (4, 2, 8, 8), 2, 2, None, True))
SMOKE_NOT_JUDGED = ("Targets: not judged in a smoke run (tiny sizes, 0.05 s per case: the "
                    "ratios measure\n  call overheads, not the layers). Run without --smoke "
                    "to judge them.")
MEMORY_TARGET = ("(b)", 50.0)  # MB of one fast fwd+bwd in float32
FLOAT64_TARGET = 1.0  # fast/PyTorch of every float64 row: no slower than PyTorch's float64
MODEL_BATCHES = (50, 100)
MODEL_TARGET = 1.2  # ThreeLayerConvNet loss+grads, kit/PyTorch (PyTorch without image grad)
OPS = ("fwd", "bwd", "fwd+bwd")


@dataclass
class Impl:
    """One implementation of a case: a callable per operation (each runs it once)."""

    name: str
    ops: dict[str, Callable[[], Any]]
    times: dict[str, list[float]] = field(default_factory=dict)

    def median(self, op: str) -> float | None:
        values = self.times.get(op)
        return statistics.median(values) if values else None


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _interleave(impls: list[Impl], budget_s: float, min_reps: int, max_reps: int,
                ops: tuple[str, ...] = OPS) -> int:
    """Warm up, then time every op of every implementation in turn, repeatedly.

    In each repetition an implementation's timed ops follow one untimed run of its own
    last op (fwd+bwd): what the implementation before it left running must not land on
    its clock. PyTorch's OpenMP threads spin for a while after each call, and the numpy
    layer timed right after PyTorch ran up to 4x slower than after itself; in a training
    loop each library only ever follows itself.
    """
    for impl in impls:
        for op in ops:
            impl.ops[op]()
    round_s = sum(_timed(impl.ops[op]) for impl in impls for op in (ops[-1], *ops))
    reps = int(min(max_reps, max(min_reps, budget_s / max(round_s, 1e-9))))
    for impl in impls:
        impl.times = {op: [] for op in ops}
    for _ in range(reps):
        for impl in impls:
            impl.ops[ops[-1]]()  # settle: only this implementation's threads are about
            for op in ops:
                impl.times[op].append(_timed(impl.ops[op]))
    return reps


def _pair_ops(forward: Callable[[], tuple[Any, Any]],
              backward: Callable[[Any], Any]) -> dict[str, Callable[[], Any]]:
    """fwd, bwd (on the cache of one earlier forward) and fwd+bwd of a numpy layer."""
    state: dict[str, Any] = {}

    def fwd() -> None:
        state["cache"] = forward()[1]

    def bwd() -> None:
        backward(state["cache"])

    def both() -> None:
        backward(forward()[1])

    return {"fwd": fwd, "bwd": bwd, "fwd+bwd": both}


def _torch_ops(torch: Any, make_out: Callable[[], Any], inputs: tuple[Any, ...],
               dout: Any) -> dict[str, Callable[[], Any]]:
    """The same three operations with autograd: bwd reuses one retained graph."""
    state: dict[str, Any] = {}

    def fwd() -> None:
        state["out"] = make_out()

    def bwd() -> None:
        torch.autograd.grad(state["out"], inputs, dout, retain_graph=True)

    def both() -> None:
        torch.autograd.grad(make_out(), inputs, dout)

    return {"fwd": fwd, "bwd": bwd, "fwd+bwd": both}


def _naive_impl(forward: Callable[[], tuple[Any, Any]], backward: Callable[[Any], Any],
                estimate: float) -> Impl | str:
    """Time the naive layer once per op, or say why it was skipped."""
    if estimate * NAIVE_MARGIN > NAIVE_LIMIT_S:
        return f"naive skipped: one fwd+bwd would take about {estimate:.0f} s"
    impl = Impl("naive", {})
    cache: list[Any] = []
    t_fwd = _timed(lambda: cache.append(forward()[1]))
    t_bwd = _timed(lambda: backward(cache[0]))
    impl.times = {"fwd": [t_fwd], "bwd": [t_bwd], "fwd+bwd": [t_fwd + t_bwd]}
    return impl


def _peak_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


@dataclass
class Row:
    case: str
    dtype: str
    impls: list[Impl]
    flops: float  # of one forward; backward counts twice that
    peak_mb: float | None
    note: str = ""


def bench_conv(case: ConvCase, dtype: Any, budget: float, naive: bool, torch: Any) -> Row:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case.x).astype(dtype)
    w = (0.1 * rng.standard_normal(case.w)).astype(dtype)
    b = rng.standard_normal(case.w[0]).astype(dtype)
    param = {"stride": case.stride, "pad": case.pad}
    out, _ = conv_forward_fast(x, w, b, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    impls = [Impl("fast", _pair_ops(lambda: conv_forward_fast(x, w, b, param),
                                    lambda c: conv_backward_fast(dout, c)))]
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        td = torch.from_numpy(dout)
        impls.append(Impl("torch", _torch_ops(
            torch, lambda: torch.nn.functional.conv2d(tx, tw, tb, case.stride, case.pad),
            (tx, tw, tb), td)))
    _interleave(impls, budget, 5, 60)
    note = ""
    if naive and dtype == np.float32:
        n = max(1, case.x[0] // 50)
        xs, ds = x[:n], dout[:n]
        t = _timed(lambda: conv_backward_naive(ds, conv_forward_naive(xs, w, b, param)[1]))
        found = _naive_impl(lambda: conv_forward_naive(x, w, b, param),
                            lambda c: conv_backward_naive(dout, c), t * case.x[0] / n)
        if isinstance(found, str):
            note = found
        else:
            impls.append(found)
    peak = _peak_mb(lambda: conv_backward_fast(dout, conv_forward_fast(x, w, b, param)[1]))
    N, F, Ho, Wo = out.shape
    flops = 2.0 * N * F * Ho * Wo * case.w[1] * case.w[2] * case.w[3]
    return Row(case.name, np.dtype(dtype).name, impls, flops, peak, note)


def bench_pool(case: PoolCase, dtype: Any, budget: float, naive: bool, torch: Any) -> Row:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(case.x).astype(dtype)
    if case.relu:
        x = np.maximum(x, 0)
    param = {"pool_height": case.size, "pool_width": case.size, "stride": case.stride}
    out, _ = max_pool_forward_fast(x, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    impls = [Impl("fast", _pair_ops(lambda: max_pool_forward_fast(x, param),
                                    lambda c: max_pool_backward_fast(dout, c)))]
    if torch is not None:
        tx, td = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dout)
        impls.append(Impl("torch", _torch_ops(
            torch, lambda: torch.nn.functional.max_pool2d(tx, case.size, case.stride),
            (tx,), td)))
    _interleave(impls, budget, 5, 100)
    note = ""
    if naive and dtype == np.float32:
        n = max(1, case.x[0] // 20)
        xs, ds = x[:n], dout[:n]
        t = _timed(lambda: max_pool_backward_naive(ds, max_pool_forward_naive(xs, param)[1]))
        found = _naive_impl(lambda: max_pool_forward_naive(x, param),
                            lambda c: max_pool_backward_naive(dout, c), t * case.x[0] / n)
        if isinstance(found, str):
            note = found
        else:
            impls.append(found)
    peak = _peak_mb(lambda: max_pool_backward_fast(dout, max_pool_forward_fast(x, param)[1]))
    return Row(case.name, np.dtype(dtype).name, impls, 0.0, peak, note)


@dataclass
class StepRow:
    batch: int
    impls: list[Impl]  # "kit", "kit+dx", then (with PyTorch) "torch" and "torch+dx"
    shape: tuple[int, int, int]


def bench_net_step(N: int, budget: float, torch: Any, smoke: bool) -> StepRow:
    """``ThreeLayerConvNet.loss`` with gradients on a batch of N images, float32, against
    the same architecture in PyTorch as a PyTorch user trains it: neither computes the
    images' gradient (the first convolution's dx). Then both with that gradient too: the
    kit's loss with its first layer's backward made to return dx, and PyTorch with images
    that require a gradient."""
    shape = (3, 8, 8) if smoke else (3, 32, 32)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((N, *shape)).astype(np.float32)
    y = rng.integers(0, 10, N)
    model = ThreeLayerConvNet(input_dim=shape, weight_scale=1e-2, seed=0)

    def kit_step() -> None:
        model.loss(X, y)

    def kit_step_with_image_dx() -> None:
        # The same loss, its first layer's backward computing dx although the loss asks
        # for none: the work of PyTorch with images that require a gradient.
        students_backward = cnn.conv_relu_pool_backward

        def with_dx(dout: Any, cache: Any, *, input_grad: bool = True) -> Any:
            return students_backward(dout, cache, input_grad=True)

        cnn.conv_relu_pool_backward = with_dx
        try:
            model.loss(X, y)
        finally:
            cnn.conv_relu_pool_backward = students_backward

    impls = [Impl("kit", {op: kit_step for op in OPS}),
             Impl("kit+dx", {op: kit_step_with_image_dx for op in OPS})]
    if torch is not None:
        nn = torch.nn
        C, H, W = shape
        net = nn.Sequential(nn.Conv2d(C, 32, 7, padding=3), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(32 * (H // 2) * (W // 2), 100), nn.ReLU(),
                            nn.Linear(100, 10))
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)
        tX_grad = tX.clone().requires_grad_()

        def torch_step(images: Any) -> Callable[[], None]:
            def step() -> None:
                net.zero_grad()
                torch.nn.functional.cross_entropy(net(images), ty).backward()
            return step

        impls.append(Impl("torch", {op: torch_step(tX) for op in OPS}))
        impls.append(Impl("torch+dx", {op: torch_step(tX_grad) for op in OPS}))
    # Each op of Impl runs the whole step; timing only one of them is enough.
    for impl in impls:
        impl.ops = {"fwd+bwd": impl.ops["fwd+bwd"]}
    _interleave(impls, budget, 5, 60, ops=("fwd+bwd",))
    return StepRow(N, impls, shape)


def _ms(value: float | None) -> str:
    return f"{'-':>9}" if value is None else f"{1e3 * value:9.2f}"


def _environment(torch: Any) -> list[str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [f"python {platform.python_version()}, numpy {np.__version__}, cores available "
             f"{cores}, fast_layers threads {fast_layers.WORKERS}, block "
             f"{fast_layers.BLOCK_BYTES // 2**10} KiB ("
             f"{fast_layers.FEW_CHANNELS_BLOCK_BYTES // 2**10} KiB for few input channels), "
             f"one thread under "
             f"{fast_layers.INLINE_BYTES // 2**10} KiB"]
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            lines.append(f"BLAS ({info.get('user_api')}): {info.get('internal_api')} "
                         f"{info.get('version')}, {info.get('num_threads')} threads, "
                         f"architecture {info.get('architecture')}")
    except ImportError:
        lines.append("threadpoolctl not installed: BLAS unknown")
    overrides = ", ".join(f"{name}={os.environ.get(name, '(unset)')}"
                          for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))
    lines.append(f"OpenBLAS overrides: {overrides}; OMP_WAIT_POLICY="
                 f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')} (PyTorch's OpenMP threads)")
    tuning = "; ".join(f"{name}: {what}" for name, what in runtime.TUNING.items())
    lines.append(f"process settings (course/runtime.py, both libraries share them): {tuning}")
    lines.append(_load_line("before"))
    lines.append(_gauge_line("before"))
    if torch is None:
        lines.append("PyTorch: not used (absent or --no-torch; .venv/bin/pip install torch "
                     "to compare)")
    else:
        lines.append(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    return lines


GAUGE_SIZE = 256  # the host-speed gauge's product: (256, 256) @ (256, 256), float32


def host_gflops(seconds: float = 0.2) -> float:
    """GFLOP/s of one fixed float32 GEMM on one BLAS thread, the median over about
    ``seconds``: how fast the host is running right now. A virtual machine's host can
    slow it down with nothing in its load average, and every time in the tables with it;
    the ratios move less, but not always alike. On the development VM, two runs 17
    minutes apart, load 0.5 before each: host speed 134 to 138 GFLOP/s, conv (b) 1.21x
    PyTorch's time, 17 of 21 targets met; then 155 to 164 GFLOP/s, (b) 1.01x, 18 met."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((GAUGE_SIZE, GAUGE_SIZE)).astype(np.float32)
            for _ in range(2))
    out = np.empty_like(a)
    times: list[float] = []
    with fast_layers._single_threaded_blas():
        np.matmul(a, b, out=out)  # warm-up
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(times) < 5:
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - start)
    return 2 * GAUGE_SIZE**3 / max(statistics.median(times), 1e-9) / 1e9


def _gauge_line(when: str) -> str:
    return (f"host speed {when}: {host_gflops():.0f} GFLOP/s ({GAUGE_SIZE}^3 float32 GEMM, "
            "one thread; compare runs made at similar figures)")


def _load_line(when: str) -> str:
    """What else the machine was doing: the 1-minute load average (this run counts as
    about 1 of it) and the cores."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:  # pragma: no cover - not on every platform
        return f"load average {when}: unknown"
    return (f"load average {when}: {one:.2f} (1 min), {five:.2f} (5 min) on "
            f"{os.cpu_count()} cores; this benchmark adds about 1")


def _print_rows(rows: list[Row]) -> None:
    head = (f"{'case':<20} {'dtype':<8} {'impl':<6} {'fwd ms':>9} {'bwd ms':>9} "
            f"{'f+b ms':>9} {'GFLOP/s':>8} {'/torch':>7} {'naive/':>7} {'peak MB':>8}")
    print(head)
    print("-" * len(head))
    for row in rows:
        by_name = {impl.name: impl for impl in row.impls}
        torch_fb = by_name["torch"].median("fwd+bwd") if "torch" in by_name else None
        fast_fb = by_name["fast"].median("fwd+bwd")
        for impl in row.impls:
            fb = impl.median("fwd+bwd")
            gflops = f"{3 * row.flops / fb / 1e9:8.1f}" if row.flops and fb else f"{'-':>8}"
            ratio = f"{fb / torch_fb:7.2f}" if torch_fb and fb and impl.name != "torch" \
                else f"{'-':>7}"
            slow = f"{fb / fast_fb:7.0f}" if impl.name == "naive" and fb and fast_fb \
                else f"{'-':>7}"
            peak = f"{row.peak_mb:8.1f}" if impl.name == "fast" and row.peak_mb else f"{'-':>8}"
            print(f"{row.case:<20} {row.dtype:<8} {impl.name:<6} {_ms(impl.median('fwd'))} "
                  f"{_ms(impl.median('bwd'))} {_ms(fb)} {gflops} {ratio} {slow} {peak}")
        if row.note:
            print(f"{'':<20} {row.dtype:<8} {row.note}")


STEP_LABELS = {
    "kit": "kit (model.loss as students run it)",
    "torch": "torch (images need no gradient)",
    "kit+dx": "kit, images' gradient too",
    "torch+dx": "torch, images' gradient too",
}


# Each kit row against the PyTorch row that does the same work.
STEP_PARTNERS = {"kit": "torch", "kit+dx": "torch+dx"}


def _print_steps(steps: list[StepRow]) -> None:
    for step in steps:
        by_name = {impl.name: impl.median("fwd+bwd") for impl in step.impls}
        print(f"ThreeLayerConvNet loss+grads, batch {step.batch} of "
              f"{'x'.join(map(str, step.shape))}, float32")
        for name, label in STEP_LABELS.items():
            if name not in by_name:
                continue
            other = STEP_PARTNERS.get(name)
            ratio = (f"{_ratio(by_name[name], by_name.get(other)):>5} x {other}"
                     if other in by_name else "")
            print(f"  {label:<38} {_ms(by_name[name])} ms   {ratio}".rstrip())
    print("  model.loss computes no gradient for the images (conv_relu_pool_backward(...,")
    print("  input_grad=False)), nor does PyTorch for inputs that need none; the 'images'")
    print("  gradient too' rows compute it in both. Both at reg 0 (no weight decay), where the")
    print("  solution's loss skips the L2 penalty: a loss that computes it anyway adds three")
    print("  passes over W2 (about 1.5 ms at batch 50 here).")


def _busy_warning(load: float, cores: int) -> list[str]:
    """A caution when other processes kept the cores busy: PyTorch's OpenMP threads
    spin-wait for each other, and with more runnable threads than cores they wait for
    descheduled ones. Measured at load 3 to 5 on 2 cores, PyTorch's fwd+bwd took up to 90x
    its quiet time (float64 conv (a): 300 ms against 3.4 ms), the numpy layers about 1.5x;
    the ratios then flatter the kit. ``--threads 1`` compares per-core speed instead."""
    if load < cores:
        return []
    return [f"  Caution: load average {load:.1f} on {cores} cores. On a busy machine PyTorch's",
            "  OpenMP threads slow down far more than the numpy layers: judge the targets on",
            "  a quiet machine, or compare per core with --threads 1."]


def _ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}" if ours and theirs else "-"


# A target line's second line starts under its measured figure's column group: past the
# case (20 columns) and dtype (8) of the label.
_UNDER_LABEL = " " * (2 + 20 + 1 + 8 + 1)


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


@dataclass
class Verdict:
    """One target judged in one run: ``label`` names it (case, dtype and what is
    compared, padded to the table's columns), ``measured`` and ``target`` as printed."""

    label: str
    measured: str
    target: str
    met: bool
    # The middle half of the repetitions' ratios, when it lies on both sides of the target.
    close: tuple[float, float] | None = None

    def lines(self) -> list[str]:
        line = f"  {self.label} {self.measured} (target {self.target}): {_verdict(self.met)}"
        if self.close is None:
            return [line]
        low, high = self.close
        return [f"{line}, close",
                f"{_UNDER_LABEL}(middle half of repetitions: {low:.3f} to {high:.3f})"]


def _middle_half(ours: Impl, theirs: Impl) -> tuple[float, float] | None:
    """Lower and upper quartiles of ours/theirs fwd+bwd, repetition by repetition (the two
    times of one repetition are taken moments apart, ``_interleave``): how far the ratio
    moves within one run. None with fewer than 4 repetitions."""
    # Both lists have one time per repetition (``_interleave`` times every implementation
    # in each), so they pair up.
    ratios = [a / b for a, b in zip(ours.times.get("fwd+bwd", []),
                                    theirs.times.get("fwd+bwd", []), strict=True) if b > 0]
    if len(ratios) < 4:
        return None
    low, _, high = statistics.quantiles(ratios, n=4)
    return low, high


def _ratio_verdict(label: str, ratio: float, target: float,
                   middle: tuple[float, float] | None) -> Verdict:
    """A ratio's verdict (from the ratio of the medians), close when the middle half of the
    repetitions' ratios lies on both sides of the target: another run may well judge it
    the other way."""
    close = middle if middle is not None and middle[0] <= target < middle[1] else None
    return Verdict(label, f"{ratio:6.3f}", f"<= {target}", ratio <= target, close)


def _judge(rows: list[Row], cases: tuple[Any, ...], steps: list[StepRow]
           ) -> list[Verdict | str]:
    """Every target's verdict, in the table's order, with the lines that are no verdict
    (a target without PyTorch to compare with, the images' gradient ratio) as text."""
    judged: list[Verdict | str] = []
    targets = {case.name: case.target for case in cases}
    for row in rows:
        target = targets.get(row.case) if row.dtype == "float32" else FLOAT64_TARGET
        if target is None:
            continue
        label = f"{row.case:<20} {row.dtype:<8} fast/torch fwd+bwd"
        by_name = {impl.name: impl for impl in row.impls}
        if "torch" not in by_name:
            judged.append(f"  {label} <= {target}: no PyTorch")
            continue
        fast, torch = by_name["fast"], by_name["torch"]
        judged.append(_ratio_verdict(label, fast.median("fwd+bwd") / torch.median("fwd+bwd"),
                                     target, _middle_half(fast, torch)))
    for step in steps:
        impls = {impl.name: impl for impl in step.impls}
        by_name = {name: impl.median("fwd+bwd") for name, impl in impls.items()}
        label = f"{'model batch ' + str(step.batch):<20} {'float32':<8} kit/torch loss+grads"
        if "torch" not in by_name:
            judged.append(f"  {label} <= {MODEL_TARGET}: no PyTorch")
            continue
        judged.append(_ratio_verdict(label, by_name["kit"] / by_name["torch"], MODEL_TARGET,
                                     _middle_half(impls["kit"], impls["torch"])))
        if "torch+dx" in by_name:
            judged.append(f"{_UNDER_LABEL}(images' gradient too, kit+dx/torch+dx: "
                          f"{by_name['kit+dx'] / by_name['torch+dx']:.3f})")
    name, limit = MEMORY_TARGET
    for row in rows:
        if row.case == name and row.dtype == "float32" and row.peak_mb is not None:
            judged.append(Verdict(f"{name:<20} {'float32':<8} peak memory of one fwd+bwd",
                                  f"{row.peak_mb:.1f} MB", f"<= {limit:.0f} MB",
                                  row.peak_mb <= limit))
    return judged


def _targets(rows: list[Row], cases: tuple[Any, ...], steps: list[StepRow]) -> list[str]:
    """The targets' lines of one run (``_target_lines`` of ``_judge``)."""
    return _target_lines(_judge(rows, cases, steps))


def _target_lines(judged: list[Verdict | str]) -> list[str]:
    """One line per target: the measured ratio (or peak memory), the target, met or not,
    and for a ratio whose repetitions fall on both sides of its target, that it is close;
    then how many are met."""
    verdicts = [v for v in judged if isinstance(v, Verdict)]
    lines = [line for v in judged for line in ([v] if isinstance(v, str) else v.lines())]
    summary = f"  {sum(v.met for v in verdicts)} of {len(verdicts)} targets met"
    close = sum(v.close is not None for v in verdicts)
    if not close:
        return [*lines, summary]
    one = close == 1
    return [*lines, f"{summary}; {close} close",
            f"  (close: the middle half of {'its' if one else 'their'} repetitions' ratios"
            " straddles the target;",
            f"  another run may judge {'it' if one else 'them'} the other way)"]


def _over_runs(runs: list[list[Verdict]]) -> list[str]:
    """``--runs``: each target's measurement in every run, and in how many runs it was met
    (every run judges the same targets)."""
    order: list[str] = []
    by_label: dict[str, list[Verdict]] = {}
    for verdicts in runs:
        for verdict in verdicts:
            if verdict.label not in by_label:
                order.append(verdict.label)
            by_label.setdefault(verdict.label, []).append(verdict)
    lines = [f"Targets over {len(runs)} runs (each run's figure; in how many runs met):"]
    always = 0
    for label in order:
        verdicts = by_label[label]
        met = sum(v.met for v in verdicts)
        always += met == len(verdicts)
        figures = " ".join(v.measured for v in verdicts)
        lines.append(f"  {label} {figures} (target {verdicts[0].target}): met in {met} of "
                     f"{len(verdicts)}")
    lines.append(f"  {always} of {len(order)} targets met in every run")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit bench", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=cli.positive_seconds, default=3.0,
                        help="seconds of timed repetitions per case and dtype (default 3)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive layers")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if present")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and budget: checks that the benchmark runs "
                             "(judges no target: its ratios time call overheads)")
    parser.add_argument("--threads", type=cli.whole_number(1), default=None,
                        help="threads for everyone: fast_layers' chunk threads, BLAS and "
                             "PyTorch (default: the machine's cores). --threads 1 compares "
                             "per-core speed, which a busy machine disturbs least")
    parser.add_argument("--runs", type=cli.whole_number(1), default=1,
                        help="run the whole benchmark this many times, one after the other, "
                             "then list each target's figure in every run and in how many "
                             "it was met (default 1): one run's verdict on a target near "
                             "its limit can go either way")
    args = parser.parse_args(argv)
    torch = None if args.no_torch else _torch()
    runs = []
    for run in range(args.runs):
        if run:
            print()
        if args.runs > 1:
            print(f"== Run {run + 1} of {args.runs} ==")
        if args.threads is not None:
            runs.append(_with_threads(args.threads, torch, lambda: _run(args, torch)))
        else:
            runs.append(_run(args, torch))
    if args.runs > 1:
        print()
        for line in [SMOKE_NOT_JUDGED] if args.smoke else _over_runs(runs):
            print(line)
    return 0


def _with_threads(threads: int, torch: Any, body: Callable[[], Any]) -> Any:
    """Run ``body`` with every thread pool limited to ``threads``."""
    old_workers = fast_layers.WORKERS
    fast_layers.WORKERS = max(1, threads)
    old_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(max(1, threads))
    try:
        from threadpoolctl import threadpool_limits

        limits: Any = threadpool_limits(max(1, threads))
    except ImportError:
        limits = None
    try:
        return body()
    finally:
        fast_layers.WORKERS = old_workers
        if torch is not None and old_torch is not None:
            torch.set_num_threads(old_torch)
        if limits is not None:
            limits.restore_original_limits()


def _run(args: argparse.Namespace, torch: Any) -> list[Verdict]:
    """One whole benchmark, printed; returns its targets' verdicts."""
    budget = 0.05 if args.smoke else args.budget
    conv_cases, pool_cases = (SMOKE_CONV, SMOKE_POOL) if args.smoke else (CONV_CASES,
                                                                          POOL_CASES)
    start = time.perf_counter()
    print("Benchmark of course.fast_layers (medians of interleaved repetitions)")
    for line in _environment(torch):
        print(f"  {line}")
    print()
    rows: list[Row] = []
    for dtype in (np.float32, np.float64):
        for case in conv_cases:
            rows.append(bench_conv(case, dtype, budget, not args.no_naive, torch))
        for case in pool_cases:
            rows.append(bench_pool(case, dtype, budget, not args.no_naive, torch))
    _print_rows(rows)
    print("  /torch: fast (or naive) fwd+bwd time over PyTorch's; naive/: naive over fast;")
    print("  GFLOP/s of fwd+bwd (3x the forward's 2*N*F*H_out*W_out*C*HH*WW); naive in")
    print("  float32 only, timed once; peak MB: tracemalloc over one fast fwd+bwd. 'relu':")
    print("  the pool's input is max(z, 0), z random normal (half zeros: many tied maxima).")
    print()
    batches = (4,) if args.smoke else MODEL_BATCHES
    steps = [bench_net_step(N, budget * 2, torch, args.smoke) for N in batches]
    _print_steps(steps)
    print()
    if args.smoke:
        judged: list[Verdict | str] = []
        print(SMOKE_NOT_JUDGED)
    else:
        print("Targets (fast or kit over PyTorch, medians; float64 rows: no slower than "
              "PyTorch's float64):")
        judged = _judge(rows, (*conv_cases, *pool_cases), steps)
        for line in _target_lines(judged):
            print(line)
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        load = 0.0
    # One thread each: no spin-waiting threads to slow down. A smoke run judges nothing.
    if args.threads != 1 and not args.smoke:
        for line in _busy_warning(load, os.cpu_count() or 1):
            print(line)
    took = time.perf_counter() - start
    print(f"\n({_load_line('after')}; the benchmark took {took:.0f} s)")
    print(f"({_gauge_line('after')})")
    return [v for v in judged if isinstance(v, Verdict)]


if __name__ == "__main__":
    sys.exit(main())
