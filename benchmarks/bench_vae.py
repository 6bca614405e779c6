"""Benchmark: the ``vae`` CLI model (784-512-20, ELU): one training step (forward,
backward, Adam) on a batch of 128, and a no-grad evaluation pass (negative ELBO) on a
batch of 500, here and in PyTorch when torch is installed.

Contract: ``run(quick: bool) -> list[dict]`` with keys benchmark, case, impl, seconds
(the median of repeated time.perf_counter measurements), cpu_seconds and a note. The two
libraries run in alternating blocks (see timing.py). Quick mode times a handful of
repetitions only. The inputs are synthetic images in [0, 1]: speed
does not depend on the pixels. Run alone: ``python benchmarks/bench_vae.py [--quick]``.

For the accuracy comparison (10 epochs on Fashion-MNIST) see vae_torch_reference.py.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.timing import alternating_medians, comparison_rows, torch_or_none  # noqa: E402

INPUT, HIDDEN, LATENT = 784, 512, 20
TRAIN_BATCH, EVAL_BATCH = 128, 500
BENCHMARK = "vae 784-512-20"


def _ours(train_x, eval_x):
    import autograd_core as ag
    import nn
    from nn.autoencoders import VariationalAutoencoder

    nn.init.manual_seed(0)
    model = VariationalAutoencoder(INPUT, (HIDDEN,), LATENT)
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    x_train, x_eval = ag.from_numpy(train_x), ag.from_numpy(eval_x)
    noise = np.random.default_rng(0).standard_normal((EVAL_BATCH, LATENT))

    def train_step():
        loss = model.loss(x_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def evaluate():
        with ag.no_grad():
            model.loss(x_eval, noise)

    return {"train": train_step, "evaluate": evaluate}


def _torch(torch, train_x, eval_x):
    from benchmarks.vae_torch_reference import build_torch_vae

    torch.manual_seed(0)
    model = build_torch_vae(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_train, x_eval = torch.from_numpy(train_x), torch.from_numpy(eval_x)

    def train_step():
        reconstruction, kl = model.loss_terms(x_train, torch.randn(TRAIN_BATCH, LATENT))
        loss = reconstruction + kl
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def evaluate():
        with torch.no_grad():
            model.loss_terms(x_eval, torch.randn(EVAL_BATCH, LATENT))

    return {"train": train_step, "evaluate": evaluate}


def run(quick: bool) -> list:
    """Rows of {"benchmark", "case", "impl", "seconds" (median wall), "cpu_seconds", "note"}."""
    import autograd_core as ag

    torch = torch_or_none()
    rng = np.random.default_rng(0)
    train_x = rng.random((TRAIN_BATCH, INPUT), dtype=np.float32)
    eval_x = rng.random((EVAL_BATCH, INPUT), dtype=np.float32)
    threads = ag.get_num_threads()
    libraries = {"autograd_core": _ours(train_x, eval_x)}
    if torch is not None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        libraries["pytorch"] = _torch(torch, train_x, eval_x)
    cases = {"train": "train step, batch %d (fwd+bwd+Adam), threads=%d" % (TRAIN_BATCH, threads),
             "evaluate": "negative ELBO, batch %d, no grad, threads=%d" % (EVAL_BATCH, threads)}
    rows = []
    try:
        for key, case in cases.items():
            medians = alternating_medians({name: calls[key] for name, calls in libraries.items()},
                                          blocks=3 if quick else 10, calls_per_block=2 if quick else 4)
            rows += comparison_rows(BENCHMARK, case, medians)
    finally:
        if torch is not None:
            torch.set_num_threads(previous)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-16s %-40s %-14s %9.3f ms  %s" % (row["benchmark"], row["case"], row["impl"],
                                                row["seconds"] * 1e3, row.get("note", "")))
