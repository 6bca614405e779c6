"""Benchmark: the engine's per-op overhead, the cost every op pays before any arithmetic.

A chain of LENGTH steps ``y = y * a + b`` (two ops per step) over float32 tensors of 1
and of 1,000 elements: at 1 element the arithmetic is negligible and what is timed is
graph recording, dispatch and the backward walk; at 1,000 the arithmetic starts to
count. Rows, each in microseconds per op:

  forward+backward   build the graph, then backward() through it (what training pays)
  forward            the same ops recorded for backward, no backward
  no_grad forward    the same ops under no_grad (inference: nothing recorded)

PyTorch runs the same chain when it is importable (alternating blocks, see timing.py).

    python -m benchmarks.bench_ops [--quick]
"""
import sys

import numpy as np

from benchmarks.timing import alternating_medians, comparison_rows, torch_or_none

LENGTH = 100
SIZES = (1, 1000)
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
    blocks = 5 if quick else 15
    rows = []
    for size in SIZES:
        # |a| < 1 keeps the 100-step chain (and the gradients it accumulates) finite
        x0, b = (rng.standard_normal(size).astype(np.float32) for _ in range(2))
        a = rng.uniform(0.5, 0.9, size).astype(np.float32)
        libraries = {"autograd_core": _chains(ag, *(ag.tensor(v, requires_grad=True) for v in (x0, a, b)))}
        if torch is not None:
            libraries["pytorch"] = _chains(torch, *(torch.tensor(v, requires_grad=True) for v in (x0, a, b)))
        for case in ("forward+backward", "forward", "no_grad forward"):
            medians = alternating_medians({name: chains[case] for name, chains in libraries.items()},
                                          blocks=blocks, calls_per_block=5)
            rows += comparison_rows("per_op_overhead", "%s, chain of y * a + b, %d element%s" % (
                case, size, "" if size == 1 else "s"), medians, per=OPS,
                note="per op; %d ops of %d float32 per call" % (OPS, size))
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-52s %-14s %7.2f us/op  %s" % (row["case"], row["impl"], row["seconds"] * 1e6, row["note"]))
