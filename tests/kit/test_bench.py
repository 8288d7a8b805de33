"""The benchmark runs end to end on tiny sizes and prints its table and target lines."""

from __future__ import annotations

import pytest

from kit import bench


# Only the numpy layers: PyTorch (if present at all) takes seconds just to warm up.
@pytest.mark.parametrize("extra", [["--no-torch"]])
def test_smoke_run_prints_table_and_targets(capsys, extra) -> None:
    assert bench.main(["--smoke", *extra]) == 0
    out = capsys.readouterr().out
    assert "case             dtype    impl" in out
    assert "(smoke)" in out and "pool smoke" in out
    assert "ThreeLayerConvNet SGD step, batch 4, 3x8x8" in out
    assert "Targets (float32):" in out
    if extra:
        assert "no PyTorch" in out and "float32  torch" not in out


def test_naive_is_skipped_when_the_estimate_is_over_a_minute() -> None:
    note = bench._naive_impl(lambda: (None, None), lambda c: None, estimate=100.0)
    assert isinstance(note, str) and "naive skipped" in note
    timed = bench._naive_impl(lambda: (None, None), lambda c: None, estimate=1.0)
    assert isinstance(timed, bench.Impl) and len(timed.times["fwd+bwd"]) == 1
