"""Shape and indexing ops with PyTorch's names and meanings: flip, roll, repeat, tile,
repeat_interleave, gather, scatter, index_select, masked ops, triangles and diagonals,
narrow, unfold, movedim, meshgrid, nonzero, index_put and their relatives.

Index tensors are integer tensors (int64 as torch makes them; any integer dtype is
accepted). Gradients that gather from repeated indices accumulate (np.add.at), as torch's
do; the forward of a scatter with repeated indices keeps one of the written values
(torch leaves which one unspecified).
"""
import numpy as np

from ..function import Function
from ..registry import register
from ..tensor import Tensor
from ._util import broadcast_shape, is_int, normalize_axis, unbroadcast
from .shape import GetItem, Permute, _shape_args, affine_backward, expand, reshape, transpose


# ---- argument helpers -------------------------------------------------------------------
def _array(value):
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _dim(op, dim, ndim):
    """One dimension as a non-negative int (a 0-d tensor takes dims 0 and -1, as in torch)."""
    return normalize_axis(op, is_int(op, "dim", dim), ndim)[0]


def _dims(op, dims, ndim):
    """An int or a sequence of ints as a tuple of non-negative dims, in the given order."""
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    result = tuple(_dim(op, d, ndim) for d in dims)
    if len(set(result)) != len(result):
        raise ValueError("%s: dims %s repeat a dimension" % (op, dims))
    return result


def _index(op, index, name="index"):
    """An integer index as a numpy array; a float or bool index is a TypeError naming op."""
    array = _array(index)
    if array.dtype.kind not in "iu":
        raise TypeError("%s: got %s of dtype %s, expected an integer (int64) tensor" % (op, name, array.dtype))
    return array


def _check_range(op, index, size, dim):
    """Indices in [0, size), as torch's gather, scatter and index_select want them (no
    negative indices), or an IndexError naming op."""
    if index.size and (index.min() < 0 or index.max() >= size):
        bad = index.min() if index.min() < 0 else index.max()
        raise IndexError("%s: index %d is out of range for dimension %d of size %d, expected 0 <= index < %d"
                         % (op, bad, dim, size, size))


def _bool_mask(op, mask):
    mask = _array(mask)
    if mask.dtype != bool:
        raise TypeError("%s: got a mask of dtype %s, expected bool" % (op, mask.dtype))
    return mask


def _add_at(full, where, values):
    """full[where] += values with repeated positions adding up (np.add.at). A float sum
    goes through np.bincount over flat positions: 4.5x faster than np.add.at for a
    [1000, 100] gather's gradient (1.0 ms against 4.4 ms)."""
    if full.dtype.kind != "f" or not full.flags.c_contiguous:
        np.add.at(full, where, values)
        return
    positions = np.ravel_multi_index(np.broadcast_arrays(*where), full.shape) if full.ndim else np.zeros(1, np.int64)
    sums = np.bincount(positions.reshape(-1), np.broadcast_to(values, positions.shape).reshape(-1), full.size)
    full += sums.reshape(full.shape).astype(full.dtype, copy=False)


# ---- flip, roll, repeat, tile, repeat_interleave ----------------------------------------
class Flip(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, dims):
        ctx.dims = dims
        return np.flip(a, dims).copy()

    @staticmethod
    def backward(ctx, grad):
        return np.flip(grad, ctx.dims), None


def _written_into(grad, where, added):
    """The gradient of the tensor a scatter or index_put wrote into: all of grad where the
    values were added, and zero at the places where they replaced its elements."""
    if added:
        return grad
    grad = grad.copy()
    grad[where] = 0
    return grad

@register("flip", methods=("flip",))
def flip(x, *dims):
    """Reverse the order of elements along dims (any shape -> same shape)."""
    return Flip.apply(x, _dims("flip", _shape_args(dims), x.ndim))


