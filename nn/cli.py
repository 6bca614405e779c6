"""The ``autograd-core`` command (also ``python -m nn``): train and evaluate models.

    autograd-core models
    autograd-core train softmax --epochs 5 --out runs/softmax
    autograd-core train cnn --threads 2 --limit-train 2000 --limit-test 500
    autograd-core evaluate --checkpoint runs/softmax/checkpoint.npz

``train`` writes into the run directory (``--out``, default ``runs/MODEL``):

* ``checkpoint.npz``: model, optimizer and metadata after the latest epoch (replaced
  atomically each epoch, so an interrupted run keeps the previous one);
* ``metrics.json``: the configuration and, per epoch, the training loss, the test
  metrics and the time taken (rewritten each epoch);
* ``curve.png``: training loss and test metric per epoch (needs matplotlib; without it one
  notice says the plot was skipped).

``--resume CHECKPOINT`` continues a run from its checkpoint: weights, optimizer state and
the shuffling order of the next epoch (dropout masks are drawn afresh). Progress bars use tqdm when
it is installed and plain lines otherwise.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import autograd_core

from . import checkpoint, data, init, models, optim

__all__ = ["main", "build_parser", "make_optimizer", "OPTIMIZERS"]

try:
    import tqdm as _tqdm
except ImportError:  # optional extra: autograd-core[train]
    _tqdm = None

PROG = "autograd-core"
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


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train and evaluate autograd_core models on Fashion-MNIST."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def add_common(sub):
        sub.add_argument("--data-dir", help="directory with the Fashion-MNIST IDX files (default: search "
                         "$AUTOGRAD_CORE_DATA_DIR, /usr/share/datasets/fashion-mnist, the user cache)")
        sub.add_argument("--no-download", action="store_true", help="never try to download the data")
        sub.add_argument("--threads", type=_positive_int, help="threads for the C kernels")
        sub.add_argument("--batch-size", type=_positive_int, help="examples per batch")
        sub.add_argument("--limit-test", type=_positive_int, metavar="N",
                         help="evaluate on the first N test images only")

    commands.add_parser("models", help="list the registered models")

    train = commands.add_parser("train", help="train a model and checkpoint it each epoch")
    train.add_argument("model", metavar="MODEL", help="registered model name (see: %s models)" % PROG)
    train.add_argument("--epochs", type=_positive_int, help="number of epochs (model default if omitted)")
    train.add_argument("--lr", type=_positive_float, help="learning rate (model default if omitted)")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="optimizer (model default if omitted)")
    train.add_argument("--lr-step-size", type=_positive_int, metavar="EPOCHS",
                       help="multiply the learning rate by --lr-gamma every EPOCHS epochs (model default)")
    train.add_argument("--lr-gamma", type=_positive_float, help="factor of the step schedule (model default)")
    train.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling, dropout")
    train.add_argument("--clip-grad-norm", type=_positive_float, metavar="MAX",
                       help="clip the gradients' joint norm to MAX each step")
    train.add_argument("--out", help="run directory (default: runs/MODEL)")
    train.add_argument("--limit-train", type=_positive_int, metavar="N",
                       help="train on the first N training images only")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint of this model")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_common(train)

    evaluate = commands.add_parser("evaluate", help="evaluate a checkpoint on the test set")
    evaluate.add_argument("--checkpoint", required=True, help="checkpoint.npz written by train")
    add_common(evaluate)

    # the character language model trains on a text file, not Fashion-MNIST (nn/text.py)
    from . import text
    text.add_train_arguments(commands.add_parser(
        "train-lm", help="train a character-level LSTM language model on a UTF-8 text file"))
    text.add_sample_arguments(commands.add_parser("sample", help="generate text from a train-lm checkpoint"))
    return parser


# ---------------------------------------------------------------------------------------
# Progress reporting


class _Progress:
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


# ---------------------------------------------------------------------------------------
# Helpers


def _load_split(split, args, limit):
    return data.load_fashion_mnist(split, data_dir=args.data_dir, download=not args.no_download, limit=limit)


def _evaluate(model, task, loader):
    model.eval()
    with autograd_core.no_grad():
        return task.evaluate(model, loader)


def _write_json(path, value):
    # Atomic like the checkpoints: a reader never sees half a file.
    temporary = path + ".tmp"
    with open(temporary, "w") as stream:
        json.dump(value, stream, indent=2)
        stream.write("\n")
    os.replace(temporary, path)


def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or None if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _plot_curve(plt, path, history, metric, title):
    """Write the training curve (train loss, test loss and test metric per epoch)."""
    epochs = [entry["epoch"] for entry in history]
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_axis.plot(epochs, [entry["train_loss"] for entry in history], marker="o", label="train")
    if all("test_loss" in entry for entry in history):
        loss_axis.plot(epochs, [entry["test_loss"] for entry in history], marker="o", label="test")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss")
    loss_axis.legend()
    metric_axis.plot(epochs, [entry["test_" + metric] for entry in history], marker="o", color="C2")
    metric_axis.set_xlabel("epoch")
    metric_axis.set_ylabel("test " + metric)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _schedule_text(config):
    if not config.get("lr_step_size"):
        return ""
    return f" (x{config['lr_gamma']} every {config['lr_step_size']} epochs)"


def _format_metrics(metrics):
    return ", ".join(f"test {name} {value:.4f}" for name, value in metrics.items())


# ---------------------------------------------------------------------------------------
# Commands


def _command_models(args):
    for name in models.available_models():
        spec = models.get_model_spec(name)
        training = spec.training
        print(f"{name:12s} {spec.task:15s} epochs {training['epochs']}, batch {training['batch_size']}, "
              f"{training['optimizer']} lr {training['lr']}  {spec.description}")
    return 0


def _command_train(args):
    spec = models.get_model_spec(args.model)
    task = models.get_task(spec.task)
    config = dict(spec.training)
    for key in ("epochs", "batch_size", "lr", "optimizer", "lr_step_size", "lr_gamma"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    config.update(seed=args.seed, clip_grad_norm=args.clip_grad_norm,
                  limit_train=args.limit_train, limit_test=args.limit_test)
    if args.threads is not None:
        autograd_core.set_num_threads(args.threads)
    run_dir = args.out or os.path.join("runs", spec.name)
    os.makedirs(run_dir, exist_ok=True)
    checkpoint_path = os.path.join(run_dir, "checkpoint.npz")
    metrics_path = os.path.join(run_dir, "metrics.json")

    train_images, train_labels = _load_split("train", args, args.limit_train)
    test_images, test_labels = _load_split("test", args, args.limit_test)

    # One seed fixes initial weights, dropout masks and the shuffling order.
    init.manual_seed(args.seed)
    autograd_core.manual_seed(args.seed)
    model = spec.build()
    optimizer = make_optimizer(config["optimizer"], model.parameters(), config["lr"])
    train_loader = data.DataLoader(train_images, train_labels, batch_size=config["batch_size"],
                                   shuffle=True, seed=args.seed)
    test_loader = data.DataLoader(test_images, test_labels, batch_size=max(config["batch_size"], 500))

    history = []
    first_epoch = 1
    if args.resume:
        metadata = checkpoint.read_metadata(args.resume)
        if metadata.get("model") != spec.name:
            raise ValueError(f"--resume {args.resume}: checkpoint is of model {metadata.get('model')!r}, "
                             f"not {spec.name!r}")
        checkpoint.load_training_state(args.resume, model, optimizer)
        if args.lr is not None:  # the checkpoint restored the old rate; an explicit --lr wins
            for group in optimizer.param_groups:
                group["lr"] = args.lr
        history = list(metadata.get("history", []))
        first_epoch = int(metadata.get("epoch", 0)) + 1
        if first_epoch > config["epochs"]:
            raise ValueError(f"--resume {args.resume}: the checkpoint already has {first_epoch - 1} epoch(s); "
                             f"pass --epochs greater than that")
        # DataLoader epochs count from 0: continue with the order the next epoch would have had.
        train_loader.set_epoch(first_epoch - 1)
        print(f"resumed from {args.resume} after epoch {first_epoch - 1}")
    parameter_count = sum(int(np.prod(p.shape)) for p in model.parameters())
    print(f"training {spec.name} ({parameter_count} parameters) on {len(train_labels)} images, "
          f"testing on {len(test_labels)}: {config['epochs']} epochs, batch {config['batch_size']}, "
          f"{config['optimizer']} lr {config['lr']}{_schedule_text(config)}, "
          f"{autograd_core.get_num_threads()} thread(s), "
          f"run directory {run_dir}", flush=True)

    for epoch in range(first_epoch, config["epochs"] + 1):
        started = time.perf_counter()
        if config["lr_step_size"]:
            # a function of the epoch alone, so a resumed run continues the same schedule
            for group in optimizer.param_groups:
                group["lr"] = config["lr"] * config["lr_gamma"] ** ((epoch - 1) // config["lr_step_size"])
        model.train()
        progress = _Progress(train_loader, f"epoch {epoch}/{config['epochs']}", not args.no_progress)
        total_loss, seen = 0.0, 0
        try:
            for images, labels in progress:
                loss = task.loss(model, autograd_core.from_numpy(images), labels)
                optimizer.zero_grad()
                loss.backward()
                if args.clip_grad_norm:
                    optim.clip_grad_norm_(model.parameters(), args.clip_grad_norm)
                optimizer.step()
                value = float(loss.data)
                if not np.isfinite(value):
                    raise FloatingPointError(
                        f"training {spec.name}: loss became {value} in epoch {epoch}; "
                        "try a smaller --lr or --clip-grad-norm")
                total_loss += value * len(labels)
                seen += len(labels)
                progress.update(total_loss / seen)
        finally:
            progress.close()
        train_seconds = time.perf_counter() - started
        metrics = _evaluate(model, task, test_loader)
        entry = {"epoch": epoch, "train_loss": total_loss / seen}
        entry.update({"test_" + name: value for name, value in metrics.items()})
        entry.update(train_seconds=round(train_seconds, 3),
                     seconds=round(time.perf_counter() - started, 3))
        history.append(entry)
        print(f"epoch {epoch}/{config['epochs']}: train loss {entry['train_loss']:.4f}, "
              f"{_format_metrics(metrics)} ({entry['seconds']:.1f} s)", flush=True)
        metadata = {"model": spec.name, "task": spec.task, "epoch": epoch, "config": config,
                    "history": history}
        checkpoint.save_training_state(checkpoint_path, model, optimizer, metadata)
        _write_json(metrics_path, {"model": spec.name, "task": spec.task, "config": config,
                                   "checkpoint": "checkpoint.npz", "epochs": history})

    if history:
        plt = _pyplot()
        if plt is None:
            # One notice for every figure this run would have drawn.
            print("matplotlib is not installed: skipped the training-curve plot"
                  + (" and the task's pictures" if task.pictures else "")
                  + " (pip install 'autograd-core[plot]')")
        else:
            curve_path = os.path.join(run_dir, "curve.png")
            _plot_curve(plt, curve_path, history, task.metric, f"{spec.name}: training curve")
            written = [curve_path]
            if task.pictures is not None:
                written += list(task.pictures(model, test_images, test_labels, run_dir, spec.name) or [])
            print("wrote " + ", ".join(written))
    print(f"wrote {checkpoint_path} and {metrics_path}")
    return 0


def _command_evaluate(args):
    metadata = checkpoint.read_metadata(args.checkpoint)
    if "model" not in metadata:
        raise ValueError(f"checkpoint {args.checkpoint!r} has no model name in its metadata; "
                         f"was it written by '{PROG} train'?")
    spec = models.get_model_spec(metadata["model"])
    task = models.get_task(spec.task)
    if args.threads is not None:
        autograd_core.set_num_threads(args.threads)
    model = spec.build()
    checkpoint.load_training_state(args.checkpoint, model)
    images, labels = _load_split("test", args, args.limit_test)
    batch_size = args.batch_size or max(spec.training["batch_size"], 500)
    metrics = _evaluate(model, task, data.DataLoader(images, labels, batch_size=batch_size))
    print(f"{spec.name} (epoch {metadata.get('epoch', '?')}) on {len(labels)} test images: "
          + _format_metrics(metrics))
    return 0


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    from . import text
    command = {"models": _command_models, "train": _command_train, "evaluate": _command_evaluate,
               "train-lm": text.run_train, "sample": text.run_sample}[args.command]
    try:
        return command(args)
    except (data.DatasetNotFoundError, FileNotFoundError, ValueError, FloatingPointError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
