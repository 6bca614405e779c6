"""The ``train-lm --arch gpt`` model written in PyTorch, trained side by side with ours.

Same architecture (token + position embeddings, pre-norm blocks of causal multi-head
self-attention and a 4x gelu MLP, final LayerNorm, head tied to the token embedding),
same initial weights (torch's model loads ours' state dict: the parameter names are the
same), the same batches (one seeded generator draws each window batch, given to both),
the same optimizer (AdamW, betas (0.9, 0.95), weight decay 0.1 on the matrices), the same
schedule (linear warm-up, cosine to lr / 10), gradient norm clipped to 1, dropout 0 (masks
could not match). Steps alternate (ours, torch's, ours, ...) so both see the same machine
load; the time of each step is taken alone and the median reported. At the end both
evaluate the validation loss on the last 10% of the text, cut into windows of
``--context`` characters (:func:`nn.apps.gpt.evaluate_gpt`).

    python benchmarks/gpt_torch_reference.py --steps 2000 \
        [--file ../shared/data/tinyshakespeare.txt] [--threads 2] [--eval-every 500] [--json out.json]

(from a checkout installed with ``pip install -e ".[bench]"`` and ``pip install torch==2.13.0``)

Prints per evaluation both validation losses, and at the end the losses, their relative
difference, and ms/step (median, mean) of each. Needs torch (CPU build is enough).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

import autograd_core  # noqa: E402
from nn import init  # noqa: E402
from nn.apps import gpt  # noqa: E402
from nn.apps.text import CharVocabulary, load_text, split_ids  # noqa: E402
from nn.functional import cross_entropy  # noqa: E402
from nn.lr_scheduler import LambdaLR  # noqa: E402
from nn.apps.trainer import Trainer  # noqa: E402

DEFAULT_FILE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data", "tinyshakespeare.txt")


def build_torch_gpt(torch, vocab_size, context, channels, layers, heads):
    """CharGPT in PyTorch, with the same parameter names (dropout 0)."""
    F = torch.nn.functional

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = torch.nn.Linear(channels, 3 * channels)
            self.proj = torch.nn.Linear(channels, channels)

        def forward(self, x):
            batch, length, _ = x.shape
            q, k, v = self.qkv(x).view(batch, length, 3, heads, channels // heads).unbind(2)
            out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                 is_causal=True)
            return self.proj(out.transpose(1, 2).reshape(batch, length, channels))

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = torch.nn.LayerNorm(channels)
            self.attn = Attention()
            self.ln_2 = torch.nn.LayerNorm(channels)
            self.fc = torch.nn.Linear(channels, 4 * channels)
            self.proj = torch.nn.Linear(4 * channels, channels)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.proj(F.gelu(self.fc(self.ln_2(x))))

    class TorchGPT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.vocab_size, self.context = vocab_size, context
            self.token_embedding = torch.nn.Embedding(vocab_size, channels)
            self.position_embedding = torch.nn.Embedding(context, channels)
            self.blocks = torch.nn.ModuleList(Block() for _ in range(layers))
            self.ln_f = torch.nn.LayerNorm(channels)

        def forward(self, ids):
            positions = torch.arange(ids.shape[1])
            x = self.token_embedding(ids) + self.position_embedding(positions)
            for block in self.blocks:
                x = block(x)
            return F.linear(self.ln_f(x), self.token_embedding.weight)

    return TorchGPT()


def evaluate_torch(torch, model, ids, batch_size=64):
    """evaluate_gpt's windows and mean, in torch."""
    inputs, targets, tail = gpt.validation_windows(np.asarray(ids), model.context)
    parts = [(inputs[i:i + batch_size], targets[i:i + batch_size]) for i in range(0, len(inputs), batch_size)]
    if tail is not None:
        parts.append(tail)
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in parts:
            logits = model(torch.from_numpy(np.ascontiguousarray(x)))
            total += float(torch.nn.functional.cross_entropy(
                logits.reshape(-1, model.vocab_size), torch.from_numpy(np.ascontiguousarray(y)).reshape(-1),
                reduction="sum"))
            count += y.size
    return total / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default=DEFAULT_FILE)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--lr", type=float, default=gpt.GPT_DEFAULTS["lr"])
    parser.add_argument("--warmup", type=int, default=gpt.GPT_DEFAULTS["warmup"])
    parser.add_argument("--threads", type=int, default=None, help="threads for both (default: each's own)")
    parser.add_argument("--eval-every", type=int, default=0, help="also evaluate both every N steps")
    parser.add_argument("--limit-validation", type=int, help="evaluate on the first N held-out characters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        autograd_core.set_num_threads(args.threads)
    text = load_text(args.file)
    vocabulary = CharVocabulary(text)
    train_ids, validation_ids = split_ids(vocabulary.encode(text), 0.1)
    if args.limit_validation:
        validation_ids = validation_ids[:args.limit_validation]

    init.manual_seed(args.seed)
    ours = gpt.CharGPT(vocabulary.size, args.context, args.channels, args.layers, args.heads, 0.0)
    theirs = build_torch_gpt(torch, vocabulary.size, args.context, args.channels, args.layers, args.heads)
    theirs.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in ours.state_dict().items()})

    our_optimizer = gpt.make_adamw(ours, args.lr)
    our_schedule = LambdaLR(our_optimizer, gpt.warmup_cosine(args.warmup, args.steps))
    their_optimizer = gpt.make_adamw(theirs, args.lr, optimizer_class=torch.optim.AdamW)
    their_schedule = torch.optim.lr_scheduler.LambdaLR(their_optimizer, gpt.warmup_cosine(args.warmup, args.steps))

    def our_loss(batch):
        inputs, targets = batch
        logits = ours(inputs)
        return cross_entropy(logits.reshape(-1, ours.vocab_size), targets.reshape(-1)), targets.size

    trainer = Trainer(ours, our_optimizer, our_loss, clip_grad_norm=1.0, name="gpt benchmark")

    def their_step(inputs, targets):
        logits = theirs(inputs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocabulary.size), targets.reshape(-1))
        their_optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        their_optimizer.step()
        their_schedule.step()
        return loss.item()

    generator = np.random.default_rng(args.seed)
    our_times, their_times, our_losses, their_losses, evaluations = [], [], [], [], []
    ours.train()
    theirs.train()
    print(f"{args.file}: vocabulary {vocabulary.size}, train {len(train_ids)}, validation {len(validation_ids)}; "
          f"{sum(p.data.size for p in ours.parameters())} parameters; threads ours "
          f"{autograd_core.get_num_threads() if hasattr(autograd_core, 'get_num_threads') else '?'}, "
          f"torch {torch.get_num_threads()}", flush=True)

    def evaluate(step):
        mine = gpt.evaluate_gpt(ours, validation_ids)
        theirs.eval()
        other = evaluate_torch(torch, theirs, validation_ids)
        theirs.train()
        evaluations.append(dict(step=step, ours=mine, torch=other))
        print("step %5d  validation ours %.4f  torch %.4f  (%+.2f%%)   ms/step median ours %.1f  torch %.1f" % (
            step, mine, other, 100 * (mine - other) / other, 1e3 * np.median(our_times),
            1e3 * np.median(their_times)), flush=True)

    for step in range(1, args.steps + 1):
        inputs, targets = gpt.random_windows(train_ids, args.context, args.batch_size, generator)
        torch_inputs, torch_targets = torch.from_numpy(inputs), torch.from_numpy(targets)
        started = time.perf_counter()
        value, _ = trainer.step((inputs, targets))
        our_schedule.step()
        our_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        their_losses.append(their_step(torch_inputs, torch_targets))
        their_times.append(time.perf_counter() - started)
        our_losses.append(value)
        if args.eval_every and step % args.eval_every == 0 and step != args.steps:
            evaluate(step)
    evaluate(args.steps)
    final = evaluations[-1]
    result = dict(steps=args.steps, validation_ours=final["ours"], validation_torch=final["torch"],
                  relative_difference=(final["ours"] - final["torch"]) / final["torch"],
                  ms_per_step_median_ours=1e3 * float(np.median(our_times)),
                  ms_per_step_median_torch=1e3 * float(np.median(their_times)),
                  ms_per_step_mean_ours=1e3 * float(np.mean(our_times)),
                  ms_per_step_mean_torch=1e3 * float(np.mean(their_times)),
                  train_loss_last100_ours=float(np.mean(our_losses[-100:])),
                  train_loss_last100_torch=float(np.mean(their_losses[-100:])), evaluations=evaluations,
                  config=vars(args))
    print(json.dumps({k: v for k, v in result.items() if k not in ("evaluations", "config")}, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
