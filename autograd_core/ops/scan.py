"""Reductions and scans with PyTorch's names and semantics: prod, any, all, logsumexp, norm,
amax, amin, count_nonzero; cumsum, cumprod, cummax, cummin; sort, argsort, topk,
kthvalue, median, mode.

Dimension arguments: ``dim`` and ``keepdim`` as in torch; the registry accepts ``axis``
and ``keepdims`` as aliases for every op (passing both spellings is a TypeError).

The ops that select elements (sort, topk, kthvalue, median(dim), mode, cummax, cummin)
work in two steps: numpy finds the selected indices (not differentiable, int64), and
one differentiable Function, ``TakeAlongDim``, gathers the values at them and scatters
the gradient back (added up where an index repeats, as cummax's do). So every one of
them routes its gradient to the index it returns, as torch's
value_selecting_reduction_backward does.
"""
import collections

import numpy as np

from ..function import Function
from ..registry import register
from ..tensor import _DEFAULT_FLOAT, Tensor
from ._util import ShapeError, check_float, is_int, normalize_axis
from .elementwise import cast
from .reduce import TakeAlongDim, _axes, _expand_back, _kept, _result_type, _select  # noqa: F401 (TakeAlongDim: public here before)
from .shape import concat


# ---- (values, indices) results, as torch.return_types ---------------------------------
SortResult, TopkResult, KthvalueResult = _result_type("sort"), _result_type("topk"), _result_type("kthvalue")
MedianResult, ModeResult = _result_type("median"), _result_type("mode")
CummaxResult, CumminResult = _result_type("cummax"), _result_type("cummin")


# ---- argument helpers -----------------------------------------------------------------
def _one_dim(op, x, dim):
    """dim (one int, negative counts from the end) as a non-negative int; a 0-d tensor
    accepts 0 and -1, as in torch, and is worked on as shape [1]."""
    is_int(op, "dim", dim)
    (axis,) = normalize_axis(op, int(dim), x.ndim)
    return axis


def _as_dtype(op, dtype):
    """A numpy dtype from a numpy dtype, a name ("float64") or a torch dtype (torch.float64)."""
    try:
        return np.dtype(str(dtype).replace("torch.", "") if not isinstance(dtype, (type, np.dtype)) else dtype)
    except TypeError:
        raise TypeError("%s: got dtype=%r, expected a dtype such as float32, float64 or int64" % (op, dtype)) from None


def _any_empty(shape, axes):
    """Whether a dimension among axes has size 0 (max/min over it have no value)."""
    return 0 in [shape[i] for i in axes]


def _reduced_shape(shape, axes, keepdim):
    if keepdim:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _integer_result(array):
    """int64 for a bool or integer input, as torch's sum/prod/cumsum/cumprod give; else None."""
    return np.int64 if array.dtype.kind in "biu" else None


def _positions(n, axis, ndim):
    """0..n-1 shaped to broadcast along axis of an ndim-dimensional array."""
    shape = [1] * ndim
    shape[axis] = n
    return np.arange(n).reshape(shape)


def _stable_argsort(data, axis, descending=False):
    """Indices that sort data along axis, equal elements in their original order (torch's
    stable=True) in both directions, NaN counted as the largest value (last ascending,
    first descending), as in torch."""
    if not descending:
        return np.argsort(data, axis=axis, kind="stable")
    # sorting the reversed slice ascending and reversing the result puts equal elements
    # back in their original order; negating instead would fail on unsigned ints and NaN
    n = data.shape[axis]
    flipped = np.argsort(np.flip(data, axis), axis=axis, kind="stable")
    return np.flip(n - 1 - flipped, axis)


def _work(x):
    """x's array, a 0-d one as shape [1] (numpy has no axis to sort or scan there)."""
    return x.data.reshape(1) if x.ndim == 0 else x.data


