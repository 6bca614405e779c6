"""Argument checks shared by the layers: one rule, one error message, wherever a
constructor takes a size."""
import numpy as np

__all__ = ["positive_int", "pair"]


def positive_int(owner, name, value):
    """``value`` as an int if it is a positive integer (bool excluded); otherwise a
    ValueError naming ``owner`` (the layer) and ``name`` (its argument)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError("%s: %s must be a positive int, got %r" % (owner, name, value))
    return int(value)


def pair(owner, name, value):
    """An int or a pair of ints -> a pair of positive ints (kernel sizes, strides)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError("%s: %s must be an int or a pair of ints, got %r" % (owner, name, value))
        return tuple(positive_int(owner, name, v) for v in value)
    value = positive_int(owner, name, value)
    return (value, value)
