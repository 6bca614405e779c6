"""GEMM throughput: the project's C GEMM against np.matmul (numpy's BLAS) and
torch.matmul when torch is importable.

  square     float32 n x n @ n x n, n = 64 ... 2048, at the kernel (kernels.gemm) and
             through the engine (Tensor @ Tensor, where at small n the Python path
             decides); float64 at n = 1024 in the full run
  layers     the products training runs: M = 100 or 128 rows (the batch) against the
             layer sizes K, N of the seed CNN (3136 -> 1024 -> 10), the MLP and the VAE
             (784 -> 512), each in its three forms: forward x @ W, the input gradient
             g @ W^T and the weight gradient x^T @ g (transposes read in place)
  batched    64 products of 32 x 32 x 32 (batched_gemm, a Python loop, np.matmul), in
             each transpose form, float32 and float64

GFLOP/s counts 2*m*n*k floating-point operations; each row reports the median over
blocks of back-to-back calls (time.perf_counter around a block of ~20 ms, divided by its
calls; output allocation included for all).

Each library runs in a process of its own (`python -m benchmarks.bench_gemm --worker
NAME`), in two rounds in opposite orders, and a row takes the median of both rounds.
Why not one process: run that way (each library's single calls timed after a 0.5 s
pause), the small and layer shapes read 2-5x slower than each library alone, ours and
torch's alike, and which one suffered changed from run to run. Two effects that no user
of one library meets were mixed in: (1) torch's wheel bundles a libgomp.so.1 with the
system's soname, so in one process both libraries share whichever OpenMP runtime loaded
first, with that one's wait policy (this package loads libgomp with GOMP_SPINCOUNT=10000;
torch alone spins libgomp's default 300,000): the library imported second was timed
under the first one's threading; (2) the pools' idle workers (OpenBLAS's, OpenMP's) go
to sleep at different times, and a single call timed right after a pause also timed its
pool waking up. On a loaded 2-core machine these come on top of the load's own noise.

    python -m benchmarks --only gemm [--quick]
"""
import json
import os
import statistics
import subprocess
import sys
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



# The libraries, each timed in a process of its own.
LIBRARIES = ("c", "c Tensor @", "numpy", "torch")
# Seconds of calls per timed block, and blocks per case and round.
_BLOCK_SECONDS = 0.02
_BLOCKS = 7


def _make_call(name, left, right, a, b, trans_a, trans_b):
    """A zero-argument callable computing op(a) @ op(b) with library `name`; left/right
    are the transposed views (what numpy and torch are handed, as an engine's backward
    would hand them), a/b the stored arrays (what kernels.gemm reads in place)."""
    if name == "c":
        return lambda: kernels.gemm(a, b, trans_a, trans_b)
    if name == "c Tensor @":
        import autograd_core as ag
        x, y = ag.from_numpy(left), ag.from_numpy(right)
        return lambda: (x @ y).data
    if name == "numpy":
        return lambda: np.matmul(left, right)
    import torch
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ta, tb = (ta.t() if trans_a else ta), (tb.t() if trans_b else tb)
    return lambda: torch.matmul(ta, tb)


def _operands(m, k, n, form, dtype, seed):
    """(a, b, trans_a, trans_b) for an [m, k] @ [k, n] product in the given form:
    'x @ W' plain, 'g @ W^T' with b stored [n, k], 'x^T @ g' with a stored [k, m]."""
    rng = np.random.default_rng(seed)
    if form == "x^T @ g":
        return rng.standard_normal((k, m)).astype(dtype), rng.standard_normal((k, n)).astype(dtype), True, False
    if form == "g @ W^T":
        return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((n, k)).astype(dtype), False, True
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype), False, False


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


def _time_blocks(call, blocks):
    """Per-call seconds of `blocks` blocks of back-to-back calls, ~_BLOCK_SECONDS each."""
    start = time.perf_counter()
    call()
    calls = max(1, int(_BLOCK_SECONDS / max(time.perf_counter() - start, 1e-7)))
    for _ in range(min(calls, 20)):  # warm: page faults, the thread pool awake
        call()
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        times.append((time.perf_counter() - start) / calls)
    return times


