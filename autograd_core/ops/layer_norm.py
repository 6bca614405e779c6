"""layer_norm: normalisation over the trailing dimensions, as torch.nn.functional.layer_norm.

One fused Function: the forward keeps the normalised input and the reciprocal standard
deviation, and the backward is the closed form (no graph of means and variances), as
torch's native_layer_norm_backward. Everything runs on an [M, N] view of the input, where
N is the product of ``normalized_shape``: numpy reduces each row in one vectorised call.
Higher-order gradients go through ``composite``, the same normalisation written with
ops (mean, sqrt, division), which runs only when a gradient is to be differentiated.
"""
import numpy as np

from ..function import Function
from ..registry import register
from ..tensor import as_tensor


class LayerNorm(Function):
    name = "layer_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_shape, eps):
        count = int(np.prod(normalized_shape, dtype=np.int64))
        rows = x.reshape(-1, count)
        mean = rows.mean(axis=1, keepdims=True)
        centered = rows - mean
        # the biased variance, as torch (it divides by N, not N - 1)
        variance = np.einsum("ij,ij->i", centered, centered)[:, None] / x.dtype.type(count)
        reciprocal_std = 1.0 / np.sqrt(variance + x.dtype.type(eps))
        normalized = centered * reciprocal_std
        ctx.shape, ctx.count, ctx.affine_shape = x.shape, count, normalized_shape
        ctx.save_for_backward(normalized, reciprocal_std, weight)
        out = normalized
        if weight is not None:
            out = out * weight.reshape(-1)
        if bias is not None:
            out = out + bias.reshape(-1)
        elif weight is None:
            out = out.copy()  # the output must not share memory with what backward saved
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        normalized, reciprocal_std, weight = ctx.saved_tensors
        grad_rows = grad.reshape(-1, ctx.count)
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            # d/dx of (x - mean) * rstd: rstd * (g - mean(g) - xhat * mean(g * xhat)),
            # g the gradient reaching the normalised value
            reaching = grad_rows * weight.reshape(-1) if weight is not None else grad_rows
            inverse_count = grad.dtype.type(1.0 / ctx.count)
            mean_grad = reaching.sum(axis=1, keepdims=True) * inverse_count
            mean_projection = np.einsum("ij,ij->i", reaching, normalized)[:, None] * inverse_count
            grad_input = (reciprocal_std * (reaching - mean_grad - normalized * mean_projection)).reshape(ctx.shape)
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = np.einsum("ij,ij->j", grad_rows, normalized).reshape(weight.shape)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_rows.sum(axis=0).reshape(ctx.affine_shape)
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
