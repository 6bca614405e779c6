"""The one training loop every command uses, and the run directory of ``train``.

:class:`Trainer` owns the optimisation step (zero the gradients, backward, clip, step;
stop, before the update, at a non-finite or diverged loss) and the epoch loop (learning-rate schedule, train mode, an
optional progress bar). :meth:`Trainer.fit` yields after each epoch, so that each command
does its own bookkeeping between epochs: ``train`` evaluates and writes its run directory,
the language model decays its learning rate, the sequence tasks log.

:func:`train_model` is the ``train`` command after its arguments are parsed: it builds the
model, resumes from a checkpoint if asked, and after every epoch evaluates on the test
set and rewrites ``checkpoint.npz`` (atomically, so an interrupted run keeps the previous
one) and ``metrics.json``; at the end it draws ``curve.png`` and the task's pictures.
"""
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

import autograd_core

from .. import checkpoint, data, init, optim
from . import plots
from .distributed import SINGLE

__all__ = ["OPTIMIZERS", "make_optimizer", "Progress", "Trainer", "TrainingDiverged", "EpochResult", "evaluate",
           "write_json", "format_metrics", "read_run_metadata", "check_run_directory", "train_model"]

try:
    import tqdm as _tqdm
except ImportError:  # optional extra: autograd-core[train]
    _tqdm = None

OPTIMIZERS = {
    "sgd": lambda params, lr: optim.SGD(params, lr=lr),
    "momentum": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9),
    "adam": lambda params, lr: optim.Adam(params, lr=lr),
    "rmsprop": lambda params, lr: optim.RMSprop(params, lr=lr),
    # the rest of nn.optim, each with torch's defaults but the learning rate (issue 14)
    "nesterov": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "adamw": lambda params, lr: optim.AdamW(params, lr=lr),
    "amsgrad": lambda params, lr: optim.Adam(params, lr=lr, amsgrad=True),
    "adagrad": lambda params, lr: optim.Adagrad(params, lr=lr),
    "adadelta": lambda params, lr: optim.Adadelta(params, lr=lr),
    "adamax": lambda params, lr: optim.Adamax(params, lr=lr),
    "nadam": lambda params, lr: optim.NAdam(params, lr=lr),
    "radam": lambda params, lr: optim.RAdam(params, lr=lr),
}


def make_optimizer(name, params, lr):
    """An optimizer from :data:`OPTIMIZERS` by name, over ``params`` with learning rate ``lr``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](list(params), lr)


class Progress:
    """Iterates over a loader showing the running loss: a tqdm bar, or plain lines."""

    def __init__(self, loader, description, enabled):
        self.loader = loader
        self.description = description
        self.enabled = enabled
        self.bar = None
        if enabled and _tqdm is not None:
            self.bar = _tqdm.tqdm(loader, desc=description, unit="batch", leave=True, dynamic_ncols=True)
        # Without tqdm, about ten lines per epoch.
        self.every = max(1, len(loader) // 10)
        self.count = 0

    def __iter__(self):
        return iter(self.bar if self.bar is not None else self.loader)

    def update(self, running_loss):
        self.count += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{running_loss:.4f}", refresh=False)
        elif self.count % self.every == 0 or self.count == len(self.loader):
            print(f"{self.description}: batch {self.count}/{len(self.loader)}, loss {running_loss:.4f}",
                  flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class TrainingDiverged(FloatingPointError):
    """The training loss became non-finite or grew past the Trainer's divergence bound;
    raised before that batch's update, so the weights are the last good ones."""


@dataclass(frozen=True)
class EpochResult:
    """What :meth:`Trainer.fit` yields after an epoch: its number, the mean training loss
    per example, and when it started (``time.perf_counter()``)."""

    epoch: int
    train_loss: float
    started: float


