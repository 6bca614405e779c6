"""conv2d and max-pool forward+backward on the seed CNN's layers at batch 100.

Implementations timed:
  c       the C kernels through the bridge (Winograd F(4x4, 5x5) for stride-1 5x5
          convolutions past its break-even, direct AVX-512 kernels where they apply, else
          tiled im2col + the project's GEMM); GFLOP/s count a direct convolution's
          multiply-adds, so Winograd shows as "effective" rates above the core's peak
  c-no-winograd  the same with AUTOGRAD_CORE_WINOGRAD=0 (the "conv2d pass" rows only:
          each pass before and after Winograd, timed alternately in one process)
  numpy   the numpy reference through the bridge (im2col + numpy's BLAS matmul)
  naive   textbook loops over output pixels (numpy only inside one window); timed on a
          slice of the batch and scaled linearly to the full batch (see "note")
  torch   torch.nn.functional on NCHW-contiguous tensors, torch.set_num_threads matched
          to ours (skipped when torch is not importable)

Every conv case computes the output, the input gradient and the weight gradient (and
"conv2d pass" rows time each pass on its own: torch's backward is one call). The
machine may be shared, so c and torch run alternately, repeat after repeat, and each gets
the median of its wall times and of its CPU times (all threads of the process); the
torch row's note gives c / torch for both.

    python -m benchmarks.bench_conv [--quick] [--threads N]
"""
import os
import statistics
import sys
import time

import numpy as np

from autograd_core import kernels
from benchmarks.timing import alternating_medians

BATCH = 100

CONV_CASES = [
    # name, input [n, h, w, c_in], weight [kh, kw, c_in, c_out]
    ("conv1 28x28x1->32 5x5 same", (BATCH, 28, 28, 1), (5, 5, 1, 32)),
    ("conv2 14x14x32->64 5x5 same", (BATCH, 14, 14, 32), (5, 5, 32, 64)),
]
POOL_CASES = [
    ("maxpool 2x2/2 on 28x28x32", (BATCH, 28, 28, 32)),
    ("maxpool 2x2/2 on 14x14x64", (BATCH, 14, 14, 64)),
]


def _alternating(functions, repeats):
    """{name: (median wall seconds, median CPU seconds)}, the functions run in turn."""
    return alternating_medians(functions, blocks=repeats, warmup=1, pause=0)


def _median_seconds(fn, repeats):
    fn()  # warm-up: first-touch page faults, thread pool start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- textbook implementations --------------------------------------------------------

def _naive_conv_forward_backward(x, w, grad_y, pads):
    (top, bottom), (left, right) = pads
    kernel_h, kernel_w = w.shape[:2]
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    n, out_h, out_w, _ = grad_y.shape
    y = np.empty(grad_y.shape, dtype=x.dtype)
    grad_xp = np.zeros_like(xp)
    grad_w = np.zeros_like(w)
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                window = xp[b, i:i + kernel_h, j:j + kernel_w, :]
                y[b, i, j] = np.tensordot(window, w, axes=3)
                g = grad_y[b, i, j]
                grad_w += window[..., None] * g
                grad_xp[b, i:i + kernel_h, j:j + kernel_w, :] += w @ g
    return y, grad_xp[:, top:top + x.shape[1], left:left + x.shape[2]], grad_w