# ---- prod -----------------------------------------------------------------------------
class Prod(Function):
    """Product over axis (None: all elements). Gradient as torch's: prod / x where the
    slice has no zero; with one zero, the product of the others at the zero and 0
    elsewhere; with several zeros, 0 everywhere."""

    @staticmethod
    def forward(ctx, a, axis, keepdim):
        work = a.reshape(-1) if axis is None else a.reshape(1) if a.ndim == 0 else a
        along = 0 if axis is None else axis
        out = np.prod(work, axis=along, keepdims=True, dtype=_integer_result(a))
        ctx.save_for_backward(work, out)
        ctx.shape, ctx.axis = a.shape, along
        return out.reshape(_reduced_shape(a.shape, range(a.ndim) if axis is None else (axis,), keepdim))

    @staticmethod
    def backward(ctx, grad):
        work, out = ctx.saved_tensors
        grad = grad.reshape(out.shape)
        zero = work == 0
        zeros = np.sum(zero, axis=ctx.axis, keepdims=True)
        nonzero = np.where(zero, 1, work)
        if not zeros.any():  # the common case: one division
            return (grad * (out / nonzero)).reshape(ctx.shape), None, None
        others = np.prod(nonzero, axis=ctx.axis, keepdims=True)  # the product of the non-zeros
        local = np.where(zeros == 0, out / nonzero, np.where(zero & (zeros == 1), others, 0))
        return (grad * local).astype(work.dtype, copy=False).reshape(ctx.shape), None, None

    @staticmethod
    def composite(x, axis, keepdim):
        # a tree of pairwise products: no division, so every derivative order is exact where
        # x has zeros (the numpy backward's cases are what differentiating it gives)
        work = x.reshape(-1) if axis is None else x.reshape(1) if x.ndim == 0 else x
        work = work.movedim(0 if axis is None else axis, -1)
        n = work.shape[-1]
        if n == 0:
            product = work.sum(-1) + 1
        else:
            while n > 1:
                paired = work[..., 0:n - 1:2] * work[..., 1:n:2]
                work, n = (concat([paired, work[..., n - 1:]], -1) if n % 2 else paired), (n + 1) // 2
            product = work[..., 0]
        return product.reshape(_reduced_shape(x.shape, range(x.ndim) if axis is None else (axis,), keepdim))


@register("prod", methods=("prod",))
def prod(x, dim=None, keepdim=False, *, dtype=None):
    """Product of the elements (dim None) -> 0-d, or along one dim -> that dim removed
    (kept as size 1 with keepdim). Integer and bool inputs give int64; ``dtype`` casts the
    input first, as in torch."""
    if dtype is not None:
        x = cast(x, _as_dtype("prod", dtype))
    return Prod.apply(x, None if dim is None else _one_dim("prod", x, dim), bool(keepdim))


# ---- any, all, count_nonzero: not differentiable ---------------------------------------
@register("any", methods=("any",), differentiable=False)
def any(x, dim=None, keepdim=False):
    """Whether any element is non-zero, over dim (None: all; int or tuple) -> bool."""
    axes = _axes("any", x, dim)
    return Tensor(np.asarray(np.any(x.data, axis=axes, keepdims=bool(keepdim))))


@register("all", methods=("all",), differentiable=False)
def all(x, dim=None, keepdim=False):
    """Whether every element is non-zero, over dim (None: all; int or tuple) -> bool."""
    axes = _axes("all", x, dim)
    return Tensor(np.asarray(np.all(x.data, axis=axes, keepdims=bool(keepdim))))


@register("count_nonzero", methods=("count_nonzero",), differentiable=False)
def count_nonzero(x, dim=None):
    """Number of non-zero elements over dim (None: all; int or tuple) -> int64, dim removed."""
    axes = _axes("count_nonzero", x, dim)
    return Tensor(np.asarray(np.sum(x.data != 0, axis=axes, dtype=np.int64)))


