"""Benchmark: a 2-layer LSTM (28 -> 128), 28 steps, batch 100, one training step
(forward + backward + Adam), here and in PyTorch's nn.LSTM when torch is installed.

Contract: ``run(quick: bool) -> list[dict]`` with keys benchmark, case, impl, seconds
(the median of repeated time.perf_counter measurements) and an optional note.
Run alone: ``python benchmarks/bench_lstm.py [--quick]``.

Both implementations run at the same thread count (1, and 2 unless quick), in
alternating blocks with a pause between them (see timing.py); rows give the median wall
and CPU time per step (time.process_time, which contention inflates less).
"""
import sys

import numpy as np

from benchmarks.timing import alternating_medians, comparison_rows, torch_or_none

BATCH, STEPS, INPUT, HIDDEN, LAYERS = 100, 28, 28, 128, 2
CASE = "2-layer LSTM %d->%d, %d steps, batch %d, fwd+bwd+Adam" % (INPUT, HIDDEN, STEPS, BATCH)


def _ours(x_array):
    import autograd_core as ag
    import nn
    from nn.recurrent import LSTM

    nn.init.manual_seed(0)
    model = LSTM(INPUT, HIDDEN, num_layers=LAYERS)
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    x = ag.from_numpy(x_array)

    def step():
        outputs, _ = model(x)
        last = outputs[:, -1]
        loss = (last * last).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def _torch(x_array):
    import torch

    torch.manual_seed(0)
    model = torch.nn.LSTM(INPUT, HIDDEN, num_layers=LAYERS, batch_first=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(x_array)

    def step():
        outputs, _ = model(x)
        last = outputs[:, -1]
        loss = (last * last).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def run(quick=False):
    """Time one training step of each implementation; returns the result rows."""
    import autograd_core as ag

    torch = torch_or_none()
    x = np.random.default_rng(0).standard_normal((BATCH, STEPS, INPUT)).astype(np.float32)
    previous_threads = ag.get_num_threads()
    rows = []
    try:
        for threads in ((1,) if quick else (1, 2)):
            ag.set_num_threads(threads)
            steps = {"autograd_core": _ours(x)}
            if torch is not None:
                torch.set_num_threads(threads)
                steps["pytorch"] = _torch(x)
            medians = alternating_medians(steps, blocks=3 if quick else 10, calls_per_block=3)
            rows += comparison_rows("lstm_train_step", "%s, threads=%d, backend %s"
                                    % (CASE, threads, ag.get_backend()), medians)
    finally:
        ag.set_num_threads(previous_threads)
    return rows


if __name__ == "__main__":
    import os
    if hasattr(os, "getloadavg"):  # the machine may be shared: say how busy it was
        print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    for row in run(quick="--quick" in sys.argv):
        print("%-52s %-14s %8.1f ms  %s" % (row["case"][-40:], row["impl"], row["seconds"] * 1e3, row["note"]))
    if hasattr(os, "getloadavg"):
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
