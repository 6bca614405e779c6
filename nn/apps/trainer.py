"""The one training loop every command uses, and the run directory of ``train``.

:class:`Trainer` owns the optimisation step (zero the gradients, backward, clip, step,
refuse a non-finite loss) and the epoch loop (learning-rate schedule, train mode, an
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
import time
from dataclasses import dataclass

import numpy as np

import autograd_core

from .. import checkpoint, data, init, optim
from . import plots

__all__ = ["OPTIMIZERS", "make_optimizer", "Progress", "Trainer", "EpochResult", "evaluate", "write_json",
           "format_metrics", "train_model"]

try:
    import tqdm as _tqdm
except ImportError:  # optional extra: autograd-core[train]
    _tqdm = None

OPTIMIZERS = {
    "sgd": lambda params, lr: optim.SGD(params, lr=lr),
    "momentum": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9),
    "adam": lambda params, lr: optim.Adam(params, lr=lr),
    "rmsprop": lambda params, lr: optim.RMSprop(params, lr=lr),
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
    """

    def __init__(self, model, optimizer, loss, clip_grad_norm=None, name="training", show_progress=False):
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.clip_grad_norm = clip_grad_norm
        self.name = name
        self.show_progress = show_progress
        self.steps = 0
        self.epoch = None

    def step(self, batch):
        """One update on ``batch``; returns (loss value, examples)."""
        loss, examples = self.loss(batch)
        self.optimizer.zero_grad()
        loss.backward()
        if self.clip_grad_norm:
            optim.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        value = float(loss.data)
        if not np.isfinite(value):
            raise FloatingPointError(f"{self.name}: loss became {value} in epoch {self.epoch}; "
                                     "try a smaller learning rate or clipping the gradients' norm")
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


def train_model(spec, task, config, train_set, test_set, run_dir, resume=None, explicit_lr=None,
                show_progress=True):
    """Train the registered model ``spec`` on its ``task``: the ``train`` command.

    ``config``: the training settings (the keys of ``nn.apps.models.DEFAULT_TRAINING``
    plus seed, clip_grad_norm, limit_train, limit_test). ``train_set`` and ``test_set``:
    (images [N, 28, 28, 1] float32, labels [N] int64). Writes ``checkpoint.npz`` and
    ``metrics.json`` into ``run_dir`` after every epoch and ``curve.png`` (plus the task's
    pictures) at the end. ``resume``: a checkpoint of this model to continue from;
    ``explicit_lr``: a learning rate that replaces the resumed one. Returns the history
    (one dict per epoch, as in metrics.json).
    """
    os.makedirs(run_dir, exist_ok=True)
    checkpoint_path = os.path.join(run_dir, "checkpoint.npz")
    metrics_path = os.path.join(run_dir, "metrics.json")
    (train_images, train_labels), (test_images, test_labels) = train_set, test_set

    # One seed fixes initial weights, dropout masks and the shuffling order.
    init.manual_seed(config["seed"])
    autograd_core.manual_seed(config["seed"])
    model = spec.build()
    optimizer = make_optimizer(config["optimizer"], model.parameters(), config["lr"])
    train_loader = data.DataLoader(train_images, train_labels, batch_size=config["batch_size"],
                                   shuffle=True, seed=config["seed"])
    test_loader = data.DataLoader(test_images, test_labels, batch_size=max(config["batch_size"], 500))

    history = []
    first_epoch = 1
    if resume:
        metadata = checkpoint.read_metadata(resume)
        if metadata.get("model") != spec.name:
            raise ValueError(f"--resume {resume}: checkpoint is of model {metadata.get('model')!r}, "
                             f"not {spec.name!r}")
        checkpoint.load_training_state(resume, model, optimizer)
        if explicit_lr is not None:  # the checkpoint restored the old rate; an explicit --lr wins
            for group in optimizer.param_groups:
                group["lr"] = explicit_lr
        history = list(metadata.get("history", []))
        first_epoch = int(metadata.get("epoch", 0)) + 1
        if first_epoch > config["epochs"]:
            raise ValueError(f"--resume {resume}: the checkpoint already has {first_epoch - 1} epoch(s); "
                             f"pass --epochs greater than that")
        # DataLoader epochs count from 0: continue with the order the next epoch would have had.
        train_loader.set_epoch(first_epoch - 1)
        print(f"resumed from {resume} after epoch {first_epoch - 1}")
    parameter_count = sum(int(np.prod(p.shape)) for p in model.parameters())
    print(f"training {spec.name} ({parameter_count} parameters) on {len(train_labels)} images, "
          f"testing on {len(test_labels)}: {config['epochs']} epochs, batch {config['batch_size']}, "
          f"{config['optimizer']} lr {config['lr']}{_schedule_text(config)}, "
          f"{autograd_core.get_num_threads()} thread(s), "
          f"run directory {run_dir}", flush=True)

    def batch_loss(batch):
        images, labels = batch
        return task.loss(model, autograd_core.from_numpy(images), labels), len(labels)

    trainer = Trainer(model, optimizer, batch_loss, clip_grad_norm=config["clip_grad_norm"],
                      name=f"training {spec.name}", show_progress=show_progress)
    for result in trainer.fit(lambda epoch: train_loader, config["epochs"], first_epoch,
                              learning_rate=_step_schedule(config)):
        train_seconds = time.perf_counter() - result.started
        metrics = evaluate(model, task.evaluate, test_loader)
        entry = {"epoch": result.epoch, "train_loss": result.train_loss}
        entry.update({"test_" + name: value for name, value in metrics.items()})
        entry.update(train_seconds=round(train_seconds, 3),
                     seconds=round(time.perf_counter() - result.started, 3))
        history.append(entry)
        print(f"epoch {result.epoch}/{config['epochs']}: train loss {entry['train_loss']:.4f}, "
              f"{format_metrics(metrics)} ({entry['seconds']:.1f} s)", flush=True)
        metadata = {"model": spec.name, "task": spec.task, "epoch": result.epoch, "config": config,
                    "history": history}
        checkpoint.save_training_state(checkpoint_path, model, optimizer, metadata)
        write_json(metrics_path, {"model": spec.name, "task": spec.task, "config": config,
                                  "checkpoint": "checkpoint.npz", "epochs": history})

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