class Roll(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        if dims is None:
            return np.roll(a.reshape(-1), shifts).reshape(a.shape)
        return np.roll(a, shifts, dims)

    @staticmethod
    def backward(ctx, grad):
        back = tuple(-s for s in ctx.shifts)
        if ctx.dims is None:
            return np.roll(grad.reshape(-1), back).reshape(grad.shape), None, None
        return np.roll(grad, back, ctx.dims), None, None


@register("roll", methods=("roll",))
def roll(x, shifts, dims=None):
    """Shift elements circularly by shifts along dims (the flattened tensor when dims is None)."""
    shifts = tuple(is_int("roll", "shift", s) for s in (shifts if isinstance(shifts, (tuple, list)) else (shifts,)))
    if dims is None:
        if len(shifts) != 1:
            raise ValueError("roll: got shifts %s without dims, expected one shift" % (shifts,))
        return Roll.apply(x, shifts, None)
    dims = tuple(_dim("roll", d, x.ndim) for d in (dims if isinstance(dims, (tuple, list)) else (dims,)))
    if len(dims) != len(shifts):
        raise ValueError("roll: got %d shifts and %d dims, expected as many of each" % (len(shifts), len(dims)))
    return Roll.apply(x, shifts, dims)


class Repeat(Function):
    """x tiled repeats[d] times along each dimension d (x has as many dimensions)."""

    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, repeats):
        ctx.shape, ctx.repeats = a.shape, repeats
        return np.tile(a, repeats)

    @staticmethod
    def backward(ctx, grad):
        # [r0 * n0, r1 * n1, ...] -> [r0, n0, r1, n1, ...], summed over the copies
        split = tuple(n for pair in zip(ctx.repeats, ctx.shape) for n in pair)
        return grad.reshape(split).sum(axis=tuple(range(0, len(split), 2))), None


@register("repeat", methods=("repeat",))
def repeat(x, *repeats):
    """torch's Tensor.repeat: x copied repeats[d] times along each dimension, [n0, ...] ->
    [r0 * n0, ...]; more repeats than dimensions add leading dimensions."""
    repeats = tuple(is_int("repeat", "repeat count", r) for r in _shape_args(repeats))
    if len(repeats) < x.ndim:
        raise ValueError("repeat: got %d repeat counts for a tensor with %d dimensions, expected at least %d"
                         % (len(repeats), x.ndim, x.ndim))
    if any(r < 0 for r in repeats):
        raise ValueError("repeat: got repeat counts %s, expected non-negative ints" % (repeats,))
    if len(repeats) > x.ndim:
        x = reshape(x, (1,) * (len(repeats) - x.ndim) + x.shape)
    return Repeat.apply(x, repeats)


@register("tile", methods=("tile",))
def tile(x, *dims):
    """torch.tile: like repeat, where fewer counts than dimensions repeat the last ones."""
    dims = tuple(is_int("tile", "repeat count", r) for r in _shape_args(dims))
    return repeat(x, (1,) * (x.ndim - len(dims)) + dims)


