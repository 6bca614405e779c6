"""Benchmark: 2-layer GRU and plain (tanh) RNN, 28 -> 128, 28 steps, batch 100, one
training step (forward over the sequence, a loss on the last output, backward, Adam),
here and in PyTorch's nn.GRU / nn.RNN (batch_first) when torch is importable, in
alternating blocks (see timing.py). At 1 and 2 threads (1 only with --quick).
bench_lstm.py times the LSTM with this module's code.

    python -m benchmarks.bench_rnn [--quick]
"""
import sys

import numpy as np

from benchmarks.timing import alternating_medians, comparison_rows, thread_counts, torch_or_none

BATCH, STEPS, INPUT, HIDDEN, LAYERS = 100, 28, 28, 128, 2
KINDS = ("GRU", "RNN")


def _training_step(model, optimizer, x):
    """One step in either library (the same API): the sequence, a loss on the last
    output, backward, Adam."""
    def step():
        outputs, _ = model(x)
        last = outputs[:, -1]
        loss = (last * last).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def _ours(kind, x_array):
    import autograd_core as ag
    import nn
    from nn import recurrent

    nn.init.manual_seed(0)
    model = getattr(recurrent, kind)(INPUT, HIDDEN, num_layers=LAYERS)
    return _training_step(model, nn.optim.Adam(model.parameters(), lr=1e-3), ag.from_numpy(x_array))


def _torch(torch, kind, x_array):
    torch.manual_seed(0)
    model = getattr(torch.nn, kind)(INPUT, HIDDEN, num_layers=LAYERS, batch_first=True)
    return _training_step(model, torch.optim.Adam(model.parameters(), lr=1e-3), torch.from_numpy(x_array))


def run(quick=False, kinds=KINDS):
    """Time one training step of each kind in each library; returns the result rows."""
    torch = torch_or_none()
    x = np.random.default_rng(0).standard_normal((BATCH, STEPS, INPUT)).astype(np.float32)
    rows = []
    for threads in thread_counts(quick, torch):
        for kind in kinds:
            steps = {"autograd_core": _ours(kind, x)}
            if torch is not None:
                steps["pytorch"] = _torch(torch, kind, x)
            medians = alternating_medians(steps, blocks=3 if quick else 10, calls_per_block=3)
            case = "2-layer %s %d->%d, %d steps, batch %d, fwd+bwd+Adam, threads=%d" % (
                kind, INPUT, HIDDEN, STEPS, BATCH, threads)
            rows += comparison_rows("%s_train_step" % kind.lower(), case, medians)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-70s %-14s %8.2f ms  %s" % (row["case"], row["impl"], row["seconds"] * 1e3, row["note"]))
