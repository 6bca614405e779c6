"""norm family (csrc/norm*.c): layer norm over the last dimension and batch norm's
training statistics over channels-last input, forward and backward, for the layer_norm
and batch_norm ops. tests/test_norm_kernels.py.

Arrays are [rows, width] in memory: layer norm normalizes each row (width = features),
batch norm each column (width = channels, rows = N*H*W). The forward returns the
statistics the backward needs (mean and rstd = 1 / sqrt(var + eps); batch norm also the
biased variance, for the running statistics the caller updates), so the backward reads
the input x again instead of keeping a normalized copy alive.

The C path does each direction in one threaded pass per phase; its reductions across
rows are summed per chunk of rows and added in chunk order, so a result is the same at
every thread count and SIMD level (csrc/norm_driver.h). The numpy reference sits next
to each C call: the oracle of the tests and the path without the extension.
"""
import numpy as np

from .runtime import by_dtype, c_array, check_float, dispatch, pointers

_LAYER_FORWARD = by_dtype("ag_layer_norm_forward_f32", "ag_layer_norm_forward_f64")
_LAYER_BACKWARD = by_dtype("ag_layer_norm_backward_f32", "ag_layer_norm_backward_f64")
_BATCH_FORWARD = by_dtype("ag_batch_norm_forward_f32", "ag_batch_norm_forward_f64")
_BATCH_BACKWARD = by_dtype("ag_batch_norm_backward_f32", "ag_batch_norm_backward_f64")


def _check_rows(op, name, array, width=None):
    if not isinstance(array, np.ndarray) or array.ndim != 2:
        raise ValueError("%s: got %s of shape %s, expected a 2-d numpy.ndarray [rows, %s]"
                         % (op, name, getattr(array, "shape", type(array).__name__),
                            "width" if width is None else width))
    if width is not None and array.shape[1] != width:
        raise ValueError("%s: got %s of shape %s, expected [rows, %d]" % (op, name, array.shape, width))


def _check_vector(op, name, array, size, dtype):
    if array is None:
        return
    if not isinstance(array, np.ndarray) or array.shape != (size,):
        raise ValueError("%s: got %s of shape %s, expected (%d,)" % (op, name, np.shape(array), size))
    if array.dtype != dtype:
        raise TypeError("%s: got %s of dtype %s, expected %s (the input's)" % (op, name, array.dtype, dtype))


def _check_eps(op, eps):
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) or not eps >= 0:
        raise ValueError("%s: got eps=%r, expected a non-negative number" % (op, eps))
    return float(eps)


def _check_backward(op, grad, x, mean, rstd, weight, statistics):
    _check_rows(op, "x", x)
    _check_rows(op, "grad", grad, x.shape[1])
    if grad.shape != x.shape:
        raise ValueError("%s: got grad of shape %s for x of shape %s, expected the same shape"
                         % (op, grad.shape, x.shape))
    dtype = check_float(op, grad=grad, x=x)
    _check_vector(op, "mean", mean, statistics, dtype)
    _check_vector(op, "rstd", rstd, statistics, dtype)
    if mean is None or rstd is None:
        raise ValueError("%s: got mean=None or rstd=None, expected the forward's statistics" % op)
    _check_vector(op, "weight", weight, x.shape[1], dtype)


def _status(op, status):
    if status != 0:
        raise MemoryError("%s: could not allocate the partial sums" % op)


# ---- layer norm ----------------------------------------------------------------------------

def layer_norm_forward(x, weight=None, bias=None, eps=1e-5):
    """Layer norm of each row: y = (x - mean) * rstd * weight + bias, mean and the biased
    variance over the row, rstd = 1 / sqrt(var + eps).

    x [rows, features] float32/float64; weight, bias [features] (x's dtype) or None.
    Returns (y [rows, features], mean [rows], rstd [rows])."""
    op = "layer_norm_forward"
    _check_rows(op, "x", x)
    dtype = check_float(op, x=x)
    if x.shape[1] < 1:
        raise ValueError("layer_norm_forward: got x of shape %s, expected at least one feature" % (x.shape,))
    _check_vector(op, "weight", weight, x.shape[1], dtype)
    _check_vector(op, "bias", bias, x.shape[1], dtype)
    return dispatch(_layer_forward_c, layer_norm_forward_reference, x, weight, bias, _check_eps(op, eps))


