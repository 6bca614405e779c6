"""Pooling family (csrc/pool*.c): 2-D max and average pooling and their gradients, on
NHWC images [n, h, w, c].

kernel_size, stride (None means kernel_size) and padding take every form windows.py
accepts; a pad must be smaller than the kernel on its side, so that every window holds
at least one real cell. The references read the windows of the padded input as a view.
"""
import numpy as np

from . import runtime
from .runtime import by_dtype, check_array, check_float, check_size, dispatch, pointers
from .windows import conv_output_size, image_shape, pad, pair, resolve_padding, scatter_windows, windows

_MAX_FORWARD = by_dtype("ag_max_pool2d_forward_f32", "ag_max_pool2d_forward_f64")
_MAX_BACKWARD = by_dtype("ag_max_pool2d_backward_f32", "ag_max_pool2d_backward_f64")
_AVG_FORWARD = by_dtype("ag_avg_pool2d_forward_f32", "ag_avg_pool2d_forward_f64")
_AVG_BACKWARD = by_dtype("ag_avg_pool2d_backward_f32", "ag_avg_pool2d_backward_f64")


def _geometry(op, x_shape, kernel_size, stride, padding):
    """The validated geometry (a dict of the fields of ag_pool2d_geometry) and the
    resolved kernel (kh, kw), stride (sh, sw) and pads ((top, bottom), (left, right))."""
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
    if kernel[0] * kernel[1] >= 2 ** 31:  # the C window offset table is indexed by int
        raise ValueError("%s: got kernel_size %s, expected a window of fewer than 2**31 cells"
                         % (op, kernel))
    out_h = conv_output_size(height, kernel[0], stride[0], *pads[0])
    out_w = conv_output_size(width, kernel[1], stride[1], *pads[1])
    if out_h < 1 or out_w < 1:
        raise ValueError("%s: input %dx%d with kernel %s, stride %s, padding %s gives output "
                         "%dx%d, expected at least 1x1" % (op, height, width, kernel, stride,
                                                           pads, out_h, out_w))
    check_size(op, "the output", n, out_h, out_w, channels, kernel[0] * kernel[1])
    geometry = dict(batch=n, height=height, width=width, channels=channels,
                    kernel_h=kernel[0], kernel_w=kernel[1], stride_h=stride[0], stride_w=stride[1],
                    pad_top=pads[0][0], pad_left=pads[1][0], out_height=out_h, out_width=out_w)
    return geometry, kernel, stride, pads


def _out_shape(geometry):
    return geometry["batch"], geometry["out_height"], geometry["out_width"], geometry["channels"]


def _call(functions, dtype, geometry, arrays, *flags):
    """One pooling C call: the geometry, C pointers to the (C-contiguous) arrays, then
    the int flags. Returns C's status (max pooling's; average pooling returns None)."""
    return functions[dtype](runtime.ffi.new("ag_pool2d_geometry *", geometry), *pointers(*arrays), *flags)


# ---- max pooling -------------------------------------------------------------------------

def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """2-D max pooling: x [n, h, w, c] -> (y [n, out_h, out_w, c], argmax int64 of y's
    shape holding the flat index into x of each maximum; ties go to the first maximum
    in row-major window order, padded cells never win)."""
    op = "max_pool2d_forward"
    check_array(op, "x", x, 4)
    check_float(op, x=x)
    geometry, kernel, stride, pads = _geometry(op, x.shape, kernel_size, stride, padding)
    return dispatch(_max_forward_c, _max_forward_numpy, x, geometry, kernel, stride, pads)


def _max_forward_c(x, geometry, kernel, stride, pads):
    y = np.empty(_out_shape(geometry), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.int64)
    if _call(_MAX_FORWARD, x.dtype, geometry, (np.ascontiguousarray(x), y, argmax)) != 0:
        raise MemoryError("max_pool2d_forward: could not allocate the window offset table")
    return y, argmax


def _max_forward_numpy(x, geometry, kernel, stride, pads):
    """The reference: each window's maximum (NaN propagates) and the flat index into x
    of its first maximum in row-major window order. Padded cells never win, even against
    a real -inf."""
    n, height, width, channels = x.shape
    out_hw = geometry["out_height"], geometry["out_width"]
    values = windows(pad(x, pads, -np.inf), kernel, stride, out_hw)
    real = windows(pad(np.ones((1, height, width, 1), dtype=bool), pads, False), kernel, stride, out_hw)
    cells = kernel[0] * kernel[1]
    values = values.reshape(values.shape[:4] + (cells,))
    real = real.reshape(real.shape[:4] + (cells,))
    y = values.max(axis=-1)
    hit = real & ((values == y[..., None]) | (np.isnan(values) & np.isnan(y)[..., None]))
    position = np.argmax(hit, axis=-1)          # first True: first maximum, row-major
    kh, kw = np.divmod(position, kernel[1])
    rows = np.arange(out_hw[0]).reshape(1, -1, 1, 1) * stride[0] - pads[0][0] + kh
    cols = np.arange(out_hw[1]).reshape(1, 1, -1, 1) * stride[1] - pads[1][0] + kw
    batch = np.arange(n).reshape(-1, 1, 1, 1)
    channel = np.arange(channels).reshape(1, 1, 1, -1)
    argmax = ((batch * height + rows) * width + cols) * channels + channel
    return np.ascontiguousarray(y, dtype=x.dtype), argmax.astype(np.int64)


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
             (np.ascontiguousarray(grad_y), np.ascontiguousarray(argmax), grad_x)) != 0:
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
    _call(_AVG_FORWARD, x.dtype, geometry, (np.ascontiguousarray(x), y), int(count_include_pad))
    return y


def _window_counts(geometry, kernel, stride, pads, count_include_pad, dtype):
    """Divisor per output pixel, [1, out_h, out_w, 1]."""
    out_hw = geometry["out_height"], geometry["out_width"]
    if count_include_pad:
        return np.full((1, out_hw[0], out_hw[1], 1), kernel[0] * kernel[1], dtype=dtype)
    ones = pad(np.ones((1, geometry["height"], geometry["width"], 1), dtype=dtype), pads)
    return windows(ones, kernel, stride, out_hw).sum(axis=(-2, -1))


def _avg_forward_numpy(x, geometry, kernel, stride, pads, count_include_pad):
    """The reference: window means; padded cells count as zeros in the sum and, when
    count_include_pad, in the divisor."""
    out_hw = geometry["out_height"], geometry["out_width"]
    sums = windows(pad(x, pads), kernel, stride, out_hw).sum(axis=(-2, -1))
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
    _call(_AVG_BACKWARD, grad_y.dtype, geometry, (np.ascontiguousarray(grad_y), grad_x), int(count_include_pad))
    return grad_x


def _avg_backward_numpy(grad_y, x_shape, geometry, kernel, stride, pads, count_include_pad):
    """The reference: each grad_y entry / its divisor, spread over its window."""
    counts = _window_counts(geometry, kernel, stride, pads, count_include_pad, grad_y.dtype)
    share = (grad_y / counts).astype(grad_y.dtype)
    grad_windows = np.broadcast_to(share[:, :, :, None, None, :], share.shape[:3] + kernel + share.shape[3:])
    return np.ascontiguousarray(scatter_windows(grad_windows, x_shape, kernel, stride, pads))
