"""Pooling as differentiable ops, channels-last: [n, l, c] (1-D), [n, h, w, c] (2-D),
[n, d, h, w, c] (3-D). The 2-D max and average pools of the seed CNN run on the C kernels
(csrc/pool.c) whenever their arguments allow it (max: no dilation; average: no
ceil_mode or divisor_override); every other variant runs on the vectorised numpy of
kernels/sampling.py.

Indices (return_indices, max_unpool) follow torch: the flat index of the maximum inside
its own plane (one sample, one channel), h * W + w in 2-D, d * H * W + h * W + w in 3-D,
in an int64 tensor of the output's channels-last shape."""
import numpy as np

from .. import kernels
from ..kernels import sampling
from ..function import Function
from ..grad_mode import is_grad_enabled
from ..registry import register
from ..tensor import Tensor
from ._util import accepts_unbatched


class MaxPool2d(Function):
    """y [n, out_h, out_w, c] = max over each window of x [n, h, w, c] (the C kernels);
    with return_indices, (y, indices) with each maximum's index in its own plane."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode=False, return_indices=False):
        y, argmax = kernels.max_pool2d_forward(x, kernel_size, stride, padding,
                                               with_argmax=return_indices or is_grad_enabled(),
                                               ceil_mode=ceil_mode)
        # the argmax is all backward needs: it routes each gradient to its winning cell
        # (none under no_grad, where no backward can run)
        ctx.save_for_backward(argmax)
        ctx.x_shape = x.shape
        if return_indices:
            # the kernels' flat index into x, as torch's index inside one plane
            channels, plane = x.shape[3], x.shape[1] * x.shape[2]
            return y, (argmax // channels) % plane
        return y

    @staticmethod
    def backward(ctx, grad, grad_indices=None):
        (argmax,) = ctx.saved_tensors
        # 4 inputs on the CNN's path, 6 with ceil_mode or return_indices
        return (kernels.max_pool2d_backward(grad, argmax, ctx.x_shape),) + (None,) * (len(ctx.needs_input_grad) - 1)

    @staticmethod
    def differentiable_backward(ctx, grad, grad_indices=None):
        # the routing is fixed by the forward: linear in grad, constant in x (0 second derivative)
        (argmax,) = ctx.saved_tensors
        grad_x = RouteToCells.apply(grad, argmax, ctx.x_shape, kernels.max_pool2d_backward)
        return (grad_x,) + (None,) * (len(ctx.needs_input_grad) - 1)


class AvgPool2d(Function):
    """y [n, out_h, out_w, c] = mean over each window of x [n, h, w, c]."""

    linear = True  # a fixed average of cells; every other argument is structural

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, count_include_pad):
        ctx.x_shape = x.shape
        ctx.arguments = (kernel_size, stride, padding, count_include_pad)
        return kernels.avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad)

    @staticmethod
    def backward(ctx, grad):
        grad_x = kernels.avg_pool2d_backward(grad, ctx.x_shape, *ctx.arguments)
        return grad_x, None, None, None, None


class MaxPoolWindows(Function):
    """(y [n, *out, c], indices) = max over windows given as one table per spatial dim
    (kernels/sampling.py); the gradient goes to each window's maximum."""

    @staticmethod
    def forward(ctx, x, tables):
        y, indices = sampling.max_pool_forward(x, tables)
        ctx.indices, ctx.x_shape = indices, x.shape
        return y, indices

    @staticmethod
    def backward(ctx, grad, grad_indices):
        return sampling.scatter_to_planes(grad, ctx.indices, ctx.x_shape), None

    @staticmethod
    def differentiable_backward(ctx, grad, grad_indices):
        # as MaxPool2d: the indices are constants, the gradient is routed linearly
        cells = _cells_in_planes(ctx.indices, ctx.x_shape)
        return RouteToCells.apply(grad, cells, ctx.x_shape, _add_at_cells), None


class Separable(Function):
    """y [n, *out, c] = x [n, *spatial, c] with a matrix [out, in] applied along each
    spatial dim (average pooling, adaptive average pooling, interpolation)."""

    linear = True  # constant matrices along each dim: linear in x

    @staticmethod
    def forward(ctx, x, matrices):
        ctx.matrices = matrices
        return sampling.apply_separable(x, matrices)

    @staticmethod
    def backward(ctx, grad):
        return sampling.transpose_separable(grad, ctx.matrices), None


