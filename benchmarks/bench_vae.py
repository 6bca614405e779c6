"""Benchmark: the ``vae`` CLI model (784-512-20, ELU): one training step (forward,
backward, Adam) on a batch of 128, and a no-grad evaluation pass (negative ELBO) on a
batch of 500, here and in PyTorch when torch is installed.

Contract: ``run(quick: bool) -> list[dict]`` with keys benchmark, case, impl, seconds
(the median of repeated time.perf_counter measurements) and an optional note. Quick mode
times a handful of repetitions only. The inputs are synthetic images in [0, 1]: speed
does not depend on the pixels. Run alone: ``python benchmarks/bench_vae.py [--quick]``.

For the accuracy comparison (10 epochs on Fashion-MNIST) see vae_torch_reference.py.
"""
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

INPUT, HIDDEN, LATENT = 784, 512, 20
TRAIN_BATCH, EVAL_BATCH = 128, 500
BENCHMARK = "vae 784-512-20"


def _median_seconds(step, repeats, warmup=1):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _ours(train_x, eval_x, repeats):
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

    return _median_seconds(train_step, repeats), _median_seconds(evaluate, repeats)


def _torch(train_x, eval_x, repeats, threads):
    import torch
    from benchmarks.vae_torch_reference import build_torch_vae

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
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

        return _median_seconds(train_step, repeats), _median_seconds(evaluate, repeats), torch.__version__
    finally:
        torch.set_num_threads(previous)


def run(quick: bool) -> list:
    """Rows of {"benchmark", "case", "impl", "seconds" (median), "note"?}."""
    import autograd_core as ag

    repeats = 3 if quick else 20
    rng = np.random.default_rng(0)
    train_x = rng.random((TRAIN_BATCH, INPUT), dtype=np.float32)
    eval_x = rng.random((EVAL_BATCH, INPUT), dtype=np.float32)
    threads = ag.get_num_threads()
    train_case = "train step, batch %d (fwd+bwd+Adam)" % TRAIN_BATCH
    eval_case = "negative ELBO, batch %d, no grad" % EVAL_BATCH
    train_seconds, eval_seconds = _ours(train_x, eval_x, repeats)
    note = "%d thread(s), backend %s" % (threads, ag.get_backend())
    rows = [dict(benchmark=BENCHMARK, case=train_case, impl="autograd_core", seconds=train_seconds, note=note),
            dict(benchmark=BENCHMARK, case=eval_case, impl="autograd_core", seconds=eval_seconds, note=note)]
    try:
        import torch  # noqa: F401
    except ImportError:
        return rows
    train_seconds, eval_seconds, version = _torch(train_x, eval_x, repeats, threads)
    note = "torch %s, %d thread(s)" % (version, threads)
    rows += [dict(benchmark=BENCHMARK, case=train_case, impl="torch", seconds=train_seconds, note=note),
             dict(benchmark=BENCHMARK, case=eval_case, impl="torch", seconds=eval_seconds, note=note)]
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-16s %-40s %-14s %9.3f ms  %s" % (row["benchmark"], row["case"], row["impl"],
                                                row["seconds"] * 1e3, row.get("note", "")))