class RepeatInterleave(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, repeats, axis):
        ctx.shape, ctx.repeats, ctx.axis = a.shape, repeats, axis
        return np.repeat(a, repeats, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        counts = np.broadcast_to(ctx.repeats, (ctx.shape[ctx.axis],))
        kept = counts > 0
        starts = (np.cumsum(counts) - counts)[kept]
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        if starts.size:
            moved = np.moveaxis(full, ctx.axis, 0)
            moved[kept] = np.moveaxis(np.add.reduceat(grad, starts, axis=ctx.axis), ctx.axis, 0)
        return full, None, None


@register("repeat_interleave", methods=("repeat_interleave",))
def repeat_interleave(x, repeats=None, dim=None, output_size=None):
    """Each element repeated repeats times (an int, or one count per element along dim)
    along dim; dim None repeats over the flattened tensor. With only an integer tensor of
    counts, torch.repeat_interleave(counts) gives [0]*counts[0] + [1]*counts[1] + ...."""
    if repeats is None:
        counts = _index("repeat_interleave", x, "repeats")
        if counts.ndim > 1 or (counts < 0).any():
            raise ValueError("repeat_interleave: got repeats of shape %s, expected non-negative counts in "
                             "at most one dimension" % (counts.shape,))
        return Tensor(np.repeat(np.arange(counts.size, dtype=np.int64), counts.reshape(-1)))
    if dim is None:
        x, axis = reshape(x, -1), 0
    else:
        axis = _dim("repeat_interleave", dim, x.ndim)
        if x.ndim == 0:
            x = reshape(x, 1)
    if isinstance(repeats, (Tensor, np.ndarray, list)):
        counts = _index("repeat_interleave", repeats, "repeats").reshape(-1)
        if counts.size not in (1, x.shape[axis]):
            raise ValueError("repeat_interleave: got %d repeat counts for dimension %d of size %d, expected 1 or %d"
                             % (counts.size, axis, x.shape[axis], x.shape[axis]))
        counts = counts.astype(np.int64)
    else:
        counts = np.int64(is_int("repeat_interleave", "repeats", repeats))
    if (counts < 0).any():
        raise ValueError("repeat_interleave: got negative repeat counts, expected counts >= 0")
    result = RepeatInterleave.apply(x, counts, axis)
    if output_size is not None and result.shape[axis] != output_size:
        raise ValueError("repeat_interleave: got output_size=%s, but the repeats give %d"
                         % (output_size, result.shape[axis]))
    return result


# ---- views of another tensor's shape ----------------------------------------------------
@register("expand_as", methods=("expand_as",))
def expand_as(x, other):
    """x expanded (broadcast) to other's shape."""
    return expand(x, other.shape)


@register("view_as", methods=("view_as",))
def view_as(x, other):
    """x reshaped to other's shape."""
    return reshape(x, other.shape)


@register("reshape_as", methods=("reshape_as",))
def reshape_as(x, other):
    """x reshaped to other's shape."""
    return reshape(x, other.shape)


# ---- gather and scatter -----------------------------------------------------------------
def _along(shape, dim, index):
    """The full index tuple that puts index (of shape `shape`) at dim and each other
    position at its own coordinate: a[_along(...)] is torch's gather."""
    grids = list(np.ogrid[tuple(slice(0, n) for n in shape)])
    grids[dim] = index
    return tuple(grids)


def _check_gather_shapes(op, dim, index, shape, other_shape=None, other_name=None):
    if index.ndim != len(shape) and not (index.ndim <= 1 and len(shape) <= 1):
        raise ValueError("%s: got an index with %d dimensions for an input with %d, expected as many"
                         % (op, index.ndim, len(shape)))
    for d, n in enumerate(index.shape):
        if d != dim and d < len(shape) and n > shape[d]:
            raise ValueError("%s: index shape %s exceeds the input shape %s in dimension %d"
                             % (op, index.shape, tuple(shape), d))
        if other_shape is not None and d < len(other_shape) and n > other_shape[d]:
            raise ValueError("%s: index shape %s exceeds the %s shape %s in dimension %d"
                             % (op, index.shape, other_name, tuple(other_shape), d))
    _check_range(op, index, shape[dim] if shape else 1, dim)


class Gather(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, dim, index):
        ctx.shape, ctx.where = a.shape, _along(index.shape, dim, index)
        return a[ctx.where]

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        _add_at(full, ctx.where, grad)  # an index may repeat: accumulate
        return full, None, None


@register("gather", methods=("gather",))
def gather(x, dim, index):
    """out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on): the result has index's
    shape; index has x's number of dimensions and fits inside x outside dim."""
    index = _index("gather", index)
    dim = _dim("gather", dim, x.ndim)
    if x.ndim == 0:
        x, index = reshape(x, 1), index.reshape(-1)
        return reshape(Gather.apply(x, 0, index), ())
    _check_gather_shapes("gather", dim, index, x.shape)
    return Gather.apply(x, dim, index)


class Scatter(Function):
    """x with src's values (or a number) written (or added) at the gather positions."""

    differentiable_backward = affine_backward(3)  # linear in x and src, but for a number src

    @staticmethod
    def forward(ctx, a, dim, index, src, add):
        ctx.where, ctx.add = _along(index.shape, dim, index), add
        ctx.src_shape, ctx.within = np.shape(src), tuple(slice(0, n) for n in index.shape)
        out = a.copy()
        values = src[ctx.within] if np.ndim(src) else src
        if add:
            _add_at(out, ctx.where, values)
        else:
            out[ctx.where] = values
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_a = grad_src = None
        if ctx.needs_input_grad[0]:
            grad_a = _written_into(grad, ctx.where, ctx.add)
        if ctx.needs_input_grad[3]:
            grad_src = np.zeros(ctx.src_shape, dtype=grad.dtype)
            grad_src[ctx.within] = grad[ctx.where]
        return grad_a, None, None, grad_src, None


def _scatter(op, x, dim, index, src, add):
    index = _index(op, index)
    dim = _dim(op, dim, x.ndim)
    if isinstance(src, (Tensor, np.ndarray)):
        src_shape = src.shape
        if len(src_shape) != x.ndim:
            raise ValueError("%s: got src of shape %s for an input of shape %s, expected as many dimensions"
                             % (op, tuple(src_shape), x.shape))
        _check_gather_shapes(op, dim, index, x.shape, src_shape, "src")
        if _array(src).dtype != x.dtype:
            raise TypeError("%s: got src of dtype %s for an input of dtype %s, expected the same dtype"
                            % (op, src.dtype, x.dtype))
    elif isinstance(src, (bool, int, float, np.number)) and not add:
        _check_gather_shapes(op, dim, index, x.shape)
        src = np.asarray(src, dtype=x.dtype)[()]
    else:
        raise TypeError("%s: got src=%r, expected a tensor%s" % (op, src, "" if add else " or a number"))
    return Scatter.apply(x, dim, index, src, add)


@register("scatter", methods=("scatter",))
def scatter(x, dim, index, src=None, value=None, reduce=None):
    """A copy of x where out[index[i][j]][j] = src[i][j] (dim 0; and so on), or the number
    value; index fits inside src and, outside dim, inside x. reduce="add" adds instead."""
    if (src is None) == (value is None):
        raise TypeError("scatter: got %s, expected exactly one of src and value"
                        % ("neither" if src is None else "both"))
    if reduce not in (None, "add"):
        raise ValueError("scatter: got reduce=%r, expected None or 'add'" % (reduce,))
    if reduce == "add" and value is not None:
        src = _full_of(x, index, value)
    return _scatter("scatter", x, dim, index, src if src is not None else value, reduce == "add")


def _full_of(x, index, value):
    """A tensor of index's shape holding value in x's dtype (scatter's value with reduce='add')."""
    return Tensor(np.full(_array(index).shape, value, dtype=x.dtype))


@register("scatter_add", methods=("scatter_add",))
def scatter_add(x, dim, index, src):
    """A copy of x where src[i][j] is added at out[index[i][j]][j] (dim 0; and so on);
    repeated indices add up."""
    return _scatter("scatter_add", x, dim, index, src, True)


class IndexSelect(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, axis, index):
        ctx.shape, ctx.axis, ctx.index = a.shape, axis, index
        return np.take(a, index, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        np.add.at(np.moveaxis(full, ctx.axis, 0), ctx.index, np.moveaxis(grad, ctx.axis, 0))
        return full, None, None


def _vector_index(op, index, x, dim):
    index = _index(op, index)
    if index.ndim > 1:
        raise ValueError("%s: got an index of shape %s, expected one dimension" % (op, index.shape))
    if x.ndim == 0 and index.size != 1:
        raise ValueError("%s: got %d indices for a 0-d tensor, expected one" % (op, index.size))
    _check_range(op, index, x.shape[dim] if x.ndim else 1, dim)
    return index.reshape(-1)


@register("index_select", methods=("index_select",))
def index_select(x, dim, index):
    """The slices of x at the 1-D integer index along dim (repeats allowed)."""
    dim = _dim("index_select", dim, x.ndim)
    index = _vector_index("index_select", index, x, dim)
    if x.ndim == 0:
        return reshape(IndexSelect.apply(reshape(x, 1), 0, index), ())
    return IndexSelect.apply(x, dim, index)


class IndexAdd(Function):
    # linear in x and source jointly (alpha scales source: a structural factor, not an added value)
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, axis, index, source, alpha):
        ctx.axis, ctx.index, ctx.alpha = axis, index, alpha
        out = a.copy()
        np.add.at(np.moveaxis(out, axis, 0), index, np.moveaxis(source * alpha if alpha != 1 else source, axis, 0))
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_source = None
        if ctx.needs_input_grad[3]:
            grad_source = np.take(grad, ctx.index, axis=ctx.axis)
            if ctx.alpha != 1:
                grad_source = grad_source * ctx.alpha
        return grad, None, None, grad_source, None


@register("index_add", methods=("index_add",))
def index_add(x, dim, index, source, alpha=1):
    """A copy of x with alpha * source's slices added at the 1-D index along dim (repeats
    add up); source has x's shape with index's length at dim."""
    dim = _dim("index_add", dim, x.ndim)
    index = _vector_index("index_add", index, x, dim)
    expected = x.shape[:dim] + (index.size,) + x.shape[dim + 1:] if x.ndim else (index.size,) if index.ndim else ()
    if tuple(source.shape) != expected and not (x.ndim == 0 and source.size == 1):
        raise ValueError("index_add: got source of shape %s, expected %s" % (tuple(source.shape), expected))
    if x.ndim == 0:
        return reshape(IndexAdd.apply(reshape(x, 1), 0, index, reshape(source, 1), alpha), ())
    return IndexAdd.apply(x, dim, index, source, alpha)


# ---- masks --------------------------------------------------------------------------------
class MaskedFill(Function):
    differentiable_backward = affine_backward(2)  # linear in x, but for a number value

    @staticmethod
    def forward(ctx, a, mask, value):
        shape = broadcast_shape("masked_fill", a.shape, mask.shape)
        ctx.shape, ctx.mask = a.shape, mask
        return np.where(mask, np.asarray(value, dtype=a.dtype), np.broadcast_to(a, shape))

    @staticmethod
    def backward(ctx, grad):
        zero = np.zeros((), dtype=grad.dtype)
        grad_a = unbroadcast(np.where(ctx.mask, zero, grad), ctx.shape) if ctx.needs_input_grad[0] else None
        grad_value = None
        if ctx.needs_input_grad[2]:
            grad_value = np.where(ctx.mask, grad, zero).sum().astype(grad.dtype)
        return grad_a, None, grad_value


@register("masked_fill", methods=("masked_fill",))
def masked_fill(x, mask, value):
    """x with value (a number or a 0-d tensor) wherever the bool mask (broadcast) holds."""
    mask = _bool_mask("masked_fill", mask)
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError("masked_fill: got a value of shape %s, expected a number or a 0-d tensor"
                             % (value.shape,))
    elif not isinstance(value, (bool, int, float, np.number)):
        raise TypeError("masked_fill: got value=%r, expected a number or a 0-d tensor" % (value,))
    return MaskedFill.apply(x, mask, value)


class MaskedSelect(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, mask):
        shape = broadcast_shape("masked_select", a.shape, mask.shape)
        ctx.shape, ctx.mask = a.shape, np.broadcast_to(mask, shape)
        return np.broadcast_to(a, shape)[ctx.mask]

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.mask.shape, dtype=grad.dtype)
        full[ctx.mask] = grad
        return unbroadcast(full, ctx.shape), None


