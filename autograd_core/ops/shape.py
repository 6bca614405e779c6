"""Shape ops: reshape, transpose, broadcast, indexing, concatenation, splitting, padding (torch's F.pad)."""
import copy

import numpy as np

from ..function import Function, _linear_backward
from ..registry import register
from ..tensor import Tensor, torch_order_index
from ._util import DimensionError, ShapeError, is_int, normalize_axis, result_dtype, unbroadcast


def affine_backward(*positions):
    """A differentiable_backward for an op that is linear in its float Tensor inputs once
    the constants at argument positions (a number or array that fills or is written:
    pad's value, masked_fill's number, a scatter's number) are 0. Such a constant moves
    the output but not its derivative, so the backward is that of the op with the
    constants 0, which is linear: function._LinearBackward, whose own derivative is that
    op's forward (the constants 0). A constant given as a Tensor is an input and stays.
    Used only with create_graph=True; the numpy backward is unchanged."""

    def differentiable_backward(ctx, *grads):
        inputs = list(ctx.inputs)
        for position in positions:
            if not isinstance(inputs[position], Tensor):
                inputs[position] = 0
        node = copy.copy(ctx)  # the node's other fields (masks, shapes) as its forward stored them
        node.inputs = tuple(inputs)
        return _linear_backward(node, grads)

    return staticmethod(differentiable_backward)


class Reshape(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ShapeError("reshape: cannot reshape a tensor of shape %s (%d elements) into %s"
                             % (a.shape, a.size, tuple(shape))) from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Permute(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, axes):
        ctx.inverse = tuple(np.argsort(axes))
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, grad):
        return np.transpose(grad, ctx.inverse), None


class BroadcastTo(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise ShapeError("expand: cannot broadcast a tensor of shape %s to %s" % (a.shape, tuple(shape))) from None

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shape), None


class GetItem(Function):
    """x[index] for basic and integer-array indexing; repeated indices accumulate."""
    linear = True  # (its backward's derivative is its forward: see function.Function)


    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        try:
            return a[index]
        except IndexError as error:
            raise IndexError("getitem: %s (tensor of shape %s)" % (error, a.shape)) from None

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=ctx.dtype)
        if _is_basic_index(ctx.index):
            full[ctx.index] = grad  # each element picked at most once; np.add.at is ~30x slower
        else:
            np.add.at(full, ctx.index, grad)  # integer arrays may repeat an index: accumulate
        return full, None


def _is_basic_index(index):
    """True for ints, slices, None and Ellipsis (and tuples of them): no integer or bool arrays."""
    items = index if isinstance(index, tuple) else (index,)
    return all(item is None or item is Ellipsis or isinstance(item, slice)
               or (isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)))
               for item in items)


class Concat(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, axis, *arrays):
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        edges = np.cumsum(ctx.sizes)[:-1]
        return (None,) + tuple(np.split(grad, edges, axis=ctx.axis))


class Stack(Function):
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, axis, *arrays):
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return (None,) + tuple(np.moveaxis(grad, ctx.axis, 0))


class Split(Function):
    """One input, several outputs: the pieces between the given edges along axis."""
    linear = True  # (its backward's derivative is its forward: see function.Function)


    @staticmethod
    def forward(ctx, a, edges, axis):
        ctx.shape, ctx.dtype, ctx.edges, ctx.axis = a.shape, a.dtype, edges, axis
        return tuple(np.split(a, edges, axis=axis))

    @staticmethod
    def backward(ctx, *grads):
        return np.concatenate(grads, axis=ctx.axis), None, None


