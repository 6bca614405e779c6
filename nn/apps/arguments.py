"""The command-line pieces every command shares, so that ``autograd-core``'s subcommands
and the ``python -m nn.apps.X`` entry points parse the same options the same way."""
import argparse

import autograd_core
from autograd_core.kernels.runtime import MAX_THREADS, check_num_threads

from .. import _checks

__all__ = ["positive_int", "positive_float", "thread_count", "add_threads_argument", "add_seed_argument",
           "add_data_arguments", "set_threads"]


def positive_int(text):
    """argparse type: a positive integer (the rule the layers apply to their sizes)."""
    try:
        return _checks.positive_int("argument", "value", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}") from None


def positive_float(text):
    """argparse type: a number greater than zero."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def thread_count(text):
    """argparse type for ``--threads``: an integer from 1 to MAX_THREADS (256)."""
    try:
        return check_num_threads(text, "--threads")
    except ValueError as error:
        # argparse already prefixes "argument --threads: "
        raise argparse.ArgumentTypeError(str(error).replace("--threads: ", "", 1)) from None


def add_threads_argument(parser):
    parser.add_argument("--threads", type=thread_count, metavar="N",
                        help=f"threads for the C kernels, 1 to {MAX_THREADS}")


def add_seed_argument(parser, help="seed for initialisation, shuffling, dropout"):
    parser.add_argument("--seed", type=int, default=0, help=help)


def add_data_arguments(parser):
    """Where Fashion-MNIST is, and how much of the test set to use."""
    parser.add_argument("--data-dir", help="directory with the Fashion-MNIST IDX files (default: search "
                        "$AUTOGRAD_CORE_DATA_DIR, /usr/share/datasets/fashion-mnist, the user cache)")
    parser.add_argument("--no-download", action="store_true", help="never try to download the data")
    parser.add_argument("--limit-test", type=positive_int, metavar="N",
                        help="evaluate on the first N test images only")


def set_threads(args):
    """Apply ``--threads`` (if given) to the C kernels."""
    if args.threads is not None:
        autograd_core.set_num_threads(args.threads)