# ---- amax, amin -------------------------------------------------------------------------
class _ReducedExtreme(Function):
    """max/min over axes with torch's amax/amin gradient: split evenly among the elements
    equal to the result (ties); a slice whose result is NaN (NaN propagates) has no element
    equal to it, and its gradient is NaN throughout, as in torch (unlike max() over all
    elements, whose gradient goes to the NaNs: see reduce._Extreme)."""

    reducer = None

    @classmethod
    def forward(cls, ctx, a, axes, keepdim):
        if a.size == 0 and _any_empty(a.shape, axes):
            raise ValueError("%s: got a tensor of shape %s, expected no dimension of size 0 among those reduced %s"
                             % (cls.name, a.shape, axes))
        kept = cls.reducer(a, axis=axes, keepdims=True)
        ctx.save_for_backward(a == kept)
        ctx.axes, ctx.keepdim = axes, keepdim
        return kept if keepdim else np.squeeze(kept, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        (chosen,) = ctx.saved_tensors
        grad = _expand_back(grad, chosen.shape, ctx.axes, ctx.keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):  # a NaN slice counts 0 ties: NaN, as torch
            share = grad / np.sum(chosen, axis=ctx.axes, keepdims=True) * chosen
        return share.astype(grad.dtype, copy=False), None, None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # the shares are constants of the input's values (amax is piecewise linear): the
        # gradient is linear in grad, and its derivative in the input is 0
        (chosen,) = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            share = (chosen / np.sum(chosen, axis=ctx.axes, keepdims=True)).astype(grad.dtype)
        return _kept(grad, chosen.shape, ctx.axes) * share, None, None


class Amax(_ReducedExtreme):
    name = "amax"
    reducer = staticmethod(np.max)


class Amin(_ReducedExtreme):
    name = "amin"
    reducer = staticmethod(np.min)


def _extreme_axes(op, x, dim):
    # torch's amax/amin reduce over every dim when dim is () (their default)
    return _axes(op, x, None if isinstance(dim, (tuple, list)) and not dim else dim)


@register("amax", methods=("amax",))
def amax(x, dim=(), keepdim=False):
    """Maximum over dim (() or None: all; int or tuple) -> values only, reduced shape."""
    return Amax.apply(x, _extreme_axes("amax", x, dim), bool(keepdim))


@register("amin", methods=("amin",))
def amin(x, dim=(), keepdim=False):
    """Minimum over dim (() or None: all; int or tuple) -> values only, reduced shape."""
    return Amin.apply(x, _extreme_axes("amin", x, dim), bool(keepdim))


# ---- logsumexp ------------------------------------------------------------------------
class LogSumExp(Function):
    """log(sum(exp(a))) over axes, shifted by the maximum so that it neither overflows nor
    underflows; gradient softmax(a) (NaN where every element is -inf, as torch)."""

    @staticmethod
    def forward(ctx, a, axes, keepdim):
        shift = np.max(a, axis=axes, keepdims=True, initial=-np.inf)
        shift = np.where(np.isfinite(shift), shift, 0)  # all -inf (or +inf) slices: no shift
        with np.errstate(divide="ignore"):  # log(0) = -inf for an all -inf (or empty) slice, as torch
            out = np.log(np.sum(np.exp(a - shift), axis=axes, keepdims=True)) + shift
        ctx.save_for_backward(a, out)
        ctx.axes = axes
        return out if keepdim else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        grad = grad.reshape(out.shape)
        with np.errstate(invalid="ignore"):  # -inf - (-inf): NaN for an all -inf slice, as torch
            return grad * np.exp(a - out), None, None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # backward's formula, with the result recomputed in the graph
        x, axes = ctx.inputs[0], ctx.axes
        out = LogSumExp.apply(x, axes, True)
        return _kept(grad, x.shape, axes) * (x - out).exp(), None, None


@register("logsumexp", methods=("logsumexp",))
def logsumexp(x, dim=None, keepdim=False):
    """log(sum(exp(x))) over dim (None: all; int or tuple), computed stably; integer
    inputs give the default float (float32), as in torch."""
    if x.dtype.kind != "f":
        x = cast(x, _DEFAULT_FLOAT)
    return LogSumExp.apply(x, _axes("logsumexp", x, dim), bool(keepdim))


# ---- norm -----------------------------------------------------------------------------
class VectorNorm(Function):
    """The p-norm over axes: sum(|a|^p)^(1/p); p = inf / -inf the largest / smallest |a|,
    p = 0 the count of non-zeros. Gradients as torch's: sign(a) for p = 1; a / norm for
    p = 2 and 0 where the norm is 0 (the subgradient at the zero vector); for inf / -inf
    sign(a) split evenly among the elements whose |a| is the norm (or NaN); 0 for p = 0;
    otherwise sign(a) |a|^(p-1) / norm^(p-1), 0 where a or the norm is 0."""

    @staticmethod
    def forward(ctx, a, p, axes, keepdim):
        magnitude = np.abs(a)
        if p == np.inf:
            out = np.max(magnitude, axis=axes, keepdims=True)
        elif p == -np.inf:
            out = np.min(magnitude, axis=axes, keepdims=True)
        elif p == 0:
            out = np.sum(a != 0, axis=axes, keepdims=True).astype(a.dtype)
        elif p == 1:
            out = np.sum(magnitude, axis=axes, keepdims=True)
        elif p == 2:
            out = np.sqrt(np.sum(a * a, axis=axes, keepdims=True))
        else:
            out = np.sum(magnitude ** p, axis=axes, keepdims=True) ** (1.0 / p)
        ctx.save_for_backward(a, out)
        ctx.p, ctx.axes = p, axes
        return out if keepdim else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        grad, p, axes = grad.reshape(out.shape), ctx.p, ctx.axes
        if p == 0:
            local = np.zeros_like(a)
        elif p == 1:
            local = np.sign(a)
        elif p == 2:
            local = np.divide(a, out, out=np.zeros_like(a), where=out != 0)
        elif p in (np.inf, -np.inf):
            magnitude = np.abs(a)
            chosen = (magnitude == out) | np.isnan(magnitude)
            local = np.sign(a) * chosen / np.sum(chosen, axis=axes, keepdims=True)
        else:
            magnitude = np.abs(a)
            with np.errstate(divide="ignore", invalid="ignore"):
                local = np.sign(a) * (magnitude / out) ** (p - 1)
            local = np.where((a == 0) | (out == 0), 0, local)
        return (grad * local).astype(a.dtype, copy=False), None, None, None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # backward's cases with a and the norm as Tensors in the graph; signs, zero masks
        # and the inf-norm's choice are constants (piecewise)
        x, p, axes = ctx.inputs[0], ctx.p, ctx.axes
        a, dtype = x.data, x.dtype
        grad = _kept(grad, x.shape, axes)
        if p == 0:
            return grad * np.zeros_like(a), None, None, None
        if p == 1:
            return grad * np.sign(a), None, None, None
        out = VectorNorm.apply(x, p, axes, True)
        if p in (np.inf, -np.inf):
            magnitude = np.abs(a)
            chosen = (magnitude == out.data) | np.isnan(magnitude)
            return grad * (np.sign(a) * chosen / np.sum(chosen, axis=axes, keepdims=True)).astype(dtype), \
                None, None, None
        # 1 added where the norm is 0 (the slice is all zeros there, so x / 1 is the 0 wanted)
        safe_out = out + (out.data == 0).astype(dtype)
        if p == 2:
            return grad * (x / safe_out), None, None, None
        zero = (a == 0) | (out.data == 0)
        # |x| / norm with 1 in place of the zeros, so that no power of 0 enters the graph
        ratio = (x.abs() + zero.astype(dtype)) / safe_out
        return grad * (ratio ** (p - 1)) * (np.sign(a) * ~zero).astype(dtype), None, None, None


@register("norm", methods=("norm",))
def norm(x, p="fro", dim=None, keepdim=False, dtype=None):
    """The p-norm of x over dim (None: all elements; int or tuple) -> reduced shape.
    p: a number (1, 2, 0.5, 3, ...), inf, -inf, 0 (count of non-zeros) or 'fro' (2, the
    Frobenius norm over two dims); float tensors only, as in torch; ``dtype`` casts first."""
    if dtype is not None:
        x = cast(x, _as_dtype("norm", dtype))
    check_float("norm", x.data)
    if isinstance(p, str):
        if p != "fro":
            raise ValueError("norm: got p=%r, expected a number, inf, -inf or 'fro' ('nuc' is not supported)" % p)
        p = 2.0
    elif isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError("norm: got p=%r, expected a number, inf, -inf or 'fro'" % (p,))
    axes = _axes("norm", x, dim)
    if p in (np.inf, -np.inf) and _any_empty(x.shape, axes):
        raise ValueError("norm: got a tensor of shape %s, expected no dimension of size 0 among those reduced %s "
                         "for p=%s" % (x.shape, axes, p))
    return VectorNorm.apply(x, float(p), axes, bool(keepdim))


# ---- cumulative sums and products -----------------------------------------------------
def _reverse_cumsum(array, axis):
    return np.flip(np.cumsum(np.flip(array, axis), axis=axis), axis)


class CumSum(Function):
    """Running sum along axis; gradient the reversed running sum of the gradient."""

    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, axis):
        ctx.shape, ctx.axis = a.shape, axis
        work = a.reshape(1) if a.ndim == 0 else a
        return np.cumsum(work, axis=axis, dtype=_integer_result(a)).reshape(a.shape)

    @staticmethod
    def backward(ctx, grad):
        work = grad.reshape(1) if grad.ndim == 0 else grad
        return _reverse_cumsum(work, ctx.axis).reshape(ctx.shape), None


