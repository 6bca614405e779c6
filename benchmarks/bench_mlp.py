"""Benchmark: the lecture's MLP (784-200-100-60-30-10, sigmoid; `autograd-core train mlp`'s
network), one training step on a batch of 100: forward, cross-entropy, backward, Adam
(lr 1e-3). At 1 and 2 threads (1 only with --quick), against the same network in PyTorch
when it is importable, in alternating blocks (see timing.py).

    python -m benchmarks.bench_mlp [--quick]
"""
import sys

import numpy as np

from benchmarks.timing import alternating_medians, comparison_rows, thread_counts, torch_or_none

BATCH, INPUT, CLASSES = 100, 784, 10
SIZES = (200, 100, 60, 30)
CASE = "MLP 784-200-100-60-30-10 sigmoid, batch %d, fwd+bwd+Adam" % BATCH


def _ours(images, labels):
    import autograd_core as ag
    import nn

    nn.init.manual_seed(0)
    layers, width = [], INPUT
    for size in SIZES:
        layers += [nn.Linear(width, size), nn.Sigmoid()]
        width = size
    model = nn.Sequential(*layers, nn.Linear(width, CLASSES))
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    x = ag.from_numpy(images)

    def train_step():
        loss = nn.functional.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return train_step


def _torch(torch, images, labels):
    torch.manual_seed(0)
    layers, width = [], INPUT
    for size in SIZES:
        layers += [torch.nn.Linear(width, size), torch.nn.Sigmoid()]
        width = size
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def train_step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return train_step


def run(quick=False):
    """Time a training step of each library; returns the result rows."""
    torch = torch_or_none()
    rng = np.random.default_rng(0)
    images = rng.random((BATCH, INPUT), dtype=np.float32)
    labels = rng.integers(0, CLASSES, BATCH)
    rows = []
    for threads in thread_counts(quick, torch):
        steps = {"autograd_core": _ours(images, labels)}
        if torch is not None:
            steps["pytorch"] = _torch(torch, images, labels)
        medians = alternating_medians(steps, blocks=4 if quick else 15, calls_per_block=5)
        rows += comparison_rows("mlp_train_step", "%s, threads=%d" % (CASE, threads), medians)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-70s %-14s %8.3f ms  %s" % (row["case"], row["impl"], row["seconds"] * 1e3, row["note"]))