class Trainer:
    """Trains ``model`` with ``optimizer``.

    ``loss(batch) -> (loss, examples)`` computes the scalar loss Tensor of one batch and
    the number of examples it covers (the weight of that loss in the epoch's mean).
    ``clip_grad_norm`` (optional) clips the gradients' joint norm before each step.
    ``name`` names the run in errors; ``show_progress`` draws a progress bar per epoch
    (the batches must then have a length).

    A loss that is not finite, or whose magnitude exceeds ``divergence_factor`` times
    that of this Trainer's first loss (at least 1), stops training with
    :class:`TrainingDiverged` naming the step and the value, before that batch's update:
    the weights stay those of the last good step. (A diverged run's loss can stay finite
    for ever, e.g. 1e10 nats per character at a learning rate of 1e10, because the
    softmax saturates; training on would only waste the time budget.)
    ``divergence_factor=None`` checks finiteness only.
    """

    # No sound run multiplies its first loss by 10,000 (a classifier starting at
    # ln 10 = 2.3 nats would reach 23,000): only a diverged one does.
    DIVERGENCE_FACTOR = 1e4

    def __init__(self, model, optimizer, loss, clip_grad_norm=None, name="training", show_progress=False,
                 divergence_factor=DIVERGENCE_FACTOR):
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.clip_grad_norm = clip_grad_norm
        self.name = name
        self.show_progress = show_progress
        self.divergence_factor = divergence_factor
        self.first_loss = None
        self.steps = 0
        self.epoch = None

    def _check_loss(self, value):
        step = self.steps + 1
        if not np.isfinite(value):
            problem = f"loss became {value} at step {step} (epoch {self.epoch})"
        elif self.first_loss is None:
            self.first_loss = value
            return
        elif (self.divergence_factor is not None
              and abs(value) > self.divergence_factor * max(abs(self.first_loss), 1.0)):
            problem = (f"loss became {value:.6g} at step {step} (epoch {self.epoch}), more than "
                       f"{self.divergence_factor:g} times the first loss {self.first_loss:.6g}: training diverged")
        else:
            return
        raise TrainingDiverged(f"{self.name}: {problem}; stopped before that step's update (the weights are "
                               f"those after step {self.steps}); try a smaller learning rate or clipping "
                               "the gradients' norm")

    def step(self, batch):
        """One update on ``batch``; returns (loss value, examples). A non-finite or
        diverged loss raises :class:`TrainingDiverged` before anything is changed."""
        loss, examples = self.loss(batch)
        value = float(loss.data)
        self._check_loss(value)
        self.optimizer.zero_grad()
        loss.backward()
        if self.clip_grad_norm:
            optim.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        self.steps += 1
        return value, examples

    def fit(self, batches, epochs=None, first_epoch=1, learning_rate=None, after_step=None, stop=None):
        """Train epoch after epoch, yielding an :class:`EpochResult` after each.

        ``batches(epoch)`` returns the epoch's iterable of batches. Epochs run from
        ``first_epoch`` to ``epochs`` (without end if None). ``learning_rate(epoch)``
        (optional) sets every group's rate before the epoch. ``after_step(value)`` runs
        after each update; ``stop()`` is asked before each epoch and after each update,
        and True ends training there (a cut-short epoch yields nothing).
        """
        last = itertools.count(first_epoch) if epochs is None else range(first_epoch, epochs + 1)
        for epoch in last:
            if stop is not None and stop():
                return
            self.epoch = epoch
            started = time.perf_counter()
            if learning_rate is not None:
                rate = learning_rate(epoch)
                for group in self.optimizer.param_groups:
                    group["lr"] = rate
            self.model.train()
            epoch_batches = batches(epoch)
            progress = None
            if self.show_progress:
                description = f"epoch {epoch}/{epochs}" if epochs is not None else f"epoch {epoch}"
                progress = epoch_batches = Progress(epoch_batches, description, True)
            total, seen = 0.0, 0
            try:
                for batch in epoch_batches:
                    value, examples = self.step(batch)
                    total += value * examples
                    seen += examples
                    if progress is not None:
                        progress.update(total / seen)
                    if after_step is not None:
                        after_step(value)
                    if stop is not None and stop():
                        return
            finally:
                if progress is not None:
                    progress.close()
            yield EpochResult(epoch, total / seen if seen else float("nan"), started)


def evaluate(model, evaluate_batches, loader):
    """``evaluate_batches(model, loader) -> metrics`` in eval mode and without a graph."""
    model.eval()
    with autograd_core.no_grad():
        return evaluate_batches(model, loader)