@register("masked_select", methods=("masked_select",))
def masked_select(x, mask):
    """The elements of x (broadcast with the bool mask) where mask holds, as a 1-D tensor."""
    return MaskedSelect.apply(x, _bool_mask("masked_select", mask))


class MaskedScatter(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, mask, source):
        shape = broadcast_shape("masked_scatter", a.shape, mask.shape)
        mask = np.broadcast_to(mask, shape)
        count = int(mask.sum())
        if count > source.size:
            raise ValueError("masked_scatter: the mask selects %d elements, but source has only %d"
                             % (count, source.size))
        ctx.shape, ctx.mask, ctx.source_shape = a.shape, mask, source.shape
        out = np.array(np.broadcast_to(a, shape))
        out[mask] = source.reshape(-1)[:count]
        return out

    @staticmethod
    def backward(ctx, grad):
        zero = np.zeros((), dtype=grad.dtype)
        grad_a = unbroadcast(np.where(ctx.mask, zero, grad), ctx.shape) if ctx.needs_input_grad[0] else None
        grad_source = None
        if ctx.needs_input_grad[2]:
            selected = grad[ctx.mask]
            grad_source = np.zeros(int(np.prod(ctx.source_shape)), dtype=grad.dtype)
            grad_source[:selected.size] = selected
            grad_source = grad_source.reshape(ctx.source_shape)
        return grad_a, None, grad_source