def _naive_max_pool_forward_backward(x, grad_y, size):
    n, out_h, out_w, channels = grad_y.shape
    y = np.empty(grad_y.shape, dtype=x.dtype)
    grad_x = np.zeros_like(x)
    lanes = np.arange(channels)
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                window = x[b, i * size:(i + 1) * size, j * size:(j + 1) * size, :].reshape(-1, channels)
                where = window.argmax(axis=0)
                y[b, i, j] = window[where, lanes]
                grad_x[b, i * size + where // size, j * size + where % size, lanes] += grad_y[b, i, j]
    return y, grad_x


# ---- one case, every implementation ----------------------------------------------------

def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _without_winograd(fn):
    """fn with Winograd turned off (the C driver reads AUTOGRAD_CORE_WINOGRAD per call)."""
    def call():
        previous = os.environ.get("AUTOGRAD_CORE_WINOGRAD")
        os.environ["AUTOGRAD_CORE_WINOGRAD"] = "0"
        try:
            fn()
        finally:
            if previous is None:
                del os.environ["AUTOGRAD_CORE_WINOGRAD"]
            else:
                os.environ["AUTOGRAD_CORE_WINOGRAD"] = previous
    return call


def _conv_rows(name, x_shape, w_shape, quick, repeats):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) * 0.1).astype(np.float32)
    pads = kernels.resolve_padding("same", x_shape[1:3], w_shape[:2], (1, 1))
    y_shape = x_shape[:3] + (w_shape[3],)
    grad_y = rng.standard_normal(y_shape).astype(np.float32)
    flops = 3 * 2 * np.prod(y_shape) * np.prod(w_shape[:3])
    rows = []

    def bridge():
        kernels.conv2d_forward(x, w, 1, "same")
        kernels.conv2d_backward_input(grad_y, w, x_shape, 1, "same")
        kernels.conv2d_backward_weight(x, grad_y, w_shape, 1, "same")

    def c_step():
        with kernels.backend("c"):
            bridge()

    timed = {}
    if kernels.extension_available():
        timed["c"] = c_step
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(kernels.get_num_threads())
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_()
        wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))).requires_grad_()
        gt = torch.from_numpy(np.ascontiguousarray(grad_y.transpose(0, 3, 1, 2)))

        def torch_step():
            xt.grad = wt.grad = None
            torch.nn.functional.conv2d(xt, wt, padding=(pads[0][0], pads[1][0])).backward(gt)

        timed["torch"] = torch_step
    # where the time goes: each pass on its own, c and torch again alternately
    passes = {}
    if "c" in timed:
        passes["c forward"] = lambda: kernels.conv2d_forward(x, w, 1, "same")
        passes["c backward input"] = lambda: kernels.conv2d_backward_input(grad_y, w, x_shape, 1, "same")
        passes["c backward weight"] = lambda: kernels.conv2d_backward_weight(x, grad_y, w_shape, 1, "same")
        for what in ("forward", "backward input", "backward weight"):
            passes["c-no-winograd " + what] = _without_winograd(passes["c " + what])
    if "torch" in timed:
        xd, wd = xt.detach(), wt.detach()
        passes["torch forward"] = lambda: torch.nn.functional.conv2d(xd, wd, padding=(pads[0][0], pads[1][0]))
        passes["torch backward (input and weight)"] = lambda: torch.ops.aten.convolution_backward(
            gt, xd, wd, None, [1, 1], [pads[0][0], pads[1][0]], [1, 1], False, [0, 0], 1, [True, True, False])
    medians = _alternating(timed, repeats)
    with kernels.backend("c"):
        for pass_name, (seconds, cpu_seconds) in _alternating(passes, repeats).items():
            impl, what = pass_name.split(" ", 1)
            rows.append(dict(benchmark="conv2d pass", case=name + ": " + what, impl=impl,
                             seconds=seconds, cpu_seconds=cpu_seconds,
                             gflops=flops * (2 if "(input and weight)" in what else 1) / 3 / seconds / 1e9))
    if "c" in medians:
        seconds, cpu_seconds = medians["c"]
        rows.append(dict(benchmark="conv2d fwd+bwd", case=name, impl="c", seconds=seconds,
                         cpu_seconds=cpu_seconds, gflops=flops / seconds / 1e9,
                         note="%d threads, interleaved with torch" % kernels.get_num_threads()))

    with kernels.backend("numpy"):
        seconds = _median_seconds(bridge, repeats)
    rows.append(dict(benchmark="conv2d fwd+bwd", case=name, impl="numpy", seconds=seconds,
                     gflops=flops / seconds / 1e9))

    part = 1 if quick else 4
    seconds = _median_seconds(lambda: _naive_conv_forward_backward(x[:part], w, grad_y[:part], pads), 1)
    seconds *= x_shape[0] / part
    rows.append(dict(benchmark="conv2d fwd+bwd", case=name, impl="naive", seconds=seconds,
                     gflops=flops / seconds / 1e9,
                     note="textbook loops over output pixels timed on %d of %d images, scaled linearly"
                          % (part, x_shape[0])))

    if "torch" in medians:
        seconds, cpu_seconds = medians["torch"]
        note = "torch %s, %d threads, NCHW" % (torch.__version__, torch.get_num_threads())
        if "c" in medians:
            note += "; c / torch: wall %.3f, CPU %.3f" % (medians["c"][0] / seconds,
                                                          medians["c"][1] / cpu_seconds)
        rows.append(dict(benchmark="conv2d fwd+bwd", case=name, impl="torch", seconds=seconds,
                         cpu_seconds=cpu_seconds, gflops=flops / seconds / 1e9, note=note))
    return rows


