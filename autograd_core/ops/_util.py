"""Helpers shared by the ops."""
import operator

import numpy as np


def unbroadcast(grad, shape):
    """Sum grad over the axes that broadcasting added or stretched, back to shape."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def broadcast_shape(op, *shapes):
    """The broadcast result shape, or a ValueError naming the op and the shapes."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError("%s: shapes %s cannot be broadcast together" % (
            op, " and ".join(str(tuple(s)) for s in shapes))) from None


def match_float(a, b):
    """An integer or bool array meeting a float array takes the float's dtype, as in
    PyTorch; numpy would promote float32 with int64 to float64 (x * counts, x / lengths)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and (a.dtype.kind == "f") != (b.dtype.kind == "f"):
        if a.dtype.kind == "f":
            b = b.astype(a.dtype)
        else:
            a = a.astype(b.dtype)
    return a, b


def check_float(op, array):
    if array.dtype.kind != "f":
        raise TypeError("%s: got a tensor of dtype %s, expected float32 or float64" % (op, array.dtype))


def normalize_axis(op, axis, ndim):
    """axis (None, int or tuple) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    result = []
    for a in axes:
        is_int(op, "axis", a)
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError("%s: axis %s is out of range for a tensor with %d dimensions" % (op, a, ndim))
        result.append(int(a) % max(ndim, 1))
    if len(set(result)) != len(result):
        raise ValueError("%s: axis %s repeats a dimension" % (op, axis))
    return tuple(sorted(result))


def is_int(op, name, value):
    """value as a Python int, or a TypeError: a float or bool would otherwise be truncated
    (axis=1.5 -> 1, reshape(2.5, 3) -> (2, 3)) and give a silently wrong result."""
    if not isinstance(value, (bool, np.bool_)):
        try:
            return operator.index(value)  # ints, numpy ints, integer 0-d tensors
        except TypeError:
            pass
    raise TypeError("%s: got %s=%r, expected an int" % (op, name, value))
