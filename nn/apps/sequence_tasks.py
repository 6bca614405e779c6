"""The lecture's sequence patterns, as models and small training programs.

* Sequence to vector: :class:`RowSequenceClassifier` reads a Fashion-MNIST image row by
  row (28 steps of 28 pixels) and classifies it from the last state. Registered with the
  CLI as ``rnn-fashion`` (GRU) and ``lstm-fashion``: ``python -m nn train rnn-fashion``.
* Sequence to sequence: :class:`NextStepPredictor` predicts, at every step of a noisy
  sum of sines, the next value; :func:`run_time_series` reports its test MSE beside the
  naive predictor that repeats the last value.
* Encoder-decoder: :class:`Seq2Seq` reads a digit sequence and writes it reversed (or
  sorted); :func:`run_digit_seq2seq` reports exact-sequence accuracy (every digit right).

Both train with the shared :class:`nn.apps.trainer.Trainer`. Command line:
``python -m nn.apps.sequence_tasks timeseries|reverse|sort [options]``.
"""
import argparse
import json
import sys
import time

import numpy as np

import autograd_core
from autograd_core import Tensor

from .. import init, optim
from ..functional import cross_entropy, dropout, mse_loss
from ..layers import Linear
from ..module import Module
from ..recurrent import GRU, LSTM, RNN, Embedding
from . import arguments
from .trainer import Trainer

__all__ = ["RowSequenceClassifier", "build_rnn_fashion", "build_lstm_fashion", "NextStepPredictor", "Seq2Seq", "make_sine_series",
           "naive_last_value_mse", "make_digit_task", "exact_sequence_accuracy", "run_time_series",
           "run_digit_seq2seq", "add_arguments", "run", "main"]

_LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def _last_hidden(state):
    """The top layer's final h, from an RNN/GRU h_n or an LSTM (h_n, c_n)."""
    h_n = state[0] if isinstance(state, tuple) else state
    return h_n[h_n.shape[0] - 1]


# ---- sequence to vector: Fashion-MNIST row by row -------------------------------------
class RowSequenceClassifier(Module):
    """images [N, 28, 28, 1] (or [N, 28, 28]) read as 28 steps of 28 pixels by a
    recurrent stack; the last step's top state goes through dropout to a Linear
    classifier. Returns logits [N, classes]."""

    def __init__(self, cell="gru", hidden_size=128, num_layers=1, dropout=0.0, rows=28, columns=28,
                 classes=10):
        super().__init__()
        if cell not in _LAYERS:
            raise ValueError("RowSequenceClassifier: cell must be one of %s, got %r" % (sorted(_LAYERS), cell))
        self.rows, self.columns, self.dropout = rows, columns, float(dropout)
        self.rnn = _LAYERS[cell](columns, hidden_size, num_layers=num_layers)
        self.classifier = Linear(hidden_size, classes)

    def forward(self, images):
        x = images.reshape(images.shape[0], self.rows, self.columns)
        _, state = self.rnn(x)
        features = _last_hidden(state)
        if self.dropout and self.training:
            features = dropout(features, self.dropout, training=True)
        return self.classifier(features)


def build_rnn_fashion():
    """GRU(28 -> 128) over the rows, dropout 0.2, Linear 128 -> 10."""
    return RowSequenceClassifier("gru", hidden_size=128, dropout=0.2)


def build_lstm_fashion():
    """LSTM(28 -> 128) over the rows, dropout 0.2, Linear 128 -> 10."""
    return RowSequenceClassifier("lstm", hidden_size=128, dropout=0.2)


# ---- sequence to sequence: next-step prediction of a time series ----------------------
def make_sine_series(count, steps, noise=0.05, generator=None):
    """count series of steps + 1 values: a sum of two sines with random frequencies and
    phases, plus Gaussian noise. Returns float32 [count, steps + 1]."""
    rng = generator if generator is not None else np.random.default_rng(0)
    t = np.arange(steps + 1)[None, :]
    frequency1, frequency2 = rng.uniform(0.05, 0.2, (2, count, 1))
    phase1, phase2 = rng.uniform(0, 2 * np.pi, (2, count, 1))
    series = 0.5 * np.sin(frequency1 * t + phase1) + 0.3 * np.sin(frequency2 * t + phase2)
    return (series + noise * rng.standard_normal(series.shape)).astype(np.float32)