def _layer_forward_c(x, weight, bias, eps):
    x = c_array(x)
    rows, features = x.shape
    y = np.empty_like(x)
    mean = np.empty(rows, dtype=x.dtype)
    rstd = np.empty(rows, dtype=x.dtype)
    _LAYER_FORWARD[x.dtype](rows, features, *pointers(x, _c_or_none(weight), _c_or_none(bias)), eps,
                            *pointers(y, mean, rstd))
    return y, mean, rstd


def layer_norm_forward_reference(x, weight, bias, eps):
    """The reference: numpy's mean, an einsum for the centred squares, then y."""
    mean = x.mean(axis=1)
    centered = x - mean[:, None]
    variance = np.einsum("ij,ij->i", centered, centered) / x.dtype.type(x.shape[1])
    rstd = 1.0 / np.sqrt(variance + x.dtype.type(eps))
    y = centered * rstd[:, None]
    if weight is not None:
        y *= weight
    if bias is not None:
        y += bias
    return y, mean, rstd


def layer_norm_backward(grad, x, mean, rstd, weight=None, input_grad=True, weight_grad=True, bias_grad=True):
    """The backward of layer_norm_forward: (grad_x, grad_weight, grad_bias), each None
    unless asked for (grad_weight also None without a weight).

    grad, x [rows, features]; mean, rstd [rows] (the forward's); weight [features] or
    None. grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat)) per row, g = grad *
    weight, xhat = (x - mean) * rstd; grad_weight = sum over rows of grad * xhat,
    grad_bias = sum over rows of grad ([features])."""
    op = "layer_norm_backward"
    _check_backward(op, grad, x, mean, rstd, weight, x.shape[0] if isinstance(x, np.ndarray) and x.ndim == 2 else 0)
    return dispatch(_layer_backward_c, layer_norm_backward_reference, grad, x, mean, rstd, weight,
                    bool(input_grad), bool(weight_grad) and weight is not None, bool(bias_grad))


def _layer_backward_c(grad, x, mean, rstd, weight, input_grad, weight_grad, bias_grad):
    grad, x = c_array(grad), c_array(x)
    rows, features = x.shape
    grad_x = np.empty_like(x) if input_grad else None
    grad_weight = np.empty(features, dtype=x.dtype) if weight_grad else None
    grad_bias = np.empty(features, dtype=x.dtype) if bias_grad else None
    _status("layer_norm_backward", _LAYER_BACKWARD[x.dtype](
        rows, features, *pointers(grad, x, c_array(mean), c_array(rstd), _c_or_none(weight), grad_x,
                                  grad_weight, grad_bias)))
    return grad_x, grad_weight, grad_bias


def layer_norm_backward_reference(grad, x, mean, rstd, weight, input_grad, weight_grad, bias_grad):
    """The reference: the closed form with numpy's row sums (einsum for the products)."""
    normalized = (x - mean[:, None]) * rstd[:, None]
    grad_x = grad_weight = grad_bias = None
    if input_grad:
        reaching = grad * weight if weight is not None else grad
        inverse_count = x.dtype.type(1.0 / max(x.shape[1], 1))
        mean_grad = reaching.sum(axis=1, keepdims=True) * inverse_count
        mean_product = np.einsum("ij,ij->i", reaching, normalized)[:, None] * inverse_count
        grad_x = rstd[:, None] * (reaching - mean_grad - normalized * mean_product)
    if weight_grad:
        grad_weight = np.einsum("ij,ij->j", grad, normalized)
    if bias_grad:
        grad_bias = grad.sum(axis=0)
    return grad_x, grad_weight, grad_bias


# ---- batch norm ----------------------------------------------------------------------------

