"""GEMM throughput: the project's C GEMM against np.matmul (numpy's BLAS) and
torch.matmul when torch is importable.

  square     float32 n x n @ n x n, n = 64 ... 2048, at the kernel (kernels.gemm) and
             through the engine (Tensor @ Tensor, where at small n the Python path
             decides); float64 at n = 1024 in the full run
  layers     the products training runs: M = 100 or 128 rows (the batch) against the
             layer sizes K, N of the seed CNN (3136 -> 1024 -> 10), the MLP and the VAE
             (784 -> 512), each in its three forms: forward x @ W, the input gradient
             g @ W^T and the weight gradient x^T @ g (transposes read in place)
  batched    64 products of 32 x 32 x 32 (batched_gemm, a Python loop, np.matmul)

GFLOP/s counts 2*m*n*k floating-point operations; each row reports the median of its
repeats (time.perf_counter around one call, output allocation included for all).

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


def _implementations(tensor_path=False):
    """(name, make(left, right, a, b, trans_a, trans_b) -> callable) pairs for what is
    available here; tensor_path adds the engine's Tensor @ (Python path included)."""
    def ours(left, right, a, b, trans_a, trans_b):
        return lambda: kernels.gemm(a, b, trans_a, trans_b)

    def ours_tensor(left, right, a, b, trans_a, trans_b):
        import autograd_core as ag
        x, y = ag.from_numpy(left), ag.from_numpy(right)
        return lambda: (x @ y).data

    def numpy_matmul(left, right, a, b, trans_a, trans_b):
        return lambda: np.matmul(left, right)

    implementations = [("c", ours)]
    if tensor_path:
        implementations.append(("c Tensor @", ours_tensor))
    implementations.append(("numpy", numpy_matmul))
    try:
        import torch
    except ImportError:
        return implementations, None
    torch.set_num_threads(kernels.get_num_threads())

    def torch_matmul(left, right, a, b, trans_a, trans_b):
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        ta, tb = (ta.t() if trans_a else ta), (tb.t() if trans_b else tb)
        return lambda: torch.matmul(ta, tb)

    implementations.append(("torch", torch_matmul))
    return implementations, "torch %s, %d threads" % (torch.__version__, torch.get_num_threads())


_SETTLE_SECONDS = 0.5


def _operands(m, k, n, form, dtype, seed):
    """(a, b, trans_a, trans_b) for an [m, k] @ [k, n] product in the given form:
    'x @ W' plain, 'g @ W^T' with b stored [n, k], 'x^T @ g' with a stored [k, m]."""
    rng = np.random.default_rng(seed)
    if form == "x^T @ g":
        return rng.standard_normal((k, m)).astype(dtype), rng.standard_normal((k, n)).astype(dtype), True, False
    if form == "g @ W^T":
        return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((n, k)).astype(dtype), False, True
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype), False, False


def _case(m, k, n, dtype, repeats, implementations, notes, form="x @ W", label=None):
    a, b, trans_a, trans_b = _operands(m, k, n, form, dtype, m * 7919 + k * 31 + n)
    # numpy and torch get the transposed views, as an engine's backward would hand them
    left, right = (a.T if trans_a else a), (b.T if trans_b else b)
    calls = [(name, make(left, right, a, b, trans_a, trans_b)) for name, make in implementations]
    expected = left.astype(np.float64) @ right.astype(np.float64)
    for name, call in calls:  # warm-up (page faults, thread pools) and a sanity check
        result = np.asarray(call())
        error = np.abs(result - expected).max() / np.abs(expected).max()
        if error > (1e-4 if dtype == np.float32 else 1e-10):
            raise AssertionError("bench_gemm: %s gives a wrong product for %s (relative error %g)"
                                 % (name, label or (m, k, n), error))
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
    flops = 2.0 * m * n * k
    case = label or "%s %dx%d @ %dx%d" % (np.dtype(dtype).name, m, k, k, n)
    seconds = {name: statistics.median(times[name]) for name, _ in calls}
    rows = []
    for name, _ in calls:
        note = notes.get(name.split()[0], "")
        if name != "numpy" and "numpy" in seconds:
            note = "; ".join(part for part in (note, "%.2fx numpy's GFLOP/s" % (seconds["numpy"] / seconds[name]))
                             if part)
        rows.append({"benchmark": "gemm", "case": case, "impl": name, "seconds": seconds[name],
                     "gflops": flops / seconds[name] / 1e9, "note": note})
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


# (M, K, N, what it is): the batch against the layer sizes training runs
LAYER_SHAPES = [
    (100, 3136, 1024, "seed CNN dense 1"),
    (100, 1024, 10, "seed CNN dense 2"),
    (100, 784, 200, "MLP layer 1"),
    (128, 784, 512, "VAE encoder"),
    (128, 512, 784, "VAE decoder"),
]
FORMS = ("x @ W", "g @ W^T", "x^T @ g")


def _layer_dimensions(m, k, n, form):
    """(m, k, n) of the product each form computes for a layer x [M, K] @ W [K, N]."""
    if form == "g @ W^T":   # grad_x [M, K] = grad_out [M, N] @ W^T [N, K]
        return m, n, k
    if form == "x^T @ g":   # grad_W [K, N] = x^T [K, M] @ grad_out [M, N]
        return k, m, n
    return m, k, n


def run(quick: bool) -> list:
    """Rows of {"benchmark", "case", "impl", "seconds" (median), "gflops", "note"}."""
    with kernels.backend("c" if kernels.extension_available() else "numpy"):
        plain, torch_note = _implementations()
        with_tensor, _ = _implementations(tensor_path=True)
        notes = {"c": "%s, %d threads, SIMD %s" % (
                     "C extension" if kernels.extension_available() else "extension NOT built: numpy fallback",
                     kernels.get_num_threads(), kernels.SIMD_LEVELS[kernels.get_simd_level()]),
                 "numpy": _blas_name(), "torch": torch_note or ""}
        sizes = [64, 256, 1024] if quick else [64, 128, 256, 512, 1024, 2048]
        rows = []
        for n in sizes:
            repeats = 3 if quick else max(5, min(200, int(2e10 / n ** 3)))
            rows += _case(n, n, n, np.float32, repeats, with_tensor if n <= 512 else plain, notes)
        shapes = LAYER_SHAPES[:1] if quick else LAYER_SHAPES
        for m, k, n, what in shapes:
            for form in FORMS:
                dims = _layer_dimensions(m, k, n, form)
                label = "float32 %s, %s: %dx%d @ %dx%d" % (what, form, dims[0], dims[1], dims[1], dims[2])
                rows += _case(*dims, np.float32, 3 if quick else 20, plain, notes, form=form, label=label)
        if not quick:
            rows += _case(1024, 1024, 1024, np.float64, 5, plain, notes)
            rows += _batched_case(64, 32, 20)
    return rows


if __name__ == "__main__":
    import sys
    for row in run(quick="--quick" in sys.argv):
        print("%-6s %-26s %-6s %9.3f ms %8.1f GFLOP/s  %s" % (
            row["benchmark"], row["case"], row["impl"], row["seconds"] * 1e3, row["gflops"], row.get("note", "")))