@register("masked_scatter", methods=("masked_scatter",))
def masked_scatter(x, mask, source):
    """x (broadcast with the bool mask) with source's first elements, in row-major order,
    written where mask holds."""
    mask = _bool_mask("masked_scatter", mask)
    if source.dtype != x.dtype:
        raise TypeError("masked_scatter: got source of dtype %s for an input of dtype %s, expected the same"
                        % (source.dtype, x.dtype))
    return MaskedScatter.apply(x, mask, source)


class IndexPut(Function):
    differentiable_backward = affine_backward(2)  # linear in x and values, but for number values

    @staticmethod
    def forward(ctx, a, indices, values, accumulate):
        ctx.indices, ctx.accumulate, ctx.values_shape = indices, accumulate, np.shape(values)
        out = a.copy()
        try:
            if accumulate:
                np.add.at(out, indices, values)
            else:
                out[indices] = values
        except IndexError as error:
            raise IndexError("index_put: %s (tensor of shape %s)" % (error, a.shape)) from None
        except ValueError as error:
            raise ValueError("index_put: %s (values of shape %s)" % (error, np.shape(values))) from None
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_a = grad_values = None
        if ctx.needs_input_grad[0]:
            grad_a = _written_into(grad, ctx.indices, ctx.accumulate)
        if ctx.needs_input_grad[2]:
            grad_values = unbroadcast(grad[ctx.indices], ctx.values_shape)
        return grad_a, None, grad_values, None


