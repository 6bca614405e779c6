"""Benchmark: the seed CNN (the lecture's Fashion-MNIST network) end to end, batch 100.

conv 5x5x32 'same' + ReLU, max-pool 2, conv 5x5x64 'same' + ReLU, max-pool 2, flatten,
dense 3136 -> 1024 + ReLU, dropout 0.4, dense 1024 -> 10 (as `autograd-core train cnn`
builds it), on random [100, 28, 28, 1] images:

  train step   forward, cross-entropy, backward, Adam step (lr 1e-3)
  inference    eval mode, no_grad, forward only

at 1 and 2 threads (1 only with --quick). PyTorch runs the same network (NCHW, its
default layout) when it is importable, in alternating blocks (see timing.py).

    python -m benchmarks.bench_cnn [--quick]
"""
import sys

import numpy as np

from benchmarks.timing import alternating_medians, comparison_rows, thread_counts, torch_or_none

BATCH, CLASSES = 100, 10
CASE = "seed CNN, batch %d" % BATCH


def _ours(images, labels):
    import autograd_core as ag
    import nn

    nn.init.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding="same"), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5, padding="same"), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Dropout(0.4), nn.Linear(1024, CLASSES))
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    x = ag.from_numpy(images)

    def train_step():
        model.train()
        loss = nn.functional.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def inference():
        model.eval()
        with ag.no_grad():
            model(x)

    return {"train step": train_step, "inference": inference}


def _torch(torch, images, labels):
    torch.manual_seed(0)
    F = torch.nn
    model = F.Sequential(
        F.Conv2d(1, 32, 5, padding=2), F.ReLU(), F.MaxPool2d(2, 2),
        F.Conv2d(32, 64, 5, padding=2), F.ReLU(), F.MaxPool2d(2, 2),
        F.Flatten(), F.Linear(7 * 7 * 64, 1024), F.ReLU(), F.Dropout(0.4), F.Linear(1024, CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(labels)

    def train_step():
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def inference():
        model.eval()
        with torch.no_grad():
            model(x)

    return {"train step": train_step, "inference": inference}


def run(quick=False):
    """Time a train step and an inference pass of each library; returns the result rows."""
    torch = torch_or_none()
    rng = np.random.default_rng(0)
    images = rng.random((BATCH, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, CLASSES, BATCH)
    rows = []
    for threads in thread_counts(quick, torch):
        libraries = {"autograd_core": _ours(images, labels)}
        if torch is not None:
            libraries["pytorch"] = _torch(torch, images, labels)
        for case in ("train step", "inference"):
            medians = alternating_medians({name: steps[case] for name, steps in libraries.items()},
                                          blocks=4 if quick else 10, calls_per_block=3)
            rows += comparison_rows("cnn_" + case.replace(" ", "_"), "%s, %s, threads=%d"
                                    % (CASE, case, threads), medians)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-44s %-14s %8.2f ms  %s" % (row["case"], row["impl"], row["seconds"] * 1e3, row["note"]))
