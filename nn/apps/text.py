"""A character-level language model: vocabulary, batching of a UTF-8 text file,
training with truncated BPTT, evaluation in nats per character, and ``sample``.

    text = load_text("tinyshakespeare.txt")
    vocabulary = CharVocabulary(text)
    ids = vocabulary.encode(text)
    train_ids, validation_ids = split_ids(ids, validation_fraction=0.1)   # last 10% held out
    model = CharLanguageModel(vocabulary.size, embedding_dim=64, hidden_size=256, num_layers=1)
    history = train_language_model(model, train_ids, validation_ids, time_limit=900)
    print(sample(model, vocabulary, prime="ROMEO:", length=300, temperature=0.8))

Batching follows the usual stateful scheme: the training text is cut into ``batch_size``
contiguous streams, each chunk of ``seq_len`` characters continues where the previous
one stopped, and the LSTM state is carried across chunks but detached (truncated BPTT),
so each backward covers ``seq_len`` steps.

Training runs in the shared :class:`nn.apps.trainer.Trainer`. Command line: the
``autograd-core`` subcommands ``train-lm`` and ``sample``, or ``python -m nn.apps.text``::

    python -m nn.apps.text train FILE --out lm.npz [--minutes 15] [--hidden 256] ...
    python -m nn.apps.text train FILE --arch gpt [--layers 4 --heads 4 --channels 128 --context 64]
    python -m nn.apps.text sample lm.npz [--prime TEXT] [--length 500] [--temperature 0.8]
"""
import argparse
import json
import sys
import time

import numpy as np

import autograd_core
from autograd_core import Tensor

from .. import checkpoint, init, optim
from ..functional import cross_entropy, dropout
from ..layers import Linear
from ..module import Module
from ..recurrent import LSTM, Embedding, detach_state
from . import arguments, gpt
from .distributed import SINGLE, World
from .trainer import Trainer

__all__ = ["CharVocabulary", "load_text", "split_ids", "batch_streams", "chunks", "CharLanguageModel",
           "evaluate_language_model", "check_training_settings", "train_language_model", "sample", "save_language_model",
           "load_language_model", "add_train_arguments", "add_sample_arguments", "run_train", "run_sample",
           "build_parser", "main"]


# ---- data ---------------------------------------------------------------------------
def load_text(path):
    """The whole file as a str, decoded as UTF-8 (a decoding error names the file)."""
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError("load_text: %s is not valid UTF-8 (%s)" % (path, error)) from None


class CharVocabulary:
    """The characters of a text, sorted, each with an integer id (0 .. size-1)."""

    def __init__(self, text_or_chars):
        chars = sorted(set(text_or_chars))
        if not chars:
            raise ValueError("CharVocabulary: got an empty text, expected at least one character")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @property
    def size(self):
        return len(self.chars)

    def encode(self, text):
        """int64 ids [len(text)]; a character outside the vocabulary is a ValueError."""
        try:
            return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as error:
            raise ValueError("CharVocabulary.encode: character %r is not in the vocabulary" % error.args[0]) from None

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))

    def to_json(self):
        return json.dumps(self.chars, ensure_ascii=False)

    @classmethod
    def from_json(cls, text):
        return cls(json.loads(text))


def split_ids(ids, validation_fraction=0.1):
    """(train, validation): the validation part is the last ``validation_fraction`` of ids."""
    if not 0 < validation_fraction < 1:
        raise ValueError("split_ids: validation_fraction must be in (0, 1), got %r" % (validation_fraction,))
    cut = int(round(len(ids) * (1 - validation_fraction)))
    return ids[:cut], ids[cut:]


def batch_streams(ids, batch_size):
    """ids cut into batch_size contiguous streams: [batch_size, len(ids) // batch_size]."""
    length = len(ids) // batch_size
    if length < 2:
        raise ValueError("batch_streams: %d ids are too few for %d streams of at least 2" % (len(ids), batch_size))
    return np.asarray(ids[:length * batch_size]).reshape(batch_size, length)