class Pad(Function):
    """Constant padding: crop where a pad is negative (as torch), then np.pad with value;
    the gradient is the middle of grad, padded back with zeros where the input was cropped."""

    differentiable_backward = affine_backward(2)  # linear but for the padding value

    @staticmethod
    def forward(ctx, a, pairs, value):
        crops = tuple(slice(max(-before, 0), n - max(-after, 0)) for (before, after), n in zip(pairs, a.shape))
        widths = tuple((max(before, 0), max(after, 0)) for before, after in pairs)
        ctx.crops, ctx.shape = crops, a.shape
        ctx.middle = tuple(slice(w, w + (c.stop - c.start)) for (w, _), c in zip(widths, crops))
        cropped = a[crops]
        if not any(b or e for b, e in widths):
            return cropped.copy()
        return np.pad(cropped, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        inner = grad[ctx.middle]
        if inner.shape == ctx.shape:
            return inner, None, None
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        full[ctx.crops] = inner
        return full, None, None


class PadByIndex(Function):
    """reflect, replicate and circular padding: each padded dim gathers the input at an
    index map (output position -> input position), and the gradient adds back along the
    same maps (a border element that several output positions copy gets all of them)."""

    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, maps):
        ctx.maps, ctx.shape = maps, a.shape
        for axis, index in maps:
            a = np.take(a, index, axis=axis)
        return a

    @staticmethod
    def backward(ctx, grad):
        shape = list(grad.shape)
        for axis, index in reversed(ctx.maps):
            shape[axis] = ctx.shape[axis]
            summed = np.zeros(shape, dtype=grad.dtype)
            np.add.at(np.moveaxis(summed, axis, 0), index, np.moveaxis(grad, axis, 0))
            grad = summed
        return grad, None


def _pad_index(mode, n, before, after):
    """The input position each output position of one dim copies, for mode."""
    positions = np.arange(-before, n + after)
    if mode == "reflect":
        return np.abs(positions - (n - 1) * (positions >= n) * 2) if n > 1 else np.zeros_like(positions)
    if mode == "replicate":
        return np.clip(positions, 0, n - 1)
    return positions % n  # circular


# ---- functional forms ---------------------------------------------------------------
def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


@register("reshape", methods=("reshape", "view"))
def reshape(x, *shape):
    """The same elements in a new shape (one dimension may be -1)."""
    return Reshape.apply(x, tuple(is_int("reshape", "shape entry", s) for s in _shape_args(shape)))


@register("flatten", methods=("flatten",))
def flatten(x, start_dim=0, end_dim=-1):
    """Merge dimensions start_dim..end_dim into one."""
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = normalize_axis("flatten", start_dim, x.ndim)[0], normalize_axis("flatten", end_dim, x.ndim)[0]
    if start > end:
        raise ValueError("flatten: start_dim %s comes after end_dim %s" % (start_dim, end_dim))
    return reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


@register("permute", methods=("permute",))
def permute(x, *axes):
    """Reorder dimensions: output dimension i is input dimension axes[i]."""
    axes = _shape_args(axes)
    if sorted(normalize_axis("permute", a, x.ndim)[0] for a in axes) != list(range(x.ndim)) or len(axes) != x.ndim:
        raise ValueError("permute: got axes %s, expected a permutation of %d dimensions" % (axes, x.ndim))
    return Permute.apply(x, tuple(a % x.ndim for a in axes))


@register("transpose", methods=("transpose",))
def transpose(x, dim0=None, dim1=None):
    """Reverse all dimensions (no arguments, like numpy's .T) or swap dim0 and dim1."""
    if dim0 is None and dim1 is None:
        return Permute.apply(x, tuple(range(x.ndim - 1, -1, -1)))
    if dim0 is None or dim1 is None:
        raise ValueError("transpose: pass both dim0 and dim1, or neither")
    axes = list(range(x.ndim))
    (a,), (b,) = normalize_axis("transpose", dim0, x.ndim), normalize_axis("transpose", dim1, x.ndim)
    if x.ndim == 0:  # transpose(0, 0) of a 0-d tensor, as in PyTorch
        return Permute.apply(x, ())
    axes[a], axes[b] = axes[b], axes[a]
    return Permute.apply(x, tuple(axes))


@register("broadcast_to", methods=("broadcast_to",))
def broadcast_to(x, *shape):
    """Broadcast to shape (numpy's rules); the gradient is summed back."""
    return BroadcastTo.apply(x, _shape_args(shape))


@register("expand", methods=("expand",))
def expand(x, *shape):
    """PyTorch's expand: like broadcast_to, where -1 keeps a dimension's size."""
    shape = _shape_args(shape)
    offset = len(shape) - x.ndim
    if offset < 0:
        raise ShapeError("expand: cannot expand a tensor of shape %s to fewer dimensions %s" % (x.shape, shape))
    shape = tuple(x.shape[i - offset] if s == -1 and i >= offset else s for i, s in enumerate(shape))
    return BroadcastTo.apply(x, shape)


