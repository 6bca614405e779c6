"""Helpers shared by the ops."""
import operator

import numpy as np

from ..errors import DimensionError, ShapeError  # noqa: F401 (the ops import them from here)
from ..tensor import _DEFAULT_FLOAT


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
    """The broadcast result shape, or a ShapeError (RuntimeError) naming the op and the shapes."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ShapeError("%s: shapes %s cannot be broadcast together" % (
            op, " and ".join(str(tuple(s)) for s in shapes))) from None


# ---- dtype promotion: PyTorch's rule, in one place ------------------------------------
# Categories bool < integer < float. Between two categories the higher one wins outright
# (int64 with float32 is float32; numpy would say float64); within one, the wider dtype.
# Operands rank as in torch.result_type: tensors with dimensions first, then 0-d tensors,
# then Python numbers, and a lower rank only counts when its category is higher (float32
# [n] * 0-d float64 stays float32; int64 [n] * 2.5 is float32, the default float).
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
_BOOL, _INT64, _FLOAT = np.dtype(bool), np.dtype(np.int64), np.dtype(_DEFAULT_FLOAT)


def _promote_types(first, second):
    """The dtype both dtypes meet at (either may be None)."""
    if first is None or first == second:
        return second
    if second is None:
        return first
    high, low = _CATEGORY[first.kind], _CATEGORY[second.kind]
    if high != low:
        return first if high > low else second
    return np.promote_types(first, second)


def _combine(higher, lower):
    """torch's combine_categories: a lower-ranked dtype counts only when its category is higher."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or _CATEGORY[lower.kind] > _CATEGORY[higher.kind]:
        return _promote_types(higher, lower)
    return higher


def number_dtype(op, value):
    """The dtype a Python number takes: bool, int64, or the default float (float32), as
    tensor(value) gives it; anything else is a TypeError naming op."""
    if isinstance(value, (bool, np.bool_)):
        return _BOOL
    if isinstance(value, (int, np.integer)):
        return _INT64
    if isinstance(value, (float, np.floating)):
        return _FLOAT
    raise TypeError("%s: got %s, expected a Tensor, array or number (bool, int or float)"
                    % (op, _describe(value)))


def _describe(value):
    text = repr(value)
    return "%s %s" % (type(value).__name__, text if len(text) <= 40 else text[:37] + "...")


def result_dtype(op, *operands):
    """The dtype of op over operands (numpy arrays or Python numbers), as
    torch.result_type gives it; None operands (an absent clip bound) are skipped."""
    dimensioned = zero_dim = number = None
    for value in operands:
        if isinstance(value, np.ndarray):
            if value.ndim:
                dimensioned = _promote_types(dimensioned, value.dtype)
            else:
                zero_dim = _promote_types(zero_dim, value.dtype)
        elif value is not None:
            number = _promote_types(number, number_dtype(op, value))
    return _combine(dimensioned, _combine(zero_dim, number))


def promote(op, a, b):
    """a and b (arrays or Python numbers) with arrays cast to their result_dtype, so that
    numpy computes in the dtype PyTorch gives (a Python number adapts to an array of its
    category or above); an operand that is neither is a TypeError naming op. The common
    cases (equal dtypes; a float array with a number) return at once: this runs on every
    binary op."""
    if type(a) is np.ndarray:
        if type(b) is np.ndarray:
            if a.dtype == b.dtype:
                return a, b
        elif type(b) is float or type(b) is int:
            if a.dtype.kind == "f" or type(b) is int and a.dtype.kind in "iu":
                return a, b
    elif type(b) is np.ndarray and (type(a) is float or type(a) is int):
        if b.dtype.kind == "f" or type(a) is int and b.dtype.kind in "iu":
            return a, b
    dtype = result_dtype(op, a, b)
    if isinstance(a, np.ndarray) and a.dtype != dtype:
        a = a.astype(dtype)
    if isinstance(b, np.ndarray) and b.dtype != dtype:
        b = b.astype(dtype)
    return a, b


def check_float(op, array):
    if array.dtype.kind != "f":
        raise TypeError("%s: got a tensor of dtype %s, expected float32 or float64" % (op, array.dtype))


def normalize_axis(op, axis, ndim):
    """axis (None, int or tuple) as a sorted tuple of non-negative ints; a dim out of range
    is a DimensionError (torch's IndexError)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    result = []
    for a in axes:
        is_int(op, "dim", a)
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise DimensionError("%s: dim %s is out of range for a tensor with %d dimensions (expected %d to %d)"
                                 % (op, a, ndim, -max(ndim, 1), max(ndim, 1) - 1))
        result.append(int(a) % max(ndim, 1))
    if len(set(result)) != len(result):
        raise ValueError("%s: dim %s repeats a dimension" % (op, axis))
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


def accepts_unbatched(spatial_dims):
    """Decorator for an op on channels-last batches [N, *spatial, C] that torch also
    applies to one unbatched input [*spatial, C]: such an input runs as a batch of one
    and every Tensor output loses the batch axis again (values and indices alike)."""
    def decorate(function):
        def op(input, *args, **kwargs):
            if getattr(input, "ndim", None) != spatial_dims + 1:
                return function(input, *args, **kwargs)
            out = function(input.unsqueeze(0), *args, **kwargs)
            if isinstance(out, tuple):
                return type(out)(*(o.squeeze(0) for o in out)) if hasattr(out, "_fields") \
                    else tuple(o.squeeze(0) for o in out)
            return out.squeeze(0)
        op.__name__ = op.__qualname__ = function.__name__
        op.__doc__ = function.__doc__
        op.__wrapped__ = function  # inspect.signature (the registry's dim aliases) reads the op's own
        return op
    return decorate