class CumProd(Function):
    """Running product along axis. Gradient with zeros as torch's: in a slice whose first
    zero is at z, element k < z gets sum_{j>=k} grad_j out_j / a_k, element z gets
    sum_{j>=z} grad_j prod_{i<=j, i!=z} a_i, and elements after z get 0."""

    @staticmethod
    def forward(ctx, a, axis):
        work = a.reshape(1) if a.ndim == 0 else a
        out = np.cumprod(work, axis=axis, dtype=_integer_result(a))
        ctx.save_for_backward(work, out)
        ctx.shape, ctx.axis = a.shape, axis
        return out.reshape(a.shape)

    @staticmethod
    def backward(ctx, grad):
        work, out = ctx.saved_tensors
        axis, grad = ctx.axis, grad.reshape(work.shape)
        zero = work == 0
        if not zero.any():
            return (_reverse_cumsum(grad * out, axis) / work).reshape(ctx.shape), None
        n = work.shape[axis]
        positions = _positions(n, axis, work.ndim)
        first_zero = np.where(zero.any(axis=axis, keepdims=True), np.argmax(zero, axis=axis, keepdims=True), n)
        before, at = positions < first_zero, positions == first_zero
        # before the first zero out_j / a_k is the product a_{k+1..j}; out_j is 0 from z on
        result = np.where(before, _reverse_cumsum(grad * out, axis) / np.where(before, work, 1), 0)
        # at the first zero: the running product with that zero left out
        without_zero = np.cumprod(np.where(at, 1, work), axis=axis)
        at_zero = np.sum(np.where(positions >= first_zero, grad * without_zero, 0), axis=axis, keepdims=True)
        return np.where(at, at_zero, result).astype(work.dtype, copy=False).reshape(ctx.shape), None

    @staticmethod
    def composite(x, axis):
        # a scan by doubling shifts (Hillis-Steele): log2(n) elementwise products, no
        # division, so every derivative order is exact where x has zeros
        work = (x.reshape(1) if x.ndim == 0 else x).movedim(axis, -1)
        n, shift = work.shape[-1], 1
        while shift < n:
            ones = Tensor(np.ones(work.shape[:-1] + (shift,), dtype=x.dtype))
            work = work * concat([ones, work[..., :n - shift]], -1)
            shift *= 2
        return work.movedim(-1, axis).reshape(x.shape)