def naive_last_value_mse(series):
    """MSE of predicting each next value by the current one, series [count, steps + 1]."""
    return float(np.mean((series[:, 1:] - series[:, :-1]) ** 2))


class NextStepPredictor(Module):
    """series inputs [N, T] -> predicted next values [N, T]: a recurrent stack over the
    values, and a Linear applied to every step's output (many to many)."""

    def __init__(self, cell="gru", hidden_size=32, num_layers=1):
        super().__init__()
        self.hidden_size = hidden_size
        self.rnn = _LAYERS[cell](1, hidden_size, num_layers=num_layers)
        self.head = Linear(hidden_size, 1)

    def forward(self, values):
        batch, steps = values.shape
        outputs, _ = self.rnn(values.reshape(batch, steps, 1))
        return self.head(outputs.reshape(batch * steps, self.hidden_size)).reshape(batch, steps)


def run_time_series(train_count=2000, test_count=500, steps=50, cell="gru", hidden_size=32, epochs=20,
                    batch_size=50, lr=0.01, seed=0, log=print):
    """Train NextStepPredictor on noisy sums of sines; returns test MSE beside the naive
    last-value predictor's."""
    init.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train, test = make_sine_series(train_count, steps, generator=rng), make_sine_series(test_count, steps, generator=rng)
    model = NextStepPredictor(cell, hidden_size)
    optimizer = optim.Adam(model.parameters(), lr=lr)

    def batches(epoch):
        order = rng.permutation(train_count)
        return (train[order[first:first + batch_size]] for first in range(0, train_count, batch_size))

    def batch_loss(batch):
        return mse_loss(model(Tensor(batch[:, :-1])), Tensor(batch[:, 1:])), len(batch)

    start = time.perf_counter()
    for result in Trainer(model, optimizer, batch_loss, name="timeseries").fit(batches, epochs):
        if log:
            log("epoch %d  train MSE %.5f" % (result.epoch, result.train_loss))
    with autograd_core.no_grad():
        prediction = model(Tensor(test[:, :-1])).data
    return dict(task="timeseries", cell=cell, test_mse=float(np.mean((prediction - test[:, 1:]) ** 2)),
                naive_last_value_mse=naive_last_value_mse(test), epochs=epochs,
                seconds=round(time.perf_counter() - start, 1))


# ---- encoder-decoder: reversing or sorting digit sequences -----------------------------
DIGITS = 10
START = DIGITS  # the decoder's first input, a token that is no digit


def make_digit_task(count, length, task="reverse", generator=None):
    """(sources, targets), int64 [count, length]: random digits, and the same digits
    reversed or sorted."""
    rng = generator if generator is not None else np.random.default_rng(0)
    sources = rng.integers(0, DIGITS, size=(count, length))
    if task == "reverse":
        targets = sources[:, ::-1]
    elif task == "sort":
        targets = np.sort(sources, axis=1)
    else:
        raise ValueError("make_digit_task: task must be 'reverse' or 'sort', got %r" % (task,))
    return sources.astype(np.int64), np.ascontiguousarray(targets).astype(np.int64)


def exact_sequence_accuracy(predictions, targets):
    """Fraction of sequences whose every position is right (predictions, targets [N, T])."""
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    if predictions.shape != targets.shape:
        raise ValueError("exact_sequence_accuracy: shapes %s and %s differ" % (predictions.shape, targets.shape))
    return float(np.mean(np.all(predictions == targets, axis=1)))


