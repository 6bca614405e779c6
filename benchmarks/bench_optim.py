"""Benchmark: one Adam step (lr 1e-3) alone, over the seed CNN's parameters (conv
5x5x1x32 + 32, conv 5x5x32x64 + 64, dense 3136x1024 + 1024, dense 1024x10 + 10: 3.3M
float32 numbers), fresh gradients in place:

  autograd_core        nn.optim.Adam on the C backend: one fused C call for all eight
  autograd_core numpy  the same optimizer on the numpy reference (the update before the
                       fused kernel, and its fallback)
  pytorch              torch.optim.Adam with torch's defaults, when torch is importable
  pytorch fused        torch.optim.Adam(fused=True), torch's own fused CPU kernel, where
                       this torch has one (not the default on CPU)

at 1 and 2 threads (1 only with --quick), in alternating blocks (see timing.py).

    python -m benchmarks.bench_optim [--quick]
"""
import sys

import numpy as np

from benchmarks.timing import alternating_medians, comparison_rows, torch_or_none

# The seed CNN's parameters as autograd_core stores them (NHWC conv weights [kh, kw, in, out]).
SHAPES = [(5, 5, 1, 32), (32,), (5, 5, 32, 64), (64,), (7 * 7 * 64, 1024), (1024,), (1024, 10), (10,)]
CASE = "Adam step, seed CNN parameters (%.1fM float32)" % (sum(int(np.prod(s)) for s in SHAPES) / 1e6)


def _ours(backend, values, gradients):
    import nn
    from autograd_core import kernels

    params = [nn.Parameter(value.copy()) for value in values]
    for param, gradient in zip(params, gradients):
        param.grad = gradient.copy()
    optimizer = nn.optim.Adam(params, lr=1e-3)

    def step():
        with kernels.backend(backend):
            optimizer.step()

    return step


def _torch(torch, values, gradients, **options):
    params = [torch.nn.Parameter(torch.from_numpy(value.copy())) for value in values]
    for param, gradient in zip(params, gradients):
        param.grad = torch.from_numpy(gradient.copy())
    optimizer = torch.optim.Adam(params, lr=1e-3, **options)
    return optimizer.step


def _torch_fused_or_none(torch, values, gradients):
    """torch's fused Adam step, or None where this torch has no fused CPU kernel."""
    try:
        step = _torch(torch, values, gradients, fused=True)
        step()
    except (RuntimeError, TypeError, ValueError):
        return None
    return step


def run(quick=False):
    """Time an optimizer step of each implementation; returns the result rows."""
    import autograd_core as ag

    torch = torch_or_none()
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]
    gradients = [rng.standard_normal(shape).astype(np.float32) * 1e-2 for shape in SHAPES]
    previous_threads = ag.get_num_threads()
    rows = []
    try:
        for threads in ((1,) if quick else (1, 2)):
            ag.set_num_threads(threads)
            steps = {"autograd_core": _ours("c" if ag.kernels.extension_available() else "numpy", values, gradients),
                     "autograd_core numpy": _ours("numpy", values, gradients)}
            if torch is not None:
                torch.set_num_threads(threads)
                steps["pytorch"] = _torch(torch, values, gradients)
                fused = _torch_fused_or_none(torch, values, gradients)
                if fused is not None:
                    steps["pytorch fused"] = fused
            medians = alternating_medians(steps, blocks=4 if quick else 15, calls_per_block=5)
            note = "" if ag.kernels.extension_available() else "no C extension: numpy reference"
            rows += comparison_rows("optimizer_step", "%s, threads=%d" % (CASE, threads), medians, note=note)
    finally:
        ag.set_num_threads(previous_threads)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-52s %-20s %8.3f ms  %s" % (row["case"], row["impl"], row["seconds"] * 1e3, row["note"]))
