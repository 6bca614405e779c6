"""Benchmark: a 2-layer LSTM (28 -> 128), 28 steps, batch 100, one training step
(forward + backward + Adam), here and in PyTorch's nn.LSTM when torch is installed.

Contract: ``run(quick: bool) -> list[dict]`` with keys benchmark, case, impl, seconds
(the median of repeated time.perf_counter measurements) and an optional note.
Run alone: ``python benchmarks/bench_lstm.py [--quick]``.

Both implementations run at the same thread count (1, and 2 unless quick), and their
repeats are interleaved so that a machine shared with other jobs slows both alike. The
note also gives the median CPU time per step (time.process_time), which contention
inflates less than wall time.
"""
import statistics
import sys
import time

import numpy as np

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


def _set_threads(threads, have_torch):
    import autograd_core as ag
    ag.set_num_threads(threads)
    if have_torch:
        import torch
        torch.set_num_threads(threads)


def run(quick=False):
    """Time one training step of each implementation; returns the result rows."""
    import autograd_core as ag

    try:
        import torch
    except ImportError:
        torch = None
    repeats = 7 if quick else 25
    x = np.random.default_rng(0).standard_normal((BATCH, STEPS, INPUT)).astype(np.float32)
    previous_threads = ag.get_num_threads()
    rows = []
    try:
        for threads in ((1,) if quick else (1, 2)):
            _set_threads(threads, torch is not None)
            steps = {"autograd_core": _ours(x)}
            if torch is not None:
                steps["pytorch"] = _torch(x)
            wall = {name: [] for name in steps}
            cpu = {name: [] for name in steps}
            for repeat in range(repeats + 2):
                for name, step in steps.items():
                    start_wall, start_cpu = time.perf_counter(), time.process_time()
                    step()
                    if repeat >= 2:  # the first two are warm-up
                        wall[name].append(time.perf_counter() - start_wall)
                        cpu[name].append(time.process_time() - start_cpu)
            case = "%s, threads=%d" % (CASE, threads)
            for name in steps:
                note = "median CPU %.1f ms; backend=%s" % (statistics.median(cpu[name]) * 1e3, ag.get_backend()) \
                    if name == "autograd_core" else "median CPU %.1f ms; torch %s" % (
                        statistics.median(cpu[name]) * 1e3, torch.__version__)
                rows.append(dict(benchmark="lstm_train_step", case=case, impl=name,
                                 seconds=statistics.median(wall[name]), note=note))
            if torch is not None:
                ours, theirs = rows[-2], rows[-1]
                ours["note"] += "; %.2fx PyTorch's wall time, %.2fx its CPU time" % (
                    ours["seconds"] / theirs["seconds"], statistics.median(cpu["autograd_core"])
                    / statistics.median(cpu["pytorch"]))
            else:
                rows.append(dict(benchmark="lstm_train_step", case=case, impl="pytorch", seconds=float("nan"),
                                 note="torch not installed"))
    finally:
        ag.set_num_threads(previous_threads)
    return rows


if __name__ == "__main__":
    import os
    if hasattr(os, "getloadavg"):  # the machine may be shared: say how busy it was
        print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    for row in run(quick="--quick" in sys.argv):
        print("%-52s %-14s %8.1f ms  %s" % (row["case"][-40:], row["impl"], row["seconds"] * 1e3, row.get("note", "")))
    if hasattr(os, "getloadavg"):
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