class Seq2Seq(Module):
    """Encoder-decoder without attention: a GRU encoder reads the embedded source; its
    final state starts a GRU decoder, which is fed the previous target digit (teacher
    forcing) in training and its own previous prediction in :meth:`generate`."""

    def __init__(self, hidden_size=128, embedding_dim=16, num_layers=1):
        super().__init__()
        self.hidden_size = hidden_size
        self.source_embedding = Embedding(DIGITS, embedding_dim)
        self.target_embedding = Embedding(DIGITS + 1, embedding_dim)
        self.encoder = GRU(embedding_dim, hidden_size, num_layers=num_layers)
        self.decoder = GRU(embedding_dim, hidden_size, num_layers=num_layers)
        self.output = Linear(hidden_size, DIGITS)

    def forward(self, sources, targets):
        """Teacher-forced logits [N, T, 10] for targets [N, T] given sources [N, S]."""
        _, state = self.encoder(self.source_embedding(sources))
        previous = np.concatenate([np.full((len(targets), 1), START), targets[:, :-1]], axis=1)
        outputs, _ = self.decoder(self.target_embedding(previous), state)
        batch, steps = targets.shape
        return self.output(outputs.reshape(batch * steps, self.hidden_size)).reshape(batch, steps, DIGITS)

    @autograd_core.no_grad()
    def generate(self, sources, length):
        """Greedy decoding: int64 [N, length]."""
        _, state = self.encoder(self.source_embedding(sources))
        previous = np.full((len(sources), 1), START)
        result = []
        for _ in range(length):
            outputs, state = self.decoder(self.target_embedding(previous), state)
            previous = self.output(outputs[:, 0]).data.argmax(axis=1)[:, None]
            result.append(previous[:, 0])
        return np.stack(result, axis=1)


def run_digit_seq2seq(task="reverse", length=6, train_count=20000, test_count=2000, hidden_size=128,
                      epochs=10, batch_size=100, lr=0.003, seed=0, log=print):
    """Train Seq2Seq on random digit sequences; returns exact-sequence and per-digit test accuracy."""
    init.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_sources, train_targets = make_digit_task(train_count, length, task, rng)
    test_sources, test_targets = make_digit_task(test_count, length, task, rng)
    model = Seq2Seq(hidden_size)
    optimizer = optim.Adam(model.parameters(), lr=lr)

    def batches(epoch):
        order = rng.permutation(train_count)
        return (order[first:first + batch_size] for first in range(0, train_count, batch_size))

    def batch_loss(index):
        logits = model(train_sources[index], train_targets[index])
        return cross_entropy(logits.reshape(-1, DIGITS), train_targets[index].reshape(-1)), len(index)

    trainer = Trainer(model, optimizer, batch_loss, clip_grad_norm=5.0, name=task)
    start = time.perf_counter()
    for result in trainer.fit(batches, epochs):
        if log:
            log("epoch %d  train loss %.4f" % (result.epoch, result.train_loss))
    model.eval()
    predictions = model.generate(test_sources, length)
    return dict(task=task, length=length, exact_sequence_accuracy=exact_sequence_accuracy(predictions, test_targets),
                digit_accuracy=float(np.mean(predictions == test_targets)), epochs=epochs,
                seconds=round(time.perf_counter() - start, 1))


def add_arguments(parser):
    """The options of the sequence tasks' command line."""
    parser.add_argument("task", choices=["timeseries", "reverse", "sort"])
    parser.add_argument("--epochs", type=arguments.positive_int)
    parser.add_argument("--cell", default="gru", choices=sorted(_LAYERS), help="timeseries only")
    parser.add_argument("--length", type=arguments.positive_int, default=6, help="digits per sequence (reverse/sort)")
    parser.add_argument("--hidden", type=arguments.positive_int)
    arguments.add_threads_argument(parser)
    arguments.add_seed_argument(parser, help="seed for the data, initialisation and shuffling")


def run(args):
    """Train the task ``args`` names and print its result as one JSON line."""
    arguments.set_threads(args)
    options = {"seed": args.seed}
    if args.epochs:
        options["epochs"] = args.epochs
    if args.hidden:
        options["hidden_size"] = args.hidden
    if args.task == "timeseries":
        result = run_time_series(cell=args.cell, **options)
    else:
        result = run_digit_seq2seq(args.task, length=args.length, **options)
    print(json.dumps(result))
    return 0


def main(argv=None):
    """``python -m nn.apps.sequence_tasks TASK [options]``."""
    parser = argparse.ArgumentParser(prog="python -m nn.apps.sequence_tasks",
                                     description="The lecture's sequence-to-sequence and encoder-decoder tasks.")
    add_arguments(parser)
    return arguments.run_reporting_errors(run, parser.parse_args(argv), "python -m nn.apps.sequence_tasks")


if __name__ == "__main__":
    sys.exit(main())
