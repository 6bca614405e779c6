"""Numpy reference implementations of every compiled kernel.

Each function here has the same signature and result as its counterpart in
``kernels.py``. They are the test oracle, the benchmark baseline, and the fallback
when the C extension was not built. Clarity beats speed here, within reason.
"""
import numpy as np


def gemm(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c=None):
    """C = alpha * op(A) @ op(B) + beta * C for 2-D arrays; returns a new array."""
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    out = np.matmul(op_a, op_b)
    if alpha != 1.0:
        out *= alpha
    if c is not None and beta != 0.0:
        out += beta * c
    return out


# ---- conv2d, pooling, fused recurrent cells --------------------------------------
# These take stride as (stride_h, stride_w) and padding as ((top, bottom), (left, right)):
# the bridge (kernels.py) resolves the user-facing forms ('same', ints, pairs) first.
# Layouts are NHWC images and [kh, kw, c_in, c_out] conv weights.


def _output_hw(height, width, kernel_hw, stride, padding):
    (top, bottom), (left, right) = padding
    return ((height + top + bottom - kernel_hw[0]) // stride[0] + 1,
            (width + left + right - kernel_hw[1]) // stride[1] + 1)


def _windows(padded, kernel_hw, stride, out_hw):
    """View [n, out_h, out_w, c, kh, kw] of the windows of a padded NHWC array."""
    view = np.lib.stride_tricks.sliding_window_view(padded, kernel_hw, axis=(1, 2))
    return view[:, :(out_hw[0] - 1) * stride[0] + 1:stride[0],
                :(out_hw[1] - 1) * stride[1] + 1:stride[1]]


def _pad(x, padding, value=0.0):
    (top, bottom), (left, right) = padding
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _scatter_windows(grad_windows, x_shape, kernel_hw, stride, padding):
    """Adjoint of _windows: sum grad_windows [n, oh, ow, kh, kw, c] back onto the cells
    of an NHWC array of shape x_shape that each window position read."""
    (top, bottom), (left, right) = padding
    n, height, width, channels = x_shape
    out_h, out_w = grad_windows.shape[1:3]
    padded = np.zeros((n, height + top + bottom, width + left + right, channels),
                      dtype=grad_windows.dtype)
    for kh in range(kernel_hw[0]):
        for kw in range(kernel_hw[1]):
            padded[:, kh:kh + (out_h - 1) * stride[0] + 1:stride[0],
                   kw:kw + (out_w - 1) * stride[1] + 1:stride[1]] += grad_windows[:, :, :, kh, kw]
    return padded[:, top:top + height, left:left + width]


def im2col(x, kernel_hw, stride, padding):
    """[n*out_h*out_w, kh*kw*c] matrix whose row p is the receptive field of output
    pixel p in (kh, kw, c) order (the memory order of conv weights)."""
    n, height, width, channels = x.shape
    out_hw = _output_hw(height, width, kernel_hw, stride, padding)
    windows = _windows(_pad(x, padding), kernel_hw, stride, out_hw)
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(
        n * out_hw[0] * out_hw[1], kernel_hw[0] * kernel_hw[1] * channels)


def conv2d_forward(x, w, stride, padding):
    """y [n, out_h, out_w, c_out] = im2col(x) @ w.reshape(kh*kw*c_in, c_out)."""
    n, height, width, _ = x.shape
    kernel_h, kernel_w, _, out_channels = w.shape
    out_h, out_w = _output_hw(height, width, (kernel_h, kernel_w), stride, padding)
    col = im2col(x, (kernel_h, kernel_w), stride, padding)
    return np.matmul(col, w.reshape(-1, out_channels)).reshape(n, out_h, out_w, out_channels)


def conv2d_backward_input(grad_y, w, x_shape, stride, padding):
    """grad_x [x_shape] = col2im(grad_y @ W^T)."""
    kernel_h, kernel_w, in_channels, out_channels = w.shape
    n, out_h, out_w, _ = grad_y.shape
    grad_col = np.matmul(grad_y.reshape(-1, out_channels), w.reshape(-1, out_channels).T)
    grad_windows = grad_col.reshape(n, out_h, out_w, kernel_h, kernel_w, in_channels)
    return _scatter_windows(grad_windows, x_shape, (kernel_h, kernel_w), stride, padding)


def conv2d_backward_weight(x, grad_y, w_shape, stride, padding):
    """grad_w [w_shape] = im2col(x)^T @ grad_y."""
    col = im2col(x, w_shape[:2], stride, padding)
    return np.matmul(col.T, grad_y.reshape(-1, w_shape[3])).reshape(w_shape)


def max_pool2d_forward(x, kernel_hw, stride, padding):
    """(y, argmax): y [n, out_h, out_w, c] is each window's maximum (NaN propagates);
    argmax (int64, same shape) is the flat index into x of the first maximum in
    row-major window order. Padded cells never win, even against a real -inf."""
    n, height, width, channels = x.shape
    out_hw = _output_hw(height, width, kernel_hw, stride, padding)
    values = _windows(_pad(x, padding, -np.inf), kernel_hw, stride, out_hw)
    real = _windows(_pad(np.ones((1, height, width, 1), dtype=bool), padding, False),
                    kernel_hw, stride, out_hw)
    cells = kernel_hw[0] * kernel_hw[1]
    values = values.reshape(values.shape[:4] + (cells,))
    real = real.reshape(real.shape[:4] + (cells,))
    y = values.max(axis=-1)
    hit = real & ((values == y[..., None]) | (np.isnan(values) & np.isnan(y)[..., None]))
    position = np.argmax(hit, axis=-1)          # first True: first maximum, row-major
    kh, kw = np.divmod(position, kernel_hw[1])
    rows = np.arange(out_hw[0]).reshape(1, -1, 1, 1) * stride[0] - padding[0][0] + kh
    cols = np.arange(out_hw[1]).reshape(1, 1, -1, 1) * stride[1] - padding[1][0] + kw
    batch = np.arange(n).reshape(-1, 1, 1, 1)
    channel = np.arange(channels).reshape(1, 1, 1, -1)
    argmax = ((batch * height + rows) * width + cols) * channels + channel
    return np.ascontiguousarray(y, dtype=x.dtype), argmax.astype(np.int64)


def max_pool2d_backward(grad_y, argmax, x_shape):
    """grad_x [x_shape]: each grad_y entry added to the input cell argmax names."""
    grad_x = np.zeros(int(np.prod(x_shape)), dtype=grad_y.dtype)
    np.add.at(grad_x, argmax.ravel(), grad_y.ravel())
    return grad_x.reshape(x_shape)


def _window_counts(height, width, kernel_hw, stride, padding, count_include_pad, dtype):
    """Divisor per output pixel, [1, out_h, out_w, 1]."""
    out_hw = _output_hw(height, width, kernel_hw, stride, padding)
    if count_include_pad:
        return np.full((1, out_hw[0], out_hw[1], 1), kernel_hw[0] * kernel_hw[1], dtype=dtype)
    ones = _pad(np.ones((1, height, width, 1), dtype=dtype), padding)
    return _windows(ones, kernel_hw, stride, out_hw).sum(axis=(-2, -1))


def avg_pool2d_forward(x, kernel_hw, stride, padding, count_include_pad=True):
    """y [n, out_h, out_w, c]: window means; padded cells count as zeros in the sum and,
    when count_include_pad, in the divisor."""
    n, height, width, channels = x.shape
    out_hw = _output_hw(height, width, kernel_hw, stride, padding)
    sums = _windows(_pad(x, padding), kernel_hw, stride, out_hw).sum(axis=(-2, -1))
    counts = _window_counts(height, width, kernel_hw, stride, padding, count_include_pad, x.dtype)
    return (sums / counts).astype(x.dtype)


def avg_pool2d_backward(grad_y, x_shape, kernel_hw, stride, padding, count_include_pad=True):
    """grad_x [x_shape]: each grad_y entry / its divisor, spread over its window."""
    counts = _window_counts(x_shape[1], x_shape[2], kernel_hw, stride, padding,
                            count_include_pad, grad_y.dtype)
    share = (grad_y / counts).astype(grad_y.dtype)
    grad_windows = np.broadcast_to(share[:, :, :, None, None, :],
                                   share.shape[:3] + tuple(kernel_hw) + share.shape[3:])
    return _scatter_windows(grad_windows, x_shape, kernel_hw, stride, padding)


def _sigmoid(v):
    # exp(-v) overflows to inf for very negative v, giving 0 cleanly; silence the warning.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


def lstm_cell_forward(gates, c_prev):
    """gates [b, 4h] pre-activations in PyTorch order i, f, g, o; c_prev [b, h].
    Returns h [b, h], c [b, h], saved [b, 5h] = (i, f, g, o activated, tanh(c))."""
    i, f, g, o = np.split(gates, 4, axis=1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    saved = np.concatenate([i, f, g, o, tanh_c], axis=1)
    return h.astype(gates.dtype), c.astype(gates.dtype), saved.astype(gates.dtype)


def lstm_cell_backward(saved, c_prev, grad_h, grad_c=None):
    """Returns grad_gates [b, 4h] (w.r.t. the pre-activations) and grad_c_prev [b, h]."""
    i, f, g, o, tanh_c = np.split(saved, 5, axis=1)
    grad_cell = grad_h * o * (1 - tanh_c * tanh_c)
    if grad_c is not None:
        grad_cell = grad_cell + grad_c
    grad_gates = np.concatenate([
        grad_cell * g * i * (1 - i),
        grad_cell * c_prev * f * (1 - f),
        grad_cell * i * (1 - g * g),
        grad_h * tanh_c * o * (1 - o)], axis=1)
    return grad_gates.astype(saved.dtype), (grad_cell * f).astype(saved.dtype)


def gru_cell_forward(gi, gh, h_prev):
    """gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh, both [b, 3h] in order r, z, n.
    Returns h [b, h] and saved [b, 4h] = (r, z, n, gh_n)."""
    gi_r, gi_z, gi_n = np.split(gi, 3, axis=1)
    gh_r, gh_z, gh_n = np.split(gh, 3, axis=1)
    r = _sigmoid(gi_r + gh_r)
    z = _sigmoid(gi_z + gh_z)
    n = np.tanh(gi_n + r * gh_n)
    h = (1 - z) * n + z * h_prev
    return h.astype(gi.dtype), np.concatenate([r, z, n, gh_n], axis=1).astype(gi.dtype)


def gru_cell_backward(saved, h_prev, grad_h):
    """Returns grad_gi [b, 3h], grad_gh [b, 3h] and grad_h_prev [b, h]; grad_h_prev is
    only the direct path through z * h_prev (the path through gh is the caller's matmul)."""
    r, z, n, gh_n = np.split(saved, 4, axis=1)
    grad_n = grad_h * (1 - z) * (1 - n * n)
    grad_z = grad_h * (h_prev - n) * z * (1 - z)
    grad_r = grad_n * gh_n * r * (1 - r)
    grad_gi = np.concatenate([grad_r, grad_z, grad_n], axis=1)
    grad_gh = np.concatenate([grad_r, grad_z, grad_n * r], axis=1)
    return (grad_gi.astype(saved.dtype), grad_gh.astype(saved.dtype),
            (grad_h * z).astype(saved.dtype))


def batched_gemm(a, b, trans_a=False, trans_b=False):
    """op(a[i]) @ op(b[i]) for 3-D arrays [batch, m, k] x [batch, k, n]; returns a new array."""
    op_a = np.swapaxes(a, 1, 2) if trans_a else a
    op_b = np.swapaxes(b, 1, 2) if trans_b else b
    return np.matmul(op_a, op_b)
