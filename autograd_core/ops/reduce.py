"""Reductions (sum, mean, max, min, var, std), argmax/argmin and the softmax family."""
import collections
import warnings

import numpy as np

from ..function import Function
from ..registry import register
from ..tensor import Tensor
from ._util import DimensionError, ShapeError, check_float, is_int, normalize_axis
from .elementwise import cast, maximum, minimum


def _expand_back(grad, shape, axes, keepdims):
    """Reshape a reduced gradient so that it broadcasts against the input shape."""
    if not keepdims:
        grad = np.expand_dims(grad, axes) if axes else grad
    return grad


def _kept(grad, shape, axes):
    """A reduced gradient Tensor reshaped to the kept-dims shape (size 1 at axes), so that
    it broadcasts against the input shape (_expand_back for a Tensor in the graph)."""
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    return grad if grad.shape == kept else grad.reshape(kept)


# ---- (values, indices) results, as torch.return_types ---------------------------------
def _result_type(name):
    result = collections.namedtuple(name, ("values", "indices"))
    result.__doc__ = "%s's result: (values, indices), a tuple with named fields (as torch.return_types.%s)." % (
        name, name)
    return result


def _scatter_add(grad, indices, axis, shape):
    """zeros(shape) with grad[..., j, ...] added at [..., indices[..., j, ...], ...] along axis
    (np.bincount over flat positions: one vectorised pass, and repeated indices add up)."""
    moved_grad, moved_indices = np.moveaxis(grad, axis, -1), np.moveaxis(indices, axis, -1)
    n = shape[axis]
    rows = int(np.prod(moved_grad.shape[:-1], dtype=np.int64))
    flat = (np.arange(rows).reshape(moved_grad.shape[:-1] + (1,)) * n + moved_indices).reshape(-1)
    summed = np.bincount(flat, weights=moved_grad.reshape(-1), minlength=rows * n)
    moved_shape = tuple(np.delete(shape, axis)) + (n,) if len(shape) else (n,)
    return np.moveaxis(summed.reshape(moved_shape), -1, axis).astype(grad.dtype, copy=False)


class TakeAlongDim(Function):
    """a's values at indices along axis -> shape ``out_shape``; indices (int64, the shape
    of a except along axis) come from the op that chose them and get no gradient. The
    gradient goes back to the chosen elements, summed where an index repeats."""

    linear = True  # in a, the indices being structural: the backward's derivative is the forward

    @staticmethod
    def forward(ctx, a, indices, axis, out_shape):
        ctx.shape, ctx.axis = a.shape, axis
        ctx.save_for_backward(indices)
        work = a.reshape(1) if a.ndim == 0 else a
        return np.take_along_axis(work, indices, axis).reshape(out_shape)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        shape = ctx.shape if ctx.shape else (1,)
        grad = _scatter_add(grad.reshape(indices.shape), indices, ctx.axis, shape)
        return grad.reshape(ctx.shape), None, None, None


def _select(x, indices, axis, out_shape):
    """(values, indices) Tensors of the elements of x at indices along axis, in out_shape."""
    values = TakeAlongDim.apply(x, indices, axis, out_shape)
    return values, Tensor(indices.reshape(out_shape).astype(np.int64, copy=False))