@register("squeeze", methods=("squeeze",))
def squeeze(x, dim=None):
    """Remove size-1 dimensions: all of them, or those among dim (an int or a tuple); as
    in torch, a dim in dim whose size is not 1 is left as it is."""
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    axes = normalize_axis("squeeze", dim, x.ndim)
    if x.ndim == 0:  # dim 0 / -1 of a 0-d tensor (allowed, as in PyTorch): nothing to remove
        return reshape(x, ())
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes or n != 1))


@register("unsqueeze", methods=("unsqueeze",))
def unsqueeze(x, dim):
    """Insert a size-1 dimension at dim (negative counts from the new end)."""
    axis = is_int("unsqueeze", "dim", dim)
    if not -(x.ndim + 1) <= axis <= x.ndim:
        raise DimensionError("unsqueeze: dim %s is out of range for a result with %d dimensions" % (axis, x.ndim + 1))
    axis = axis % (x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def _index_arg(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


@register("getitem", methods=("__getitem__",))
def getitem(x, index):
    return GetItem.apply(x, torch_order_index(_index_arg(index), x.shape))


def _check_same(op, tensors, axis, except_axis):
    if not tensors:
        raise ValueError("%s: got no tensors, expected at least one" % op)
    first = tensors[0]
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape))
                                       if not (except_axis and i == axis)):
            raise ShapeError("%s: shapes %s and %s differ outside dim %s"
                             % (op, first.shape, t.shape, axis if except_axis else "(none)"))


def _promote_all(op, tensors):
    """The tensors cast to their common dtype by PyTorch's rule (_util.result_dtype):
    numpy would turn float32 joined with int64 into float64; PyTorch says float32. Only
    tensors without a gradient are cast here: one that needs a gradient is a float, and
    numpy joins floats in the same dtype PyTorch does."""
    dtype = result_dtype(op, *(t.data for t in tensors))
    return [Tensor(t.data.astype(dtype)) if t.dtype != dtype and not t.requires_grad else t for t in tensors]


@register("concat", methods=())
def concat(tensors, dim=0):
    """Join tensors along an existing dimension: shapes equal but along dim -> dim's sizes added."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors or tensors[0].ndim == 0:
        raise ValueError("concat: got %s, expected one or more tensors with at least one dimension"
                         % ("no tensors" if not tensors else "a zero-dimensional tensor"))
    (axis,) = normalize_axis("concat", dim, tensors[0].ndim)
    _check_same("concat", tensors, axis, True)
    return Concat.apply(axis, *_promote_all("concat", tensors))


@register("cat", methods=())
def cat(tensors, dim=0):
    """torch's name for concat: join tensors along an existing dimension."""
    return concat(tensors, dim)


