"""Smoke test of benchmarks/bench_optim.py: it runs (quick mode, no torch needed) and
returns well-formed rows for each implementation. The figures are the benchmark's job."""
import math

from benchmarks import bench_optim


def test_optimizer_step_benchmark_runs(monkeypatch):
    monkeypatch.setattr(bench_optim, "SHAPES", [(3, 4), (5,)])  # the benchmark as run, on small parameters
    rows = bench_optim.run(quick=True)
    assert {row["benchmark"] for row in rows} == {"optimizer_step"}
    assert {"autograd_core", "autograd_core numpy"} <= {row["impl"] for row in rows}
    for row in rows:
        assert set(row) >= {"benchmark", "case", "impl", "seconds", "cpu_seconds", "note"}
        assert math.isfinite(row["seconds"]) and row["seconds"] > 0, row
        assert "threads=1" in row["case"]
