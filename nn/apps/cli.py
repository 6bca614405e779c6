"""The ``autograd-core`` command (also ``python -m nn``): train and evaluate models.

    autograd-core models
    autograd-core train softmax --epochs 5 --out runs/softmax
    autograd-core train cnn --threads 2 --limit-train 2000 --limit-test 500
    autograd-core evaluate --checkpoint runs/softmax/checkpoint.npz
    autograd-core evaluate --checkpoint runs/vae/checkpoint.npz --pictures
    autograd-core train-lm tinyshakespeare.txt --minutes 15 --out runs/lm.npz
    autograd-core sample runs/lm.npz --length 500

``train`` writes into the run directory (``--out``, default ``runs/MODEL``):

* ``checkpoint.npz``: model, optimizer and metadata after the latest epoch (replaced
  atomically each epoch, so an interrupted run keeps the previous one);
* ``metrics.json``: the configuration and, per epoch, the training loss, the test
  metrics and the time taken (rewritten each epoch);
* ``curve.png``: training loss and test metric per epoch (needs matplotlib; without it one
  notice says the plot was skipped), and the task's pictures (autoencoders:
  ``reconstructions.png``, ``samples.png``).

``--resume CHECKPOINT`` continues a run from its checkpoint: weights, optimizer state and
the shuffling order of the next epoch (dropout masks are drawn afresh). Progress bars use tqdm when
it is installed and plain lines otherwise.

Each subcommand is an ``add_*_arguments(parser)`` and a ``run*(args)`` function; the
training itself is :mod:`nn.apps.trainer`'s, the models are :mod:`nn.apps.models`'.
"""

import argparse
import os
import sys

from .. import checkpoint, data
from . import arguments, models, plots, text, trainer
from .distributed import World
from .trainer import OPTIMIZERS, make_optimizer

__all__ = ["main", "build_parser", "make_optimizer", "OPTIMIZERS"]

PROG = "autograd-core"


def _add_batch_size_argument(parser):
    parser.add_argument("--batch-size", type=arguments.positive_int, help="examples per batch")


def add_train_arguments(parser):
    """The options of ``train``."""
    parser.add_argument("model", metavar="MODEL", help="registered model name (see: %s models)" % PROG)
    parser.add_argument("--epochs", type=arguments.positive_int, help="number of epochs (model default if omitted)")
    parser.add_argument("--lr", type=arguments.positive_float, help="learning rate (model default if omitted)")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="optimizer (model default if omitted)")
    parser.add_argument("--lr-step-size", type=arguments.positive_int, metavar="EPOCHS",
                        help="multiply the learning rate by --lr-gamma every EPOCHS epochs (model default)")
    parser.add_argument("--lr-gamma", type=arguments.positive_float, help="factor of the step schedule (model default)")
    arguments.add_seed_argument(parser)
    parser.add_argument("--clip-grad-norm", type=arguments.positive_float, metavar="MAX",
                        help="clip the gradients' joint norm to MAX each step")
    parser.add_argument("--out", help="run directory (default: runs/MODEL)")
    parser.add_argument("--limit-train", type=arguments.positive_int, metavar="N",
                        help="train on the first N training images only")
    parser.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint of this model")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_distributed_argument(parser)
    arguments.add_data_arguments(parser)
    arguments.add_threads_argument(parser)
    _add_batch_size_argument(parser)


def add_distributed_argument(parser):
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the MPI job (run under 'mpirun -n N'): each global batch is "
                             "split over the ranks; rank 0 prints and writes the files (needs mpi4py: "
                             "pip install 'autograd-core[mpi]')")


def add_evaluate_arguments(parser):
    """The options of ``evaluate``."""
    parser.add_argument("--checkpoint", required=True, help="checkpoint.npz written by train")
    parser.add_argument("--pictures", nargs="?", const="", metavar="DIR",
                        help="also draw the task's pictures (autoencoders) into DIR "
                             "(default: the checkpoint's directory)")
    arguments.add_data_arguments(parser)
    arguments.add_threads_argument(parser)
    _add_batch_size_argument(parser)


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train and evaluate autograd_core models on Fashion-MNIST."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    commands.add_parser("models", help="list the registered models")
    add_train_arguments(commands.add_parser("train", help="train a model and checkpoint it each epoch"))
    add_evaluate_arguments(commands.add_parser("evaluate", help="evaluate a checkpoint on the test set"))
    # the character language model trains on a text file, not Fashion-MNIST (nn/apps/text.py)
    text.add_train_arguments(commands.add_parser(
        "train-lm", help="train a character-level language model (LSTM, or --arch gpt) on a UTF-8 text file"))
    text.add_sample_arguments(commands.add_parser("sample", help="generate text from a train-lm checkpoint"))
    return parser


