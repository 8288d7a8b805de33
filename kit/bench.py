"""Benchmark of the conv and pool layers: naive, fast (pure numpy) and PyTorch's CPU ops.

``make bench`` (or ``python -m kit bench``) prints, for the sizes of issue 7, the forward,
backward and forward+backward times of each implementation in float32 and float64, the
GFLOP/s reached, the ratios fast/PyTorch and naive/fast, and the peak memory of one fast
forward+backward; then one ThreeLayerConvNet training step against the same network in
PyTorch, and whether each target is met.

How it measures, so that ratios mean something on a busy machine:

* Every implementation of a case runs in the same process, interleaved: one repetition is
  fwd, bwd and fwd+bwd of every implementation in turn, after a warm-up, and the table
  shows the median over the repetitions. Load from other processes then hits all of them
  alike, and the ratio of medians stays stable even when the absolute times do not.
* The naive layers run once per operation, in float32 only, and are skipped when an
  estimate from a slice of the batch says that would take more than a minute.
* Peak memory is what ``tracemalloc`` sees (numpy reports its buffers to it) during one
  fast forward+backward, including the output and the gradients; inputs and ``dout``
  exist beforehand and are not counted.

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

from course import fast_layers
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
    target: float  # fast/PyTorch, fwd+bwd, float32


@dataclass(frozen=True)
class PoolCase:
    name: str
    x: tuple[int, int, int, int]
    size: int
    stride: int
    target: float


CONV_CASES = (
    ConvCase("(a)", (100, 3, 31, 31), (25, 3, 3, 3), 2, 1, 1.2),
    ConvCase("(b)", (100, 3, 32, 32), (32, 3, 7, 7), 1, 3, 1.3),
    ConvCase("(c)", (50, 64, 16, 16), (64, 64, 3, 3), 1, 1, 2.5),
)
POOL_CASES = (
    PoolCase("pool 2x2/2 3ch", (100, 3, 32, 32), 2, 2, 1.0),
    PoolCase("pool 2x2/2 32ch", (100, 32, 32, 32), 2, 2, 1.0),
    PoolCase("pool 3x3/1 32ch", (100, 32, 32, 32), 3, 1, 2.0),
)
SMOKE_CONV = (ConvCase("(smoke)", (4, 2, 9, 9), (3, 2, 3, 3), 2, 1, 99.0),)
SMOKE_POOL = (PoolCase("pool smoke", (4, 2, 8, 8), 2, 2, 99.0),)
MEMORY_TARGET = ("(b)", 50.0)  # MB of one fast fwd+bwd in float32
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


def _interleave(impls: list[Impl], budget_s: float, min_reps: int, max_reps: int) -> int:
    """Warm up, then time every op of every implementation in turn, repeatedly."""
    for impl in impls:
        for op in OPS:
            impl.ops[op]()
    round_s = sum(_timed(impl.ops[op]) for impl in impls for op in OPS)
    reps = int(min(max_reps, max(min_reps, budget_s / max(round_s, 1e-9))))
    for impl in impls:
        impl.times = {op: [] for op in OPS}
    for _ in range(reps):
        for impl in impls:
            for op in OPS:
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


def bench_net_step(budget: float, torch: Any, smoke: bool) -> list[Impl]:
    """One SGD training step (loss, gradients, update) of ThreeLayerConvNet, batch 100
    of 3x32x32, float32, against the same architecture in PyTorch."""
    N, shape = (4, (3, 8, 8)) if smoke else (100, (3, 32, 32))
    rng = np.random.default_rng(2)
    X = rng.standard_normal((N, *shape)).astype(np.float32)
    y = rng.integers(0, 10, N)
    model = ThreeLayerConvNet(input_dim=shape, weight_scale=1e-2, seed=0)

    def numpy_step() -> None:
        _, grads = model.loss(X, y)
        for name, g in grads.items():
            model.params[name] -= 1e-3 * g

    impls = [Impl("fast", {op: numpy_step for op in OPS})]
    if torch is not None:
        nn = torch.nn
        C, H, W = shape
        net = nn.Sequential(nn.Conv2d(C, 32, 7, padding=3), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(32 * (H // 2) * (W // 2), 100), nn.ReLU(),
                            nn.Linear(100, 10))
        opt = torch.optim.SGD(net.parameters(), lr=1e-3)
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)

        def torch_step() -> None:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(tX), ty).backward()
            opt.step()

        impls.append(Impl("torch", {op: torch_step for op in OPS}))
    _interleave(impls, budget, 5, 40)
    return impls


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{1e3 * value:9.2f}"


def _environment(torch: Any) -> list[str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [f"python {platform.python_version()}, numpy {np.__version__}, cores available "
             f"{cores}, fast_layers threads {fast_layers.WORKERS}, block "
             f"{fast_layers.BLOCK_BYTES // 2**10} KiB"]
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            lines.append(f"BLAS ({info.get('user_api')}): {info.get('internal_api')} "
                         f"{info.get('version')}, {info.get('num_threads')} threads, "
                         f"architecture {info.get('architecture')}")
    except ImportError:
        lines.append("threadpoolctl not installed: BLAS unknown")
    lines.append(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    if torch is None:
        lines.append("PyTorch: not used (absent or --no-torch; .venv/bin/pip install torch "
                     "to compare)")
    else:
        lines.append(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    return lines


def _print_rows(rows: list[Row]) -> None:
    head = (f"{'case':<16} {'dtype':<8} {'impl':<6} {'fwd ms':>9} {'bwd ms':>9} "
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
            print(f"{row.case:<16} {row.dtype:<8} {impl.name:<6} {_ms(impl.median('fwd'))} "
                  f"{_ms(impl.median('bwd'))} {_ms(fb)} {gflops} {ratio} {slow} {peak}")
        if row.note:
            print(f"{'':<16} {row.dtype:<8} {row.note}")


def _targets(rows: list[Row], cases: tuple[Any, ...]) -> list[str]:
    lines = []
    targets = {case.name: case.target for case in cases}
    for row in rows:
        if row.dtype != "float32" or row.case not in targets:
            continue
        by_name = {impl.name: impl for impl in row.impls}
        if "torch" not in by_name:
            lines.append(f"  {row.case:<16} fast/torch <= {targets[row.case]}: no PyTorch")
            continue
        ratio = by_name["fast"].median("fwd+bwd") / by_name["torch"].median("fwd+bwd")
        verdict = "met" if ratio <= targets[row.case] else "NOT met"
        lines.append(f"  {row.case:<16} fast/torch fwd+bwd {ratio:5.2f} "
                     f"(target <= {targets[row.case]}): {verdict}")
    name, limit = MEMORY_TARGET
    for row in rows:
        if row.case == name and row.dtype == "float32" and row.peak_mb is not None:
            verdict = "met" if row.peak_mb <= limit else "NOT met"
            lines.append(f"  {name:<16} peak memory of one fwd+bwd {row.peak_mb:.1f} MB "
                         f"(target <= {limit:.0f} MB): {verdict}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit bench", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=3.0,
                        help="seconds of timed repetitions per case and dtype (default 3)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive layers")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if present")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and budget: checks that the benchmark runs")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for everyone: fast_layers' chunk threads, BLAS and "
                             "PyTorch (default: the machine's cores). --threads 1 compares "
                             "per-core speed, which a busy machine disturbs least")
    args = parser.parse_args(argv)
    torch = None if args.no_torch else _torch()
    if args.threads is not None:
        return _with_threads(args.threads, torch, lambda: _run(args, torch))
    return _run(args, torch)


def _with_threads(threads: int, torch: Any, body: Callable[[], int]) -> int:
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


def _run(args: argparse.Namespace, torch: Any) -> int:
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
    print("  float32 only, timed once; peak MB: tracemalloc over one fast fwd+bwd.")
    print()
    step = bench_net_step(budget * 2, torch, args.smoke)
    fast_t = step[0].median("fwd+bwd")
    size = "batch 4, 3x8x8" if args.smoke else "batch 100, 3x32x32"
    line = f"ThreeLayerConvNet SGD step, {size}, float32: fast {_ms(fast_t)} ms"
    if len(step) > 1:
        torch_t = step[1].median("fwd+bwd")
        line += f", torch {_ms(torch_t)} ms, fast/torch {fast_t / torch_t:.2f}"
    print(line)
    print()
    print("Targets (float32):")
    for line in _targets(rows, (*conv_cases, *pool_cases)):
        print(line)
    print(f"\n(benchmark took {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
