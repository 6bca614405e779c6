"""GEMM throughput: the project's C GEMM (through the bridge) against np.matmul (numpy's
BLAS) and torch.matmul when torch is importable, on square float32 matrices.

GFLOP/s counts 2*m*n*k floating-point operations; each row reports the median of its
repeats (time.perf_counter around one call, output allocation included for all). The
full run adds float64 at n = 1024 and a batch of 64 small products (batched_gemm, a
Python loop of gemm calls, np.matmul).

    python -m benchmarks --only gemm [--quick]
"""
import statistics
import time

import numpy as np

from autograd_core import kernels


def _blas_name():
    try:
        import threadpoolctl
    except ImportError:
        return "numpy BLAS (threadpoolctl not installed)"
    pools = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return "numpy BLAS unknown"
    pool = pools[0]
    return "%s %s kernel %s, %s threads" % (pool.get("internal_api"), pool.get("version"),
                                            pool.get("architecture"), pool.get("num_threads"))


def _implementations(dtype):
    """(name, make(a, b) -> callable) pairs for the implementations available here."""
    def ours(a, b):
        return lambda: kernels.gemm(a, b)

    def numpy_matmul(a, b):
        return lambda: np.matmul(a, b)

    implementations = [("c", ours), ("numpy", numpy_matmul)]
    try:
        import torch
    except ImportError:
        return implementations, None
    torch.set_num_threads(kernels.get_num_threads())

    def torch_matmul(a, b):
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        return lambda: torch.matmul(ta, tb)

    implementations.append(("torch", torch_matmul))
    return implementations, "torch %s, %d threads" % (torch.__version__, torch.get_num_threads())


_SETTLE_SECONDS = 0.5


def _case(n, dtype, repeats, implementations, notes):
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    calls = [(name, make(a, b)) for name, make in implementations]
    expected = a.astype(np.float64) @ b.astype(np.float64)
    for name, call in calls:  # warm-up (page faults, thread pools) and a sanity check
        result = np.asarray(call())
        error = np.abs(result - expected).max() / np.abs(expected).max()
        if error > (1e-4 if dtype == np.float32 else 1e-10):
            raise AssertionError("bench_gemm: %s gives a wrong product at n=%d (relative error %g)"
                                 % (name, n, error))
    # Each implementation runs its repeats back to back (its thread pool stays warm and
    # no other pool is still spinning), in two rounds in opposite orders so that load
    # from elsewhere on the machine does not favour whichever ran first.
    # The pause before each block lets the previous library's waiting threads go to
    # sleep: OpenBLAS and torch keep theirs spinning for a while after a call, which on
    # 2 cores takes a core away from whoever runs next.
    times = {name: [] for name, _ in calls}
    for order in (calls, calls[::-1]):
        for name, call in order:
            time.sleep(_SETTLE_SECONDS)
            call()
            for _ in range((repeats + 1) // 2):
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    flops = 2.0 * n * n * n
    rows = []
    for name, _ in calls:
        seconds = statistics.median(times[name])
        rows.append({"benchmark": "gemm", "case": "%s %dx%d @ %dx%d" % (np.dtype(dtype).name, n, n, n, n),
                     "impl": name, "seconds": seconds, "gflops": flops / seconds / 1e9,
                     "note": notes.get(name, "")})
    return rows


def _batched_case(batch, n, repeats):
    """A batch of small products, where per-call overhead matters: one batched C call,
    a Python loop of 2-D C calls, and np.matmul on the 3-D arrays."""
    rng = np.random.default_rng(batch * n)
    a = rng.standard_normal((batch, n, n)).astype(np.float32)
    b = rng.standard_normal((batch, n, n)).astype(np.float32)
    calls = [("c batched_gemm", lambda: kernels.batched_gemm(a, b)),
             ("c gemm loop", lambda: [kernels.gemm(a[i], b[i]) for i in range(batch)]),
             ("numpy", lambda: np.matmul(a, b))]
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(kernels.batched_gemm(a, b), expected, rtol=1e-4, atol=1e-4)
    rows = []
    for name, call in calls:
        call()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        rows.append({"benchmark": "gemm", "case": "float32 %d x (%dx%d @ %dx%d)" % (batch, n, n, n, n),
                     "impl": name, "seconds": seconds, "gflops": 2.0 * batch * n ** 3 / seconds / 1e9})
    return rows


def run(quick: bool) -> list:
    """Rows of {"benchmark", "case", "impl", "seconds" (median), "gflops", "note"}."""
    with kernels.backend("c" if kernels.extension_available() else "numpy"):
        implementations, torch_note = _implementations(np.float32)
        notes = {"c": "%s, %d threads, SIMD %s" % (
                     "C extension" if kernels.extension_available() else "extension NOT built: numpy fallback",
                     kernels.get_num_threads(), kernels.SIMD_LEVELS[kernels.get_simd_level()]),
                 "numpy": _blas_name(), "torch": torch_note or ""}
        sizes = [256, 512, 1024] if quick else [256, 512, 1024, 2048]
        rows = []
        for n in sizes:
            repeats = 3 if quick else max(5, min(30, int(2e10 / n ** 3)))
            rows += _case(n, np.float32, repeats, implementations, notes)
        if not quick:
            rows += _case(1024, np.float64, 5, implementations, notes)
            rows += _batched_case(64, 32, 20)
    return rows


if __name__ == "__main__":
    import sys
    for row in run(quick="--quick" in sys.argv):
        print("%-6s %-26s %-6s %9.3f ms %8.1f GFLOP/s  %s" % (
            row["benchmark"], row["case"], row["impl"], row["seconds"] * 1e3, row["gflops"], row["note"]))