def evaluate_sharded(model, evaluate_batches, images, labels, batch_size, world):
    """The test metrics over all of (images, labels), each rank evaluating its shard:
    examples rank, rank + size, ... (a DistributedSampler's order without its padding, so
    no example counts twice), each rank's means weighted by its count and summed over
    ranks. The metrics are means per example (accuracy, loss, ...), so this is the
    one-process result up to rounding."""
    if world.size == 1:
        return evaluate(model, evaluate_batches, data.DataLoader(images, labels, batch_size=batch_size))
    mine = np.arange(world.rank, len(labels), world.size)
    local = evaluate(model, evaluate_batches, data.DataLoader(images[mine], labels[mine], batch_size=batch_size))
    names = sorted(local)
    sums = world.sum([local[name] * len(mine) for name in names] + [len(mine)])
    return {name: value / sums[-1] for name, value in zip(names, sums)}


def write_json(path, value):
    """Write ``value`` as JSON, atomically like the checkpoints: a reader never sees half a file."""
    temporary = path + ".tmp"
    with open(temporary, "w") as stream:
        json.dump(value, stream, indent=2)
        stream.write("\n")
    os.replace(temporary, path)


def format_metrics(metrics):
    return ", ".join(f"test {name} {value:.4f}" for name, value in metrics.items())


def _schedule_text(config):
    if not config.get("lr_step_size"):
        return ""
    return f" (x{config['lr_gamma']} every {config['lr_step_size']} epochs)"


def _step_schedule(config):
    """The learning rate of each epoch: lr * lr_gamma ** ((epoch - 1) // lr_step_size), a
    function of the epoch alone, so that a resumed run continues the same schedule."""
    if not config["lr_step_size"]:
        return None
    return lambda epoch: config["lr"] * config["lr_gamma"] ** ((epoch - 1) // config["lr_step_size"])


# The files train writes into its run directory (the task's pictures go there too).
RUN_FILES = ("checkpoint.npz", "metrics.json", "curve.png")


def check_run_directory(run_dir, option="--out"):
    """Create ``run_dir`` and check, before any training, that ``train`` can write its files
    there (not a file, writable, no directory in a file's place): a run must not
    learn for an hour and then fail to save."""
    run_dir = os.fspath(run_dir)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f"{option} {run_dir!r} is a file; expected a run directory")
    for name in RUN_FILES:
        checkpoint.check_writable(os.path.join(run_dir, name), what=f"{option} file")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def read_run_metadata(path):
    """The metadata of a checkpoint written by ``train``, with the type of every field
    that is used checked: ``model`` a str, ``epoch`` an int >= 0, ``history`` a list of
    objects, ``config`` an object. A crafted or foreign value is a ``ValueError`` naming
    the file and the field."""
    metadata = checkpoint.read_metadata(path)
    expected = {"model": (lambda v: isinstance(v, str), "a model name (string)"),
                "task": (lambda v: isinstance(v, str), "a task name (string)"),
                "epoch": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
                "history": (lambda v: isinstance(v, list) and all(isinstance(e, dict) for e in v),
                            "a list of objects"),
                "config": (lambda v: isinstance(v, dict), "an object")}
    for field, (valid, description) in expected.items():
        if field in metadata and not valid(metadata[field]):
            raise ValueError(f"checkpoint {os.fspath(path)!r}: metadata field {field!r} is "
                             f"{metadata[field]!r:.80}, expected {description}")
    return metadata


def _check_config(config):
    for key in ("epochs", "batch_size"):
        if not _is_int(config[key]) or config[key] < 1:
            raise ValueError(f"train: {key} must be an integer >= 1, got {config[key]!r}")
    if not (isinstance(config["lr"], (int, float)) and np.isfinite(config["lr"]) and config["lr"] > 0):
        raise ValueError(f"train: lr must be a finite number > 0, got {config['lr']!r}")


