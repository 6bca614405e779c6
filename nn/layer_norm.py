"""LayerNorm: normalisation over the trailing dimensions, as torch.nn.LayerNorm (same
arguments, parameter names and initial values), on the fused ``layer_norm`` op."""
import numpy as np

import autograd_core

from .module import Module, Parameter

__all__ = ["LayerNorm"]


def _shape(value):
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not value or any(
            isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1 for v in value):
        raise ValueError("LayerNorm: normalized_shape must be a positive int or a non-empty tuple of positive ints, "
                         "got %r" % (value,))
    return tuple(int(v) for v in value)


class LayerNorm(Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape)
    dimensions, as torch.nn.LayerNorm.

    x: [*, *normalized_shape] -> the same shape. weight (ones) and bias (zeros):
    [*normalized_shape], present when ``elementwise_affine`` (bias only when ``bias``).
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=np.float32):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.integer, np.floating)) or eps < 0:
            raise ValueError("LayerNorm: eps must be a non-negative number, got %r" % (eps,))
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self):
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def forward(self, x):
        """x [*, *normalized_shape] -> the same shape."""
        trailing = tuple(x.shape[x.ndim - len(self.normalized_shape):]) if x.ndim >= len(self.normalized_shape) else None
        if trailing != self.normalized_shape:
            raise ValueError("%s: expected an input of shape [*, %s], got %s"
                             % (self._name(), ", ".join(map(str, self.normalized_shape)), tuple(x.shape)))
        if self.weight is not None and x.dtype != self.weight.dtype:
            raise TypeError("%s: input has dtype %s but the parameters are %s (convert one of them)"
                            % (self._name(), x.dtype, self.weight.dtype))
        return autograd_core.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def _name(self):
        return "LayerNorm(%s)" % (self.normalized_shape,)

    def extra_repr(self):
        return "%s, eps=%s, elementwise_affine=%s" % (self.normalized_shape, self.eps, self.elementwise_affine)
