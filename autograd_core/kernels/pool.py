"""Pooling family (csrc/pool*.c): 2-D max and average pooling and their gradients, on
NHWC images [n, h, w, c].

kernel_size, stride (None means kernel_size) and padding take every form windows.py
accepts; a pad must be smaller than the kernel on its side, so that every window holds
at least one real cell. The references visit only the kernel offsets that land on real
cells (_taps), so no padded copy of the input is ever built.
"""
import numpy as np

from . import runtime
from .runtime import by_dtype, c_array, check_array, check_float, check_size, dispatch, pointers
from .windows import conv_output_size, image_shape, pair, resolve_padding

_MAX_FORWARD = by_dtype("ag_max_pool2d_forward_f32", "ag_max_pool2d_forward_f64")
_MAX_BACKWARD = by_dtype("ag_max_pool2d_backward_f32", "ag_max_pool2d_backward_f64")
_AVG_FORWARD = by_dtype("ag_avg_pool2d_forward_f32", "ag_avg_pool2d_forward_f64")
_AVG_BACKWARD = by_dtype("ag_avg_pool2d_backward_f32", "ag_avg_pool2d_backward_f64")


def _geometry(op, x_shape, kernel_size, stride, padding, ceil_mode=False):
    """The validated geometry (a dict of the fields of ag_pool2d_geometry) and the
    resolved kernel (kh, kw), stride (sh, sw) and pads ((top, bottom), (left, right)).

    ceil_mode (max pooling) rounds the output size up as torch does: a last window may
    hang past the padded input, but must start inside the input or its leading pad.
    The loops clip every window to the real cells on both sides, so it costs nothing
    but the size; each window keeps at least one real cell."""
    n, height, width, channels = x_shape
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair(op, "stride", stride, 1)
    if height < 1 or width < 1 or channels < 1:
        raise ValueError("%s: got input shape %s, expected [n, h, w, c] with h, w, c >= 1" % (op, x_shape))
    pads = resolve_padding(padding, (height, width), kernel, stride, op)
    for (before, after), k in zip(pads, kernel):
        if before >= k or after >= k:
            raise ValueError("%s: got padding %s with kernel_size %s, expected each pad smaller "
                             "than the kernel (a window of only padding has no value)"
                             % (op, pads, kernel))
    if kernel[0] * kernel[1] >= 2 ** 31:  # float32's C loop keeps window cell numbers in 32 bits
        raise ValueError("%s: got kernel_size %s, expected a window of fewer than 2**31 cells"
                         % (op, kernel))
    out_h = _output_size(height, kernel[0], stride[0], pads[0], ceil_mode)
    out_w = _output_size(width, kernel[1], stride[1], pads[1], ceil_mode)
    if out_h < 1 or out_w < 1:
        raise ValueError("%s: input %dx%d with kernel %s, stride %s, padding %s gives output "
                         "%dx%d, expected at least 1x1" % (op, height, width, kernel, stride,
                                                           pads, out_h, out_w))
    check_size(op, "the output", n, out_h, out_w, channels, kernel[0] * kernel[1])
    geometry = dict(batch=n, height=height, width=width, channels=channels,
                    kernel_h=kernel[0], kernel_w=kernel[1], stride_h=stride[0], stride_w=stride[1],
                    pad_top=pads[0][0], pad_left=pads[1][0], out_height=out_h, out_width=out_w)
    return geometry, kernel, stride, pads


def _output_size(size, kernel, stride, pads, ceil_mode):
    floor = conv_output_size(size, kernel, stride, *pads)
    if not ceil_mode or floor < 1 or (size + pads[0] + pads[1] - kernel) % stride == 0:
        return floor
    return floor + 1 if floor * stride < size + pads[0] else floor


def _out_shape(geometry):
    return geometry["batch"], geometry["out_height"], geometry["out_width"], geometry["channels"]