def _scan_dim(op, x, dim):
    if dim is None:
        raise TypeError("%s: missing dim, expected the dimension to scan along (an int)" % op)
    return _one_dim(op, x, dim)


@register("cumsum", methods=("cumsum",))
def cumsum(x, dim=None, *, dtype=None):
    """Running sum along dim (same shape); integer and bool inputs give int64, ``dtype``
    casts the input first, as in torch."""
    if dtype is not None:
        x = cast(x, _as_dtype("cumsum", dtype))
    return CumSum.apply(x, _scan_dim("cumsum", x, dim))


@register("cumprod", methods=("cumprod",))
def cumprod(x, dim=None, *, dtype=None):
    """Running product along dim (same shape); integer and bool inputs give int64; the
    gradient is right where the input has zeros."""
    if dtype is not None:
        x = cast(x, _as_dtype("cumprod", dtype))
    return CumProd.apply(x, _scan_dim("cumprod", x, dim))


def _running_extreme(op, x, dim, accumulate, result_type):
    along = _scan_dim(op, x, dim)
    data = _work(x)
    running = accumulate(data, axis=along)
    # an element that equals the running extreme at its own position is (a tie of) a new
    # extreme: torch takes the latest such index (its >= / <=), and a NaN, once reached,
    # stays the extreme with the index of the latest NaN
    reached = data == running
    if data.dtype.kind == "f":
        reached |= np.isnan(data)
    indices = np.maximum.accumulate(np.where(reached, _positions(data.shape[along], along, data.ndim), 0),
                                    axis=along)
    return result_type(*_select(x, indices, along, x.shape))


