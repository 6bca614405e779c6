"""A character-level GPT: causal self-attention blocks for ``train-lm --arch gpt``.

    model = CharGPT(vocab_size, context=64, channels=128, layers=4, heads=4, dropout=0.0)
    history = train_gpt(model, train_ids, validation_ids, batch_size=12, max_steps=2000)
    logits = model(ids)            # ids int [batch, time <= context] -> [batch, time, vocab]

The model: token + learned position embeddings, ``layers`` pre-norm blocks
(x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x)), the MLP 4x wide with gelu),
a final LayerNorm and an output head that reuses the token embedding (weight tying:
logits = x @ token_embedding.weight^T). Dropout after the embeddings, on the attention
weights, and on each residual branch.

Training draws random windows of ``context`` characters (:func:`random_windows`, from
a seeded generator, so the PyTorch reference in benchmarks/ replays the same batches),
AdamW (weight decay on the matrices only) with a linear warm-up and a cosine decay to a
tenth of the rate (:func:`warmup_cosine`), the gradients' norm clipped to 1. The
validation loss is the mean cross-entropy over the held-out text cut into consecutive
windows of ``context`` characters (:func:`evaluate_gpt`).
"""
import math
import time

import numpy as np

import autograd_core
from autograd_core import kernels
from autograd_core.function import Function

from .. import init, optim
from ..functional import _attend, cross_entropy, dropout, gelu, linear
from ..layer_norm import LayerNorm
from ..layers import Linear
from ..lr_scheduler import LambdaLR
from ..module import Module, ModuleList
from ..recurrent import Embedding
from .distributed import SINGLE
from .trainer import Trainer

__all__ = ["CharGPT", "random_windows", "warmup_cosine", "evaluate_gpt", "train_gpt", "GPT_DEFAULTS"]

# the configuration: 4 layers, 4 heads, 128 channels, context 64, batch 12
GPT_DEFAULTS = dict(layers=4, heads=4, channels=128, context=64, batch_size=12, lr=1e-3, warmup=100, dropout=0.0)