class MaxUnpool(Function):
    """y [n, *out, c]: zeros, with each x value written at the in-plane cell its index
    names; the gradient reads grad_y back at those cells."""

    # linear in x (the indices are an integer array, kept as they are): the derivative
    # of its backward (a gather) is the forward (the put)
    linear = True

    @staticmethod
    def forward(ctx, x, indices, out_spatial):
        n, channels = x.shape[0], x.shape[-1]
        y = np.zeros((n, int(np.prod(out_spatial)), channels), dtype=x.dtype)
        flat = indices.reshape(n, -1, channels).astype(np.int64, copy=False)
        np.put_along_axis(y, flat, x.reshape(n, -1, channels), axis=1)
        ctx.flat, ctx.x_shape = flat, x.shape
        return y.reshape((n,) + tuple(out_spatial) + (channels,))

    @staticmethod
    def backward(ctx, grad):
        n, channels = grad.shape[0], grad.shape[-1]
        picked = np.take_along_axis(grad.reshape(n, -1, channels), ctx.flat, axis=1)
        return picked.reshape(ctx.x_shape), None, None


class RouteToCells(Function):
    """A max pool's backward as an op: grad_x [x_shape] = grad_y added at the cells of x
    (flat indices into the whole of x, an int64 array of grad_y's shape) the forward's
    maxima came from, by route(grad_y, cells, x_shape), the first-order path's own
    scatter. It is linear in grad_y, so its gradient is a gather of the cells and the
    gather's gradient this scatter again (linear = True): every order reuses the kernel."""

    name = "max pool routing"
    linear = True

    @staticmethod
    def forward(ctx, grad, cells, x_shape, route):
        ctx.cells = cells
        return route(np.ascontiguousarray(grad), cells, x_shape)

    @staticmethod
    def backward(ctx, grad_x):
        return np.take(grad_x.reshape(-1), ctx.cells), None, None, None


def _cells_in_planes(indices, x_shape):
    """In-plane indices (sampling.max_pool_forward's) as flat indices into x [x_shape]."""
    n, channels = x_shape[0], x_shape[-1]
    plane = int(np.prod(x_shape[1:-1]))
    batch = np.arange(n).reshape((-1,) + (1,) * (indices.ndim - 1))
    return (batch * plane + indices) * channels + np.arange(channels)


def _add_at_cells(grad, cells, x_shape):
    """grad added into zeros [x_shape] at the flat cells (repeats accumulate)."""
    summed = np.bincount(cells.ravel(), weights=grad.ravel().astype(np.float64), minlength=int(np.prod(x_shape)))
    return summed.astype(grad.dtype, copy=False).reshape(x_shape)


def _input(op, x, dims):
    data = x.data if isinstance(x, Tensor) else None
    if data is None:
        raise TypeError("%s: got input of type %s, expected a Tensor" % (op, type(x).__name__))
    sampling.check_input(op, data, dims)
    return data


