"""conv2d family (csrc/conv2d*.c): 2-D convolution (cross-correlation) and its two
gradients, on NHWC images [n, h, w, c_in] and weights [kh, kw, c_in, c_out].

Stride and padding take every form windows.py accepts ('same' is TensorFlow's rule);
each kernel resolves them once, into the geometry C reads and the (stride, pads) the
numpy reference reads. The reference is im2col: the windows of the padded input as rows
of a matrix, times the weight as a [kh*kw*c_in, c_out] matrix.
"""
import numpy as np

from . import runtime
from .runtime import by_dtype, c_array, check_array, check_float, check_size, dispatch, pointers
from .windows import conv_output_size, image_shape, pad, pair, resolve_padding, scatter_windows, windows

_FORWARD = by_dtype("ag_conv2d_forward_f32", "ag_conv2d_forward_f64")
_BACKWARD_INPUT = by_dtype("ag_conv2d_backward_input_f32", "ag_conv2d_backward_input_f64")
_BACKWARD_WEIGHT = by_dtype("ag_conv2d_backward_weight_f32", "ag_conv2d_backward_weight_f64")


def _geometry(op, x_shape, w_shape, stride, padding):
    """The validated geometry (a dict of the fields of ag_conv2d_geometry) and the
    resolved stride (stride_h, stride_w) and pads ((top, bottom), (left, right))."""
    n, height, width, in_channels = x_shape
    kernel_h, kernel_w, w_in, out_channels = w_shape
    if in_channels != w_in:
        raise ValueError("%s: input has %d channels (shape %s) but weight expects %d (shape %s, "
                         "[kh, kw, c_in, c_out])" % (op, in_channels, x_shape, w_in, w_shape))
    if kernel_h < 1 or kernel_w < 1 or in_channels < 1 or out_channels < 1:
        raise ValueError("%s: got weight shape %s, expected [kh, kw, c_in, c_out] all >= 1" % (op, w_shape))
    stride = pair(op, "stride", stride, 1)
    pads = resolve_padding(padding, (height, width), (kernel_h, kernel_w), stride, op)
    out_h = conv_output_size(height, kernel_h, stride[0], *pads[0])
    out_w = conv_output_size(width, kernel_w, stride[1], *pads[1])
    if out_h < 1 or out_w < 1:
        raise ValueError("%s: input %dx%d with kernel %dx%d, stride %s, padding %s gives output "
                         "%dx%d, expected at least 1x1" % (op, height, width, kernel_h, kernel_w,
                                                           stride, pads, out_h, out_w))
    check_size(op, "the padded input", n, height + sum(pads[0]) + stride[0],
               width + sum(pads[1]) + stride[1], in_channels)
    check_size(op, "the output", n, out_h, out_w, max(out_channels, kernel_h * kernel_w * in_channels))
    geometry = dict(batch=n, height=height, width=width, in_channels=in_channels,
                    kernel_h=kernel_h, kernel_w=kernel_w, out_channels=out_channels,
                    stride_h=stride[0], stride_w=stride[1], pad_top=pads[0][0],
                    pad_left=pads[1][0], out_height=out_h, out_width=out_w)
    return geometry, stride, pads


