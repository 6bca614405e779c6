"""Stateless forms of the layers and losses: ``functional.linear(x, weight, bias)`` etc.

The layers in ``layers.py`` hold parameters and call these. Everything differentiable is
an autograd_core op, a fused loss Function from ``losses.py`` (re-exported here) or, where
the engine has none (dropout), a Function defined here. Nothing here imports a Module.
"""
import numpy as np

import autograd_core
from autograd_core import Function, Tensor
from autograd_core.registry import dimension_aliases

from . import init
from .losses import binary_cross_entropy_with_logits, cross_entropy, gaussian_kl, mse_loss

__all__ = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "dropout", "relu", "sigmoid", "tanh",
           "elu", "leaky_relu", "softmax", "log_softmax", "flatten", "pad",
           "cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "gaussian_kl"]


def pad(input, pad, mode="constant", value=None):
    """torch.nn.functional.pad: ``pad`` is (before, after) pairs from the last dim backwards;
    mode constant (value), reflect, replicate or circular; differentiable. The op is
    autograd_core.pad (see there)."""
    _check_tensor("pad", "input", input)
    return autograd_core.pad(input, pad, mode=mode, value=value)


def _check_tensor(op, name, value):
    if not isinstance(value, Tensor):
        raise TypeError("%s: %s must be a Tensor, got %s" % (op, name, type(value).__name__))


def linear(x, weight, bias=None, activation=None):
    """y = x @ weight.T + bias, then the activation.

    x: [..., in_features]; weight: [out_features, in_features]; bias: [out_features] or
    None; activation: None or 'relu' (relu(linear(...)) as one op: the bias and the ReLU
    in one pass, the ReLU's mask kept as bits). Returns [..., out_features]. One fused
    engine op (autograd_core.linear).
    """
    _check_tensor("linear", "x", x)
    return autograd_core.linear(x, weight, bias, activation=activation)


def conv2d(x, weight, bias=None, stride=1, padding="valid", dilation=1, groups=1, *, activation=None):
    """2-D convolution (cross-correlation) of NHWC images, then the activation.

    x: [N, H, W, in_channels]; weight: [kh, kw, in_channels, out_channels];
    bias: [out_channels] or None; padding: 'valid' (default, as autograd_core.conv2d),
    'same' (output = ceil(input / stride)) or an int/pair; activation: None or 'relu'
    (relu(conv2d(...)) as one op: the bias and the ReLU in one pass, the ReLU's mask
    kept as bits). Returns [N, out_h, out_w, out_channels].
    """
    return autograd_core.conv2d(x, weight, bias, stride, padding, dilation, groups, activation=activation)


class _Dropout(Function):
    """x * mask, where mask holds 0 or 1 / (1 - p); the same mask scales the gradient."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad_output):
        (mask,) = ctx.saved_tensors
        return grad_output * mask, None


def dropout(x, p=0.5, training=True, generator=None):
    """Inverted dropout: zero each element with probability p and scale the survivors by
    1 / (1 - p), so evaluation (training=False, the identity) needs no rescaling.

    ``generator``: a numpy Generator; by default the one ``nn.init.manual_seed`` seeds.
    """
    _check_tensor("dropout", "x", x)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError("dropout: p must be a probability in [0, 1], got %r" % (p,))
    if not training or p == 0.0:
        return x
    if x.dtype.kind != "f":
        raise TypeError("dropout: x must be a float tensor, got dtype %s" % x.dtype)
    if p == 1.0:
        mask = np.zeros(x.shape, dtype=x.dtype)
    else:
        rng = init.get_generator() if generator is None else generator
        keep = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= p
        mask = keep.astype(x.dtype)
        mask *= x.dtype.type(1.0 / (1.0 - p))
    return _Dropout.apply(x, mask)


def relu(x):
    """max(x, 0), elementwise."""
    return autograd_core.relu(x)


def sigmoid(x):
    """1 / (1 + exp(-x)), elementwise."""
    return autograd_core.sigmoid(x)


def tanh(x):
    """tanh(x), elementwise."""
    return autograd_core.tanh(x)


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return autograd_core.elu(x, alpha)


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise."""
    return autograd_core.leaky_relu(x, negative_slope)


@dimension_aliases
def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) along ``dim``."""
    return autograd_core.softmax(x, dim=dim)


@dimension_aliases
def log_softmax(x, dim=-1):
    """x - logsumexp(x) along ``dim`` (stable)."""
    return autograd_core.log_softmax(x, dim=dim)


def flatten(x, start_dim=1, end_dim=-1):
    """Merge dimensions start_dim..end_dim (default: all but the batch dimension)."""
    return autograd_core.flatten(x, start_dim, end_dim)


# torch.nn.functional names whose autograd_core op takes the same arguments: bound here, not
# wrapped, so each op stays declared once (help() shows the op's own docstring). unfold/fold
# are torch's im2col/col2im, ag.im2col/ag.col2im here (ag.unfold is Tensor.unfold's windows).
_SAME_AS_OPS = ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
                "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
                "max_unpool1d", "max_unpool2d", "max_unpool3d", "interpolate", "upsample",
                "pixel_shuffle", "pixel_unshuffle", "conv1d", "conv3d", "conv_transpose1d",
                "conv_transpose2d", "conv_transpose3d", "gelu", "silu", "mish", "hardswish",
                "hardsigmoid", "selu", "celu", "softsign", "hardtanh", "relu6", "logsigmoid",
                "softmin", "glu", "prelu", "softplus", "one_hot")
for _name in _SAME_AS_OPS:
    globals()[_name] = getattr(autograd_core, _name)
unfold = autograd_core.im2col
fold = autograd_core.col2im
__all__ += list(_SAME_AS_OPS) + ["unfold", "fold"]


# ---- normalization (issue 14): torch.nn.functional's names and arguments, channels-last; the
# ops are declared once in autograd_core/ops/normalization.py and bound here, not wrapped.
# (layer_norm is another area's.)
_NORMALIZATION_OPS = ("batch_norm", "instance_norm", "group_norm", "local_response_norm")
for _name in _NORMALIZATION_OPS:
    globals()[_name] = getattr(autograd_core, _name)
__all__ += list(_NORMALIZATION_OPS)
