"""Benchmarks for autograd_core; run them all with `python -m benchmarks` (see README.md).

Contract for a benchmark module benchmarks/bench_<name>.py: it defines
    run(quick: bool) -> list[dict]
returning one dict per measurement with keys "benchmark", "case", "impl", "seconds"
(the median of repeats, timed with time.perf_counter) and optionally "gflops" and
"note". `python -m benchmarks` discovers the modules, prints one table and writes
results/<name>.json with an environment block.
"""
