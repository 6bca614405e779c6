"""Benchmark: the engine's per-op overhead, the cost every op pays before any arithmetic.

A chain of LENGTH steps ``y = y * a + b`` over tiny [8, 8] float32 tensors (two ops per
step, so the arithmetic is negligible and what is timed is graph recording, dispatch and
the backward walk). Rows, each in microseconds per op:

  forward+backward   build the graph, then backward() through it (what training pays)
  forward            the same ops recorded for backward, no backward
  no_grad forward    the same ops under no_grad (inference: nothing recorded)

PyTorch runs the same chain when it is importable (alternating blocks, see timing.py).

    python -m benchmarks.bench_ops [--quick]
"""
import sys

import numpy as np

from benchmarks.timing import alternating_medians, torch_or_none

LENGTH, SIZE = 100, 8
OPS = 2 * LENGTH


def _chains(module, x0, a, b):
    """(forward+backward, forward, no_grad forward) callables for one library."""

    def forward():
        y = x0
        for _ in range(LENGTH):
            y = y * a + b
        return y

    def forward_backward():
        forward().sum().backward()

    def inference():
        with module.no_grad():
            forward()

    return {"forward+backward": forward_backward, "forward": forward, "no_grad forward": inference}


def run(quick=False):
    """Time the chain in each library; returns the result rows (seconds per op)."""
    import autograd_core as ag

    torch = torch_or_none()
    rng = np.random.default_rng(0)
    x0, a, b = (rng.standard_normal((SIZE, SIZE)).astype(np.float32) for _ in range(3))
    libraries = {"autograd_core": _chains(ag, ag.tensor(x0, requires_grad=True), ag.tensor(a, requires_grad=True),
                                          ag.tensor(b, requires_grad=True))}
    if torch is not None:
        libraries["pytorch"] = _chains(torch, *(torch.tensor(v, requires_grad=True) for v in (x0, a, b)))
    blocks = 5 if quick else 15
    rows = []
    for case in ("forward+backward", "forward", "no_grad forward"):
        medians = alternating_medians({name: chains[case] for name, chains in libraries.items()},
                                      blocks=blocks, calls_per_block=5)
        for name, (wall, cpu) in medians.items():
            note = "%.2f us CPU per op; %d ops of [%d, %d] float32 per call" % (cpu / OPS * 1e6, OPS, SIZE, SIZE)
            if name == "autograd_core" and "pytorch" in medians:
                note += "; %.2fx PyTorch's time" % (wall / medians["pytorch"][0])
            rows.append(dict(benchmark="per_op_overhead", case="%s, chain of y * a + b" % case, impl=name,
                             seconds=wall / OPS, note=note))
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-40s %-14s %7.2f us/op  %s" % (row["case"], row["impl"], row["seconds"] * 1e6, row["note"]))
