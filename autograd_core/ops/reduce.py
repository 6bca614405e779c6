"""Reductions (sum, mean, max, min, var, std) and the softmax family."""
import numpy as np

from ..function import Function
from ..registry import register
from ..tensor import Tensor
from ._util import check_float, normalize_axis
from .elementwise import cast


def _expand_back(grad, shape, axes, keepdims):
    """Reshape a reduced gradient so that it broadcasts against the input shape."""
    if not keepdims:
        grad = np.expand_dims(grad, axes) if axes else grad
    return grad


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, axes, keepdims
        return np.sum(a, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        grad = _expand_back(grad, ctx.shape, ctx.axes, ctx.keepdims)
        return np.broadcast_to(grad, ctx.shape), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, axes, keepdims
        ctx.count = int(np.prod([a.shape[i] for i in axes])) if axes else 1
        return np.mean(a, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        grad = _expand_back(grad, ctx.shape, ctx.axes, ctx.keepdims)
        return np.broadcast_to(grad / ctx.count, ctx.shape), None, None


class _Extreme(Function):
    """max/min over axes, with PyTorch's gradient for max()/amax: split evenly among the
    elements equal to the result (ties), and, where the result is NaN (NaN propagates as
    the extreme), split evenly among that slice's NaNs rather than lost."""

    reducer = None

    @classmethod
    def forward(cls, ctx, a, axes, keepdims):
        if a.size == 0:
            raise ValueError("%s: got an empty tensor of shape %s, expected at least one element"
                             % (cls.__name__.lower(), a.shape))
        kept = cls.reducer(a, axis=axes, keepdims=True)
        mask = a == kept
        # NaN == NaN is False: without this a slice whose result is NaN would get no gradient
        # at all (and 0/0 shares); checked on the reduced array, so finite inputs pay little
        if kept.dtype.kind == "f" and np.isnan(kept).any():
            mask |= np.isnan(a)
        ctx.save_for_backward(mask)
        ctx.axes, ctx.keepdims = axes, keepdims
        return kept if keepdims else np.squeeze(kept, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        grad = _expand_back(grad, mask.shape, ctx.axes, ctx.keepdims)
        share = mask / mask.sum(axis=ctx.axes, keepdims=True)
        return (grad * share).astype(grad.dtype, copy=False), None, None

class Max(_Extreme):
    reducer = staticmethod(np.max)


class Min(_Extreme):
    reducer = staticmethod(np.min)


class Var(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdims, correction):
        count = int(np.prod([a.shape[i] for i in axes])) if axes else 1
        if count - correction <= 0:
            raise ValueError("var: %d elements per reduction with correction=%s leaves no degrees of freedom"
                             % (count, correction))
        centered = a - a.mean(axis=axes, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.axes, ctx.keepdims, ctx.divisor = axes, keepdims, count - correction
        return (np.sum(centered * centered, axis=axes, keepdims=keepdims) / ctx.divisor).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        grad = _expand_back(grad, centered.shape, ctx.axes, ctx.keepdims)
        return (grad * centered * (2.0 / ctx.divisor)).astype(centered.dtype, copy=False), None, None, None


class Softmax(Function):
    @staticmethod
    def forward(ctx, a, axis):
        shifted = np.exp(a - a.max(axis=axis, keepdims=True))
        out = shifted / shifted.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return out * (grad - np.sum(grad * out, axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, a, axis):
        shifted = a - a.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad - np.exp(out) * np.sum(grad, axis=ctx.axis, keepdims=True), None


# ---- functional forms ---------------------------------------------------------------
# Dimension arguments are torch's ``dim`` and ``keepdim``; the registry maps numpy's
# ``axis`` and ``keepdims`` onto them for every op (see registry.py).
def _axes(op, x, dim):
    axes = normalize_axis(op, dim, x.ndim)
    # a 0-d tensor accepts dim 0 or -1 (as in PyTorch), but numpy has no axis to reduce there
    return axes if x.ndim else ()


@register("sum", methods=("sum",))
def sum(x, dim=None, keepdim=False, *, dtype=None):
    """Sum over dim (None: all; int or tuple) -> the reduced shape (dims kept as size 1
    with keepdim). ``dtype`` casts the input first, as torch's (bool and integer inputs
    sum to int64)."""
    if dtype is not None:
        x = cast(x, str(dtype).replace("torch.", "") if not isinstance(dtype, (type, np.dtype)) else dtype)
    return Sum.apply(x, _axes("sum", x, dim), bool(keepdim))


@register("mean", methods=("mean",))
def mean(x, dim=None, keepdim=False):
    """Mean over dim (None: all; int or tuple) -> the reduced shape."""
    check_float("mean", x.data)
    return Mean.apply(x, _axes("mean", x, dim), bool(keepdim))


@register("max", methods=("max",))
def max(x, dim=None, keepdim=False):
    """Maximum over dim (None: all; int or tuple) -> the values, reduced shape.

    Gradient as PyTorch's max() and amax: split evenly among tied maxima; a slice with a
    NaN has NaN as its maximum and the gradient goes to its NaNs (split evenly). Unlike
    torch.max(dim), which returns (values, indices) and gives one index all of it, this
    returns the values only, as numpy's max does."""
    return Max.apply(x, _axes("max", x, dim), bool(keepdim))


@register("min", methods=("min",))
def min(x, dim=None, keepdim=False):
    """Minimum over dim (None: all; int or tuple) -> the values, reduced shape.

    Gradient as PyTorch's min() and amin: split evenly among tied minima; a slice with a
    NaN has NaN as its minimum and the gradient goes to its NaNs (split evenly)."""
    return Min.apply(x, _axes("min", x, dim), bool(keepdim))


@register("var", methods=("var",))
def var(x, dim=None, keepdim=False, correction=1):
    """Variance over dim with PyTorch's default Bessel correction (correction=1);
    correction=0 gives numpy's default (population) variance."""
    return _variance("var", x, dim, keepdim, correction)


@register("std", methods=("std",))
def std(x, dim=None, keepdim=False, correction=1):
    """Standard deviation: sqrt(var(...)) with the same arguments."""
    return _variance("std", x, dim, keepdim, correction).sqrt()


def _variance(op, x, dim, keepdim, correction):
    # checked here rather than in Var.forward so that std's errors say "std"
    check_float(op, x.data)
    axes = _axes(op, x, dim)
    count = int(np.prod([x.shape[i] for i in axes])) if axes else 1
    if count - correction <= 0:
        raise ValueError("%s: %d elements per reduction with correction=%s leaves no degrees of freedom"
                         % (op, count, correction))
    return Var.apply(x, axes, bool(keepdim), correction)


def _single_axis(op, x, dim):
    (axis,) = normalize_axis(op, dim, x.ndim) if x.ndim else (0,)
    return axis


@register("softmax", methods=("softmax",))
def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) along dim, computed stably; any shape -> same shape."""
    check_float("softmax", x.data)
    return Softmax.apply(x, _single_axis("softmax", x, dim))


@register("log_softmax", methods=("log_softmax",))
def log_softmax(x, dim=-1):
    """log(softmax(x)) along dim, computed stably; any shape -> same shape."""
    check_float("log_softmax", x.data)
    return LogSoftmax.apply(x, _single_axis("log_softmax", x, dim))


def _arg_axis(op, x, dim):
    # checked here so that a bad dim names the op (numpy's AxisError does not)
    return None if dim is None else _single_axis(op, x, dim)


@register("argmax", methods=("argmax",), differentiable=False)
def argmax(x, dim=None, keepdim=False):
    """Index of the maximum (flat index when dim is None); not differentiable."""
    return Tensor(np.argmax(x.data, axis=_arg_axis("argmax", x, dim), keepdims=keepdim))


@register("argmin", methods=("argmin",), differentiable=False)
def argmin(x, dim=None, keepdim=False):
    """Index of the minimum (flat index when dim is None); not differentiable."""
    return Tensor(np.argmin(x.data, axis=_arg_axis("argmin", x, dim), keepdims=keepdim))