def _case_time(name, m, k, n, dtype, form, label, blocks):
    """Per-call seconds of library `name` on one product, checked against float64 (numpy's
    BLAS, single-threaded outside the numpy worker: see _run_worker)."""
    a, b, trans_a, trans_b = _operands(m, k, n, form, dtype, m * 7919 + k * 31 + n)
    left, right = (a.T if trans_a else a), (b.T if trans_b else b)
    call = _make_call(name, left, right, a, b, trans_a, trans_b)
    seconds = _time_blocks(call, blocks)
    expected = left.astype(np.float64) @ right.astype(np.float64)
    error = np.abs(np.asarray(call()) - expected).max() / np.abs(expected).max()
    if error > (1e-4 if dtype == np.float32 else 1e-10):
        raise AssertionError("bench_gemm: %s gives a wrong product for %s (relative error %g)"
                             % (name, label, error))
    return seconds


BATCHED = (64, 32)  # 64 products of 32 x 32 x 32
# (dtype, trans_a, trans_b) of the batched rows: every transpose form (the engine's
# backward hands batched_gemm transposed views), in float32 and float64
BATCHED_FORMS = [(dtype, trans_a, trans_b) for dtype in (np.float32, np.float64)
                 for trans_a in (False, True) for trans_b in (False, True)]


def _batched_label(dtype, trans_a, trans_b):
    batch, n = BATCHED
    return "%s %d x (%dx%d%s @ %dx%d%s)" % (np.dtype(dtype).name, batch, n, n, "^T" if trans_a else "",
                                           n, n, "^T" if trans_b else "")


def _batched_calls(name):
    """{(case, row name): call} for the batches of small products, where per-call
    overhead matters: one batched C call (and, for the plain float32 batch, a Python loop
    of 2-D C calls), or np.matmul on the 3-D views."""
    batch, n = BATCHED
    calls = {}
    for dtype, trans_a, trans_b in BATCHED_FORMS:
        rng = np.random.default_rng(batch * n + 2 * trans_a + trans_b)
        a = rng.standard_normal((batch, n, n)).astype(dtype)  # stored as op(a) is read: a^T when trans_a
        b = rng.standard_normal((batch, n, n)).astype(dtype)
        left = np.swapaxes(a, 1, 2) if trans_a else a
        right = np.swapaxes(b, 1, 2) if trans_b else b
        label = _batched_label(dtype, trans_a, trans_b)
        if name == "numpy":
            calls[label, "numpy"] = lambda left=left, right=right: np.matmul(left, right)
        if name != "c":
            continue
        expected = np.matmul(left.astype(np.float64), right.astype(np.float64))
        np.testing.assert_allclose(kernels.batched_gemm(a, b, trans_a, trans_b), expected, rtol=1e-4, atol=1e-4)
        calls[label, "c batched_gemm"] = (lambda a=a, b=b, trans_a=trans_a, trans_b=trans_b:
                                          kernels.batched_gemm(a, b, trans_a, trans_b))
        if dtype == np.float32 and not trans_a and not trans_b:
            calls[label, "c gemm loop"] = lambda a=a, b=b: [kernels.gemm(a[i], b[i]) for i in range(batch)]
    return calls


def _cases(quick):
    """(label, m, k, n, dtype, form, libraries) of every product the benchmark times."""
    sizes = [64, 256, 1024] if quick else [64, 128, 256, 512, 1024, 2048]
    cases = []
    for n in sizes:  # Tensor @ where the Python path is a visible part of the time
        libraries = LIBRARIES if n <= 512 else ("c", "numpy", "torch")
        cases.append(("float32 %dx%d @ %dx%d" % (n, n, n, n), n, n, n, np.float32, "x @ W", libraries))
    for m, k, n, what in (LAYER_SHAPES[:1] if quick else LAYER_SHAPES):
        for form in FORMS:
            dims = _layer_dimensions(m, k, n, form)
            label = "float32 %s, %s: %dx%d @ %dx%d" % (what, form, dims[0], dims[1], dims[1], dims[2])
            cases.append((label,) + dims + (np.float32, form, ("c", "numpy", "torch")))
    if not quick:
        cases.append(("float64 1024x1024 @ 1024x1024", 1024, 1024, 1024, np.float64, "x @ W", ("c", "numpy", "torch")))
    return cases