def empty_aligned(shape, dtype):
    """np.empty whose data starts on a 64-byte boundary. numpy's 16-byte alignment makes
    every AVX-512 load or store the conv kernels do on it straddle two cache lines
    (measured 3-8% of a conv2d pass on the seed CNN's second layer)."""
    itemsize = np.dtype(dtype).itemsize
    count = 1
    for size in shape:
        count *= int(size)
    raw = np.empty(count + 64 // itemsize, dtype=dtype)
    offset = (-raw.ctypes.data % 64) // itemsize
    return raw[offset:offset + count].reshape(shape)


def _call(op, functions, geometry, first, second, out):
    """One conv C call on C-contiguous operands; out is written, the status checked."""
    geometry_pointer = runtime.ffi.new("ag_conv2d_geometry *", geometry)
    status = functions[out.dtype](geometry_pointer, *pointers(first, second, out))
    if status != 0:
        raise MemoryError("%s: could not allocate the im2col workspace" % op)
    return out


def im2col(x, kernel_hw, stride, pads, out_hw):
    """[n*out_h*out_w, kh*kw*c] matrix whose row p is the receptive field of output
    pixel p in (kh, kw, c) order (the memory order of conv weights)."""
    n, _, _, channels = x.shape
    view = windows(pad(x, pads), kernel_hw, stride, out_hw)
    return view.transpose(0, 1, 2, 4, 5, 3).reshape(n * out_hw[0] * out_hw[1],
                                                    kernel_hw[0] * kernel_hw[1] * channels)


# ---- forward -----------------------------------------------------------------------------

def conv2d_forward(x, w, stride=1, padding="valid"):
    """2-D convolution (cross-correlation): x [n, h, w, c_in], w [kh, kw, c_in, c_out]
    -> y [n, out_h, out_w, c_out]."""
    op = "conv2d_forward"
    check_array(op, "x", x, 4)
    check_array(op, "w", w, 4)
    check_float(op, x=x, w=w)
    geometry, stride, pads = _geometry(op, x.shape, w.shape, stride, padding)
    return dispatch(_forward_c, _forward_numpy, x, w, geometry, stride, pads)


def _forward_c(x, w, geometry, stride, pads):
    y = empty_aligned((geometry["batch"], geometry["out_height"], geometry["out_width"],
                       geometry["out_channels"]), x.dtype)
    return _call("conv2d_forward", _FORWARD, geometry, c_array(x), c_array(w), y)


def _forward_numpy(x, w, geometry, stride, pads):
    """The reference: y = im2col(x) @ w.reshape(kh*kw*c_in, c_out)."""
    out_hw = geometry["out_height"], geometry["out_width"]
    col = im2col(x, w.shape[:2], stride, pads, out_hw)
    y = np.matmul(col, w.reshape(-1, w.shape[3]))
    return np.ascontiguousarray(y.reshape(x.shape[0], out_hw[0], out_hw[1], w.shape[3]))


# ---- gradient w.r.t. the input -------------------------------------------------------------

def conv2d_backward_input(grad_y, w, x_shape, stride=1, padding="valid"):
    """Gradient of conv2d w.r.t. its input: grad_y [n, out_h, out_w, c_out],
    w [kh, kw, c_in, c_out] -> grad_x [x_shape] = [n, h, w, c_in]."""
    op = "conv2d_backward_input"
    check_array(op, "grad_y", grad_y, 4)
    check_array(op, "w", w, 4)
    check_float(op, grad_y=grad_y, w=w)
    x_shape = image_shape(op, "x_shape", x_shape)
    geometry, stride, pads = _geometry(op, x_shape, w.shape, stride, padding)
    expected = (x_shape[0], geometry["out_height"], geometry["out_width"], w.shape[3])
    if grad_y.shape != expected:
        raise ValueError("%s: got grad_y shape %s, expected %s for x_shape %s and weight %s"
                         % (op, grad_y.shape, expected, x_shape, w.shape))
    return dispatch(_backward_input_c, _backward_input_numpy, grad_y, w, x_shape, geometry, stride, pads)


def _backward_input_c(grad_y, w, x_shape, geometry, stride, pads):
    return _call("conv2d_backward_input", _BACKWARD_INPUT, geometry, c_array(grad_y),
                 c_array(w), empty_aligned(x_shape, grad_y.dtype))


def _backward_input_numpy(grad_y, w, x_shape, geometry, stride, pads):
    """The reference: grad_x = col2im(grad_y @ W^T), the adjoint of im2col."""
    kernel_h, kernel_w, in_channels, out_channels = w.shape
    n, out_h, out_w, _ = grad_y.shape
    grad_col = np.matmul(grad_y.reshape(-1, out_channels), w.reshape(-1, out_channels).T)
    grad_windows = grad_col.reshape(n, out_h, out_w, kernel_h, kernel_w, in_channels)
    return np.ascontiguousarray(scatter_windows(grad_windows, x_shape, (kernel_h, kernel_w), stride, pads))


# ---- gradient w.r.t. the weight ------------------------------------------------------------

def conv2d_backward_weight(x, grad_y, w_shape, stride=1, padding="valid"):
    """Gradient of conv2d w.r.t. its weight: x [n, h, w, c_in], grad_y
    [n, out_h, out_w, c_out] -> grad_w [w_shape] = [kh, kw, c_in, c_out]."""
    op = "conv2d_backward_weight"
    check_array(op, "x", x, 4)
    check_array(op, "grad_y", grad_y, 4)
    check_float(op, x=x, grad_y=grad_y)
    w_shape = image_shape(op, "w_shape", w_shape)
    geometry, stride, pads = _geometry(op, x.shape, w_shape, stride, padding)
    expected = (x.shape[0], geometry["out_height"], geometry["out_width"], w_shape[3])
    if grad_y.shape != expected:
        raise ValueError("%s: got grad_y shape %s, expected %s for x shape %s and w_shape %s"
                         % (op, grad_y.shape, expected, x.shape, w_shape))
    return dispatch(_backward_weight_c, _backward_weight_numpy, x, grad_y, w_shape, geometry, stride, pads)


def _backward_weight_c(x, grad_y, w_shape, geometry, stride, pads):
    return _call("conv2d_backward_weight", _BACKWARD_WEIGHT, geometry, c_array(x),
                 c_array(grad_y), empty_aligned(w_shape, x.dtype))


def _backward_weight_numpy(x, grad_y, w_shape, geometry, stride, pads):
    """The reference: grad_w = im2col(x)^T @ grad_y."""
    col = im2col(x, w_shape[:2], stride, pads, (geometry["out_height"], geometry["out_width"]))
    return np.ascontiguousarray(np.matmul(col.T, grad_y.reshape(-1, w_shape[3])).reshape(w_shape))
