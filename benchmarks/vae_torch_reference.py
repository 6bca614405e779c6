"""The ``vae`` CLI model trained in PyTorch with the same settings, for comparison.

Same model (784-512-20 encoder with mean and log-variance heads, 20-512-784 decoder,
ELU, logits out), same loss (sigmoid cross-entropy summed over pixels plus the closed-form
KL to N(0, I), averaged over the batch), same initialisation scheme (PyTorch's default
Linear init, which ``nn.Linear`` copies: weights U(+-1/sqrt(fan_in)) by kaiming-uniform
with a = sqrt(5), biases U(+-1/sqrt(fan_in))), same optimizer (Adam, lr 1e-3), batch
128, 10 epochs, and the same shuffling order (``nn.data.DataLoader`` with the CLI's
seed). The test negative ELBO is a one-sample estimate per test image, in nats.

``--copy-initial-weights`` starts from exactly the weights ``autograd-core train vae
--seed SEED`` starts from, instead of PyTorch's own draw of the same scheme.

    python benchmarks/vae_torch_reference.py --threads 1 \
        --compare runs/vae/metrics.json            # prints both numbers and their ratio

Needs torch (``pip install torch==2.13.0`` installs a CPU build); nothing else in the
project does.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

from nn import data  # noqa: E402

INPUT, HIDDEN, LATENT = 784, 512, 20


def build_torch_vae(torch):
    class TorchVAE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Linear(INPUT, HIDDEN)
            self.mean = torch.nn.Linear(HIDDEN, LATENT)
            self.logvar = torch.nn.Linear(HIDDEN, LATENT)
            self.decoder_hidden = torch.nn.Linear(LATENT, HIDDEN)
            self.decoder_output = torch.nn.Linear(HIDDEN, INPUT)

        def encode(self, x):
            h = torch.nn.functional.elu(self.encoder(x))
            return self.mean(h), self.logvar(h)

        def decode(self, z):
            return self.decoder_output(torch.nn.functional.elu(self.decoder_hidden(z)))

        def loss_terms(self, x, noise):
            mu, logvar = self.encode(x)
            z = mu + torch.exp(0.5 * logvar) * noise
            logits = self.decode(z)
            count = x.shape[0]
            reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, x, reduction="sum") / count
            kl = -0.5 * torch.sum(1 + logvar - mu * mu - logvar.exp()) / count
            return reconstruction, kl

    return TorchVAE()


def copy_initial_weights(torch, model, seed):
    """Load the weights the CLI's ``vae`` starts from with ``--seed seed``."""
    from nn import init
    from nn.apps.ae_tasks import build_vae

    init.manual_seed(seed)
    ours = build_vae()
    pairs = {"encoder": ours.encoder[0], "mean": ours.mean, "logvar": ours.logvar,
             "decoder_hidden": ours.decoder[0], "decoder_output": ours.decoder[1]}
    with torch.no_grad():
        for name, layer in pairs.items():
            target = getattr(model, name)
            target.weight.copy_(torch.from_numpy(layer.weight.data))  # both [out, in]
            target.bias.copy_(torch.from_numpy(layer.bias.data))


def evaluate(torch, model, images, batch_size=500, seed=1234):
    """(negative ELBO, reconstruction, kl) per test image, one sample of z each."""
    generator = torch.Generator().manual_seed(seed)
    totals = np.zeros(2)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start:start + batch_size].reshape(-1, INPUT))
            noise = torch.randn(x.shape[0], LATENT, generator=generator)
            reconstruction, kl = model.loss_terms(x, noise)
            totals += np.array([reconstruction.item(), kl.item()]) * x.shape[0]
    model.train()
    reconstruction, kl = totals / len(images)
    return reconstruction + kl, reconstruction, kl


def train(args):
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_images, train_labels = data.load_fashion_mnist("train", limit=args.limit_train)
    test_images, _ = data.load_fashion_mnist("test", limit=args.limit_test)
    model = build_torch_vae(torch)
    if args.copy_initial_weights:
        copy_initial_weights(torch, model, args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = data.DataLoader(train_images, train_labels, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    history = []
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        epoch_started = time.perf_counter()
        total, seen = 0.0, 0
        for images, _ in loader:
            x = torch.from_numpy(images.reshape(-1, INPUT))
            noise = torch.randn(x.shape[0], LATENT)
            reconstruction, kl = model.loss_terms(x, noise)
            loss = reconstruction + kl
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * x.shape[0]
            seen += x.shape[0]
        neg_elbo, reconstruction, kl = evaluate(torch, model, test_images)
        entry = {"epoch": epoch, "train_loss": total / seen, "test_neg_elbo": neg_elbo,
                 "test_reconstruction": reconstruction, "test_kl": kl,
                 "seconds": round(time.perf_counter() - epoch_started, 3)}
        history.append(entry)
        print("epoch %d/%d: train loss %.4f, test neg_elbo %.4f (reconstruction %.4f, kl %.4f) (%.1f s)"
              % (epoch, args.epochs, entry["train_loss"], neg_elbo, reconstruction, kl, entry["seconds"]),
              flush=True)
    return {"implementation": "torch %s" % torch.__version__, "threads": torch.get_num_threads(),
            "config": vars(args), "wall_seconds": round(time.perf_counter() - started, 1), "epochs": history}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit-train", type=int)
    parser.add_argument("--limit-test", type=int)
    parser.add_argument("--copy-initial-weights", action="store_true",
                        help="start from the CLI's initial weights for --seed (not torch's own draw)")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "vae_torch_reference.json"))
    parser.add_argument("--compare", metavar="METRICS_JSON",
                        help="metrics.json of 'autograd-core train vae': print both final numbers")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed (pip install torch==2.13.0): nothing to compare with", file=sys.stderr)
        return 1
    result = train(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as stream:
        json.dump(result, stream, indent=2)
        stream.write("\n")
    final = result["epochs"][-1]["test_neg_elbo"]
    print("torch: test negative ELBO after %d epochs: %.2f nats per image (wall %.1f s); wrote %s"
          % (args.epochs, final, result["wall_seconds"], args.out))
    if args.compare:
        with open(args.compare) as stream:
            ours = json.load(stream)
        last = ours["epochs"][-1]
        print("autograd_core (%s, epoch %d): %.2f nats per image; torch: %.2f; ours / torch = %.4f (%+.2f%%)"
              % (args.compare, last["epoch"], last["test_neg_elbo"], final, last["test_neg_elbo"] / final,
                 100 * (last["test_neg_elbo"] / final - 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