def _pool_rows(name, x_shape, quick, repeats):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(np.float32)
    y_shape = (x_shape[0], x_shape[1] // 2, x_shape[2] // 2, x_shape[3])
    grad_y = rng.standard_normal(y_shape).astype(np.float32)
    rows = []

    def bridge():
        _, argmax = kernels.max_pool2d_forward(x, 2, 2, 0)
        kernels.max_pool2d_backward(grad_y, argmax, x_shape)

    for impl in ("c", "numpy"):
        if impl == "c" and not kernels.extension_available():
            continue
        with kernels.backend(impl):
            seconds = _median_seconds(bridge, repeats)
        rows.append(dict(benchmark="max_pool2d fwd+bwd", case=name, impl=impl, seconds=seconds))

    part = 2 if quick else 10
    seconds = _median_seconds(lambda: _naive_max_pool_forward_backward(x[:part], grad_y[:part], 2), 1)
    rows.append(dict(benchmark="max_pool2d fwd+bwd", case=name, impl="naive",
                     seconds=seconds * x_shape[0] / part,
                     note="textbook loops over output pixels timed on %d of %d images, scaled linearly"
                          % (part, x_shape[0])))

    torch = _torch()
    if torch is not None:
        torch.set_num_threads(kernels.get_num_threads())
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_()
        gt = torch.from_numpy(np.ascontiguousarray(grad_y.transpose(0, 3, 1, 2)))

        def torch_step():
            xt.grad = None
            torch.nn.functional.max_pool2d(xt, 2, 2).backward(gt)

        rows.append(dict(benchmark="max_pool2d fwd+bwd", case=name, impl="torch",
                         seconds=_median_seconds(torch_step, repeats),
                         note="torch %s, %d threads, NCHW" % (torch.__version__, torch.get_num_threads())))
    return rows


def run(quick: bool) -> list:
    """Rows of {"benchmark", "case", "impl", "seconds" (median), "cpu_seconds"?, "gflops"?,
    "note"?}."""
    repeats = 3 if quick else 15
    rows = []
    for name, x_shape, w_shape in CONV_CASES:
        rows += _conv_rows(name, x_shape, w_shape, quick, repeats)
    for name, x_shape in POOL_CASES:
        rows += _pool_rows(name, x_shape, quick, repeats)
    return rows


if __name__ == "__main__":
    if "--threads" in sys.argv:
        kernels.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]))
    results = run(quick="--quick" in sys.argv)
    print("threads: %d" % kernels.get_num_threads())
    for r in results:
        print("%-20s %-45s %-6s %10.3f ms %12s %8s  %s" % (
            r["benchmark"], r["case"], r["impl"], r["seconds"] * 1e3,
            "(CPU %.1f ms)" % (r["cpu_seconds"] * 1e3) if "cpu_seconds" in r else "",
            "%.1f GF" % r["gflops"] if "gflops" in r else "", r.get("note", "")))