def _call(functions, dtype, geometry, arrays, *flags):
    """One pooling C call: the geometry, C pointers to the (C-contiguous) arrays, then
    the int flags. Returns C's status (max pooling's; average pooling returns None)."""
    return functions[dtype](runtime.ffi.new("ag_pool2d_geometry *", geometry), *pointers(*arrays), *flags)


# ---- max pooling -------------------------------------------------------------------------

def max_pool2d_forward(x, kernel_size, stride=None, padding=0, with_argmax=True, ceil_mode=False):
    """2-D max pooling: x [n, h, w, c] -> (y [n, out_h, out_w, c], argmax int64 of y's
    shape holding the flat index into x of each maximum; ties go to the first maximum
    in row-major window order, padded cells never win). with_argmax=False (inference,
    nothing to backpropagate) returns (y, None) and spares the argmax's 8 bytes a value.
    ceil_mode: torch's rounded-up output size (see _geometry)."""
    op = "max_pool2d_forward"
    check_array(op, "x", x, 4)
    check_float(op, x=x)
    geometry, kernel, stride, pads = _geometry(op, x.shape, kernel_size, stride, padding, ceil_mode)
    y, argmax = dispatch(_max_forward_c, _max_forward_numpy, x, geometry, kernel, stride, pads, with_argmax)
    return y, (argmax if with_argmax else None)


def _max_forward_c(x, geometry, kernel, stride, pads, with_argmax=True):
    y = np.empty(_out_shape(geometry), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.int64) if with_argmax else None
    if _call(_MAX_FORWARD, x.dtype, geometry, (c_array(x), y, argmax)) != 0:
        raise MemoryError("max_pool2d_forward: could not allocate its workspace")
    return y, argmax


def _max_forward_numpy(x, geometry, kernel, stride, pads, with_argmax=True):
    """The reference: each window's maximum (NaN propagates) and the flat index into x
    of its first maximum in row-major window order. Padded cells never win, even against
    a real -inf: they are never read (see _taps)."""
    n, height, width, channels = x.shape
    out_shape = _out_shape(geometry)
    y = np.full(out_shape, -np.inf, dtype=x.dtype)
    cell = np.zeros(out_shape, dtype=np.int64)
    seen = np.zeros(out_shape, dtype=bool)
    for kh, out_rows, in_rows in _taps(height, kernel[0], stride[0], pads[0][0], out_shape[1]):
        for kw, out_cols, in_cols in _taps(width, kernel[1], stride[1], pads[1][0], out_shape[2]):
            value = x[:, in_rows, in_cols]
            best, where, done = y[:, out_rows, out_cols], cell[:, out_rows, out_cols], seen[:, out_rows, out_cols]
            # row-major order and a strict '>': the first maximum; a NaN always takes
            # over, so the last NaN of a window wins (torch's routing; the C loop too)
            take = ~done | (value > best) | np.isnan(value)
            best[...] = np.where(take, value, best)
            where[...] = np.where(take, kh * kernel[1] + kw, where)
            done[...] = True
    kh, kw = np.divmod(cell, kernel[1])
    rows = np.arange(out_shape[1]).reshape(1, -1, 1, 1) * stride[0] - pads[0][0] + kh
    cols = np.arange(out_shape[2]).reshape(1, 1, -1, 1) * stride[1] - pads[1][0] + kw
    batch = np.arange(n).reshape(-1, 1, 1, 1)
    channel = np.arange(channels).reshape(1, 1, 1, -1)
    argmax = ((batch * height + rows) * width + cols) * channels + channel
    return y, argmax.astype(np.int64)