@register("index_put", methods=("index_put",))
def index_put(x, indices, values, accumulate=False):
    """A copy of x with x[indices] = values (values broadcast), or += with accumulate
    (repeated indices add up); indices is a tuple of integer or bool tensors."""
    if not isinstance(indices, (tuple, list)):
        raise TypeError("index_put: got indices %r, expected a tuple of integer or bool tensors"
                        % type(indices).__name__)
    arrays = []
    for item in indices:
        array = _array(item)
        if array.dtype.kind not in "iub":
            raise TypeError("index_put: got an index of dtype %s, expected integer or bool" % array.dtype)
        arrays.append(array)
    if isinstance(values, (bool, int, float, np.number)):
        values = np.asarray(values, dtype=x.dtype)
    elif _array(values).dtype != x.dtype:
        raise TypeError("index_put: got values of dtype %s for an input of dtype %s, expected the same"
                        % (values.dtype, x.dtype))
    return IndexPut.apply(x, tuple(arrays), values, bool(accumulate))


# ---- triangles and diagonals ------------------------------------------------------------
class Triangle(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, diagonal, upper):
        ctx.diagonal, ctx.upper = diagonal, upper
        return np.triu(a, diagonal) if upper else np.tril(a, diagonal)

    @staticmethod
    def backward(ctx, grad):
        return (np.triu(grad, ctx.diagonal) if ctx.upper else np.tril(grad, ctx.diagonal)), None, None


def _triangle(op, x, diagonal, upper):
    if x.ndim < 2:
        raise ValueError("%s: got a tensor of shape %s, expected at least 2 dimensions" % (op, x.shape))
    return Triangle.apply(x, is_int(op, "diagonal", diagonal), upper)


@register("tril", methods=("tril",))
def tril(x, diagonal=0):
    """The lower triangle of the last two dimensions (on and below the diagonal-th
    diagonal), zeros above."""
    return _triangle("tril", x, diagonal, False)


@register("triu", methods=("triu",))
def triu(x, diagonal=0):
    """The upper triangle of the last two dimensions (on and above the diagonal-th
    diagonal), zeros below."""
    return _triangle("triu", x, diagonal, True)


class Diagonal(Function):
    """The offset diagonal of dimensions dim1 and dim2, as a new last dimension."""

    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, offset, dim1, dim2):
        ctx.shape, ctx.offset, ctx.dims = a.shape, offset, (dim1, dim2)
        return np.diagonal(a, offset, dim1, dim2).copy()

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        view = np.moveaxis(full, ctx.dims, (-2, -1))  # a view: writing it writes full
        rows, columns = _diagonal_positions(grad.shape[-1], ctx.offset)
        view[..., rows, columns] = grad
        return full, None, None, None


def _diagonal_positions(length, offset):
    steps = np.arange(length)
    return steps + max(-offset, 0), steps + max(offset, 0)


