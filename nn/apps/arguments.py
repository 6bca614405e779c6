"""The command-line pieces every command shares, so that ``autograd-core``'s subcommands
and the ``python -m nn.apps.X`` entry points parse the same options the same way."""
import argparse
import math
import sys

import autograd_core
from autograd_core.kernels.runtime import MAX_THREADS, check_num_threads

from .. import _checks

__all__ = ["positive_int", "non_negative_int", "positive_float", "non_negative_float", "fraction", "probability",
           "thread_count", "run_reporting_errors", "add_threads_argument", "add_seed_argument",
           "add_data_arguments", "set_threads"]


def positive_int(text):
    """argparse type: a positive integer (the rule the layers apply to their sizes)."""
    try:
        return _checks.positive_int("argument", "value", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}") from None


def non_negative_int(text):
    """argparse type: an integer >= 0 (0 usually meaning "off")."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _parsed_float(text):
    # text that is no number becomes nan, which every range check below refuses
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    return value


def positive_float(text):
    """argparse type: a finite number greater than zero (learning rates, time budgets...:
    nan and inf would only show up as a ruined run)."""
    value = _parsed_float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def non_negative_float(text):
    """argparse type: a finite number >= 0 (0 usually meaning "off")."""
    value = _parsed_float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def fraction(text):
    """argparse type: a number strictly between 0 and 1 (a validation fraction)."""
    value = _parsed_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1 (exclusive), got {text}")
    return value


def probability(text):
    """argparse type: a probability p with 0 <= p < 1 (dropout)."""
    value = _parsed_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1 (1 excluded), got {text}")
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


# What a user's input can cause: a bad path, a permission, a corrupt or crafted file, a
# bad value, a run that diverged, a file too big for memory. A command reports these as
# one line; anything else (a TypeError, an AttributeError...) is a bug and keeps its traceback.
USER_ERRORS = (OSError, ValueError, FloatingPointError, MemoryError, EOFError)


def describe_error(error):
    """The one-line text of a user error: the message itself for the errors whose message
    says everything (ValueError...), with the exception's class for the others, so that
    nothing is hidden behind a vague message."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        text = f"{error.filename}: {error.strerror}"
        if error.filename2 is not None:
            text += f" ({error.filename2})"
    elif isinstance(error, MemoryError):
        text = "out of memory" + (f" ({error})" if str(error) else "")
    else:
        text = str(error) or type(error).__name__
    if not isinstance(error, (ValueError, FloatingPointError, FileNotFoundError, MemoryError)):
        text = f"{type(error).__name__}: {text}"
    return text


def run_reporting_errors(command, args, prog):
    """``command(args)``, with a user error reported as one line ``PROG: error: ...`` on
    stderr and exit status 1 (Ctrl-C: ``PROG: interrupted``, 130)."""
    try:
        return command(args)
    except USER_ERRORS as error:
        print(f"{prog}: error: {describe_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def set_threads(args):
    """Apply ``--threads`` (if given) to the C kernels."""
    if args.threads is not None:
        autograd_core.set_num_threads(args.threads)
