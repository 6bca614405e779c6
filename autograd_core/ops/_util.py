"""Helpers shared by the ops."""
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


def check_float(op, array):
    if array.dtype.kind != "f":
        raise TypeError("%s: got a tensor of dtype %s, expected float32 or float64" % (op, array.dtype))


def normalize_axis(op, axis, ndim):
    """axis (None, int or tuple) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    result = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError("%s: axis %s is out of range for a tensor with %d dimensions" % (op, a, ndim))
        result.append(int(a) % max(ndim, 1))
    if len(set(result)) != len(result):
        raise ValueError("%s: axis %s repeats a dimension" % (op, axis))
    return tuple(sorted(result))