@register("cummax", methods=("cummax",))
def cummax(x, dim=None):
    """Running maximum along dim -> (values, indices), both of x's shape; the index is the
    latest position of the running maximum; NaN propagates. Gradient to that index."""
    return _running_extreme("cummax", x, dim, np.maximum.accumulate, CummaxResult)


@register("cummin", methods=("cummin",))
def cummin(x, dim=None):
    """Running minimum along dim -> (values, indices), as cummax."""
    return _running_extreme("cummin", x, dim, np.minimum.accumulate, CumminResult)


# ---- sorting and selection --------------------------------------------------------------
@register("sort", methods=("sort",))
def sort(x, dim=-1, descending=False, stable=False):
    """x sorted along dim -> (values, indices), both of x's shape. Always stable (equal
    elements keep their order, also descending); NaN sorts as the largest value.
    Gradient to the positions the values came from."""
    along = _one_dim("sort", x, dim)
    indices = _stable_argsort(_work(x), along, bool(descending))
    return SortResult(*_select(x, indices, along, x.shape))


@register("argsort", methods=("argsort",), differentiable=False)
def argsort(x, dim=-1, descending=False, stable=False):
    """The int64 indices that sort x along dim (x's shape), stable as sort's."""
    along = _one_dim("argsort", x, dim)
    return Tensor(_stable_argsort(_work(x), along, bool(descending)).reshape(x.shape).astype(np.int64, copy=False))


def _count(op, name, value, low, high):
    value = is_int(op, name, value)
    if not low <= value <= high:
        raise ValueError("%s: got %s=%d, expected %d <= %s <= %d for this dim" % (op, name, value, low, name, high))
    return value


def _take_positions(indices, along, positions):
    index = [slice(None)] * indices.ndim
    index[along] = positions
    return indices[tuple(index)]


@register("topk", methods=("topk",))
def topk(x, k, dim=-1, largest=True, sorted=True):
    """The k largest (largest=False: smallest) elements along dim -> (values, indices),
    dim of size k, in order (largest first); ties keep their original order."""
    along = _one_dim("topk", x, dim)
    data = _work(x)
    k = _count("topk", "k", k, 0, data.shape[along])
    indices = _take_positions(_stable_argsort(data, along, bool(largest)), along, slice(0, k))
    return TopkResult(*_select(x, indices, along, indices.shape if x.ndim else ()))


@register("kthvalue", methods=("kthvalue",))
def kthvalue(x, k, dim=-1, keepdim=False):
    """The k-th smallest element (k from 1) along dim -> (values, indices), dim removed
    (kept with keepdim). Gradient to the returned index."""
    along = _one_dim("kthvalue", x, dim)
    data = _work(x)
    k = _count("kthvalue", "k", k, 1, data.shape[along])
    indices = _take_positions(_stable_argsort(data, along), along, slice(k - 1, k))
    return KthvalueResult(*_select(x, indices, along, _reduced_shape(x.shape, (along,), keepdim)))