@register("diagonal", methods=("diagonal",))
def diagonal(x, offset=0, dim1=0, dim2=1):
    """The offset-th diagonal of dimensions dim1 and dim2 (offset > 0 above the main
    one): those dimensions go, and a last one of the diagonal's length comes."""
    if x.ndim < 2:
        raise ValueError("diagonal: got a tensor of shape %s, expected at least 2 dimensions" % (x.shape,))
    first, second = _dim("diagonal", dim1, x.ndim), _dim("diagonal", dim2, x.ndim)
    if first == second:
        raise ValueError("diagonal: got dim1 and dim2 both %d, expected two different dimensions" % first)
    return Diagonal.apply(x, is_int("diagonal", "offset", offset), first, second)


class DiagonalMatrix(Function):
    """[n] -> [n + |k|, n + |k|]: the vector on the k-th diagonal, zeros elsewhere."""

    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, offset):
        ctx.offset = offset
        return np.diag(a, offset)

    @staticmethod
    def backward(ctx, grad):
        return np.diagonal(grad, ctx.offset).copy(), None


@register("diag", methods=("diag",))
def diag(x, diagonal=0):
    """torch.diag: a 1-D tensor becomes a square matrix with it on the diagonal-th
    diagonal; a 2-D tensor gives its diagonal-th diagonal as a 1-D tensor."""
    diagonal = is_int("diag", "diagonal", diagonal)
    if x.ndim == 1:
        return DiagonalMatrix.apply(x, diagonal)
    if x.ndim == 2:
        return Diagonal.apply(x, diagonal, 0, 1)
    raise ValueError("diag: got a tensor of shape %s, expected 1 or 2 dimensions" % (x.shape,))


class Trace(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a):
        ctx.shape = a.shape
        out = np.trace(a)
        return np.asarray(out, dtype=np.int64 if a.dtype.kind in "biu" else a.dtype)

    @staticmethod
    def backward(ctx, grad):
        return np.eye(*ctx.shape, dtype=grad.dtype) * grad


@register("trace", methods=("trace",))
def trace(x):
    """The sum of a 2-D tensor's main diagonal (a 0-d tensor; integers sum in int64)."""
    if x.ndim != 2:
        raise ValueError("trace: got a tensor of shape %s, expected 2 dimensions" % (x.shape,))
    return Trace.apply(x)


# ---- narrowing, windows, moving dimensions ----------------------------------------------
@register("narrow", methods=("narrow",))
def narrow(x, dim, start, length):
    """The length elements of x from start along dim (start may count from the end)."""
    dim = _dim("narrow", dim, x.ndim)
    if x.ndim == 0:
        raise ValueError("narrow: got a 0-d tensor, expected at least one dimension")
    start, length, size = is_int("narrow", "start", start), is_int("narrow", "length", length), x.shape[dim]
    if not -size <= start <= size:
        raise IndexError("narrow: start %d is out of range for dimension %d of size %d" % (start, dim, size))
    start %= size if size else 1
    if length < 0 or start + length > size:
        raise ValueError("narrow: start %d + length %d exceeds dimension %d of size %d" % (start, length, dim, size))
    return GetItem.apply(x, (slice(None),) * dim + (slice(start, start + length),))


class Unfold(Function):
    """Windows of `size` every `step` along axis: [.., n, ..] -> [.., count, .., size]."""

    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, axis, size, step):
        ctx.shape, ctx.axis, ctx.size, ctx.step = a.shape, axis, size, step
        windows = np.lib.stride_tricks.sliding_window_view(a, size, axis=axis)
        return windows[(slice(None),) * axis + (slice(None, None, step),)].copy()

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        moved = np.moveaxis(full, ctx.axis, -1)
        count = grad.shape[ctx.axis]
        windows = np.moveaxis(grad, ctx.axis, -2)  # [..., count, size]
        end = ctx.step * (count - 1) + 1
        for offset in range(ctx.size):  # one vectorised add per window position (windows may overlap)
            moved[..., offset:offset + end:ctx.step] += windows[..., offset]
        return full, None, None, None


@register("unfold", methods=("unfold",))
def unfold(x, dimension, size, step):
    """torch's Tensor.unfold: every window of `size` elements, `step` apart, along
    dimension; that dimension becomes the window count and a last one of `size` comes."""
    axis = _dim("unfold", dimension, x.ndim)
    size, step = is_int("unfold", "size", size), is_int("unfold", "step", step)
    length = x.shape[axis] if x.ndim else 1
    if step <= 0 or size < 0 or size > length:
        raise ValueError("unfold: got size %d and step %d for dimension %d of size %d, expected "
                         "0 <= size <= %d and step > 0" % (size, step, axis, length, length))
    if x.ndim == 0:
        return reshape(x, 1) if size else GetItem.apply(reshape(x, 1), slice(0, 0))
    return Unfold.apply(x, axis, size, step)


