"""Smoke tests of the benchmarks that time the engine as a whole: they run (quick mode,
no torch needed) and return well-formed rows. The figures themselves are the benchmarks'
job, not the tests' (a timing assertion would be flaky on a shared machine)."""
import importlib.util
import math

import numpy as np

import pytest

from benchmarks import __main__ as benchmarks_main, bench_cnn, bench_gemm, bench_memory, bench_mlp, bench_ops, bench_rnn


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
    assert len(cases) == 3 * len(bench_ops.SIZES), cases


def test_cnn_step_benchmark_runs(monkeypatch):
    monkeypatch.setattr(bench_cnn, "BATCH", 4)  # the network as timed, on a small batch
    rows = bench_cnn.run(quick=True)
    _check_rows(rows, {"cnn_train_step", "cnn_inference"})


def test_mlp_step_benchmark_runs(monkeypatch):
    monkeypatch.setattr(bench_mlp, "BATCH", 8)
    _check_rows(bench_mlp.run(quick=True), {"mlp_train_step"})


def test_gru_and_rnn_step_benchmark_runs(monkeypatch):
    monkeypatch.setattr(bench_rnn, "BATCH", 4)
    monkeypatch.setattr(bench_rnn, "STEPS", 3)
    rows = bench_rnn.run(quick=True)
    _check_rows(rows, {"gru_train_step", "rnn_train_step"})
    for row in rows:
        assert row["cpu_seconds"] > 0, row


def test_gemm_layer_forms_compute_the_products_they_name():
    """The three forms of a layer's product: each computes a [m, k] @ [k, n] product
    (the benchmark checks each implementation's result against float64 before timing)."""
    m, k, n = 5, 7, 3
    for form in bench_gemm.FORMS:
        dims = bench_gemm._layer_dimensions(m, k, n, form)
        a, b, trans_a, trans_b = bench_gemm._operands(*dims, form, np.float32, 0)
        left, right = (a.T if trans_a else a), (b.T if trans_b else b)
        assert left.shape == dims[:2] and right.shape == dims[1:], form
    assert bench_gemm._layer_dimensions(m, k, n, "g @ W^T") == (m, n, k)
    assert bench_gemm._layer_dimensions(m, k, n, "x^T @ g") == (k, m, n)


def test_gemm_benchmark_times_each_library_on_checked_products(monkeypatch):
    """What each library's worker process runs: every form, checked against float64 and
    then timed in blocks; a wrong product raises instead of being timed."""
    monkeypatch.setattr(bench_gemm, "_BLOCK_SECONDS", 1e-4)
    libraries = [name for name in bench_gemm.LIBRARIES if name != "torch" or importlib.util.find_spec("torch")]
    for name in libraries:
        for form in bench_gemm.FORMS:
            times = bench_gemm._case_time(name, 9, 17, 33, np.float32, form, "test", 2)
            assert len(times) == 2 and all(t > 0 for t in times), (name, form)
    monkeypatch.setattr(bench_gemm, "_make_call", lambda *args: (lambda: np.zeros((9, 33), np.float32)))
    with pytest.raises(AssertionError, match="wrong product"):
        bench_gemm._case_time("c", 9, 17, 33, np.float32, "x @ W", "test", 2)


def test_peak_memory_benchmark_measures_a_separate_process():
    """The child's own peak, not its parent's: Linux carries ru_maxrss over fork and exec,
    so a child of this (deliberately big) test process would otherwise report 400 MB."""
    parent_ballast = np.ones(50_000_000)  # 400 MB, touched
    figure = bench_memory.measure("autograd_core", steps=1, threads=1)
    assert figure["peak_kib"] >= figure["baseline_kib"] > 0
    assert figure["peak_kib"] < 300 * 1024, figure
    del parent_ballast


def test_main_writes_results_to_a_new_folder_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(benchmarks_main, "discover", lambda: ["ops"])
    monkeypatch.setattr(bench_ops, "LENGTH", 2)
    monkeypatch.setattr(benchmarks_main, "RESULTS", str(tmp_path / "results"))
    assert benchmarks_main.main(["--quick"]) == 0
    folders = list((tmp_path / "results").iterdir())
    assert len(folders) == 1 and (folders[0] / "ops.json").is_file()
    assert "CPU ms" in capsys.readouterr().out