def _load_split(split, args, limit):
    return data.load_fashion_mnist(split, data_dir=args.data_dir, download=not args.no_download, limit=limit)


def run_models(args):
    """``models``: one line per registered model with its task and defaults."""
    for name in models.available_models():
        spec = models.get_model_spec(name)
        training = spec.training
        print(f"{name:12s} {spec.task:15s} epochs {training['epochs']}, batch {training['batch_size']}, "
              f"{training['optimizer']} lr {training['lr']}  {spec.description}")
    return 0


def run_train(args):
    """``train``: the model's defaults overridden by the options, then :func:`trainer.train_model`."""
    spec = models.get_model_spec(args.model)
    task = models.get_task(spec.task)
    config = dict(spec.training)
    for key in ("epochs", "batch_size", "lr", "optimizer", "lr_step_size", "lr_gamma"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    config.update(seed=args.seed, clip_grad_norm=args.clip_grad_norm,
                  limit_train=args.limit_train, limit_test=args.limit_test)
    world = args.world = World(args.distributed)
    arguments.set_threads(args)
    world.set_threads_per_rank(args.threads)
    run_dir = args.out or os.path.join("runs", spec.name)
    # before the data are read and anything is trained: a run must not fail to save at the end
    if world.is_main:
        trainer.check_run_directory(run_dir)
    if args.resume:
        trainer.read_run_metadata(args.resume)
    train_set = _load_split("train", args, args.limit_train)
    test_set = _load_split("test", args, args.limit_test)
    trainer.train_model(spec, task, config, train_set, test_set, run_dir, resume=args.resume,
                        explicit_lr=args.lr, show_progress=not args.no_progress, world=world)
    return 0


def run_evaluate(args):
    """``evaluate``: the test metrics of a checkpoint written by ``train`` (and, with
    ``--pictures``, its task's pictures)."""
    metadata = trainer.read_run_metadata(args.checkpoint)
    if "model" not in metadata:
        raise ValueError(f"checkpoint {args.checkpoint!r} has no model name in its metadata; "
                         f"was it written by '{PROG} train'?")
    spec = models.get_model_spec(metadata["model"])
    task = models.get_task(spec.task)
    if args.pictures is not None and task.pictures is None:
        raise ValueError(f"--pictures: {spec.name} is a {spec.task} model, which draws no pictures")
    picture_directory = None
    if args.pictures is not None:
        picture_directory = args.pictures or os.path.dirname(os.path.abspath(args.checkpoint))
        # checked before evaluating, which takes the time
        checkpoint.check_writable(os.path.join(picture_directory, "reconstructions.png"), "--pictures file")
    arguments.set_threads(args)
    model = spec.build()
    checkpoint.load_training_state(args.checkpoint, model)
    images, labels = _load_split("test", args, args.limit_test)
    batch_size = args.batch_size or max(spec.training["batch_size"], 500)
    metrics = trainer.evaluate(model, task.evaluate, data.DataLoader(images, labels, batch_size=batch_size))
    print(f"{spec.name} (epoch {metadata.get('epoch', '?')}) on {len(labels)} test images: "
          + trainer.format_metrics(metrics))
    if picture_directory is not None:
        if plots.pyplot() is None:
            print("matplotlib is not installed: skipped the task's pictures (pip install 'autograd-core[plot]')")
        else:
            for path in task.pictures(model, images, labels, picture_directory, spec.name):
                print("wrote " + path)
    return 0


COMMANDS = {"models": run_models, "train": run_train, "evaluate": run_evaluate,
            "train-lm": text.run_train, "sample": text.run_sample}


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    status = arguments.run_reporting_errors(COMMANDS[args.command], args, PROG)
    world = getattr(args, "world", None)
    if world is not None:  # (--distributed: one rank's failure must end the others too)
        world.abort_if_failed(status, PROG)
    return status


if __name__ == "__main__":
    sys.exit(main())
