"""Benchmark: a 2-layer LSTM (28 -> 128), 28 steps, batch 100, one training step
(forward + backward + Adam), here and in PyTorch's nn.LSTM when torch is installed.

Contract: ``run(quick: bool) -> list[dict]`` with keys benchmark, case, impl, seconds
(the median of repeated time.perf_counter measurements) and an optional note.
Run alone: ``python benchmarks/bench_lstm.py [--quick]``.
"""
import statistics
import sys
import time

import numpy as np

BATCH, STEPS, INPUT, HIDDEN, LAYERS = 100, 28, 28, 128, 2
CASE = "2-layer LSTM %d->%d, %d steps, batch %d, fwd+bwd+Adam" % (INPUT, HIDDEN, STEPS, BATCH)


def _median_seconds(step, repeats, warmup=2):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _ours(x_array, repeats):
    import autograd_core as ag
    import nn
    from nn.recurrent import LSTM

    nn.init.manual_seed(0)
    model = LSTM(INPUT, HIDDEN, num_layers=LAYERS)
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    x = ag.from_numpy(x_array)

    def step():
        outputs, _ = model(x)
        loss = (outputs[:, -1] * outputs[:, -1]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return _median_seconds(step, repeats)


def _torch(x_array, repeats):
    import torch

    torch.manual_seed(0)
    model = torch.nn.LSTM(INPUT, HIDDEN, num_layers=LAYERS, batch_first=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(x_array)

    def step():
        outputs, _ = model(x)
        loss = (outputs[:, -1] * outputs[:, -1]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return _median_seconds(step, repeats), torch.get_num_threads()


def run(quick=False):
    """Time one training step of each implementation; returns the result rows."""
    import autograd_core as ag

    repeats = 5 if quick else 30
    x = np.random.default_rng(0).standard_normal((BATCH, STEPS, INPUT)).astype(np.float32)
    rows = [dict(benchmark="lstm_train_step", case=CASE, impl="autograd_core", seconds=_ours(x, repeats),
                 note="backend=%s threads=%d" % (ag.get_backend(), ag.get_num_threads()))]
    try:
        import torch  # noqa: F401
    except ImportError:
        rows.append(dict(benchmark="lstm_train_step", case=CASE, impl="pytorch", seconds=float("nan"),
                         note="torch not installed"))
    else:
        seconds, threads = _torch(x, repeats)
        rows.append(dict(benchmark="lstm_train_step", case=CASE, impl="pytorch", seconds=seconds,
                         note="torch %s threads=%d" % (torch.__version__, threads)))
    ours, theirs = rows[0]["seconds"], rows[1]["seconds"]
    if theirs == theirs:  # not NaN
        rows[0]["note"] += "; %.2fx PyTorch's time" % (ours / theirs)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-16s %-14s %8.2f ms  %s" % (row["benchmark"], row["impl"], row["seconds"] * 1e3, row.get("note", "")))
