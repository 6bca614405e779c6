"""Convolutions beyond the plain 2-D one: conv1d, conv3d, grouped (depthwise too) and
dilated convolutions, the transposed convolutions, and im2col / col2im (PyTorch's
``F.unfold`` / ``F.fold``), all channels-last.

Layouts (channels last, as everywhere in this project) and their PyTorch counterparts:

    op                  input             weight (ours)                    weight (PyTorch)
    conv1d              [N, L, C]         [k, c_in/groups, c_out]           [c_out, c_in/groups, k]
    conv2d              [N, H, W, C]      [kh, kw, c_in/groups, c_out]      [c_out, c_in/groups, kh, kw]
    conv3d              [N, D, H, W, C]   [kd, kh, kw, c_in/groups, c_out]  [c_out, c_in/groups, kd, kh, kw]
    conv_transpose1d    [N, L, C]         [k, c_out/groups, c_in]           [c_in, c_out/groups, k]
    conv_transpose2d    [N, H, W, C]      [kh, kw, c_out/groups, c_in]      [c_in, c_out/groups, kh, kw]
    conv_transpose3d    [N, D, H, W, C]   [kd, kh, kw, c_out/groups, c_in]  [c_in, c_out/groups, kd, kh, kw]

so one permutation maps every PyTorch conv weight to ours: the kernel axes first, then
PyTorch's axis 1, then its axis 0 (:func:`torch_conv_weight_to_ours`, inverse
:func:`ours_conv_weight_to_torch`; the tests and the torch-weight loader use them).
Images map by moving the channel axis: NCHW -> NHWC is ``permute(0, 2, 3, 1)``.
Each group's channels are a contiguous block, as in PyTorch: group j reads input
channels [j*c_in/groups, (j+1)*c_in/groups) and writes output channels
[j*c_out/groups, (j+1)*c_out/groups).

How the work is done (no new C: the existing kernel slices do the heavy part):

* A 1-D or 2-D convolution at dilation 1 runs the C conv2d kernels
  (kernels.conv2d_forward / _backward_input / _backward_weight; 1-D as height 1), once
  per group on the group's channel slices.
* Depthwise (one input channel per group) is one vectorised multiply-add per kernel
  position and channel multiplier: as grouped GEMMs it was 5x slower.
* Everything else (dilation, 3-D) is im2col + GEMM: the windows of the padded input as
  the rows of a matrix (a strided numpy view, copied once), times the weight as a
  [k*c_in/groups, c_out/groups] matrix per group, in one C call (kernels.gemm, or
  kernels.batched_gemm over the groups). The input gradient is that product's adjoint,
  col2im: one vectorised add per kernel position.
* A transposed convolution is the input gradient of the convolution it transposes;
  its backward is that convolution's forward (the input's gradient) and its weight
  gradient with the roles of input and output swapped.

Padding: an int, one int per spatial dim, one (before, after) pair per spatial dim,
'valid' or 'same' (the output keeps ceil(input / stride); an odd total padding puts the
extra cell after, which at stride 1 is PyTorch's rule; PyTorch allows 'same' only at
stride 1). The transposed convolutions take ints (PyTorch's meaning: the padding of the
convolution they transpose), as PyTorch does.
"""
import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import kernels
from ..function import Function
from ..kernels.runtime import FLOAT_DTYPES
from ..registry import register
from ._util import is_int

