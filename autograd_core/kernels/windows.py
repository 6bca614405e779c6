"""Window geometry shared by the conv2d and pooling families: the user-facing stride and
padding forms, resolved once, and the numpy window views their references build on.

Images are NHWC [batch, height, width, channels]. Stride is an int or (stride_h,
stride_w). Padding is 'valid', 'same', an int, a pair (pad_h, pad_w), or ((top, bottom),
(left, right)).

The user-facing 'same' rule lives here, in resolve_padding, and nowhere else. Layers and
ops pass the user's padding down unchanged and only the kernel bridge resolves it, so
conv2d and pooling, C and numpy paths alike, cannot disagree about it; C and the
references only ever see ((top, bottom), (left, right)). It is TensorFlow's rule (out =
ceil(in / stride); the odd cell of a total padding goes after), the one that goes with
the NHWC layout of the seed lecture, and it is defined for every stride (PyTorch's
padding='same' allows stride 1 only).
"""
import numpy as np

from .runtime import SIZE_LIMIT, is_integer


def pair(op, name, value, minimum):
    """(a, b) from an int or a pair of ints, each >= minimum (and below SIZE_LIMIT)."""
    values = (value, value) if is_integer(value) else value
    if not (isinstance(values, (tuple, list)) and len(values) == 2 and all(is_integer(v) for v in values)):
        raise TypeError("%s: got %s=%r, expected an int or a pair of ints" % (op, name, value))
    if any(v < minimum for v in values) or any(v >= SIZE_LIMIT for v in values):
        raise ValueError("%s: got %s=%r, expected values >= %d" % (op, name, value, minimum))
    return int(values[0]), int(values[1])


def conv_output_size(input_size, kernel_size, stride, pad_before=0, pad_after=0):
    """Output length of a window of kernel_size sliding by stride over input_size cells
    padded by pad_before + pad_after: (input + pads - kernel) // stride + 1. Can be
    <= 0 when the kernel is larger than the padded input; callers reject that."""
    return (input_size + pad_before + pad_after - kernel_size) // stride + 1


def resolve_padding(padding, input_hw, kernel_hw, stride_hw, op="conv2d"):
    """((top, bottom), (left, right)) for any accepted padding form, given the input's
    (height, width), the kernel's and the stride's.

    'same' follows TensorFlow: out = ceil(in / stride), total = max((out - 1) * stride +
    kernel - in, 0), before = total // 2, after = total - before."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0), (0, 0)
        if mode == "same":
            pads = []
            for size, kernel, stride in zip(input_hw, kernel_hw, stride_hw):
                out = -(-size // stride)
                total = max((out - 1) * stride + kernel - size, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError("%s: got padding=%r, expected 'same', 'valid', an int, (pad_h, pad_w) "
                         "or ((top, bottom), (left, right))" % (op, padding))
    if (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        return pair(op, "padding[0]", padding[0], 0), pair(op, "padding[1]", padding[1], 0)
    pad_h, pad_w = pair(op, "padding", padding, 0)
    return (pad_h, pad_h), (pad_w, pad_w)


def image_shape(op, name, shape):
    """shape as a tuple of 4 non-negative ints (an NHWC shape a backward pass is given)."""
    if not (isinstance(shape, (tuple, list)) and len(shape) == 4 and all(is_integer(s) for s in shape)
            and all(s >= 0 for s in shape)):
        raise ValueError("%s: got %s=%r, expected a 4-tuple of non-negative ints" % (op, name, shape))
    return tuple(int(s) for s in shape)


# ---- numpy windows, for the references -----------------------------------------------------

def pad(x, padding, value=0.0):
    """x [n, h, w, c] padded by ((top, bottom), (left, right)) cells of value."""
    (top, bottom), (left, right) = padding
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def windows(padded, kernel_hw, stride, out_hw):
    """View [n, out_h, out_w, c, kh, kw] of the windows of a padded NHWC array."""
    view = np.lib.stride_tricks.sliding_window_view(padded, kernel_hw, axis=(1, 2))
    return view[:, :(out_hw[0] - 1) * stride[0] + 1:stride[0],
                :(out_hw[1] - 1) * stride[1] + 1:stride[1]]


def scatter_windows(grad_windows, x_shape, kernel_hw, stride, padding):
    """Adjoint of windows: sums grad_windows [n, out_h, out_w, kh, kw, c] back onto the
    cells of an NHWC array of shape x_shape that each window position read."""
    (top, bottom), (left, right) = padding
    n, height, width, channels = x_shape
    out_h, out_w = grad_windows.shape[1:3]
    padded = np.zeros((n, height + top + bottom, width + left + right, channels), dtype=grad_windows.dtype)
    for kh in range(kernel_hw[0]):
        for kw in range(kernel_hw[1]):
            padded[:, kh:kh + (out_h - 1) * stride[0] + 1:stride[0],
                   kw:kw + (out_w - 1) * stride[1] + 1:stride[1]] += grad_windows[:, :, :, kh, kw]
    return padded[:, top:top + height, left:left + width]