class CausalSelfAttention(Module):
    """Multi-head self-attention where position t attends to positions 0..t only.

    x [batch, time, channels] -> [batch, time, channels]. qkv: one Linear to 3 x channels
    (queries, keys, values), all heads in one batched matmul; proj: the output Linear.
    """

    def __init__(self, channels, heads, dropout_p):
        super().__init__()
        self.channels, self.heads, self.dropout_p = channels, heads, dropout_p
        self.qkv = Linear(channels, 3 * channels)
        self.proj = Linear(channels, channels)
        self._masks = {}

    def _mask(self, length, dtype):
        """The additive causal mask [length, length]: 0 on and below the diagonal, -inf above
        (cached: built once per length, not once per step)."""
        mask = self._masks.get(length)
        if mask is None or mask.dtype != dtype:
            mask = np.where(np.tril(np.ones((length, length), dtype=bool)), 0.0, -np.inf).astype(dtype)
            self._masks[length] = mask
        return mask

    def forward(self, x, length=None):
        """x [batch, time, channels], or its rows [batch * time, channels] with ``length``
        the time (the form the model passes between its blocks: no reshape nodes) -> the
        same shape."""
        length = x.shape[1] if length is None else length
        channels = x.shape[-1]
        mask, scale = self._mask(length, x.dtype), 1.0 / math.sqrt(channels // self.heads)
        packed = self.qkv(x)
        p = self.dropout_p if self.training else 0.0
        if p:
            return dropout(self.proj(_split_attend_merge(packed, self.heads, mask, scale, p)), p)
        return self.proj(PackedAttention.apply(packed, self.heads, mask, scale))


def _split_attend_merge(packed, heads, mask, scale, dropout_p=0.0):
    """Attention over packed queries, keys and values [batch, time, 3 * channels] or
    [batch * time, 3 * channels] (time: the mask's [time, time]), with ops (PackedAttention's
    graph form, and the path with dropout) -> [batch, time, channels] or [batch * time, channels]."""
    length, width = mask.shape[0], packed.shape[-1]
    channels = width // 3
    batch = packed.numel() // (length * width)
    # [batch, time, 3, heads, head_dim] -> three [batch, heads, time, head_dim]: one
    # graph node (unbind), whose backward writes the three gradients into one array
    split = packed.reshape(batch, length, 3, heads, channels // heads)
    q, k, v = autograd_core.unbind(split.permute(2, 0, 3, 1, 4), 0)
    attended, _ = _attend(q, k, v, mask, dropout_p, scale)
    return attended.transpose(1, 2).reshape(tuple(packed.shape[:-1]) + (channels,))


class PackedAttention(Function):
    """softmax(q k^T * scale + mask) v for every head, from the qkv projection's packed
    output [batch, time, 3 * channels] or its rows [batch * time, 3 * channels] (queries,
    keys, values, each heads x head_dim) to the heads' outputs side by side [batch, time,
    channels] (or [batch * time, channels]), as one graph node.

    Why one node: as separate ops, every head split, transposed operand and head merge
    was a copy made by reshape (72 a step, 2.3 ms of a 64 ms GPT step), the mask, the
    scale and the softmax each a pass over [batch, heads, time, time], each with an engine
    node. Here the heads are laid out once (the scale folded into the queries' copy), the
    GEMMs read the laid-out stacks (transposed in place), the softmax and its backward are
    one C pass each over the weights [stack, query, key] in place (kernels.softmax_forward
    / softmax_backward; with the causal mask the blocked keys are skipped, not added), and
    the backward writes the three gradients straight into one packed array.
    mask: an additive [time, time] array (0 attends, -inf blocks) with no row blocked
    entirely (the causal mask, recognised by value); the graph form is the same
    computation with ops.
    """

    # (time, dtype) -> the causal mask's values, to recognise a mask as the causal one
    _causal_masks = {}

    @classmethod
    def _is_causal(cls, mask):
        """True when mask is the additive causal mask (0 on and below the diagonal, -inf
        above): its softmax is then the kernel's causal limit. A compare of time^2
        values (~3 us at 64), cheaper than adding the mask."""
        key = (mask.shape[0], mask.dtype)
        causal = cls._causal_masks.get(key)
        if causal is None:
            length = mask.shape[0]
            causal = np.where(np.tril(np.ones((length, length), dtype=bool)), 0.0, -np.inf).astype(mask.dtype)
            cls._causal_masks[key] = causal
        return mask.shape == causal.shape and np.array_equal(mask, causal)

    @staticmethod
    def forward(ctx, packed, heads, mask, scale):
        length, width = mask.shape[0], packed.shape[-1]
        batch = packed.size // (length * width)
        head_dim = width // (3 * heads)
        stacks = batch * heads
        split = packed.reshape(batch, length, 3, heads, head_dim)
        # [3, batch, heads, time, head_dim]: queries (scaled on the way), keys, values
        laid = np.empty((3, batch, heads, length, head_dim), dtype=packed.dtype)
        np.multiply(split[:, :, 0].transpose(0, 2, 1, 3), packed.dtype.type(scale), out=laid[0])
        laid[1:] = split[:, :, 1:].transpose(2, 0, 3, 1, 4)
        laid = laid.reshape(3, stacks, length, head_dim)
        query, key, value = laid[0], laid[1], laid[2]
        # the weights [stack, query, key]: q k^T, then the softmax over each row in place
        weights = kernels.batched_gemm(query, key, trans_b=True)
        causal = PackedAttention._is_causal(mask)
        if not causal:
            weights += mask
        kernels.softmax_forward(weights.reshape(stacks * length, length), causal=causal)
        ctx.save_for_backward(laid, weights)
        ctx.heads, ctx.scale, ctx.causal = heads, scale, causal
        out = kernels.batched_gemm(weights, value)
        # heads side by side: [batch, heads, time, head_dim] -> [batch, time, heads * head_dim]
        merged = np.empty((batch, length, heads, head_dim), dtype=packed.dtype)
        merged[...] = out.reshape(batch, heads, length, head_dim).transpose(0, 2, 1, 3)
        ctx.packed_shape = packed.shape
        return merged.reshape(packed.shape[:-1] + (heads * head_dim,))

    @staticmethod
    def backward(ctx, grad):
        laid, weights = ctx.saved_tensors
        heads = ctx.heads
        length, channels = laid.shape[2], grad.shape[-1]
        batch, head_dim = laid.shape[1] // heads, channels // heads
        query, key, value = laid[0], laid[1], laid[2]
        grad_out = np.empty((batch, heads, length, head_dim), dtype=laid.dtype)
        grad_out[...] = grad.reshape(batch, length, heads, head_dim).transpose(0, 2, 1, 3)
        grad_out = grad_out.reshape(batch * heads, length, head_dim)
        grad_value = kernels.batched_gemm(weights, grad_out, trans_a=True)
        # the weights' gradient g v^T, then the softmax's backward in place: w * (g - sum(g * w))
        grad_scores = kernels.batched_gemm(grad_out, value, trans_b=True)
        rows = grad_scores.reshape(-1, length)
        kernels.softmax_backward(weights.reshape(-1, length), rows, causal=ctx.causal, out=rows)
        grad_query = kernels.batched_gemm(grad_scores, key)
        grad_key = kernels.batched_gemm(grad_scores, query, trans_a=True)
        grad_packed = np.empty((batch, length, 3, heads, head_dim), dtype=laid.dtype)
        np.multiply(grad_query.reshape(batch, heads, length, head_dim).transpose(0, 2, 1, 3),
                    laid.dtype.type(ctx.scale), out=grad_packed[:, :, 0])
        grad_packed[:, :, 1] = grad_key.reshape(batch, heads, length, head_dim).transpose(0, 2, 1, 3)
        grad_packed[:, :, 2] = grad_value.reshape(batch, heads, length, head_dim).transpose(0, 2, 1, 3)
        return grad_packed.reshape(ctx.packed_shape), None, None, None

    @staticmethod
    def composite(packed, heads, mask, scale):
        return _split_attend_merge(packed, heads, mask, scale)


class Block(Module):
    """Pre-norm transformer block: x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x))."""

    def __init__(self, channels, heads, dropout_p):
        super().__init__()
        self.dropout_p = dropout_p
        self.ln_1 = LayerNorm(channels)
        self.attn = CausalSelfAttention(channels, heads, dropout_p)
        self.ln_2 = LayerNorm(channels)
        self.fc = Linear(channels, 4 * channels)
        self.proj = Linear(4 * channels, channels)

    def forward(self, x, length=None):
        """x [batch, time, channels], or its rows [batch * time, channels] with ``length``
        the time -> the same shape."""
        x = x + self.attn(self.ln_1(x), length)
        hidden = self.proj(gelu(self.fc(self.ln_2(x))))
        if self.dropout_p and self.training:
            hidden = dropout(hidden, self.dropout_p)
        return x + hidden


def _check(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"CharGPT: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


class CharGPT(Module):
    """A decoder-only transformer over characters.

    forward(ids int [batch, time], state=None) -> logits [batch, time, vocab_size], with
    time <= context. (``state`` is accepted and ignored so that callers written for the
    LSTM's (ids, state) interface work; see :meth:`step_logits` for sampling.)
    Parameters: token_embedding.weight [vocab, channels] (also the output head),
    position_embedding.weight [context, channels], blocks.N.{ln_1, attn.qkv, attn.proj,
    ln_2, fc, proj}, ln_f. Initialised as GPT-2: normal(0, 0.02) weights, zero biases,
    the residual projections scaled by 1 / sqrt(2 layers).
    """

    def __init__(self, vocab_size, context=64, channels=128, layers=4, heads=4, dropout=0.0):
        super().__init__()
        self.vocab_size, self.context = _check("vocab_size", vocab_size), _check("context", context)
        self.channels, self.layers = _check("channels", channels), _check("layers", layers)
        self.heads = _check("heads", heads)
        if self.channels % self.heads:
            raise ValueError(f"CharGPT: channels ({channels}) must be divisible by heads ({heads})")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"CharGPT: dropout must be a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.token_embedding = Embedding(vocab_size, channels)
        self.position_embedding = Embedding(context, channels)
        self.blocks = ModuleList(Block(channels, heads, self.dropout) for _ in range(layers))
        self.ln_f = LayerNorm(channels)
        self._positions = np.arange(context)
        self.reset_parameters()

    def reset_parameters(self):
        residual_std = 0.02 / math.sqrt(2 * self.layers)
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                init.zeros_(param)
            elif name.startswith("blocks") and ".ln_" in name:
                init.ones_(param)
            elif name.endswith("proj.weight"):
                init.normal_(param, 0.0, residual_std)
            elif name.startswith("ln_f"):
                init.ones_(param)
            else:
                init.normal_(param, 0.0, 0.02)

    def config(self):
        return dict(vocab_size=self.vocab_size, context=self.context, channels=self.channels, layers=self.layers,
                    heads=self.heads, dropout=self.dropout)

    def forward(self, ids, state=None):
        ids = np.asarray(ids.data if isinstance(ids, autograd_core.Tensor) else ids)
        if ids.ndim != 2 or not 1 <= ids.shape[1] <= self.context:
            raise ValueError(f"CharGPT: expected ids [batch, time] with 1 <= time <= context ({self.context}), "
                             f"got shape {ids.shape}")
        batch, length = ids.shape
        x = self.token_embedding(ids) + self.position_embedding(self._positions[:length])
        if self.dropout and self.training:
            x = dropout(x, self.dropout)
        # the blocks pass rows [batch * time, channels]: each Linear then takes them as
        # they are (a 3-D input costs two reshape nodes per Linear, 32 a step)
        x = x.reshape(batch * length, self.channels)
        for block in self.blocks:
            x = block(x, length)
        # weight tying: the head is the token embedding, so the logit of character c is
        # the dot product of the output with c's input embedding
        return linear(self.ln_f(x), self.token_embedding.weight).reshape(batch, length, self.vocab_size)

    def step_logits(self, ids):
        """Logits [vocab] of the character after the 1-D ``ids`` (its last ``context``
        characters are the window)."""
        window = np.asarray(ids)[-self.context:]
        return self(window[None, :]).data[0, -1]


# ---- batching, schedule, evaluation ------------------------------------------------------
def random_windows(ids, context, batch_size, generator):
    """(inputs, targets), each int64 [batch_size, context]: windows starting at positions
    drawn uniformly by ``generator`` (a numpy Generator), targets shifted by one."""
    starts = generator.integers(0, len(ids) - context, size=batch_size)
    index = starts[:, None] + np.arange(context)
    return ids[index], ids[index + 1]


def warmup_cosine(warmup, total_steps, floor=0.1):
    """The learning-rate factor of step s (0-based): (s + 1) / warmup during the warm-up,
    then a cosine from 1 down to ``floor`` at ``total_steps`` (constant after it, and
    constant 1 after the warm-up when total_steps is None)."""
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        if total_steps is None or total_steps <= warmup:
            return 1.0
        progress = min(1.0, (step - warmup) / (total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def validation_windows(ids, context):
    """The held-out ids as consecutive windows: (inputs [n, context], targets [n, context])
    for the full windows and the (inputs, targets) of a shorter last one (or None)."""
    count = (len(ids) - 1) // context
    full = ids[:count * context + 1]
    inputs = full[:-1].reshape(count, context) if count else None
    targets = full[1:].reshape(count, context) if count else None
    rest = len(ids) - 1 - count * context
    tail = (ids[None, count * context:-1], ids[None, count * context + 1:]) if rest else None
    return inputs, targets, tail


@autograd_core.no_grad()
def evaluate_gpt(model, ids, batch_size=64):
    """Mean cross-entropy per predicted character (nats) over ``ids`` cut into consecutive
    windows of the model's context. Returns a float."""
    if len(ids) < 2:
        raise ValueError(f"evaluate_gpt: need at least 2 characters, got {len(ids)}")
    was_training = model.training
    model.eval()
    try:
        inputs, targets, tail = validation_windows(np.asarray(ids), model.context)
        parts = [] if inputs is None else [(inputs[i:i + batch_size], targets[i:i + batch_size])
                                           for i in range(0, len(inputs), batch_size)]
        if tail is not None:
            parts.append(tail)
        total, count = 0.0, 0
        for x, y in parts:
            logits = model(x)
            total += float(cross_entropy(logits.reshape(-1, model.vocab_size), y.reshape(-1), reduction="sum").data)
            count += y.size
        return total / count
    finally:
        model.train(was_training)


def make_adamw(model, lr, weight_decay=0.1, betas=(0.9, 0.95), optimizer_class=None):
    """AdamW with weight decay on the matrices (embeddings, Linear weights) and none on
    the biases and LayerNorm parameters. ``optimizer_class``: nn.optim.AdamW by default
    (the torch reference passes torch.optim.AdamW with torch parameters)."""
    decayed, plain = [], []
    for name, param in model.named_parameters():
        (decayed if param.ndim >= 2 else plain).append(param)
    return (optimizer_class or optim.AdamW)([dict(params=decayed, weight_decay=weight_decay),
                                             dict(params=plain, weight_decay=0.0)], lr=lr, betas=betas)


def train_gpt(model, train_ids, validation_ids, batch_size=12, lr=1e-3, warmup=100, clip=1.0, time_limit=None,
              max_steps=None, eval_every=200, eval_batch_size=64, seed=0, log=print, after_evaluation=None,
              world=SINGLE):
    """Train ``model`` (a :class:`CharGPT`) on random windows of ``train_ids`` until
    ``time_limit`` seconds or ``max_steps`` updates, evaluating the validation loss
    every ``eval_every`` steps and at the end (then ``after_evaluation(history)``).
    The learning rate warms up linearly over ``warmup`` steps, then decays along a cosine
    to lr / 10 at ``max_steps`` (stays at lr when only a time limit is given).
    Returns the history, as :func:`nn.apps.text.train_language_model`'s."""
    if time_limit is None and max_steps is None:
        raise ValueError("train_gpt: give time_limit or max_steps, else it never ends")
    if world.size > 1:
        raise ValueError("train_gpt: --distributed is not supported with --arch gpt yet")
    if len(train_ids) <= model.context + 1:
        raise ValueError(f"train_gpt: the training split holds {len(train_ids)} characters, too few for windows "
                         f"of --context {model.context} (need more than {model.context + 1})")
    if len(validation_ids) < 2:
        raise ValueError(f"train_gpt: the validation split holds {len(validation_ids)} character(s); "
                         "evaluating needs at least 2")
    train_ids = np.asarray(train_ids)
    rng = np.random.default_rng(seed)
    optimizer = make_adamw(model, lr)
    schedule = LambdaLR(optimizer, warmup_cosine(warmup, max_steps))
    start, start_cpu = time.perf_counter(), time.process_time()
    history, running = [], []

    def batches(epoch):
        while True:
            yield random_windows(train_ids, model.context, batch_size, rng)

    def batch_loss(batch):
        inputs, targets = batch
        logits = model(inputs)
        return cross_entropy(logits.reshape(-1, model.vocab_size), targets.reshape(-1)), targets.size

    trainer = Trainer(model, optimizer, batch_loss, clip_grad_norm=clip, name="train_gpt")

    def record(done):
        validation = evaluate_gpt(model, validation_ids, eval_batch_size)
        entry = dict(step=trainer.steps, epoch=1, seconds=round(time.perf_counter() - start, 1),
                     cpu_seconds=round(time.process_time() - start_cpu, 1),
                     train_loss=float(np.mean(running)) if running else float("nan"), validation_loss=validation)
        history.append(entry)
        running.clear()
        if log:
            log("step %6d  %7.1fs (cpu %7.1fs)  lr %.2e  train %.4f  validation %.4f nats/char%s" % (
                trainer.steps, entry["seconds"], entry["cpu_seconds"], optimizer.param_groups[0]["lr"],
                entry["train_loss"], validation, "  (final)" if done else ""))
        if after_evaluation is not None:
            after_evaluation(history)

    def after_step(value):
        schedule.step()
        running.append(value)
        if eval_every and trainer.steps % eval_every == 0:
            record(False)

    def out_of_time():
        return ((time_limit is not None and time.perf_counter() - start >= time_limit)
                or (max_steps is not None and trainer.steps >= max_steps))

    for _ in trainer.fit(batches, 1, after_step=after_step, stop=out_of_time):
        pass
    if not history or history[-1]["step"] != trainer.steps:
        record(True)
    return history