__all__ = ["torch_conv_weight_to_ours", "ours_conv_weight_to_torch", "conv1d", "conv3d",
           "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "im2col", "col2im"]


# ---- the layout mapping to PyTorch, once ---------------------------------------------------

def _permute(weight, axes):
    """weight with its axes permuted: numpy arrays by np.transpose, Tensors (ours or
    PyTorch's) by their permute method."""
    if isinstance(weight, np.ndarray):
        return np.transpose(weight, axes)
    return weight.permute(*axes)


def torch_conv_weight_to_ours(weight):
    """A PyTorch conv weight [c_out, c_in/groups, *kernel] (or a transposed conv's
    [c_in, c_out/groups, *kernel]) in this project's layout [*kernel, c_in/groups, c_out]
    ([*kernel, c_out/groups, c_in]). numpy arrays, our Tensors and torch tensors alike."""
    ndim = len(weight.shape)
    return _permute(weight, tuple(range(2, ndim)) + (1, 0))


def ours_conv_weight_to_torch(weight):
    """The inverse of :func:`torch_conv_weight_to_ours`: [*kernel, a, b] -> [b, a, *kernel]."""
    ndim = len(weight.shape)
    return _permute(weight, (ndim - 1, ndim - 2) + tuple(range(ndim - 2)))


# ---- argument resolution -------------------------------------------------------------------

def _per_dim(op, name, value, dims, minimum):
    """A tuple of dims ints >= minimum from an int or a sequence of dims ints."""
    values = (value,) * dims if not isinstance(value, (tuple, list)) else tuple(value)
    if len(values) != dims:
        raise ValueError("%s: got %s=%r, expected an int or %d ints" % (op, name, value, dims))
    values = tuple(is_int(op, name, v) for v in values)
    if any(v < minimum for v in values):
        raise ValueError("%s: got %s=%r, expected values >= %d" % (op, name, value, minimum))
    return values


def _padding(op, padding, dims, sizes, kernel, stride, dilation, strings=True):
    """((before, after), ...) per spatial dim from any accepted padding form."""
    if isinstance(padding, str):
        mode = padding.lower() if strings else None
        if mode == "valid":
            return ((0, 0),) * dims
        if mode == "same":
            pads = []
            for size, k, s, d in zip(sizes, kernel, stride, dilation):
                total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError("%s: got padding=%r, expected %s" % (
            op, padding, "'same', 'valid', an int, %d ints or %d (before, after) pairs" % (dims, dims)
            if strings else "an int or %d ints" % dims))
    if (isinstance(padding, (tuple, list)) and len(padding) == dims
            and all(isinstance(p, (tuple, list)) for p in padding)):
        return tuple(_per_dim(op, "padding", p, 2, 0) for p in padding)
    return tuple((p, p) for p in _per_dim(op, "padding", padding, dims, 0))


class Geometry:
    """A convolution's resolved geometry: spatial `dims`, `kernel`, `stride`, `dilation`,
    `pads` ((before, after) per dim), `groups`, the conv's input and output spatial sizes
    (`in_sizes`, `out_sizes`; for a transposed op, the sizes of the convolution it
    transposes: its output is `in_sizes`), `transposed`, and `unbatched` (the input
    came without its batch axis)."""

    __slots__ = ("op", "dims", "kernel", "stride", "dilation", "pads", "groups", "in_sizes", "out_sizes",
                 "transposed", "unbatched", "on_conv2d_kernels", "depthwise")

    def __init__(self, **fields):
        for name, value in fields.items():
            setattr(self, name, value)
        # which path runs it (set by _geometry): the C conv2d kernels, once per group, for
        # 1-D and 2-D at dilation 1; the depthwise numpy path; else im2col + GEMM
        self.on_conv2d_kernels = self.depthwise = False


def _geometry(op, x, weight, bias, dims, stride, padding, dilation, groups, transposed=False, output_padding=0):
    """Validate a convolution call's arguments (numpy arrays) and resolve its geometry."""
    if not isinstance(x, np.ndarray) or not isinstance(weight, np.ndarray):
        raise TypeError("%s: got input of type %s and weight of type %s, expected Tensors"
                        % (op, type(x).__name__, type(weight).__name__))
    if x.dtype not in FLOAT_DTYPES or weight.dtype != x.dtype:
        raise TypeError("%s: got input dtype %s and weight dtype %s, expected both float32 or both float64"
                        % (op, x.dtype, weight.dtype))
    spatial = ["L"], ["H", "W"], ["D", "H", "W"]
    layout = "[N, %s, C]" % ", ".join(spatial[dims - 1])
    if x.ndim not in (dims + 1, dims + 2):
        raise ValueError("%s: got input of shape %s, expected %s (or without N)" % (op, x.shape, layout))
    unbatched = x.ndim == dims + 1
    shape = (1,) + x.shape if unbatched else x.shape
    groups = is_int(op, "groups", groups)
    if groups < 1:
        raise ValueError("%s: got groups=%d, expected >= 1" % (op, groups))
    kernel_names = "[%s, %s]" % (", ".join("k" + s.lower() for s in spatial[dims - 1]) if dims > 1 else "k",
                                 "c_out/groups, c_in" if transposed else "c_in/groups, c_out")
    if weight.ndim != dims + 2 or any(s < 1 for s in weight.shape):
        raise ValueError("%s: got weight of shape %s, expected %s, every size >= 1" % (op, weight.shape, kernel_names))
    channels = shape[-1]
    if channels % groups:
        raise ValueError("%s: input has %d channels (shape %s), expected a multiple of groups=%d"
                         % (op, channels, x.shape, groups))
    kernel = weight.shape[:dims]
    if transposed:
        out_channels = weight.shape[-2] * groups
        if weight.shape[-1] != channels:
            raise ValueError("%s: got weight of shape %s for an input with %d channels, expected %s with c_in = %d"
                             % (op, weight.shape, channels, kernel_names, channels))
    else:
        out_channels = weight.shape[-1]
        if weight.shape[-2] != channels // groups or out_channels % groups:
            raise ValueError("%s: got weight of shape %s for an input with %d channels and groups=%d, expected %s "
                             "with c_in/groups = %d and c_out a multiple of %d"
                             % (op, weight.shape, channels, groups, kernel_names, channels // groups, groups))
    if bias is not None:
        if not isinstance(bias, np.ndarray) or bias.shape != (out_channels,):
            raise ValueError("%s: got bias of shape %s, expected (%d,) (one per output channel)"
                             % (op, np.shape(bias), out_channels))
        if bias.dtype != x.dtype:
            raise TypeError("%s: got bias dtype %s, expected %s like the input" % (op, bias.dtype, x.dtype))
    stride = _per_dim(op, "stride", stride, dims, 1)
    dilation = _per_dim(op, "dilation", dilation, dims, 1)
    sizes = shape[1:-1]
    pads = _padding(op, padding, dims, sizes, kernel, stride, dilation, strings=not transposed)
    if transposed:
        output_padding = _per_dim(op, "output_padding", output_padding, dims, 0)
        for p, s, d in zip(output_padding, stride, dilation):
            if p >= s and p >= d:
                raise ValueError("%s: got output_padding=%r with stride=%r and dilation=%r, expected each "
                                 "output_padding below its stride or its dilation" % (op, output_padding, stride,
                                                                                     dilation))
        out = tuple((size - 1) * s - sum(p) + d * (k - 1) + extra + 1 for size, s, p, d, k, extra
                    in zip(sizes, stride, pads, dilation, kernel, output_padding))
        if any(o < 1 for o in out):
            raise ValueError("%s: input %s with kernel %s, stride %s, padding %s, dilation %s and output_padding %s "
                             "gives output %s, expected at least 1 per dim (padding too big)"
                             % (op, sizes, kernel, stride, [p[0] for p in pads], dilation, output_padding, out))
        in_sizes, out_sizes = out, tuple(sizes)
    else:
        out = tuple((size + sum(p) - d * (k - 1) - 1) // s + 1
                    for size, s, p, d, k in zip(sizes, stride, pads, dilation, kernel))
        if any(o < 1 for o in out):
            raise ValueError("%s: input %s with kernel %s, stride %s, padding %s and dilation %s gives output %s, "
                             "expected at least 1 per dim" % (op, sizes, kernel, stride, pads, dilation, out))
        in_sizes, out_sizes = tuple(sizes), out
    geometry = Geometry(op=op, dims=dims, kernel=kernel, stride=stride, dilation=dilation, pads=pads, groups=groups,
                        in_sizes=in_sizes, out_sizes=out_sizes, transposed=transposed, unbatched=unbatched)
    geometry.depthwise = groups > 1 and weight.shape[-2] == 1  # the conv's input channels per group
    geometry.on_conv2d_kernels = dims <= 2 and not geometry.depthwise and all(d == 1 for d in dilation)
    return geometry


# ---- im2col / col2im over N spatial dims ---------------------------------------------------

def _windows(x, g):
    """Read-only view [n, *out_sizes, *kernel, c] of the (zero-padded) windows of
    x [n, *in_sizes, c]."""
    x = _pad(x, g)
    strides = x.strides
    shape = (x.shape[0],) + tuple(g.out_sizes) + tuple(g.kernel) + (x.shape[-1],)
    view_strides = ((strides[0],) + tuple(strides[1 + i] * g.stride[i] for i in range(g.dims))
                    + tuple(strides[1 + i] * g.dilation[i] for i in range(g.dims)) + (strides[-1],))
    return as_strided(x, shape, view_strides, writeable=False)


def _scatter_windows(grad_windows, x_shape, g):
    """Adjoint of _windows: grad_windows [n, *out_sizes, *kernel, c] summed back onto an
    array of x_shape [n, *in_sizes, c] (one vectorised add per kernel position)."""
    padded = np.zeros((x_shape[0],) + tuple(s + sum(p) for s, p in zip(x_shape[1:-1], g.pads)) + (x_shape[-1],),
                      dtype=grad_windows.dtype)
    lead = (slice(None),) * (1 + g.dims)
    for position in _positions(g):
        padded[_cells(position, g)] += grad_windows[lead + position]
    return _crop(padded, x_shape, g)


def _positions(g):
    """Every kernel position (a tuple of dims ints), in row-major order."""
    return itertools.product(*(range(k) for k in g.kernel))


def _cells(position, g):
    """Index of the padded-input cells kernel `position` reads, one per output cell."""
    return (slice(None),) + tuple(slice(k * d, k * d + (o - 1) * s + 1, s)
                                  for k, d, o, s in zip(position, g.dilation, g.out_sizes, g.stride))


def _pad(x, g):
    """x [n, *sizes, c] zero-padded by g.pads (x itself when they are all 0)."""
    if any(before or after for before, after in g.pads):
        return np.pad(x, ((0, 0),) + tuple(g.pads) + ((0, 0),))
    return x


def _crop(padded, x_shape, g):
    """The x_shape region of a padded array (undoes _pad), C-contiguous."""
    region = tuple(slice(p[0], p[0] + s) for p, s in zip(g.pads, x_shape[1:-1]))
    return np.ascontiguousarray(padded[(slice(None),) + region])


# ---- depthwise (one input channel per group): shifted slices times the weight -------------------
# im2col + batched GEMM would run groups products of [rows, k] @ [k, c_out/groups], which the
# GEMM kernel serves badly (measured 436 ms fwd+bwd for a 3x3 depthwise conv on
# [32, 28, 28, 32] float32, against 46 ms for the dense 32 -> 32 conv in C); one vectorised
# multiply-add per kernel position and multiplier took 71-80 ms (and 121 ms at multiplier 2,
# against 440 ms with einsum over [..., groups, multiplier]).

def _by_multiplier(array, g):
    """[..., groups * m] (group-major channels) as a C-contiguous [m, ..., groups]: each
    slice [t] is every group's t-th channel, contiguous over the groups."""
    multiplier = array.shape[-1] // g.groups
    split = array.reshape(array.shape[:-1] + (g.groups, multiplier))
    return np.ascontiguousarray(np.moveaxis(split, -1, 0))


def _depthwise_forward(x, weight, g):
    padded, multiplier = _pad(x, g), weight.shape[-1] // g.groups
    weights = _by_multiplier(weight, g)  # [m, *kernel, 1, groups]
    y = np.zeros((multiplier, x.shape[0]) + tuple(g.out_sizes) + (g.groups,), dtype=x.dtype)
    for position in _positions(g):
        patch = padded[_cells(position, g)]
        for t in range(multiplier):
            y[t] += patch * weights[t][position][0]
    return np.moveaxis(y, 0, -1).reshape(y.shape[1:-1] + (weight.shape[-1],))


def _depthwise_input_grad(grad, weight, x_shape, g):
    multiplier = weight.shape[-1] // g.groups
    grads, weights = _by_multiplier(grad, g), _by_multiplier(weight, g)
    padded = np.zeros((x_shape[0],) + tuple(s + sum(p) for s, p in zip(x_shape[1:-1], g.pads)) + (x_shape[-1],),
                      dtype=grad.dtype)
    for position in _positions(g):
        cells = padded[_cells(position, g)]  # a view: += writes through
        for t in range(multiplier):
            cells += grads[t] * weights[t][position][0]
    return _crop(padded, x_shape, g)


def _depthwise_weight_grad(x, grad, weight_shape, g):
    padded, multiplier = _pad(x, g), weight_shape[-1] // g.groups
    grads = _by_multiplier(grad, g).reshape(multiplier, -1, g.groups)
    grad_weight = np.empty((multiplier,) + tuple(weight_shape[:-1]) + (g.groups,), dtype=x.dtype)
    for position in _positions(g):
        patch = padded[_cells(position, g)].reshape(-1, g.groups)
        for t in range(multiplier):
            grad_weight[t][position][0] = np.einsum("rg,rg->g", patch, grads[t])
    return np.moveaxis(grad_weight, 0, -1).reshape(weight_shape)


def _columns(x, g):
    """im2col: [groups, rows, k*c/groups] (rows = n * prod(out_sizes)), each row one
    window in (kernel..., channel) order, a C-contiguous copy."""
    view = _windows(x, g)
    rows, positions = view.shape[0] * math.prod(g.out_sizes), math.prod(g.kernel)
    if g.groups == 1:
        return view.reshape(1, rows, positions * x.shape[-1])
    per_group = x.shape[-1] // g.groups
    return np.ascontiguousarray(view.reshape(rows, positions, g.groups, per_group).transpose(2, 0, 1, 3)
                                ).reshape(g.groups, rows, positions * per_group)


def _weight_matrices(weight, g):
    """weight [*kernel, c_in/groups, c_out] as [groups, k*c_in/groups, c_out/groups]."""
    positions, per_group, out_channels = math.prod(g.kernel), weight.shape[-2], weight.shape[-1]
    if g.groups == 1:
        return weight.reshape(1, positions * per_group, out_channels)
    return weight.reshape(positions, per_group, g.groups, out_channels // g.groups).transpose(2, 0, 1, 3).reshape(
        g.groups, positions * per_group, out_channels // g.groups)


def _product(a, b, trans_a=False, trans_b=False):
    """op(a[i]) @ op(b[i]) over the group axis: kernels.gemm for one group (the common
    case, and the faster call), kernels.batched_gemm for several."""
    if a.shape[0] == 1:
        return kernels.gemm(a[0], b[0], trans_a, trans_b)[None]
    return kernels.batched_gemm(a, b, trans_a, trans_b)


def _merge_groups(product, leading):
    """[groups, rows, m] -> [*leading, groups * m] (group-major channels)."""
    groups, _, m = product.shape
    if groups == 1:
        return product.reshape(tuple(leading) + (m,))
    return product.transpose(1, 0, 2).reshape(tuple(leading) + (groups * m,))


def _split_groups(array, groups):
    """[..., groups * m] -> [groups, rows, m] (a view where numpy can)."""
    m = array.shape[-1] // groups
    flat = array.reshape(-1, groups, m)
    return flat.transpose(1, 0, 2)


# ---- the C conv2d kernels, once per group (1-D problems as height 1) ----------------------------

def _kernel_args(g):
    """(stride, padding) for the C conv2d kernels."""
    return (g.stride, g.pads) if g.dims == 2 else ((1,) + g.stride, ((0, 0),) + g.pads)


def _image(array, g):
    """[n, L, c] as [n, 1, L, c] for a 1-D problem; 2-D arrays as they are."""
    return array if g.dims == 2 else array[:, None]


def _group(array, j, width):
    """Group j's channels of array: the slice [j*width, (j+1)*width) of its last axis."""
    return array[..., j * width:(j + 1) * width]


def _join(parts):
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)


def conv_forward(x, weight, g):
    """Convolution y [n, *out_sizes, c_out] of x [n, *in_sizes, c_in] with weight
    [*kernel, c_in/groups, c_out] for the batched geometry g."""
    if g.on_conv2d_kernels:
        stride, padding = _kernel_args(g)
        image, kernel = _image(x, g), weight if g.dims == 2 else weight[None]
        per_group, multiplier = weight.shape[-2], weight.shape[-1] // g.groups
        y = _join([kernels.conv2d_forward(_group(image, j, per_group), _group(kernel, j, multiplier), stride, padding)
                   for j in range(g.groups)])
        return y if g.dims == 2 else y[:, 0]
    if g.depthwise:
        return _depthwise_forward(x, weight, g)
    product = _product(_columns(x, g), _weight_matrices(weight, g))
    return _merge_groups(product, (x.shape[0],) + tuple(g.out_sizes))


def conv_input_grad(grad, weight, x_shape, g):
    """Gradient w.r.t. the input x [x_shape] of conv_forward, given the output's gradient
    grad [n, *out_sizes, c_out] (col2im of grad @ W^T)."""
    if g.on_conv2d_kernels:
        stride, padding = _kernel_args(g)
        image_grad, kernel = _image(grad, g), weight if g.dims == 2 else weight[None]
        per_group, multiplier = weight.shape[-2], weight.shape[-1] // g.groups
        shape = tuple(x_shape[:-1]) + (per_group,)
        shape = shape if g.dims == 2 else (shape[0], 1) + shape[1:]
        grad_x = _join([kernels.conv2d_backward_input(_group(image_grad, j, multiplier), _group(kernel, j, multiplier),
                                                      shape, stride, padding) for j in range(g.groups)])
        return grad_x if g.dims == 2 else grad_x[:, 0]
    if g.depthwise:
        return _depthwise_input_grad(grad, weight, x_shape, g)
    columns = _product(_split_groups(grad, g.groups), _weight_matrices(weight, g), trans_b=True)
    positions, per_group = math.prod(g.kernel), x_shape[-1] // g.groups
    windows = columns.reshape(g.groups, -1, positions, per_group).transpose(1, 2, 0, 3).reshape(
        (x_shape[0],) + tuple(g.out_sizes) + tuple(g.kernel) + (x_shape[-1],))
    return _scatter_windows(windows, x_shape, g)


def conv_weight_grad(x, grad, weight_shape, g):
    """Gradient w.r.t. the weight [weight_shape] of conv_forward(x, weight, g), given the
    output's gradient grad (im2col(x)^T @ grad)."""
    if g.on_conv2d_kernels:
        stride, padding = _kernel_args(g)
        image, image_grad = _image(x, g), _image(grad, g)
        per_group, multiplier = weight_shape[-2], weight_shape[-1] // g.groups
        shape = tuple(weight_shape[:-1]) + (multiplier,)
        shape = shape if g.dims == 2 else (1,) + shape
        grad_weight = _join([kernels.conv2d_backward_weight(_group(image, j, per_group),
                                                            _group(image_grad, j, multiplier), shape, stride, padding)
                             for j in range(g.groups)])
        return grad_weight if g.dims == 2 else grad_weight[0]
    if g.depthwise:
        return _depthwise_weight_grad(x, grad, weight_shape, g)
    product = _product(_columns(x, g), _split_groups(grad, g.groups), trans_a=True)  # [groups, k*c/groups, m]
    if g.groups == 1:
        return product.reshape(weight_shape)
    positions, per_group = math.prod(g.kernel), weight_shape[-2]
    return product.reshape(g.groups, positions, per_group, -1).transpose(1, 2, 0, 3).reshape(weight_shape)


# ---- higher-order gradients: the three bilinear maps as ops -----------------------------------
# A convolution's forward F(x, w), its input gradient I(y, w) and its weight gradient
# W(x, y) are the three partial maps of one trilinear form <y, F(x, w)> = <I(y, w), x> =
# <W(x, y), w>. So each one's derivatives are the other two, and a gradient taken with
# create_graph=True is built from ConvPart nodes that call the same C / GEMM code as the
# first-order path, at every order.

CONV, INPUT_GRAD, WEIGHT_GRAD = 0, 1, 2

# part -> ((part giving the first operand's gradient, its operands), (the same for the
# second operand)); operands named "a", "b" (the part's own operands) and "g" (the
# gradient of its output). From the trilinear form: for F(x, w) with cotangent c,
# x gets I(c, w) and w gets W(x, c); for I(y, w) (x-shaped), y gets F(c, w) and w gets
# W(c, y); for W(x, y) (w-shaped), x gets I(y, c) and y gets F(x, c).
_ADJOINTS = (((INPUT_GRAD, "gb"), (WEIGHT_GRAD, "ag")),
             ((CONV, "gb"), (WEIGHT_GRAD, "ga")),
             ((INPUT_GRAD, "bg"), (CONV, "ag")))


def conv_adjoints(part, a, b, grad, needs, run):
    """The gradients of part(a, b) w.r.t. a and b (None where needs says no), given its
    output's gradient grad; run(part, first, second) evaluates a part (on arrays or, as
    ConvPart.apply, on Tensors)."""
    operands = {"a": a, "b": b, "g": grad}
    return tuple(run(other, operands[names[0]], operands[names[1]]) if need else None
                 for (other, names), need in zip(_ADJOINTS[part], needs))


def geometry_maps(g, x_shape, weight_shape):
    """The three maps (F, I, W) of the batched convolution g whose input is x_shape and
    weight weight_shape, on arrays (the im2col / C-kernel code the op itself runs)."""
    return (lambda x, weight: conv_forward(x, weight, g),
            lambda grad, weight: conv_input_grad(grad, weight, x_shape, g),
            lambda x, grad: conv_weight_grad(x, grad, weight_shape, g))


class ConvPart(Function):
    """One of a convolution's bilinear maps (CONV, INPUT_GRAD or WEIGHT_GRAD, see
    _ADJOINTS) as an op: maps are the convolution's three functions of two arrays, a
    and b its two operands (Tensors). The nodes that create_graph=True makes for a
    convolution's gradients; their own gradients are ConvPart nodes again."""

    name = "convolution gradient"

    @staticmethod
    def forward(ctx, a, b, part, maps):
        ctx.save_for_backward(a, b)
        return maps[part](np.ascontiguousarray(a), np.ascontiguousarray(b))

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        part, maps = ctx.inputs[2], ctx.inputs[3]
        grad = np.ascontiguousarray(grad)
        run = lambda other, first, second: maps[other](np.ascontiguousarray(first), np.ascontiguousarray(second))
        return conv_adjoints(part, a, b, grad, ctx.needs_input_grad[:2], run) + (None, None)

    @staticmethod
    def differentiable_backward(ctx, grad):
        a, b, part, maps = ctx.inputs
        run = lambda other, first, second: ConvPart.apply(first, second, other, maps)
        return conv_adjoints(part, a, b, grad, ctx.needs_input_grad[:2], run) + (None, None)


# ---- the op ---------------------------------------------------------------------------------

class Convolution(Function):
    """y = conv(x, weight) + bias (or the transposed convolution), channels-last, for the
    resolved Geometry (see the module docstring for the layouts)."""

    @staticmethod
    def forward(ctx, x, weight, bias, op, dims, stride, padding, dilation, groups, transposed=False,
                output_padding=0):
        g = _geometry(op, x, weight, bias, dims, stride, padding, dilation, groups, transposed, output_padding)
        batched = x[None] if g.unbatched else x
        if g.transposed:
            out_shape = (batched.shape[0],) + tuple(g.in_sizes) + (weight.shape[-2] * g.groups,)
            y = conv_input_grad(batched, weight, out_shape, g)
        else:
            y = conv_forward(batched, weight, g)
        if bias is not None:
            y = y + bias
        ctx.save_for_backward(x, weight)
        ctx.geometry = g
        return y[0] if g.unbatched else y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        if ctx.geometry.unbatched:
            x, grad = x[None], grad[None]
        return Convolution._gradients(ctx, x, weight, np.ascontiguousarray(grad), None)

    @staticmethod
    def differentiable_backward(ctx, grad):
        """backward's gradients as ConvPart nodes, on the same code (see _ADJOINTS)."""
        x, weight = ctx.inputs[:2]
        if ctx.geometry.unbatched:
            x, grad = x.unsqueeze(0), grad.unsqueeze(0)
        return Convolution._gradients(ctx, x, weight, grad, ConvPart.apply)

    @staticmethod
    def _gradients(ctx, x, weight, grad, apply):
        """The input, weight and bias gradients from batched x and grad (arrays, or
        Tensors with apply = ConvPart.apply): a convolution is CONV(x, w), a transposed
        one INPUT_GRAD(x, w) of the convolution it transposes (y = A^T x for the conv A),
        and their gradients are the other two maps (conv_adjoints)."""
        g = ctx.geometry
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        if g.transposed:  # the convolution's input is this op's output
            conv_x_shape = (x.shape[0],) + tuple(g.in_sizes) + (weight.shape[-2] * g.groups,)
        else:
            conv_x_shape = x.shape
        maps = geometry_maps(g, conv_x_shape, weight.shape)
        if apply is None:
            run = lambda part, first, second: maps[part](first, second)
        else:
            run = lambda part, first, second: apply(first, second, part, maps)
        grad_x, grad_weight = conv_adjoints(INPUT_GRAD if g.transposed else CONV, x, weight, grad,
                                            (needs_x, needs_weight), run)
        grad_bias = grad.reshape(-1, grad.shape[-1]).sum(axis=0) if needs_bias else None
        if g.unbatched and grad_x is not None:
            grad_x = grad_x[0]
        return (grad_x, grad_weight, grad_bias) + (None,) * (len(ctx.inputs) - 3)



def _conv(op, dims):
    def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if len(weight.shape) != dims + 2:
            raise ValueError("%s: got weight of shape %s, expected %d dims" % (op, tuple(weight.shape), dims + 2))
        return Convolution.apply(x, weight, bias, op, dims, stride, padding, dilation, groups)
    return conv


def _conv_transpose(op, dims):
    def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        if len(weight.shape) != dims + 2:
            raise ValueError("%s: got weight of shape %s, expected %d dims" % (op, tuple(weight.shape), dims + 2))
        return Convolution.apply(x, weight, bias, op, dims, stride, padding, dilation, groups, True, output_padding)
    return conv_transpose


def _named(function, name, doc):
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return function


conv1d = register("conv1d")(_named(_conv("conv1d", 1), "conv1d", """1-D convolution (cross-correlation), channels-last,
    with PyTorch's arguments: x [N, L, c_in] (or [L, c_in]), weight [k, c_in/groups, c_out],
    bias [c_out] or None; stride, dilation: int or (int,); padding: int, (int,),
    ((before, after),), 'valid' or 'same'; groups divides c_in and c_out. Returns
    [N, out_L, c_out], out_L = (L + pads - dilation*(k-1) - 1) // stride + 1."""))

conv3d = register("conv3d")(_named(_conv("conv3d", 3), "conv3d", """3-D convolution (cross-correlation), channels-last,
    with PyTorch's arguments: x [N, D, H, W, c_in] (or without N), weight
    [kd, kh, kw, c_in/groups, c_out], bias [c_out] or None; stride, dilation: int or 3
    ints; padding: int, 3 ints, 3 (before, after) pairs, 'valid' or 'same'; groups
    divides c_in and c_out. Returns [N, out_D, out_H, out_W, c_out]."""))

conv_transpose1d = register("conv_transpose1d")(_named(
    _conv_transpose("conv_transpose1d", 1), "conv_transpose1d",
    """1-D transposed convolution (the gradient of conv1d w.r.t. its input), channels-last,
    with PyTorch's arguments and order: x [N, L, c_in] (or [L, c_in]), weight
    [k, c_out/groups, c_in], bias [c_out] or None; stride, padding, output_padding,
    dilation: int or (int,); output_padding below stride or dilation. Returns
    [N, out_L, c_out], out_L = (L - 1)*stride - 2*padding + dilation*(k-1) + output_padding + 1."""))

conv_transpose2d = register("conv_transpose2d")(_named(
    _conv_transpose("conv_transpose2d", 2), "conv_transpose2d",
    """2-D transposed convolution (the gradient of conv2d w.r.t. its input), channels-last,
    with PyTorch's arguments and order: x [N, H, W, c_in] (or [H, W, c_in]), weight
    [kh, kw, c_out/groups, c_in], bias [c_out] or None; stride, padding, output_padding,
    dilation: int or 2 ints; output_padding below stride or dilation per dim. Returns
    [N, out_H, out_W, c_out], out = (in - 1)*stride - 2*padding + dilation*(k-1) + output_padding + 1."""))

conv_transpose3d = register("conv_transpose3d")(_named(
    _conv_transpose("conv_transpose3d", 3), "conv_transpose3d",
    """3-D transposed convolution, channels-last, as conv_transpose2d with a depth axis:
    x [N, D, H, W, c_in] (or without N), weight [kd, kh, kw, c_out/groups, c_in] ->
    [N, out_D, out_H, out_W, c_out]."""))


# ---- im2col / col2im (PyTorch's F.unfold / F.fold, channels-last) ------------------------------

def _window_geometry(op, image_shape, kernel_size, dilation, padding, stride):
    """The Geometry of the windows of an image [n, h, w, c] (groups 1, 2 spatial dims)."""
    kernel = _per_dim(op, "kernel_size", kernel_size, 2, 1)
    stride = _per_dim(op, "stride", stride, 2, 1)
    dilation = _per_dim(op, "dilation", dilation, 2, 1)
    pads = _padding(op, padding, 2, image_shape[1:3], kernel, stride, dilation, strings=False)
    out = tuple((size + sum(p) - d * (k - 1) - 1) // s + 1
                for size, s, p, d, k in zip(image_shape[1:3], stride, pads, dilation, kernel))
    if any(o < 1 for o in out):
        raise ValueError("%s: image %s with kernel_size %s, stride %s, padding %s and dilation %s has %s windows, "
                         "expected at least 1 per dim" % (op, tuple(image_shape[1:3]), kernel, stride,
                                                         [p[0] for p in pads], dilation, out))
    return Geometry(op=op, dims=2, kernel=kernel, stride=stride, dilation=dilation, pads=pads, groups=1,
                    in_sizes=tuple(image_shape[1:3]), out_sizes=out, transposed=False, unbatched=False)


def _check_image(op, name, array, ndim, layout):
    if not isinstance(array, np.ndarray) or array.ndim != ndim:
        raise ValueError("%s: got %s of shape %s, expected %s" % (op, name, np.shape(array), layout))
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError("%s: got %s dtype %s, expected float32 or float64" % (op, name, array.dtype))


class Im2col(Function):
    """PyTorch's F.unfold, channels-last: the sliding windows of x [N, H, W, C] as rows,
    [N, L, kh*kw*C] with L = out_h*out_w windows in row-major order and each row in
    (kh, kw, C) order (the order of conv weights, so that conv2d(x, w) equals
    im2col(x) @ w.reshape(-1, c_out)). kernel_size, dilation, padding (zeros), stride:
    int or pair, PyTorch's argument order. (``Tensor.unfold`` / ``autograd_core.unfold``
    is PyTorch's other unfold, windows along one dim.)"""

    linear = True  # a copy of cells (structural arguments): its backward, col2im, differentiates to im2col

    @staticmethod
    def forward(ctx, x, kernel_size, dilation=1, padding=0, stride=1):
        _check_image("im2col", "input", x, 4, "[N, H, W, C]")
        g = _window_geometry("im2col", x.shape, kernel_size, dilation, padding, stride)
        ctx.geometry, ctx.shape = g, x.shape
        windows = _windows(x, g)
        return np.ascontiguousarray(windows).reshape(x.shape[0], math.prod(g.out_sizes), -1)

    @staticmethod
    def backward(ctx, grad):
        g = ctx.geometry
        windows = grad.reshape((grad.shape[0],) + g.out_sizes + g.kernel + (ctx.shape[-1],))
        return _scatter_windows(windows, ctx.shape, g), None, None, None, None


class Col2im(Function):
    """PyTorch's F.fold, channels-last, the adjoint of im2col: columns [N, L, kh*kw*C]
    (rows in (kh, kw, C) order, as im2col gives them) summed back into an image
    [N, H, W, C] with (H, W) = output_size; cells that several windows cover get the
    sum. kernel_size, dilation, padding, stride: int or pair, PyTorch's order."""

    linear = True  # a sum of cells, linear in the columns; its arguments are all structural

    @staticmethod
    def forward(ctx, columns, output_size, kernel_size, dilation=1, padding=0, stride=1):
        _check_image("col2im", "input", columns, 3, "[N, L, kh*kw*C]")
        size = _per_dim("col2im", "output_size", output_size, 2, 1)
        kernel = _per_dim("col2im", "kernel_size", kernel_size, 2, 1)
        if columns.shape[2] % math.prod(kernel):
            raise ValueError("col2im: got input of shape %s, expected its last dim a multiple of kh*kw = %d"
                             % (columns.shape, math.prod(kernel)))
        image_shape = (columns.shape[0],) + size + (columns.shape[2] // math.prod(kernel),)
        g = _window_geometry("col2im", image_shape, kernel, dilation, padding, stride)
        if columns.shape[1] != math.prod(g.out_sizes):
            raise ValueError("col2im: got input of shape %s, expected %d windows (dim 1) for output_size %s, "
                             "kernel_size %s, dilation %s, padding %s and stride %s" % (
                                 columns.shape, math.prod(g.out_sizes), size, kernel, g.dilation,
                                 [p[0] for p in g.pads], g.stride))
        ctx.geometry = g
        windows = columns.reshape((columns.shape[0],) + g.out_sizes + g.kernel + (image_shape[-1],))
        return np.ascontiguousarray(_scatter_windows(windows, image_shape, g))

    @staticmethod
    def backward(ctx, grad):
        g = ctx.geometry
        windows = _windows(grad, g)
        return (np.ascontiguousarray(windows).reshape(grad.shape[0], math.prod(g.out_sizes), -1),
                None, None, None, None, None)


@register("im2col")
def im2col(x, kernel_size, dilation=1, padding=0, stride=1):
    """PyTorch's F.unfold, channels-last: x [N, H, W, C] -> [N, L, kh*kw*C] (see Im2col)."""
    return Im2col.apply(x, kernel_size, dilation, padding, stride)


@register("col2im")
def col2im(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """PyTorch's F.fold, channels-last: [N, L, kh*kw*C] -> [N, H, W, C] (see Col2im)."""
    return Col2im.apply(x, output_size, kernel_size, dilation, padding, stride)