def chunks(streams, seq_len, offset=0):
    """Consecutive (inputs, targets) windows of the streams, each [batch, <= seq_len];
    targets are the inputs shifted by one character. ``offset`` skips that many first
    characters (a random offset per epoch varies the chunk boundaries)."""
    total = streams.shape[1] - 1
    for start in range(offset, total, seq_len):
        stop = min(start + seq_len, total)
        yield streams[:, start:stop], streams[:, start + 1:stop + 1]


# ---- model -------------------------------------------------------------------------
class CharLanguageModel(Module):
    """Embedding -> multi-layer LSTM -> Linear to the vocabulary.

    forward(ids int [batch, time], state=None) -> (logits [batch, time, vocab], state),
    where state is the LSTM's (h, c), each [num_layers, batch, hidden].
    """

    def __init__(self, vocab_size, embedding_dim=64, hidden_size=256, num_layers=1, dropout=0.0):
        super().__init__()
        self.vocab_size, self.embedding_dim = int(vocab_size), int(embedding_dim)
        self.hidden_size, self.num_layers, self.dropout = int(hidden_size), int(num_layers), float(dropout)
        self.embedding = Embedding(vocab_size, embedding_dim)
        self.lstm = LSTM(embedding_dim, hidden_size, num_layers=num_layers, dropout=dropout)
        self.decoder = Linear(hidden_size, vocab_size)

    def config(self):
        return dict(vocab_size=self.vocab_size, embedding_dim=self.embedding_dim,
                    hidden_size=self.hidden_size, num_layers=self.num_layers, dropout=self.dropout)

    def forward(self, ids, state=None):
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if ids.ndim != 2:
            raise ValueError("CharLanguageModel: expected ids [batch, time], got shape %s" % (ids.shape,))
        outputs, state = self.lstm(self.embedding(ids), state)
        if self.dropout and self.training:
            outputs = dropout(outputs, self.dropout, training=True)
        batch, steps = ids.shape
        logits = self.decoder(outputs.reshape(batch * steps, self.hidden_size))
        return logits.reshape(batch, steps, self.vocab_size), state


