"""layer_norm: normalisation over the trailing dimensions, as torch.nn.functional.layer_norm.

One fused Function: the forward keeps the input, each row's mean and reciprocal
standard deviation, and the backward is the closed form (no graph of means and
variances), as torch's native_layer_norm_backward. Everything runs on an [M, N] view of
the input, where N is the product of ``normalized_shape``, through the norm kernels
(autograd_core/kernels/norm.py: one threaded C pass over the rows per direction, the
numpy reference without the extension). Measured on the shared 2-core machine, float32
[768, 128] with weight and bias (the GPT's), forward + backward, medians of 9 alternate
rounds in one process: 0.40-0.47 ms in numpy, 0.15 ms with the kernels (torch, one
thread: 0.21 ms). Higher-order
gradients go through ``composite``, the same normalisation written with ops (mean, sqrt,
division), which runs only when a gradient is to be differentiated.
"""
import numpy as np

from ..function import Function
from ..kernels import norm as _norm
from ..kernels.runtime import FLOAT_DTYPES
from ..registry import register
from ..tensor import as_tensor


class LayerNorm(Function):
    name = "layer_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_shape, eps):
        count = int(np.prod(normalized_shape, dtype=np.int64))
        rows = x.reshape(-1, count)
        weight_row = None if weight is None else weight.reshape(-1)
        bias_row = None if bias is None else bias.reshape(-1)
        forward = _norm.layer_norm_forward if x.dtype in FLOAT_DTYPES else _norm.layer_norm_forward_reference
        out, mean, reciprocal_std = forward(rows, weight_row, bias_row, eps)
        ctx.shape, ctx.affine_shape = x.shape, normalized_shape
        ctx.save_for_backward(rows, mean, reciprocal_std, weight_row)
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        rows, mean, reciprocal_std, weight_row = ctx.saved_tensors
        needs = ctx.needs_input_grad
        backward = _norm.layer_norm_backward if rows.dtype in FLOAT_DTYPES else _norm.layer_norm_backward_reference
        grad_input, grad_weight, grad_bias = backward(
            grad.astype(rows.dtype, copy=False).reshape(rows.shape), rows, mean, reciprocal_std, weight_row, needs[0],
            weight_row is not None and needs[1], needs[2])
        if grad_input is not None:
            grad_input = grad_input.reshape(ctx.shape)
        if grad_weight is not None:
            grad_weight = grad_weight.reshape(ctx.affine_shape)
        if grad_bias is not None:
            grad_bias = grad_bias.reshape(ctx.affine_shape)
        return grad_input, grad_weight, grad_bias, None, None

    @staticmethod
    def composite(x, weight, bias, normalized_shape, eps):
        """forward with ops (for create_graph): the statistics over the trailing dims."""
        dims = tuple(range(x.ndim - len(normalized_shape), x.ndim))
        centered = x - x.mean(axis=dims, keepdims=True)
        variance = (centered * centered).mean(axis=dims, keepdims=True)
        out = centered / (variance + eps).sqrt()
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias
        return out


def _normalized_shape(value, x):
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (int(value),)
    elif isinstance(value, (tuple, list)) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in value):
        value = tuple(int(v) for v in value)
    else:
        raise TypeError("layer_norm: got normalized_shape=%r, expected an int or a tuple of ints" % (value,))
    if not value or any(v < 1 for v in value):
        raise ValueError("layer_norm: got normalized_shape=%r, expected one or more positive sizes" % (value,))
    if x.ndim < len(value) or tuple(x.shape[x.ndim - len(value):]) != value:
        raise ValueError("layer_norm: got an input of shape %s and normalized_shape=%s, expected an input of shape "
                         "[*, %s] (normalized_shape gives the trailing dimensions)"
                         % (tuple(x.shape), value, ", ".join(map(str, value))))
    return value


def _affine(name, value, x, shape):
    if value is None:
        return None
    value = as_tensor("layer_norm", value)
    if value.dtype != x.dtype:
        raise TypeError("layer_norm: got %s of dtype %s for an input of dtype %s, expected one dtype"
                        % (name, value.dtype, x.dtype))
    if tuple(value.shape) != shape:
        raise ValueError("layer_norm: got %s of shape %s, expected normalized_shape %s"
                         % (name, tuple(value.shape), shape))
    return value


@register("layer_norm")
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing dimensions ``normalized_shape``, then scale and shift,
    as torch.nn.functional.layer_norm: (x - mean) / sqrt(var + eps) * weight + bias, with
    the mean and the biased variance taken over those dimensions.

    input [*, *normalized_shape] (float); weight, bias [*normalized_shape] or None (the
    input's dtype) -> [*, *normalized_shape]. Differentiable in all three tensors."""
    x = as_tensor("layer_norm", input)
    if x.dtype.kind != "f":
        raise TypeError("layer_norm: got an input of dtype %s, expected float32 or float64" % x.dtype)
    shape = _normalized_shape(normalized_shape, x)
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.integer, np.floating)) or eps < 0:
        raise ValueError("layer_norm: got eps=%r, expected a non-negative number" % (eps,))
    weight = _affine("weight", weight, x, shape)
    bias = _affine("bias", bias, x, shape)
    return LayerNorm.apply(x, weight, bias, shape, float(eps))