@register("stack", methods=())
def stack(tensors, dim=0):
    """Join equal-shaped tensors along a new dimension dim: k tensors [*s] -> [*s with k inserted at dim]."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    _check_same("stack", tensors, None, False)
    ndim = tensors[0].ndim + 1
    axis = is_int("stack", "dim", dim)
    if not -ndim <= axis < ndim:
        raise DimensionError("stack: dim %s is out of range for a result with %d dimensions" % (axis, ndim))
    return Stack.apply(axis % ndim, *_promote_all("stack", tensors))


def _check_has_dimensions(op, x):
    if x.ndim == 0:
        raise ValueError("%s: got a 0-d tensor, expected at least one dimension to split along" % op)


@register("split", methods=("split",))
def split(x, split_size_or_sections, dim=0):
    """PyTorch's split: pieces of split_size along dim (the last may be smaller), or
    pieces of the listed sizes (which must add up to the dimension's length)."""
    _check_has_dimensions("split", x)
    (axis,) = normalize_axis("split", dim, x.ndim)
    length = x.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError("split: got split_size %d, expected a positive int" % size)
        sizes = [size] * (length // size) + ([length % size] if length % size else [])
    elif isinstance(split_size_or_sections, (tuple, list)):
        sizes = [is_int("split", "section", s) for s in split_size_or_sections]
        if sum(sizes) != length or any(s < 0 for s in sizes):
            raise ShapeError("split: sections %s do not add up to the length %d of dim %d" % (sizes, length, axis))
    else:
        raise TypeError("split: got split_size_or_sections=%r, expected an int or a list of ints"
                        % (split_size_or_sections,))
    if len(sizes) <= 1:
        return (x,) if sizes else ()
    edges = tuple(int(e) for e in np.cumsum(sizes)[:-1])
    return Split.apply(x, edges, axis)


@register("chunk", methods=("chunk",))
def chunk(x, chunks, dim=0):
    """Split into `chunks` nearly equal pieces along dim (PyTorch's rule: ceil-sized pieces)."""
    chunks = is_int("chunk", "chunks", chunks)
    if chunks <= 0:
        raise ValueError("chunk: got chunks=%s, expected a positive int" % chunks)
    _check_has_dimensions("chunk", x)
    (axis,) = normalize_axis("chunk", dim, x.ndim)
    size = max(-(-x.shape[axis] // chunks), 1)
    return split(x, size, axis)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


@register("pad", methods=("pad",))
def pad(x, pad, mode="constant", value=None):
    """torch.nn.functional.pad: ``pad`` lists (before, after) pairs from the LAST dim
    backwards, ``(left, right)`` pads the last dim, ``(left, right, top, bottom)`` the last
    two, and so on (up to every dim). [.., n, ..] -> [.., before + n + after, ..].

    mode: "constant" (``value``, default 0; a negative pad crops, as in torch), "reflect"
    (mirrored without repeating the border: pads < n), "replicate" (the border element
    repeated) or "circular" (wrapped around: pads <= n). Unlike torch, every mode pads any
    number of trailing dims of a tensor of any rank. Differentiable in every mode."""
    if mode not in _PAD_MODES:
        raise ValueError("pad: got mode=%r, expected one of %s" % (mode, ", ".join(_PAD_MODES)))
    if isinstance(pad, (Tensor, np.ndarray)):
        pad = pad.tolist()
    if not isinstance(pad, (tuple, list)):
        raise TypeError("pad: got pad=%r, expected a tuple of ints (before, after) per dim, the last dim first"
                        % (pad,))
    pad = [is_int("pad", "pad entry", p) for p in pad]
    if len(pad) % 2 or len(pad) > 2 * x.ndim:
        raise ShapeError("pad: got %d pad values %s for a tensor of shape %s, expected an even number, at most "
                         "2 per dim (%d)" % (len(pad), tuple(pad), x.shape, 2 * x.ndim))
    pairs = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        pairs[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    if mode == "constant":
        for (before, after), n in zip(pairs, x.shape):
            if n + before + after < 0:
                raise ShapeError("pad: pads %s would leave a dim of size %d with %d elements"
                                 % (tuple(pad), n, n + before + after))
        if value is None:
            value = 0
        elif isinstance(value, Tensor):
            value = value.item()
        return Pad.apply(x, tuple(pairs), value)
    if value is not None and value != 0:
        raise ValueError("pad: mode %r takes no value (got value=%r); only constant padding fills a value"
                         % (mode, value))
    maps = []
    for axis, ((before, after), n) in enumerate(zip(pairs, x.shape)):
        if not before and not after:
            continue
        limit = n - 1 if mode == "reflect" else n
        if before < 0 or after < 0 or before > limit or after > limit:
            raise ShapeError("pad: mode %r needs pads from 0 to %d for dim %d of size %d (shape %s), got (%d, %d)"
                             % (mode, limit, axis, n, x.shape, before, after))
        maps.append((axis, _pad_index(mode, n, before, after)))
    return PadByIndex.apply(x, tuple(maps))


@register("one_hot", differentiable=False)
def one_hot(labels, num_classes=None, dtype=np.int64):
    """[..] integer labels -> [.., num_classes] one-hot rows (not differentiable).

    int64 as in PyTorch, unless dtype says otherwise (dtype=np.float32 for a float target).
    num_classes None or -1 (PyTorch's default) means max(labels) + 1."""
    data = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if data.dtype.kind not in "iu":
        raise TypeError("one_hot: got labels of dtype %s, expected integers" % data.dtype)
    if num_classes is None or (not isinstance(num_classes, (bool, np.bool_)) and num_classes == -1):
        num_classes = int(data.max()) + 1 if data.size else 0
    num_classes = is_int("one_hot", "num_classes", num_classes)
    if num_classes < 0:
        raise ValueError("one_hot: got num_classes=%d, expected a count >= 0 (or -1: max label + 1)"
                         % num_classes)
    if data.size and (data.min() < 0 or data.max() >= num_classes):
        raise ValueError("one_hot: labels must lie in [0, %d), got min %d and max %d"
                         % (num_classes, data.min(), data.max()))
    return Tensor(np.eye(num_classes, dtype=dtype)[data])