# ---- training and evaluation ---------------------------------------------------------
@autograd_core.no_grad()
def evaluate_language_model(model, ids, batch_size=64, seq_len=200):
    """Mean cross-entropy per predicted character, in nats, over ids (state carried
    across chunks, as in training). Returns a float."""
    was_training = model.training
    model.eval()
    try:
        # a short text gets fewer streams rather than an error
        streams = batch_streams(ids, max(1, min(batch_size, len(ids) // 2)))
        state, total, count = None, 0.0, 0
        for inputs, targets in chunks(streams, seq_len):
            logits, state = model(inputs, state)
            total += float(cross_entropy(logits.reshape(-1, model.vocab_size), targets.reshape(-1),
                                         reduction="sum").data)
            count += targets.size
        return total / count
    finally:
        model.train(was_training)


def _positive_integer(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def check_training_settings(train_ids, validation_ids, batch_size, seq_len, time_limit=None, max_steps=None,
                            epochs=None, eval_every=0):
    """Raise ``ValueError`` for anything that would stop :func:`train_language_model` after
    it has started: sizes and budgets that are not positive, a training split too short
    for ``batch_size`` streams, a validation split too short to evaluate (2 characters)."""
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
        if not _positive_integer(value):
            raise ValueError(f"train_language_model: {name} must be an integer >= 1, got {value!r}")
    for name, value in (("max_steps", max_steps), ("epochs", epochs)):
        if value is not None and not _positive_integer(value):
            raise ValueError(f"train_language_model: {name} must be an integer >= 1 or None, got {value!r}")
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ValueError(f"train_language_model: time_limit must be > 0 seconds, got {time_limit!r}")
    if not (isinstance(eval_every, (int, np.integer)) and not isinstance(eval_every, bool) and eval_every >= 0):
        raise ValueError(f"train_language_model: eval_every must be an integer >= 0, got {eval_every!r}")
    if len(train_ids) < 2 * batch_size:
        raise ValueError(f"train_language_model: the training split holds {len(train_ids)} characters, too few "
                         f"for {batch_size} streams of at least 2 (need {2 * batch_size}; lower the batch size)")
    if len(validation_ids) < 2:
        raise ValueError(f"train_language_model: the validation split holds {len(validation_ids)} character(s); "
                         "evaluating needs at least 2 (use a longer text or a larger validation fraction)")


def train_language_model(model, train_ids, validation_ids, batch_size=64, seq_len=100, lr=3e-3,
                         clip=5.0, time_limit=None, max_steps=None, epochs=None, eval_every=200,
                         eval_batch_size=64, eval_seq_len=200, lr_decay=None, seed=0, log=print,
                         after_evaluation=None, world=SINGLE):
    """Train with Adam and truncated BPTT until time_limit seconds (wall clock, evaluation
    included), max_steps updates or epochs passes, whichever comes first.

    Evaluates the validation loss (nats/char) every ``eval_every`` steps and at the end,
    and then calls ``after_evaluation(history)`` (optional; ``train-lm`` saves its
    checkpoint there, so a run that is killed or diverges keeps the last evaluated model).
    ``lr_decay`` (optional) multiplies the learning rate by that factor after each epoch.
    Every setting and both splits are checked before the first step
    (:func:`check_training_settings`); a non-finite or diverged loss stops training with
    :class:`nn.apps.trainer.TrainingDiverged` before that step's update.
    Returns the history: a list of dicts with step, epoch, seconds (wall), cpu_seconds,
    train_loss and validation_loss.

    ``world`` (:class:`nn.apps.distributed.World`, ``--distributed``): the
    ``batch_size`` streams are cut over the ranks (each carries the LSTM state of its
    own streams), the losses weighted so that the averaged gradient is the whole batch's;
    whether time is up is rank 0's decision, broadcast after every step; rank 0 alone
    evaluates (the others wait for its result), logs and calls ``after_evaluation``.
    """
    if time_limit is None and max_steps is None and epochs is None:
        raise ValueError("train_language_model: give time_limit, max_steps or epochs, else it never ends")
    check_training_settings(train_ids, validation_ids, batch_size, seq_len, time_limit, max_steps, epochs,
                            eval_every)
    rng = np.random.default_rng(seed)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    streams = batch_streams(train_ids, batch_size)
    if world.size > batch_size:
        raise ValueError(f"train_language_model: {world.size} ranks cannot share {batch_size} streams; "
                         "give --batch-size at least the number of ranks")
    trained, weight = model, 1.0
    if world.size > 1:
        streams = streams[world.part(batch_size)]
        weight = world.loss_weight(len(streams), batch_size)
        trained = world.wrap(model)
    start, start_cpu = time.perf_counter(), time.process_time()
    history, running = [], []
    completed_epochs = 0
    state = None  # the LSTM state carried from chunk to chunk within an epoch

    def batches(epoch):
        nonlocal state
        state = None
        # a random offset per epoch varies the chunk boundaries
        return chunks(streams, seq_len, offset=int(rng.integers(seq_len)))

    def batch_loss(batch):
        nonlocal state
        inputs, targets = batch
        logits, state = trained(inputs, state)
        loss = cross_entropy(logits.reshape(-1, model.vocab_size), targets.reshape(-1))
        return (loss if weight == 1.0 else loss * weight), targets.size

    trainer = Trainer(trained, optimizer, batch_loss, clip_grad_norm=clip, name="train_language_model")

    def record(done):
        validation = None
        if world.is_main:
            validation = evaluate_language_model(model, validation_ids, eval_batch_size, eval_seq_len)
        validation = world.decide(validation)
        # each rank's values are its mean x its share x size: their sum / size is the batch's
        train_loss = float(np.mean(running)) if running else float("nan")
        if world.size > 1:
            train_loss = world.sum([train_loss])[0] / world.size
        # CPU seconds beside wall seconds: on a shared machine they show how much the run got
        entry = dict(step=trainer.steps, epoch=completed_epochs, seconds=round(time.perf_counter() - start, 1),
                     cpu_seconds=round(time.process_time() - start_cpu, 1),
                     train_loss=train_loss, validation_loss=validation)
        history.append(entry)
        running.clear()
        if not world.is_main:
            return
        if log:
            log("step %6d  epoch %d  %7.1fs (cpu %7.1fs)  train %.4f  validation %.4f nats/char%s" % (
                trainer.steps, completed_epochs, entry["seconds"], entry["cpu_seconds"], entry["train_loss"],
                validation, "  (final)" if done else ""))
        if after_evaluation is not None:
            after_evaluation(history)

    def after_step(value):
        nonlocal state
        # truncated BPTT: the next chunk starts from this state, but its backward stops here
        state = detach_state(state)
        running.append(value)
        if eval_every and trainer.steps % eval_every == 0:
            record(False)

    def out_of_time():
        # under --distributed rank 0's clock decides for all (ranks' clocks differ)
        return world.decide((time_limit is not None and time.perf_counter() - start >= time_limit)
                            or (max_steps is not None and trainer.steps >= max_steps))

    for result in trainer.fit(batches, epochs, after_step=after_step, stop=out_of_time):
        completed_epochs = result.epoch
        if lr_decay:
            for group in optimizer.param_groups:
                group["lr"] *= lr_decay
    record(True)
    return history


def _next_logits(model, ids, state, new_ids):
    """(logits [vocab] of the next character, state) after feeding ``new_ids``: the LSTM
    carries its state; the GPT re-reads its last ``context`` characters of ``ids``."""
    if isinstance(model, gpt.CharGPT):
        return model.step_logits(ids), None
    logits, state = model(np.asarray(new_ids)[None, :], state)
    return logits.data[0, -1], state


@autograd_core.no_grad()
def sample(model, vocabulary, prime="", length=200, temperature=1.0, generator=None):
    """Generate ``length`` characters after ``prime`` by drawing each next character
    from softmax(logits / temperature). temperature -> 0 approaches greedy decoding.
    ``model``: a :class:`CharLanguageModel` or a :class:`nn.apps.gpt.CharGPT` (which sees
    the last ``context`` characters). Returns prime + the generated text."""
    if temperature <= 0:
        raise ValueError("sample: temperature must be > 0, got %r" % (temperature,))
    rng = generator if generator is not None else init.get_generator()
    was_training = model.training
    model.eval()
    try:
        prime_ids = vocabulary.encode(prime) if prime else np.array([rng.integers(vocabulary.size)])
        ids = list(prime_ids)
        last, state = _next_logits(model, ids, None, prime_ids)
        last = last.astype(np.float64)
        generated = []
        for _ in range(length):
            scaled = last / temperature
            probabilities = np.exp(scaled - scaled.max())
            probabilities /= probabilities.sum()
            next_id = int(rng.choice(vocabulary.size, p=probabilities))
            generated.append(next_id)
            ids.append(next_id)
            last, state = _next_logits(model, ids, state, [next_id])
            last = last.astype(np.float64)
        text = vocabulary.decode(generated)
        return (prime if prime else vocabulary.decode(prime_ids)) + text
    finally:
        model.train(was_training)


def save_language_model(path, model, vocabulary, extra=None):
    """Model weights, configuration and vocabulary in one checkpoint (nn.checkpoint)."""
    kind = "char-gpt" if isinstance(model, gpt.CharGPT) else "char-lm"
    metadata = dict(kind=kind, config=model.config(), vocabulary=vocabulary.to_json(), **(extra or {}))
    checkpoint.save_training_state(path, model, metadata=metadata)


_CONFIG_FIELDS = ("vocab_size", "embedding_dim", "hidden_size", "num_layers", "dropout")
_GPT_CONFIG_FIELDS = ("vocab_size", "context", "channels", "layers", "heads", "dropout")


def _checked_language_model_metadata(path):
    """The metadata of a language-model checkpoint, every field that sizes the model
    checked for its type and against the shapes of the checkpoint's own arrays (read
    from their headers) before anything is built: a crafted ``vocab_size`` of 1e8 would
    otherwise allocate gigabytes."""
    path = str(path)
    metadata = checkpoint.read_metadata(path)

    def refuse(problem):
        raise ValueError(f"load_language_model: checkpoint {path!r}: {problem}")

    kind = metadata.get("kind")
    if kind not in ("char-lm", "char-gpt"):
        refuse("not a character language model checkpoint (metadata kind %r, expected 'char-lm' or 'char-gpt')"
               % (kind,))
    fields = _CONFIG_FIELDS if kind == "char-lm" else _GPT_CONFIG_FIELDS
    config = metadata.get("config")
    if not isinstance(config, dict) or sorted(config) != sorted(fields):
        refuse(f"metadata config is {config!r:.120}, expected an object with the fields {list(fields)}")
    for field in fields[:-1]:
        if not _positive_integer(config[field]):
            refuse(f"config {field} is {config[field]!r:.40}, expected an integer >= 1")
    if isinstance(config["dropout"], bool) or not isinstance(config["dropout"], (int, float)) \
            or not 0 <= config["dropout"] < 1:
        refuse(f"config dropout is {config['dropout']!r:.40}, expected a number from 0 to 1 (1 excluded)")
    shapes = checkpoint.read_shapes(path)
    if kind == "char-lm":
        vocab, embedding, hidden, layers = (config[field] for field in _CONFIG_FIELDS[:4])
        expected = {"model/embedding.weight": (vocab, embedding), "model/decoder.weight": (vocab, hidden)}
        expected.update({f"model/lstm.weight_hh_l{layer}": (4 * hidden, hidden) for layer in range(layers)})
        beyond = f"model/lstm.weight_hh_l{layers}"
    else:
        vocab, context, channels, layers, heads = (config[field] for field in _GPT_CONFIG_FIELDS[:5])
        if channels % heads:
            refuse(f"config channels {channels} is not divisible by heads {heads}")
        expected = {"model/token_embedding.weight": (vocab, channels),
                    "model/position_embedding.weight": (context, channels)}
        expected.update({f"model/blocks.{layer}.attn.qkv.weight": (3 * channels, channels)
                         for layer in range(layers)})
        beyond = f"model/blocks.{layers}.attn.qkv.weight"
    for key, shape in expected.items():
        if shapes.get(key) != shape:
            refuse(f"config {dict(config)} disagrees with the array {key!r}: it has shape {shapes.get(key)}, "
                   f"the config implies {shape}")
    if beyond in shapes:
        refuse(f"config layers {layers} disagrees with the arrays, which hold more layers")
    try:
        characters = json.loads(metadata.get("vocabulary"))
    except (TypeError, ValueError):
        characters = None
    if (not isinstance(characters, list) or len(characters) != vocab
            or not all(isinstance(c, str) and len(c) == 1 for c in characters) or len(set(characters)) != vocab):
        refuse(f"metadata vocabulary is {metadata.get('vocabulary')!r:.80}, expected a JSON list of "
               f"{vocab} distinct characters (the config's vocab_size)")
    return metadata


def load_language_model(path):
    """(model, vocabulary, metadata) from a checkpoint written by save_language_model: a
    :class:`CharLanguageModel` or a :class:`nn.apps.gpt.CharGPT` (metadata kind 'char-gpt').
    Metadata that disagrees with the arrays, or has the wrong type, is a ``ValueError``
    naming the file and the field."""
    metadata = _checked_language_model_metadata(path)
    model_class = gpt.CharGPT if metadata["kind"] == "char-gpt" else CharLanguageModel
    model = model_class(**metadata["config"])
    checkpoint.load_training_state(path, model)
    return model, CharVocabulary.from_json(metadata["vocabulary"]), metadata


# ---- command line ------------------------------------------------------------------------
def build_parser(prog="python -m nn.apps.text"):
    parser = argparse.ArgumentParser(prog=prog, description="Character-level language model (LSTM, or a GPT with --arch gpt).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    train = commands.add_parser("train", help="train on a UTF-8 text file (last 10%% held out)")
    add_train_arguments(train)
    sampler = commands.add_parser("sample", help="generate text from a trained checkpoint")
    add_sample_arguments(sampler)
    return parser


def add_train_arguments(parser):
    """The options of ``train-lm`` (``python -m nn.apps.text train``)."""
    parser.add_argument("file", help="UTF-8 text file")
    parser.add_argument("--out", default="char_lm.npz", help="checkpoint to write (default: char_lm.npz)")
    parser.add_argument("--minutes", type=arguments.positive_float, default=15.0,
                        help="training time limit (default 15)")
    parser.add_argument("--arch", choices=("lstm", "gpt"), default="lstm",
                        help="lstm (default): embedding, LSTM, linear; gpt: causal self-attention blocks")
    parser.add_argument("--max-steps", "--steps", dest="max_steps", type=arguments.positive_int,
                        help="stop after this many updates (gpt: also the end of the cosine decay)")
    parser.add_argument("--embedding", type=arguments.positive_int, default=64, help="lstm: embedding size")
    parser.add_argument("--hidden", type=arguments.positive_int, default=256, help="lstm: hidden size")
    parser.add_argument("--layers", type=arguments.positive_int, help="LSTM layers (default 1) or GPT blocks (4)")
    parser.add_argument("--heads", type=arguments.positive_int, default=gpt.GPT_DEFAULTS["heads"],
                        help="gpt: attention heads (default 4)")
    parser.add_argument("--channels", type=arguments.positive_int, default=gpt.GPT_DEFAULTS["channels"],
                        help="gpt: width of the blocks (default 128)")
    parser.add_argument("--context", type=arguments.positive_int, default=gpt.GPT_DEFAULTS["context"],
                        help="gpt: characters per training window and the most it attends to (default 64)")
    parser.add_argument("--warmup", type=arguments.non_negative_int, default=gpt.GPT_DEFAULTS["warmup"],
                        help="gpt: steps of linear learning-rate warm-up (default 100)")
    parser.add_argument("--dropout", type=arguments.probability, default=0.0)
    parser.add_argument("--batch-size", type=arguments.positive_int, help="streams (lstm, default 64) or "
                        "windows (gpt, default 12) per batch")
    parser.add_argument("--seq-len", type=arguments.positive_int, default=100, help="lstm: BPTT length")
    parser.add_argument("--lr", type=arguments.positive_float, help="learning rate (lstm 3e-3, gpt 1e-3: its peak)")
    parser.add_argument("--lr-decay", type=arguments.positive_float,
                        help="lstm: learning-rate factor after each epoch")
    parser.add_argument("--clip", type=arguments.non_negative_float,
                        help="gradient-norm clip, 0: none (default lstm 5, gpt 1)")
    parser.add_argument("--eval-every", type=arguments.non_negative_int, default=200,
                        help="steps between evaluations, each also saving --out (0: at the end only)")
    parser.add_argument("--validation-fraction", type=arguments.fraction, default=0.1)
    arguments.add_threads_argument(parser)
    arguments.add_seed_argument(parser, help="seed for initialisation and the chunk offsets")
    parser.add_argument("--history", help="write the history as JSON here")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the MPI job (run under 'mpirun -n N'): the batch's streams are "
                             "split over the ranks; rank 0 decides when time is up and writes the files")


def add_sample_arguments(parser):
    """The options of ``sample`` (``python -m nn.apps.text sample``)."""
    parser.add_argument("checkpoint", help="checkpoint written by train")
    parser.add_argument("--prime", default="", help="text to start from")
    parser.add_argument("--length", type=arguments.non_negative_int, default=500)
    parser.add_argument("--temperature", type=arguments.positive_float, default=0.8)
    arguments.add_seed_argument(parser, help="seed for drawing the characters")


_DEFAULTS = {"lstm": dict(layers=1, batch_size=64, lr=3e-3, clip=5.0),
             "gpt": dict(layers=gpt.GPT_DEFAULTS["layers"], batch_size=gpt.GPT_DEFAULTS["batch_size"],
                         lr=gpt.GPT_DEFAULTS["lr"], clip=1.0)}


def run_train(args):
    """The ``train-lm`` command: train on ``args.file`` and write the checkpoint ``args.out``
    (``--arch gpt``: :func:`nn.apps.gpt.train_gpt`; else the LSTM)."""
    arch = getattr(args, "arch", "lstm")
    for name, value in _DEFAULTS[arch].items():  # options whose default depends on the architecture
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    if arch == "gpt":
        return _run_train_gpt(args)
    world = args.world = World(args.distributed)
    arguments.set_threads(args)
    world.set_threads_per_rank(args.threads)
    vocabulary, train_ids, validation_ids = _prepare_text(args, world.is_main, world.say)
    check_training_settings(train_ids, validation_ids, args.batch_size, args.seq_len, args.minutes * 60,
                            args.max_steps, None, args.eval_every)
    model = CharLanguageModel(vocabulary.size, args.embedding, args.hidden, args.layers, args.dropout)

    def save(history):
        # after every evaluation: a run that is killed or diverges keeps the last evaluated model
        save_language_model(args.out, model, vocabulary, extra=dict(history=history))

    history = train_language_model(
        model, train_ids, validation_ids, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
        clip=args.clip, time_limit=args.minutes * 60, max_steps=args.max_steps, eval_every=args.eval_every,
        lr_decay=args.lr_decay, seed=args.seed, after_evaluation=save, world=world)
    if world.is_main:
        _report(args, history)
    return 0


def _prepare_text(args, is_main, say):
    """The steps both architectures take before training: check that the outputs can be
    written (a run must not learn for 15 minutes and then fail to save; only the rank
    that writes checks), seed, read the text and split off the validation part. Returns
    (vocabulary, train_ids, validation_ids)."""
    if is_main:
        checkpoint.check_writable(args.out, "--out checkpoint")
        if args.history:
            checkpoint.check_writable(args.history, "--history file")
    init.manual_seed(args.seed)
    text = load_text(args.file)
    vocabulary = CharVocabulary(text)
    train_ids, validation_ids = split_ids(vocabulary.encode(text), args.validation_fraction)
    say("%s: %d characters, vocabulary %d, train %d, validation %d" % (
        args.file, len(text), vocabulary.size, len(train_ids), len(validation_ids)))
    return vocabulary, train_ids, validation_ids


def _report(args, history):
    """After training: write --history and print the best validation loss."""
    if args.history:
        with open(args.history, "w") as handle:
            json.dump(history, handle, indent=1)
    print("best validation %.4f nats/char; checkpoint %s" % (min(h["validation_loss"] for h in history), args.out))


def _run_train_gpt(args):
    if args.distributed:
        raise ValueError("train-lm: --distributed is not supported with --arch gpt yet")
    if args.channels % args.heads:
        raise ValueError(f"train-lm: --channels {args.channels} must be divisible by --heads {args.heads}")
    arguments.set_threads(args)
    vocabulary, train_ids, validation_ids = _prepare_text(args, True, print)
    model = gpt.CharGPT(vocabulary.size, args.context, args.channels, args.layers, args.heads, args.dropout)

    def save(history):
        save_language_model(args.out, model, vocabulary, extra=dict(history=history))

    history = gpt.train_gpt(model, train_ids, validation_ids, batch_size=args.batch_size, lr=args.lr,
                            warmup=args.warmup, clip=args.clip, time_limit=args.minutes * 60,
                            max_steps=args.max_steps, eval_every=args.eval_every, seed=args.seed,
                            after_evaluation=save)
    _report(args, history)
    return 0


def run_sample(args):
    """The ``sample`` command: print text generated from the checkpoint ``args.checkpoint``."""
    model, vocabulary, _ = load_language_model(args.checkpoint)
    print(sample(model, vocabulary, args.prime, args.length, args.temperature,
                 generator=np.random.default_rng(args.seed)))
    return 0


def main(argv=None):
    """``python -m nn.apps.text train|sample ...``; user errors are one line, as in ``autograd-core``."""
    args = build_parser().parse_args(argv)
    status = arguments.run_reporting_errors({"train": run_train, "sample": run_sample}[args.command], args,
                                            "python -m nn.apps.text")
    world = getattr(args, "world", None)
    if world is not None:  # (--distributed: one rank's failure must end the others too)
        world.abort_if_failed(status, "python -m nn.apps.text")
    return status


if __name__ == "__main__":
    sys.exit(main())