class MedianOfAll(Function):
    """The already chosen value of a (0-d) with torch's median() gradient: split evenly among
    the elements equal to it (its NaNs when it is NaN)."""

    @staticmethod
    def forward(ctx, a, value):
        chosen = (a == value) | (np.isnan(a) if np.isnan(value) else False)
        ctx.save_for_backward(chosen)
        return np.asarray(value, dtype=a.dtype)

    @staticmethod
    def backward(ctx, grad):
        (chosen,) = ctx.saved_tensors
        return (grad * chosen / np.count_nonzero(chosen)).astype(grad.dtype, copy=False), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # the shares are constants of the input's values: linear in grad, 0 derivative in a
        (chosen,) = ctx.saved_tensors
        return grad * (chosen / np.count_nonzero(chosen)).astype(grad.dtype), None


@register("median", methods=("median",))
def median(x, dim=None, keepdim=False):
    """The median, the lower of the two middle values for an even count, as torch's.
    dim None: over all elements -> a 0-d value (gradient split evenly among the elements
    equal to it). With dim: -> (values, indices), dim removed (kept with keepdim),
    gradient to the index. A slice with a NaN has NaN as its median (index: its first NaN)."""
    if dim is None:
        data = x.data.reshape(-1)
        if data.size == 0 and data.dtype.kind != "f":
            _raise_empty("median", x)
        ordered = np.sort(data)  # NaN sorts last; no element: NaN, as torch
        value = np.nan if data.size == 0 else ordered[-1] if data.dtype.kind == "f" and np.isnan(ordered[-1]) \
            else ordered[(data.size - 1) // 2]
        return MedianOfAll.apply(x, value)
    along = _one_dim("median", x, dim)
    data = _work(x)
    n = data.shape[along]
    if n == 0:
        _raise_empty("median", x)
    order = _stable_argsort(data, along)
    nans = np.sum(np.isnan(data), axis=along, keepdims=True) if data.dtype.kind == "f" else 0
    # with a NaN the median is NaN: the first NaN, which the stable sort puts at n - nans
    position = np.where(nans > 0, n - nans, (n - 1) // 2)
    position = np.broadcast_to(position, _reduced_shape(data.shape, (along,), True))
    indices = np.take_along_axis(order, position, along)
    return MedianResult(*_select(x, indices, along, _reduced_shape(x.shape, (along,), keepdim)))


def _raise_empty(op, x):
    raise ShapeError("%s: got an empty tensor of shape %s, expected at least one element" % (op, x.shape))


@register("mode", methods=("mode",))
def mode(x, dim=-1, keepdim=False):
    """The most frequent value along dim (the smallest among equally frequent ones) and
    the index of its last occurrence, as torch's -> (values, indices), dim removed (kept
    with keepdim). Gradient to that index."""
    along = _one_dim("mode", x, dim)
    data = _work(x)
    n = data.shape[along]
    if n == 0:
        _raise_empty("mode", x)
    order = _stable_argsort(data, along)
    ordered = np.take_along_axis(data, order, along)
    positions = _positions(n, along, data.ndim)
    # runs of equal values in sorted order; count = how many of its run so far, so each
    # run's count peaks at its last element, which (stable sort) is its last occurrence
    starts = np.concatenate([np.ones_like(_take_positions(ordered, along, slice(0, 1)), dtype=bool),
                             _take_positions(ordered, along, slice(1, None))
                             != _take_positions(ordered, along, slice(None, -1))], axis=along)
    count = positions - np.maximum.accumulate(np.where(starts, positions, 0), axis=along) + 1
    # the first position reaching the highest count ends the smallest of the most frequent values
    last = np.argmax(count == np.max(count, axis=along, keepdims=True), axis=along, keepdims=True)
    indices = np.take_along_axis(order, last, along)
    return ModeResult(*_select(x, indices, along, _reduced_shape(x.shape, (along,), keepdim)))
