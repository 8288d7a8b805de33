"""The benchmark runs end to end on tiny sizes and prints its tables; its target lines are
checked on rows made by hand (a smoke run judges no target)."""

from __future__ import annotations

import pytest

from kit import bench


# Only the numpy layers: PyTorch (if present at all) takes seconds just to warm up.
@pytest.mark.parametrize("extra", [["--no-torch"]])
def test_smoke_run_prints_the_table_and_judges_no_target(capsys, extra) -> None:
    assert bench.main(["--smoke", *extra]) == 0
    out = capsys.readouterr().out
    assert "case                 dtype    impl" in out
    assert "(smoke)" in out and "pool smoke" in out and "pool smoke relu" in out
    assert "ThreeLayerConvNet loss+grads, batch 4 of 3x8x8, float32" in out
    assert "kit, images' gradient too" in out
    # Its tiny sizes time call overheads: no target is judged on them, and it says so.
    assert "Targets: not judged in a smoke run" in out
    assert "targets met" not in out and "Targets (fast or kit" not in out
    assert "load average before" in out and "OPENBLAS_L2_SIZE" in out
    assert "host speed before: " in out and "host speed after: " in out
    if extra:
        assert "PyTorch: not used" in out and "float32  torch" not in out


def test_the_host_speed_gauge_divides_the_products_flops_by_its_median_time(monkeypatch
                                                                           ) -> None:
    # A fake clock that moves 1 ms per reading: each product, read just before and just
    # after, "takes" 1 ms, so 2 * 256**3 flops / 1 ms = 33.6 GFLOP/s.
    clock = iter(range(10**6))
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock) * 1e-3)
    assert bench.host_gflops(seconds=0.05) == pytest.approx(2 * 256**3 / 1e-3 / 1e9)


def test_pool_cases_come_in_random_and_post_relu_pairs() -> None:
    names = [case.name for case in bench.POOL_CASES]
    assert all(f"{case.name} relu" in names for case in bench.POOL_CASES if not case.relu)
    assert sum(case.relu for case in bench.POOL_CASES) == len(bench.POOL_CASES) // 2


def test_targets_judge_every_row_and_count_them() -> None:
    fast, torch = bench.Impl("fast", {}), bench.Impl("torch", {})
    fast64, torch64 = bench.Impl("fast", {}), bench.Impl("torch", {})
    fast.times, torch.times = {"fwd+bwd": [2.0]}, {"fwd+bwd": [1.0]}
    fast64.times, torch64.times = {"fwd+bwd": [0.5]}, {"fwd+bwd": [1.0]}
    rows = [bench.Row("(b)", "float32", [fast, torch], 1.0, 60.0),
            bench.Row("(b)", "float64", [fast64, torch64], 1.0, None)]
    kit, kit_dx = bench.Impl("kit", {}), bench.Impl("kit+dx", {})
    plain, plain_dx = bench.Impl("torch", {}), bench.Impl("torch+dx", {})
    for impl, seconds in ((kit, 1.1), (kit_dx, 1.6), (plain, 1.0), (plain_dx, 2.0)):
        impl.times = {"fwd+bwd": [seconds]}
    steps = [bench.StepRow(50, [kit, kit_dx, plain, plain_dx], (3, 32, 32))]
    lines = bench._targets(rows, bench.CONV_CASES, steps)
    label = "  (b)                  float"
    assert f"{label}32  fast/torch fwd+bwd  2.000 (target <= 1.0): NOT met" in lines
    assert f"{label}64  fast/torch fwd+bwd  0.500 (target <= 1.0): met" in lines
    assert any("model batch 50" in line and "1.100 (target <= 1.2): met" in line
               for line in lines)
    assert any("(images' gradient too, kit+dx/torch+dx: 0.800)" in line for line in lines)
    assert any("peak memory" in line and "NOT met" in line for line in lines)
    assert lines[-1] == "  2 of 4 targets met"


def test_targets_without_pytorch_say_so_and_count_nothing() -> None:
    fast, kit = bench.Impl("fast", {}), bench.Impl("kit", {})
    fast.times, kit.times = {"fwd+bwd": [1.0]}, {"fwd+bwd": [1.0]}
    rows = [bench.Row("(b)", "float32", [fast], 1.0, None)]
    lines = bench._targets(rows, bench.CONV_CASES, [bench.StepRow(50, [kit], (3, 32, 32))])
    assert lines == [
        "  (b)                  float32  fast/torch fwd+bwd <= 1.0: no PyTorch",
        "  model batch 50       float32  kit/torch loss+grads <= 1.2: no PyTorch",
        "  0 of 0 targets met"]