class Sum(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, axes, keepdims
        return np.sum(a, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        grad = _expand_back(grad, ctx.shape, ctx.axes, ctx.keepdims)
        return np.broadcast_to(grad, ctx.shape), None, None


class Mean(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

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
            raise ShapeError("%s: got an empty tensor of shape %s, expected at least one element"
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

    @staticmethod
    def differentiable_backward(ctx, grad):
        # the shares are constants of the input's values (max is piecewise linear): the
        # gradient is linear in grad, and its derivative in the input is 0
        (mask,) = ctx.saved_tensors
        share = (mask / mask.sum(axis=ctx.axes, keepdims=True)).astype(grad.dtype)
        return _kept(grad, mask.shape, ctx.axes) * share, None, None

class Max(_Extreme):
    reducer = staticmethod(np.max)


class Min(_Extreme):
    reducer = staticmethod(np.min)


class Var(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdims, correction):
        count = int(np.prod([a.shape[i] for i in axes])) if axes else 1
        # torch's divisor: max(0, count - correction); 0 gives NaN (or inf), with a warning in _variance
        ctx.axes, ctx.keepdims, ctx.divisor = axes, keepdims, float(np.maximum(count - correction, 0))
        with np.errstate(divide="ignore", invalid="ignore"):  # an empty slice or no degrees of freedom
            centered = a - (a.mean(axis=axes, keepdims=True) if a.size else 0)
            ctx.save_for_backward(centered)
            return (np.sum(centered * centered, axis=axes, keepdims=keepdims) / ctx.divisor).astype(a.dtype,
                                                                                                   copy=False)

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        grad = _expand_back(grad, centered.shape, ctx.axes, ctx.keepdims)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = 2.0 / ctx.divisor if ctx.divisor else np.nan  # torch: NaN without degrees of freedom
            return (grad * centered * scale).astype(centered.dtype, copy=False), None, None, None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # backward's formula with the centered input recomputed from x in the graph
        x, axes = ctx.inputs[0], ctx.axes
        centered = x - x.mean(axes, keepdim=True) if x.numel() else x
        scale = 2.0 / ctx.divisor if ctx.divisor else float("nan")
        return _kept(grad, x.shape, axes) * centered * scale, None, None, None


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
        return _softmax_gradient(grad, out, ctx.axis), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # the same formula on Tensors, with the output recomputed in the graph
        return _softmax_gradient(grad, Softmax.apply(ctx.inputs[0], ctx.axis), ctx.axis), None


def _softmax_gradient(grad, probabilities, axis):
    """softmax's gradient, for arrays (backward) and Tensors (differentiable_backward) alike."""
    return probabilities * (grad - (grad * probabilities).sum(axis=axis, keepdims=True))


def _log_softmax_gradient(grad, probabilities, axis):
    """log_softmax's gradient (probabilities = exp(its output)), for arrays and Tensors alike."""
    return grad - probabilities * grad.sum(axis=axis, keepdims=True)


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
        return _log_softmax_gradient(grad, np.exp(out), ctx.axis), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # the same formula on Tensors, exp(out) being the softmax, recomputed in the graph
        return _log_softmax_gradient(grad, Softmax.apply(ctx.inputs[0], ctx.axis), ctx.axis), None


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


MaxResult, MinResult = _result_type("max"), _result_type("min")


def _extreme(op, reduce_all, choose, binary, result_type, x, dim, keepdim):
    """torch's three forms of max/min (see max)."""
    if dim is None:
        if keepdim:
            raise TypeError("%s: got keepdim=True without dim; keepdim needs a dim (or use a%s(keepdim=True))"
                            % (op, op))
        if x.data.size == 0:
            raise ShapeError("%s: got an empty tensor of shape %s, expected at least one element (or pass a dim)"
                             % (op, x.shape))
        return reduce_all.apply(x, tuple(range(x.ndim)), False)
    if isinstance(dim, (Tensor, np.ndarray)):
        if keepdim:
            raise TypeError("%s: got keepdim with a second tensor; %s(a, b) is elementwise" % (op, op))
        return binary(x, dim)
    if isinstance(dim, (tuple, list)):
        raise TypeError("%s: got dim=%r, expected one int (over several dims: a%s, which returns the values only)"
                        % (op, dim, op))
    along = _single_axis(op, x, is_int(op, "dim", dim))
    work = x.data.reshape(1) if x.ndim == 0 else x.data
    if work.shape[along] == 0:
        raise DimensionError("%s: dim %d has size 0 in a tensor of shape %s, expected a non-empty dim to reduce"
                         % (op, along, x.shape))
    # np.argmax/argmin take the first of tied elements and the first NaN, as torch's CPU kernels
    indices = choose(work, axis=along, keepdims=True)
    shape = tuple(1 if i == along else n for i, n in enumerate(x.shape)) if keepdim else \
        tuple(n for i, n in enumerate(x.shape) if i != along)
    return result_type(*_select(x, indices, along, shape))


@register("max", methods=("max",))
def max(x, dim=None, keepdim=False):
    """torch's max, in its three forms:

    * ``max(x)``: the largest element -> a 0-d tensor; the gradient is split evenly among
      tied maxima (a NaN is the maximum, and its NaNs share the gradient), as torch's.
    * ``max(x, dim, keepdim=False)`` (dim one int) -> ``(values, indices)``, a named
      tuple, dim removed (size 1 with keepdim); the index of the first maximum (or first
      NaN); the gradient goes to that index only, as torch's.
    * ``max(x, other)`` (other a Tensor): the elementwise ``maximum``.

    The maximum over several dims, values only, is ``amax``."""
    return _extreme("max", Max, np.argmax, maximum, MaxResult, x, dim, keepdim)


@register("min", methods=("min",))
def min(x, dim=None, keepdim=False):
    """torch's min, in its three forms (as max): ``min(x)`` -> 0-d value,
    ``min(x, dim, keepdim=False)`` -> ``(values, indices)``, ``min(x, other)`` ->
    the elementwise ``minimum``. Over several dims, values only: ``amin``."""
    return _extreme("min", Min, np.argmin, minimum, MinResult, x, dim, keepdim)


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
        warnings.warn("%s: %d elements per reduction with correction=%s leave no degrees of freedom; the result "
                      "is NaN (or inf), as in torch" % (op, count, correction), UserWarning, stacklevel=4)
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