def _warn_if_resumed_differently(resume, metadata, config, train_examples):
    """A resumed run continues the old one exactly only with the same batches: say so if
    the batch size, the data limit or the number of training examples changed."""
    old_config = metadata.get("config") or {}
    differences = []
    for key, label in (("batch_size", "batch size"), ("limit_train", "--limit-train")):
        if key in old_config and old_config[key] != config.get(key):
            differences.append(f"{label} {old_config[key]} -> {config.get(key)}")
    if "train_examples" in metadata and metadata["train_examples"] != train_examples:
        differences.append(f"training examples {metadata['train_examples']} -> {train_examples}")
    if differences:
        print(f"warning: --resume {resume}: this run differs from the checkpoint's ("
              + ", ".join(differences) + "); training continues, but not as the uninterrupted run would have",
              file=sys.stderr, flush=True)


def train_model(spec, task, config, train_set, test_set, run_dir, resume=None, explicit_lr=None,
                show_progress=True, world=SINGLE):
    """Train the registered model ``spec`` on its ``task``: the ``train`` command.

    ``config``: the training settings (the keys of ``nn.apps.models.DEFAULT_TRAINING``
    plus seed, clip_grad_norm, limit_train, limit_test). ``train_set`` and ``test_set``:
    (images [N, 28, 28, 1] float32, labels [N] int64). Writes ``checkpoint.npz`` and
    ``metrics.json`` into ``run_dir`` after every epoch and ``curve.png`` (plus the task's
    pictures) at the end. ``resume``: a checkpoint of this model to continue from;
    ``explicit_lr``: a learning rate that replaces the resumed one. Returns the history
    (one dict per epoch, as in metrics.json).

    Everything that can be checked is checked before the first step: the run directory
    is writable, both sets hold examples, the settings are valid, the checkpoint to
    resume is this model's. A non-finite or diverged loss stops training
    (:class:`TrainingDiverged`) and leaves the last epoch's checkpoint as it was.

    ``world`` (:class:`nn.apps.distributed.World`): under ``mpirun ... --distributed``
    every rank runs this with the same data; each global batch is cut over the ranks
    (``World.part``) and the losses weighted so that the averaged gradient is the global
    batch's; the test set is evaluated in shards; rank 0 alone prints and writes files.
    A checkpoint holds the whole model and optimizer, so a run resumes under any
    number of ranks.
    """
    _check_config(config)
    if world.is_main:
        check_run_directory(run_dir)
    checkpoint_path = os.path.join(run_dir, "checkpoint.npz")
    metrics_path = os.path.join(run_dir, "metrics.json")
    (train_images, train_labels), (test_images, test_labels) = train_set, test_set
    for name, labels in (("training", train_labels), ("test", test_labels)):
        if len(labels) == 0:
            raise ValueError(f"train {spec.name}: the {name} set holds no examples; expected at least one")
    if len(test_labels) < world.size:
        raise ValueError(f"train {spec.name}: the test set holds {len(test_labels)} examples, fewer than the "
                         f"{world.size} ranks that evaluate it")

    # One seed fixes initial weights, dropout masks and the shuffling order.
    init.manual_seed(config["seed"])
    autograd_core.manual_seed(config["seed"])
    model = spec.build()
    optimizer = make_optimizer(config["optimizer"], model.parameters(), config["lr"])
    # every rank draws the same global batches (same seed) and trains on its part of each
    train_loader = data.DataLoader(train_images, train_labels, batch_size=config["batch_size"],
                                   shuffle=True, seed=config["seed"])
    test_batch_size = max(config["batch_size"], 500)

    history = []
    first_epoch = 1
    if resume:
        metadata = read_run_metadata(resume)
        if metadata.get("model") != spec.name:
            raise ValueError(f"--resume {resume}: checkpoint is of model {metadata.get('model')!r}, "
                             f"not {spec.name!r}")
        checkpoint.load_training_state(resume, model, optimizer)
        if explicit_lr is not None:  # the checkpoint restored the old rate; an explicit --lr wins
            for group in optimizer.param_groups:
                group["lr"] = explicit_lr
        history = list(metadata.get("history", []))
        first_epoch = metadata.get("epoch", 0) + 1
        if first_epoch > config["epochs"]:
            raise ValueError(f"--resume {resume}: the checkpoint already has {first_epoch - 1} epoch(s); "
                             f"pass --epochs greater than that")
        # DataLoader epochs count from 0: continue with the order the next epoch would have had.
        train_loader.set_epoch(first_epoch - 1)
        if world.is_main:
            _warn_if_resumed_differently(resume, metadata, config, len(train_labels))
        world.say(f"resumed from {resume} after epoch {first_epoch - 1}")
    # (after resuming: every rank then holds the checkpoint's weights; this checks the
    # ranks' models agree and, for fresh runs, gives all of them rank 0's)
    trained = world.wrap(model)
    parameter_count = sum(int(np.prod(p.shape)) for p in model.parameters())
    ranks = f", {world.size} ranks" if world.distributed else ""
    world.say(f"training {spec.name} ({parameter_count} parameters) on {len(train_labels)} images, "
          f"testing on {len(test_labels)}: {config['epochs']} epochs, batch {config['batch_size']}, "
          f"{config['optimizer']} lr {config['lr']}{_schedule_text(config)}, "
          f"{autograd_core.get_num_threads()} thread(s){'' if not ranks else ' per rank'}{ranks}, "
          f"run directory {run_dir}", flush=True)

    def batch_loss(batch):
        images, labels = batch
        if world.size == 1:
            return task.loss(model, autograd_core.from_numpy(images), labels), len(labels)
        total = len(labels)
        part = world.part(total)
        images, labels = images[part], labels[part]
        if len(labels) == 0:  # a last batch smaller than the world: this rank adds zeros
            loss = sum((param * 0.0).sum() for param in model.parameters())
        else:
            loss = task.loss(trained, autograd_core.from_numpy(images), labels) * world.loss_weight(len(labels),
                                                                                                     total)
        # weight total / size: the epoch's mean of (weighted loss x weight) over ranks is
        # the mean loss per example of the global batches
        return loss, total / world.size

    trainer = Trainer(trained, optimizer, batch_loss, clip_grad_norm=config["clip_grad_norm"],
                      name=f"training {spec.name}", show_progress=show_progress and world.is_main)
    for result in trainer.fit(lambda epoch: train_loader, config["epochs"], first_epoch,
                              learning_rate=_step_schedule(config)):
        train_seconds = time.perf_counter() - result.started
        metrics = evaluate_sharded(model, task.evaluate, test_images, test_labels, test_batch_size, world)
        # each rank's mean is (its examples' loss sum) x size / examples: the ranks' sum / size
        train_loss = result.train_loss if world.size == 1 else world.sum([result.train_loss])[0] / world.size
        entry = {"epoch": result.epoch, "train_loss": train_loss}
        entry.update({"test_" + name: value for name, value in metrics.items()})
        entry.update(train_seconds=round(train_seconds, 3),
                     seconds=round(time.perf_counter() - result.started, 3))
        history.append(entry)
        if not world.is_main:
            continue
        print(f"epoch {result.epoch}/{config['epochs']}: train loss {entry['train_loss']:.4f}, "
              f"{format_metrics(metrics)} ({entry['seconds']:.1f} s)", flush=True)
        metadata = {"model": spec.name, "task": spec.task, "epoch": result.epoch, "config": config,
                    "history": history, "train_examples": len(train_labels), "world_size": world.size}
        checkpoint.save_training_state(checkpoint_path, model, optimizer, metadata)
        write_json(metrics_path, {"model": spec.name, "task": spec.task, "config": config,
                                  "checkpoint": "checkpoint.npz", "epochs": history})

    if not world.is_main:
        return history
    if history:
        plt = plots.pyplot()
        if plt is None:
            # One notice for every figure this run would have drawn.
            print("matplotlib is not installed: skipped the training-curve plot"
                  + (" and the task's pictures" if task.pictures else "")
                  + " (pip install 'autograd-core[plot]')")
        else:
            written = [plots.training_curve(plt, os.path.join(run_dir, "curve.png"), history, task.metric,
                                            f"{spec.name}: training curve")]
            if task.pictures is not None:
                written += list(task.pictures(model, test_images, test_labels, run_dir, spec.name) or [])
            print("wrote " + ", ".join(written))
    print(f"wrote {checkpoint_path} and {metrics_path}")
    return history