def _taps(size, kernel, stride, before, outputs):
    """The kernel offsets along one axis that land on a real cell for some output, in
    increasing order, each as (offset, slice of the outputs it reaches, slice of the input
    cells they read there). Output o reads input o * stride - before + offset.

    Only these offsets are visited, so a window that dwarfs its input (kernel 2**14 on a
    2x2 image) costs what its real cells cost, not a padded copy of kernel**2 cells."""
    first = max(0, before - (outputs - 1) * stride)
    for offset in range(first, min(kernel, before + size)):
        o_begin = max(0, -(-(before - offset) // stride))       # ceil
        o_end = min(outputs, (size - 1 + before - offset) // stride + 1)
        if o_begin >= o_end:
            continue
        i_begin = o_begin * stride - before + offset
        yield (offset, slice(o_begin, o_end),
               slice(i_begin, i_begin + (o_end - o_begin - 1) * stride + 1, stride))


def _real_cells(size, kernel, stride, before, outputs):
    """Per output along one axis, how many of its window's cells are real (unpadded)."""
    start = np.arange(outputs) * stride - before
    return np.minimum(start + kernel, size) - np.maximum(start, 0)


def max_pool2d_backward(grad_y, argmax, x_shape):
    """Gradient of max pooling: grad_y [n, out_h, out_w, c] added into grad_x [x_shape]
    at the cells argmax (from max_pool2d_forward) names, accumulating where windows
    overlap."""
    op = "max_pool2d_backward"
    check_array(op, "grad_y", grad_y, 4)
    check_array(op, "argmax", argmax, 4)
    check_float(op, grad_y=grad_y)
    x_shape = image_shape(op, "x_shape", x_shape)
    if argmax.dtype != np.int64:
        raise TypeError("%s: got argmax dtype %s, expected int64" % (op, argmax.dtype))
    if argmax.shape != grad_y.shape:
        raise ValueError("%s: got argmax shape %s and grad_y shape %s, expected equal shapes"
                         % (op, argmax.shape, grad_y.shape))
    if grad_y.shape[0] != x_shape[0] or grad_y.shape[3] != x_shape[3]:
        raise ValueError("%s: got grad_y shape %s and x_shape %s, expected the same batch and "
                         "channels" % (op, grad_y.shape, x_shape))
    return dispatch(_max_backward_c, _max_backward_numpy, grad_y, argmax, x_shape)


def _bad_argmax(x_shape):
    return ValueError("max_pool2d_backward: argmax holds an index outside its own image of x_shape "
                      "%s; expected the argmax returned by max_pool2d_forward" % (x_shape,))


def _max_backward_c(grad_y, argmax, x_shape):
    grad_x = np.empty(x_shape, dtype=grad_y.dtype)
    geometry = dict(batch=x_shape[0], height=x_shape[1], width=x_shape[2], channels=x_shape[3],
                    out_height=grad_y.shape[1], out_width=grad_y.shape[2])
    # C checks every index against its own image while it scatters (status != 0: one was not)
    if _call(_MAX_BACKWARD, grad_y.dtype, geometry,
             (c_array(grad_y), c_array(argmax), grad_x)) != 0:
        raise _bad_argmax(x_shape)
    return grad_x


def _max_backward_numpy(grad_y, argmax, x_shape):
    """The reference: each grad_y entry added to the input cell argmax names."""
    if argmax.size:
        image = x_shape[1] * x_shape[2] * x_shape[3]
        local = argmax.reshape(x_shape[0], -1) - (np.arange(x_shape[0]) * image)[:, None]
        if local.min() < 0 or local.max() >= image:
            raise _bad_argmax(x_shape)
    grad_x = np.zeros(int(np.prod(x_shape)), dtype=grad_y.dtype)
    np.add.at(grad_x, argmax.ravel(), grad_y.ravel())
    return grad_x.reshape(x_shape)


# ---- average pooling ---------------------------------------------------------------------

def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """2-D average pooling: x [n, h, w, c] -> y [n, out_h, out_w, c]. Padded cells add
    zero; count_include_pad (PyTorch's default, True) also counts them in the divisor."""
    op = "avg_pool2d_forward"
    check_array(op, "x", x, 4)
    check_float(op, x=x)
    geometry, kernel, stride, pads = _geometry(op, x.shape, kernel_size, stride, padding)
    return dispatch(_avg_forward_c, _avg_forward_numpy, x, geometry, kernel, stride, pads,
                    bool(count_include_pad))


def _avg_forward_c(x, geometry, kernel, stride, pads, count_include_pad):
    y = np.empty(_out_shape(geometry), dtype=x.dtype)
    _call(_AVG_FORWARD, x.dtype, geometry, (c_array(x), y), int(count_include_pad))
    return y


def _window_counts(geometry, kernel, stride, pads, count_include_pad, dtype):
    """Divisor per output pixel, [1, out_h, out_w, 1]."""
    out_hw = geometry["out_height"], geometry["out_width"]
    if count_include_pad:
        return np.full((1, out_hw[0], out_hw[1], 1), kernel[0] * kernel[1], dtype=dtype)
    rows = _real_cells(geometry["height"], kernel[0], stride[0], pads[0][0], out_hw[0])
    cols = _real_cells(geometry["width"], kernel[1], stride[1], pads[1][0], out_hw[1])
    return (rows[:, None] * cols[None, :]).astype(dtype).reshape(1, out_hw[0], out_hw[1], 1)


def _avg_forward_numpy(x, geometry, kernel, stride, pads, count_include_pad):
    """The reference: window means; padded cells count as zeros in the sum and, when
    count_include_pad, in the divisor. Cells are summed in row-major window order."""
    sums = np.zeros(_out_shape(geometry), dtype=x.dtype)
    for _, out_rows, in_rows in _taps(x.shape[1], kernel[0], stride[0], pads[0][0], sums.shape[1]):
        for _, out_cols, in_cols in _taps(x.shape[2], kernel[1], stride[1], pads[1][0], sums.shape[2]):
            sums[:, out_rows, out_cols] += x[:, in_rows, in_cols]
    counts = _window_counts(geometry, kernel, stride, pads, count_include_pad, x.dtype)
    return np.ascontiguousarray((sums / counts).astype(x.dtype))


def avg_pool2d_backward(grad_y, x_shape, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Gradient of average pooling: grad_y [n, out_h, out_w, c] -> grad_x [x_shape]."""
    op = "avg_pool2d_backward"
    check_array(op, "grad_y", grad_y, 4)
    check_float(op, grad_y=grad_y)
    x_shape = image_shape(op, "x_shape", x_shape)
    geometry, kernel, stride, pads = _geometry(op, x_shape, kernel_size, stride, padding)
    if grad_y.shape != _out_shape(geometry):
        raise ValueError("%s: got grad_y shape %s, expected %s for x_shape %s"
                         % (op, grad_y.shape, _out_shape(geometry), x_shape))
    return dispatch(_avg_backward_c, _avg_backward_numpy, grad_y, x_shape, geometry, kernel, stride, pads,
                    bool(count_include_pad))


def _avg_backward_c(grad_y, x_shape, geometry, kernel, stride, pads, count_include_pad):
    grad_x = np.empty(x_shape, dtype=grad_y.dtype)
    _call(_AVG_BACKWARD, grad_y.dtype, geometry, (c_array(grad_y), grad_x), int(count_include_pad))
    return grad_x


def _avg_backward_numpy(grad_y, x_shape, geometry, kernel, stride, pads, count_include_pad):
    """The reference: each grad_y entry / its divisor, added to every real cell of its
    window."""
    counts = _window_counts(geometry, kernel, stride, pads, count_include_pad, grad_y.dtype)
    share = (grad_y / counts).astype(grad_y.dtype)
    grad_x = np.zeros(x_shape, dtype=grad_y.dtype)
    for _, out_rows, in_rows in _taps(x_shape[1], kernel[0], stride[0], pads[0][0], share.shape[1]):
        for _, out_cols, in_cols in _taps(x_shape[2], kernel[1], stride[1], pads[1][0], share.shape[2]):
            grad_x[:, in_rows, in_cols] += share[:, out_rows, out_cols]
    return grad_x