def batch_norm_forward(x, weight=None, bias=None, eps=1e-5):
    """Batch norm in training of channels-last x [rows, channels] (rows = N*H*W, at
    least 1): per channel the mean and the biased variance over the rows, rstd = 1 /
    sqrt(var + eps), y = (x - mean) * rstd * weight + bias (weight, bias [channels] or
    None). Returns (y [rows, channels], mean, var, rstd [channels]); the running
    statistics are the caller's to update."""
    op = "batch_norm_forward"
    _check_rows(op, "x", x)
    dtype = check_float(op, x=x)
    if x.shape[0] < 1:
        raise ValueError("batch_norm_forward: got x of shape %s, expected at least one row" % (x.shape,))
    _check_vector(op, "weight", weight, x.shape[1], dtype)
    _check_vector(op, "bias", bias, x.shape[1], dtype)
    return dispatch(_batch_forward_c, batch_norm_forward_reference, x, weight, bias, _check_eps(op, eps))


def _batch_forward_c(x, weight, bias, eps):
    x = c_array(x)
    rows, channels = x.shape
    y = np.empty_like(x)
    mean, var, rstd = (np.empty(channels, dtype=x.dtype) for _ in range(3))
    _status("batch_norm_forward", _BATCH_FORWARD[x.dtype](
        rows, channels, *pointers(x, _c_or_none(weight), _c_or_none(bias)), eps, *pointers(y, mean, var, rstd)))
    return y, mean, var, rstd


def batch_norm_forward_reference(x, weight, bias, eps):
    """The reference: numpy's means over the rows, then y."""
    mean = x.mean(axis=0)
    centered = x - mean
    var = np.square(centered).mean(axis=0)
    rstd = 1.0 / np.sqrt(var + x.dtype.type(eps))
    y = centered * (rstd * weight if weight is not None else rstd)
    if bias is not None:
        y += bias
    return y, mean, var, rstd


def batch_norm_backward(grad, x, mean, rstd, weight=None, input_grad=True):
    """The backward of batch_norm_forward: (grad_x or None, grad_weight, grad_bias).

    grad, x [rows, channels]; mean, rstd [channels] (the forward's); weight [channels]
    or None. grad_weight = sum over rows of grad * xhat, grad_bias = sum of grad
    ([channels], returned with or without a weight); grad_x = weight * rstd * (grad -
    mean(grad) - xhat * mean(grad * xhat)), xhat = (x - mean) * rstd."""
    op = "batch_norm_backward"
    _check_backward(op, grad, x, mean, rstd, weight, x.shape[1] if isinstance(x, np.ndarray) and x.ndim == 2 else 0)
    return dispatch(_batch_backward_c, batch_norm_backward_reference, grad, x, mean, rstd, weight, bool(input_grad))


def _batch_backward_c(grad, x, mean, rstd, weight, input_grad):
    grad, x = c_array(grad), c_array(x)
    rows, channels = x.shape
    grad_x = np.empty_like(x) if input_grad else None
    grad_weight = np.empty(channels, dtype=x.dtype)
    grad_bias = np.empty(channels, dtype=x.dtype)
    _status("batch_norm_backward", _BATCH_BACKWARD[x.dtype](
        rows, channels, *pointers(grad, x, c_array(mean), c_array(rstd), _c_or_none(weight), grad_x,
                                  grad_weight, grad_bias)))
    return grad_x, grad_weight, grad_bias


def batch_norm_backward_reference(grad, x, mean, rstd, weight, input_grad):
    """The reference: two column sums, then the closed form."""
    normalized = (x - mean) * rstd
    grad_bias = grad.sum(axis=0)
    grad_weight = np.einsum("ij,ij->j", grad, normalized)
    grad_x = None
    if input_grad:
        count = x.dtype.type(max(x.shape[0], 1))
        scale = rstd * weight if weight is not None else rstd
        grad_x = scale * (grad - grad_bias / count - normalized * (grad_weight / count))
    return grad_x, grad_weight, grad_bias


def _c_or_none(array):
    return None if array is None else c_array(array)
