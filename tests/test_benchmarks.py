"""Smoke tests of the benchmarks that time the engine as a whole: they run (quick mode,
no torch needed) and return well-formed rows. The figures themselves are the benchmarks'
job, not the tests' (a timing assertion would be flaky on a shared machine)."""
import math

import pytest

from benchmarks import bench_cnn, bench_ops


def _check_rows(rows, benchmarks):
    assert {row["benchmark"] for row in rows} == benchmarks
    ours = [row for row in rows if row["impl"] == "autograd_core"]
    assert ours, rows
    for row in ours:
        assert set(row) >= {"benchmark", "case", "impl", "seconds", "note"}
        assert math.isfinite(row["seconds"]) and row["seconds"] > 0, row


def test_per_op_benchmark_runs():
    rows = bench_ops.run(quick=True)
    _check_rows(rows, {"per_op_overhead"})
    cases = {row["case"] for row in rows if row["impl"] == "autograd_core"}
    assert len(cases) == 3, cases


def test_cnn_step_benchmark_runs(monkeypatch):
    monkeypatch.setattr(bench_cnn, "BATCH", 4)  # the network as timed, on a small batch
    rows = bench_cnn.run(quick=True)
    _check_rows(rows, {"cnn_train_step", "cnn_inference"})
