"""Benchmark: a 2-layer LSTM (28 -> 128), 28 steps, batch 100, one training step
(forward + backward + Adam), here and in PyTorch's nn.LSTM when torch is installed.

The same measurement as bench_rnn.py's GRU and RNN rows (its code, for kind "LSTM"):
both libraries at the same thread count (1, and 2 unless quick), in alternating blocks
with a pause between them (see timing.py); rows give the median wall and CPU time per
step.

    python -m benchmarks.bench_lstm [--quick]
"""
import sys

from benchmarks import bench_rnn


def run(quick=False):
    """Time one training step of each implementation; returns the result rows."""
    return bench_rnn.run(quick, kinds=("LSTM",))


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-70s %-14s %8.1f ms  %s" % (row["case"], row["impl"], row["seconds"] * 1e3, row["note"]))