def _worker(name, quick, threads):
    """In library `name`'s own process: {"times": {"case|row": [seconds]}, "note": str}."""
    note = ""
    if name == "torch":
        import torch
        torch.set_num_threads(threads)
        note = "torch %s, %d threads" % (torch.__version__, torch.get_num_threads())
    blocks = 3 if quick else _BLOCKS
    times = {}
    with kernels.backend("c" if kernels.extension_available() else "numpy"):
        for label, m, k, n, dtype, form, libraries in _cases(quick):
            if name in libraries:
                times[label + "|" + name] = _case_time(name, m, k, n, dtype, form, label, blocks)
        if not quick:
            for (label, row), call in _batched_calls(name).items():
                times[label + "|" + row] = _time_blocks(call, blocks)
    return {"times": times, "note": note}


def _run_worker(name, quick):
    """_worker(name) in a fresh interpreter: its answer, or None when torch is missing."""
    if name == "torch":
        import importlib.util
        if importlib.util.find_spec("torch") is None:
            return None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if name != "numpy":
        # there numpy's BLAS only computes the float64 references: on one thread, since its
        # threads spin for a while after each call and took a core from the timed calls that
        # followed (2-thread products of 0.02-0.6 ms read 2-20x slower, at random)
        env["OPENBLAS_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "benchmarks.bench_gemm", "--worker", name,
               "--threads", str(kernels.get_num_threads())] + (["--quick"] if quick else [])
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("bench_gemm: the %s worker failed:\n%s" % (name, done.stderr[-2000:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list:
    """Rows of {"benchmark", "case", "impl", "seconds" (median), "gflops", "note"}."""
    notes = {"c": "%s, %d threads, SIMD %s" % (
                 "C extension" if kernels.extension_available() else "extension NOT built: numpy fallback",
                 kernels.get_num_threads(), kernels.SIMD_LEVELS[kernels.get_simd_level()]),
             "numpy": _blas_name()}
    times = {}
    for order in (LIBRARIES, LIBRARIES[::-1]):  # two rounds, opposite orders: load drift evens out
        for name in order:
            answer = _run_worker(name, quick)
            if answer is None:
                continue
            if answer["note"]:
                notes[name] = answer["note"]
            for key, values in answer["times"].items():
                times.setdefault(key, []).extend(values)
    work = {label: 2.0 * m * n * k for label, m, k, n, _, _, _ in _cases(quick)}
    batch, n = BATCHED
    seconds = {key: statistics.median(values) for key, values in times.items()}
    cases = list(dict.fromkeys(key.split("|")[0] for key in times))
    rows = []
    for case in cases:
        for name in ("c", "c Tensor @", "c batched_gemm", "c gemm loop", "numpy", "torch"):
            key = case + "|" + name
            if key not in seconds:
                continue
            note = notes.get(name.split()[0], "")
            if name != "numpy" and case + "|numpy" in seconds:
                note = "; ".join(part for part in (
                    note, "%.2fx numpy's GFLOP/s" % (seconds[case + "|numpy"] / seconds[key])) if part)
            rows.append({"benchmark": "gemm", "case": case, "impl": name, "seconds": seconds[key],
                         "gflops": work.get(case, 2.0 * batch * n ** 3) / seconds[key] / 1e9, "note": note})
    return rows


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker = sys.argv[sys.argv.index("--worker") + 1]
        threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else kernels.get_num_threads()
        kernels.set_num_threads(threads)
        print(json.dumps(_worker(worker, "--quick" in sys.argv, threads)))
    else:
        for row in run(quick="--quick" in sys.argv):
            print("%-6s %-26s %-6s %9.3f ms %8.1f GFLOP/s  %s" % (
                row["benchmark"], row["case"], row["impl"], row["seconds"] * 1e3, row["gflops"],
                row.get("note", "")))