def test_naive_is_skipped_when_the_estimate_is_over_a_minute() -> None:
    note = bench._naive_impl(lambda: (None, None), lambda c: None, estimate=100.0)
    assert isinstance(note, str) and "naive skipped" in note
    timed = bench._naive_impl(lambda: (None, None), lambda c: None, estimate=1.0)
    assert isinstance(timed, bench.Impl) and len(timed.times["fwd+bwd"]) == 1


def test_busy_machine_gets_a_caution_under_the_targets() -> None:
    assert bench._busy_warning(0.5, 2) == []
    caution = bench._busy_warning(3.2, 2)
    assert caution and "load average 3.2 on 2 cores" in caution[0]
    assert any("--threads 1" in line for line in caution)


def test_a_target_whose_repetitions_straddle_it_is_called_close() -> None:
    # Five repetitions, each pair timed together. fast/torch per repetition: 0.9, 0.95,
    # 1.0, 1.05, 1.1 at (b) float32: median 1.0, met; quartiles (statistics' default,
    # "exclusive": positions 1.5 and 4.5 of 5) 0.925 and 1.075, on both sides of 1.0.
    # float64: 0.48 to 0.52, far under its target: no remark.
    def impl(name: str, times: list[float]) -> bench.Impl:
        made = bench.Impl(name, {})
        made.times = {"fwd+bwd": times}
        return made

    ones = [1.0] * 5
    rows = [bench.Row("(b)", "float32", [impl("fast", [1.1, 0.9, 1.0, 0.95, 1.05]),
                                         impl("torch", ones)], 1.0, None),
            bench.Row("(b)", "float64", [impl("fast", [0.5, 0.52, 0.48, 0.5, 0.51]),
                                         impl("torch", ones)], 1.0, None)]
    lines = bench._targets(rows, bench.CONV_CASES, [])
    assert lines[:3] == [
        "  (b)                  float32  fast/torch fwd+bwd  1.000 (target <= 1.0): met, close",
        "                                (middle half of repetitions: 0.925 to 1.075)",
        "  (b)                  float64  fast/torch fwd+bwd  0.500 (target <= 1.0): met"]
    assert lines[-3:] == ["  2 of 2 targets met; 1 close",
                          "  (close: the middle half of its repetitions' ratios straddles the"
                          " target;", "  another run may judge it the other way)"]


def test_runs_list_each_targets_figures_and_count_the_runs_it_was_met_in() -> None:
    # Two runs written by hand: (b) float32 met in the first (0.988), not in the second
    # (1.146); the memory target met in both.
    ratio = "(b)                  float32  fast/torch fwd+bwd"
    memory = "(b)                  float32  peak memory of one fwd+bwd"
    runs = [[bench.Verdict(ratio, " 0.988", "<= 1.0", True),
             bench.Verdict(memory, "13.9 MB", "<= 50 MB", True)],
            [bench.Verdict(ratio, " 1.146", "<= 1.0", False),
             bench.Verdict(memory, "13.9 MB", "<= 50 MB", True)]]
    assert bench._over_runs(runs) == [
        "Targets over 2 runs (each run's figure; in how many runs met):",
        f"  {ratio}  0.988  1.146 (target <= 1.0): met in 1 of 2",
        f"  {memory} 13.9 MB 13.9 MB (target <= 50 MB): met in 2 of 2",
        "  1 of 2 targets met in every run"]


def test_runs_repeat_the_whole_benchmark(capsys) -> None:
    assert bench.main(["--smoke", "--no-torch", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== Run 1 of 2 ==\nBenchmark of course.fast_layers")
    assert out.count("Benchmark of course.fast_layers") == 2
    assert "\n\n== Run 2 of 2 ==\n" in out
    # A smoke run judges no target, so the runs have no figures to list either.
    assert out.endswith("\n\n" + bench.SMOKE_NOT_JUDGED + "\n")
    assert "Targets over 2 runs" not in out