@register("movedim", methods=("movedim",))
def movedim(x, source, destination):
    """Dimensions source (an int or a sequence) moved to destination; the others keep
    their order."""
    source, destination = _dims("movedim", source, x.ndim), _dims("movedim", destination, x.ndim)
    if len(source) != len(destination):
        raise ValueError("movedim: got %d source and %d destination dims, expected as many of each"
                         % (len(source), len(destination)))
    order = [d for d in range(x.ndim) if d not in source]
    for position, dim in sorted(zip(destination, source)):
        order.insert(position, dim)
    return Permute.apply(x, tuple(order))


@register("moveaxis", methods=("moveaxis",))
def moveaxis(x, source, destination):
    """torch.moveaxis: movedim under numpy's name."""
    return movedim(x, source, destination)


@register("swapaxes", methods=("swapaxes",))
def swapaxes(x, axis0, axis1):
    """Swap two dimensions (transpose under numpy's name)."""
    return transpose(x, axis0, axis1)


@register("swapdims", methods=("swapdims",))
def swapdims(x, dim0, dim1):
    """Swap two dimensions (transpose)."""
    return transpose(x, dim0, dim1)


@register("unflatten", methods=("unflatten",))
def unflatten(x, dim, sizes):
    """Dimension dim split into sizes (whose product is its length; one may be -1)."""
    dim = _dim("unflatten", dim, x.ndim)
    if x.ndim == 0:
        raise ValueError("unflatten: got a 0-d tensor, expected at least one dimension")
    sizes = tuple(is_int("unflatten", "size", s) for s in sizes)
    if not sizes:
        raise ValueError("unflatten: got no sizes, expected a non-empty sequence")
    known = int(np.prod([s for s in sizes if s != -1]))
    if sizes.count(-1) > 1 or (-1 not in sizes and known != x.shape[dim]) or (
            -1 in sizes and (known == 0 or x.shape[dim] % known)):
        raise ValueError("unflatten: sizes %s do not split dimension %d of size %d" % (sizes, dim, x.shape[dim]))
    return reshape(x, x.shape[:dim] + sizes + x.shape[dim + 1:])


@register("meshgrid")
def meshgrid(*tensors, indexing="ij"):
    """N 1-D (or 0-d) tensors -> N tensors of shape [len0, len1, ...] (indexing='ij') or
    with the first two lengths swapped (indexing='xy'); output i varies along input i."""
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError("meshgrid: got indexing=%r, expected 'ij' or 'xy'" % (indexing,))
    for t in tensors:
        if not isinstance(t, Tensor) or t.ndim > 1:
            raise ValueError("meshgrid: got %s, expected 0-d or 1-D tensors"
                             % (("a tensor of shape %s" % (t.shape,)) if isinstance(t, Tensor) else type(t).__name__))
    if len({t.dtype for t in tensors}) > 1:
        raise TypeError("meshgrid: got dtypes %s, expected tensors of one dtype"
                        % sorted({str(t.dtype) for t in tensors}))
    lengths = [t.numel() for t in tensors]
    swap = indexing == "xy" and len(tensors) >= 2
    if swap:
        lengths[0], lengths[1] = lengths[1], lengths[0]
    grids = []
    for i, t in enumerate(tensors):
        position = {0: 1, 1: 0}.get(i, i) if swap else i
        shape = [1] * len(tensors)
        shape[position] = t.numel()
        grids.append(expand(reshape(t, tuple(shape)), tuple(lengths)))
    return tuple(grids)


# ---- non-differentiable queries -----------------------------------------------------------
@register("nonzero", methods=("nonzero",), differentiable=False)
def nonzero(x, as_tuple=False):
    """The int64 coordinates of x's nonzero elements: [count, ndim] in row-major order, or
    with as_tuple one [count] tensor per dimension."""
    data = _array(x)
    if as_tuple:
        return tuple(Tensor(i.astype(np.int64)) for i in np.nonzero(data.reshape(-1) if data.ndim == 0 else data))
    return Tensor(np.argwhere(data).astype(np.int64))