def _max_pool(op, x, dims, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    data = _input(op, x, dims)
    geometry = sampling.Geometry(op, data.shape[1:-1], kernel_size, stride, padding, dilation, ceil_mode)
    values, indices = MaxPoolWindows.apply(x, tuple(geometry.table(a) for a in range(dims)))
    return (values, indices) if return_indices else values


def _avg_pool(op, x, dims, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    data = _input(op, x, dims)
    geometry = sampling.Geometry(op, data.shape[1:-1], kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not sampling.is_integer(divisor_override) or divisor_override == 0):
        raise ValueError("%s: got divisor_override=%r, expected a non-zero int or None" % (op, divisor_override))
    return Separable.apply(x, sampling.avg_pool_matrices(geometry, count_include_pad, divisor_override))


def _torch_padding_check(op, kernel_size, padding):
    """torch refuses a symmetric pad over half the kernel (checked only where padding is
    given, so the CNN's unpadded pools pay one comparison)."""
    if sampling.is_integer(padding) or (isinstance(padding, (tuple, list)) and len(padding) == 2
                                        and all(sampling.is_integer(p) for p in padding)):
        kernel = sampling.per_dim(op, "kernel_size", kernel_size, 2, 1)
        pads = sampling.per_dim(op, "padding", padding, 2, 0)
        if any(2 * p > k for p, k in zip(pads, kernel)):
            raise ValueError("%s: got padding %r with kernel_size %r, expected each pad at most half the kernel "
                             "(as torch)" % (op, padding, kernel_size))


@register("max_pool2d")
@accepts_unbatched(2)
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling over NHWC x [batch, height, width, channels].

    kernel_size, stride, dilation: int or (h, w); stride defaults to kernel_size.
    padding: int or (pad_h, pad_w) (torch's: at most half the kernel), per side
    ((top, bottom), (left, right)), 'valid' or 'same'. Padded cells never win; ties go
    to the first maximum in row-major window order. ceil_mode rounds the output size up
    (the last window must start inside the input or its left pad, as torch).
    Returns y [batch, out_height, out_width, channels], or (y, indices) with
    return_indices: int64 of y's shape, each maximum's flat index h * width + w in its
    own plane (torch's convention, read through the channels-last layout).
    """
    if dilation == 1 or dilation == (1, 1):
        if padding and not isinstance(padding, str):
            _torch_padding_check("max_pool2d", kernel_size, padding)
        if ceil_mode or return_indices:
            return MaxPool2d.apply(x, kernel_size, stride, padding, bool(ceil_mode), bool(return_indices))
        return MaxPool2d.apply(x, kernel_size, stride, padding)  # the C kernels
    if isinstance(padding, str):
        padding = _resolved_padding("max_pool2d", x, kernel_size, stride, padding)
    return _max_pool("max_pool2d", x, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _resolved_padding(op, x, kernel_size, stride, padding):
    """'valid' and 'same' as the C path reads them (kernels/windows.py), per side."""
    data = _input(op, x, 2)
    kernel = sampling.per_dim(op, "kernel_size", kernel_size, 2, 1)
    strides = kernel if stride is None else sampling.per_dim(op, "stride", stride, 2, 1)
    return kernels.resolve_padding(padding, data.shape[1:3], kernel, strides, op)


@register("avg_pool2d")
@accepts_unbatched(2)
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling over NHWC x [batch, height, width, channels].

    Arguments as max_pool2d. Padded cells add zero to the sum; count_include_pad (True,
    as in PyTorch) also counts them in the divisor; divisor_override replaces the
    divisor. Positional order as torch's (ceil_mode before count_include_pad; before
    this release count_include_pad was the fifth argument). Returns [batch, out_height, out_width, channels].
    """
    if not ceil_mode and divisor_override is None:
        if padding and not isinstance(padding, str):
            _torch_padding_check("avg_pool2d", kernel_size, padding)
        return AvgPool2d.apply(x, kernel_size, stride, padding, count_include_pad)  # the C kernels
    if isinstance(padding, str):
        padding = _resolved_padding("avg_pool2d", x, kernel_size, stride, padding)
    return _avg_pool("avg_pool2d", x, 2, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


@register("max_pool1d")
@accepts_unbatched(1)
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-D max pooling over input [batch, length, channels] (channels last). Arguments as
    max_pool2d with ints (padding may also be a (before, after) pair). Returns
    [batch, out_length, channels], or (values, indices) with return_indices (indices:
    the position of each maximum along the length)."""
    return _max_pool("max_pool1d", input, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@register("max_pool3d")
@accepts_unbatched(3)
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-D max pooling over input [batch, depth, height, width, channels]. Arguments as
    max_pool2d with triples. Returns [batch, out_d, out_h, out_w, channels], or (values,
    indices): d * H * W + h * W + w of each maximum in its own plane."""
    return _max_pool("max_pool3d", input, 3, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@register("avg_pool1d")
@accepts_unbatched(1)
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-D average pooling over input [batch, length, channels], torch's arguments and
    divisor rules (see avg_pool2d). Returns [batch, out_length, channels]."""
    return _avg_pool("avg_pool1d", input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


@register("avg_pool3d")
@accepts_unbatched(3)
def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3-D average pooling over input [batch, depth, height, width, channels], torch's
    arguments. Returns [batch, out_d, out_h, out_w, channels]."""
    return _avg_pool("avg_pool3d", input, 3, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _adaptive_sizes(op, data, output_size, dims):
    """The output sizes, None meaning the input's size along that dim (as torch)."""
    sizes = (output_size,) * dims if output_size is None or sampling.is_integer(output_size) else tuple(output_size)
    if len(sizes) != dims:
        raise TypeError("%s: got output_size=%r, expected an int or %d values" % (op, output_size, dims))
    sizes = tuple(data.shape[1 + a] if s is None else s for a, s in enumerate(sizes))
    return sampling.check_output_size(op, sizes, dims)


def _adaptive_avg(op, input, output_size, dims):
    data = _input(op, input, dims)
    sizes = _adaptive_sizes(op, data, output_size, dims)
    return Separable.apply(input, [sampling.adaptive_avg_matrix(data.shape[1 + a], sizes[a]) for a in range(dims)])


def _adaptive_max(op, input, output_size, dims, return_indices):
    data = _input(op, input, dims)
    sizes = _adaptive_sizes(op, data, output_size, dims)
    tables = tuple(sampling.adaptive_table(data.shape[1 + a], sizes[a]) for a in range(dims))
    values, indices = MaxPoolWindows.apply(input, tables)
    return (values, indices) if return_indices else values


@register("adaptive_avg_pool1d")
@accepts_unbatched(1)
def adaptive_avg_pool1d(input, output_size):
    """Mean over torch's adaptive windows (output o covers [floor(o L / out),
    ceil((o + 1) L / out))) of input [batch, length, channels] -> [batch, output_size,
    channels]."""
    return _adaptive_avg("adaptive_avg_pool1d", input, output_size, 1)


@register("adaptive_avg_pool2d")
@accepts_unbatched(2)
def adaptive_avg_pool2d(input, output_size):
    """Adaptive mean pooling of input [batch, h, w, channels] -> [batch, out_h, out_w,
    channels]; output_size an int or (out_h, out_w), None keeping that size."""
    return _adaptive_avg("adaptive_avg_pool2d", input, output_size, 2)


@register("adaptive_avg_pool3d")
@accepts_unbatched(3)
def adaptive_avg_pool3d(input, output_size):
    """Adaptive mean pooling of input [batch, d, h, w, channels] -> [batch, *output_size,
    channels]."""
    return _adaptive_avg("adaptive_avg_pool3d", input, output_size, 3)


@register("adaptive_max_pool1d")
@accepts_unbatched(1)
def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max over torch's adaptive windows of input [batch, length, channels] ->
    [batch, output_size, channels], or (values, indices) with return_indices."""
    return _adaptive_max("adaptive_max_pool1d", input, output_size, 1, return_indices)


@register("adaptive_max_pool2d")
@accepts_unbatched(2)
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive max pooling of input [batch, h, w, channels] -> [batch, out_h, out_w,
    channels], or (values, indices: h * w_in + w in each plane) with return_indices."""
    return _adaptive_max("adaptive_max_pool2d", input, output_size, 2, return_indices)


@register("adaptive_max_pool3d")
@accepts_unbatched(3)
def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Adaptive max pooling of input [batch, d, h, w, channels] -> [batch, *output_size,
    channels], or (values, indices) with return_indices."""
    return _adaptive_max("adaptive_max_pool3d", input, output_size, 3, return_indices)


def _max_unpool(op, input, indices, dims, kernel_size, stride, padding, output_size):
    data = _input(op, input, dims)
    index_data = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if index_data.shape != data.shape:
        raise ValueError("%s: got indices of shape %s for input of shape %s, expected the same shape"
                         % (op, index_data.shape, data.shape))
    kernel = sampling.per_dim(op, "kernel_size", kernel_size, dims, 1)
    strides = kernel if stride is None else sampling.per_dim(op, "stride", stride, dims, 1)
    pads, _ = sampling.per_side_padding(op, padding, dims)
    default = tuple((size - 1) * s - before - after + k
                    for size, s, (before, after), k in zip(data.shape[1:-1], strides, pads, kernel))
    if output_size is None:
        sizes = default
    else:
        sizes = tuple(output_size)
        if len(sizes) == dims + 2:  # a whole channels-last shape
            sizes = sizes[1:-1]
        sizes = sampling.check_output_size(op, sizes, dims)
        for size, d, s in zip(sizes, default, strides):
            if not d - s < size < d + s:
                raise ValueError("%s: got output_size %s, expected each size within the stride of %s"
                                 % (op, sizes, default))
    if any(s < 1 for s in sizes):
        raise ValueError("%s: input %s with kernel %s, stride %s and padding %s gives output size %s, "
                         "expected >= 1" % (op, data.shape, kernel, strides, pads, sizes))
    sampling.check_indices(op, index_data, int(np.prod(sizes)))
    return MaxUnpool.apply(input, index_data, sizes)


@register("max_unpool1d")
def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of max_pool1d: input [batch, length, channels] and the indices
    max_pool1d returned -> [batch, out_length, channels], zero except where an index
    points; out_length = (length - 1) * stride - 2 * padding + kernel_size unless
    output_size says otherwise."""
    return _max_unpool("max_unpool1d", input, indices, 1, kernel_size, stride, padding, output_size)


@register("max_unpool2d")
def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of max_pool2d: input [batch, h, w, channels] and the indices
    max_pool2d(return_indices=True) returned (h * W + w in each plane) -> [batch, H, W,
    channels], zero except at those cells. (H, W) = (h - 1) * stride - 2 * padding +
    kernel_size per dim, or output_size ((H, W) or a whole [batch, H, W, channels])."""
    return _max_unpool("max_unpool2d", input, indices, 2, kernel_size, stride, padding, output_size)


@register("max_unpool3d")
def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of max_pool3d over input [batch, d, h, w, channels]; as
    max_unpool2d with triples."""
    return _max_unpool("max_unpool3d", input, indices, 3, kernel_size, stride, padding, output_size)
